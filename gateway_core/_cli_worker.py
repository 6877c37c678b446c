"""``gateway worker``: run the background work until stopped (see :mod:`gateway_core._worker`
and ``docs/operations.md``, "Workers"). The dispatch lives in :mod:`gateway_core.cli`.

SIGTERM and SIGINT stop it cleanly: the hook running finishes, the outbox events it claimed
and did not start are handed back, deferred ledger writes are flushed, and it exits 0.
"""

from __future__ import annotations

import argparse
import errno
import json
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, TextIO

import attrs

from gateway_core._cli_support import CommandError
from gateway_core._config import Settings
from gateway_core._runtime import Runtime
from gateway_core._worker import HealthServer, Route, Worker, WorkerConfig, worker_routes

WORKER_HELP = (
    "run background work until stopped: deliver hook events, reconcile, settle refunds, "
    "prune the journal ([worker] table)"
)


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``gateway worker`` (each overrides its ``[worker]`` key)."""
    parser.add_argument("--once", action="store_true", help="one pass, then exit (for cron)")
    parser.add_argument("--health-host", default=None, help="[worker] health_host")
    parser.add_argument(
        "--health-port", type=int, default=None, help="[worker] health_port (0: a free port)"
    )
    parser.add_argument(
        "--no-health", action="store_true", help="serve no health endpoint ([worker] health)"
    )


def extra_routes(rt: Runtime) -> dict[str, Route]:
    """More routes for the health endpoint, beside ``/healthz`` and ``/readyz``: the place
    to add ``/metrics`` (path -> function of no arguments returning status, content type,
    body)."""
    from gateway_core.metrics import metrics_route

    return {"/metrics": metrics_route(rt.service.metrics)}


def worker_config(settings: Settings, args: argparse.Namespace) -> WorkerConfig:
    """``[worker]`` with the command line's overrides."""
    config = WorkerConfig.from_settings(settings.worker, gateways=settings.gateway_names)
    changes: dict[str, Any] = {}
    if args.health_host is not None:
        changes["health_host"] = args.health_host
    if args.health_port is not None:
        if not 0 <= args.health_port <= 65535:
            raise CommandError("--health-port must be between 0 and 65535")
        changes["health_port"] = args.health_port
    if args.no_health or args.once:
        changes["health"] = False
    return attrs.evolve(config, **changes)


def run_worker(
    settings: Settings, open_runtime: Callable[[], Runtime], args: argparse.Namespace, out: TextIO
) -> int:
    """Build the runtime, serve the health endpoint, run the loop until a signal."""
    config = worker_config(settings, args)  # configuration mistakes before anything opens
    with open_runtime() as rt:
        worker = Worker(rt.service, config)
        server = _health_server(config, worker, rt) if config.health else None
        where = f"health on {server.url}/healthz and /readyz" if server else "no health endpoint"
        if not args.json:
            out.write(f"gateway worker {worker.holder}: running, {where}\n")
            out.flush()
        restore = _on_signals(worker.stop)
        try:
            worker.run(once=args.once)
        finally:
            restore()
            if server is not None:
                server.close()
        totals = worker.totals
    if args.json:
        out.write(json.dumps({"holder": worker.holder, **totals}, sort_keys=True) + "\n")
    else:
        counts = " ".join(f"{k}={v}" for k, v in sorted(totals.items()))
        out.write(f"gateway worker {worker.holder}: stopped; {counts}\n")
    return 0


def _health_server(config: WorkerConfig, worker: Worker, rt: Runtime) -> HealthServer:
    routes = {**worker_routes(worker, rt.ledger), **extra_routes(rt)}
    try:
        return HealthServer(config.health_host, config.health_port, routes).start()
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        hint = ": pick another --health-port" if exc.errno == errno.EADDRINUSE else ""
        where = f"{config.health_host}:{config.health_port}"
        raise CommandError(f"cannot serve health on {where}: {reason}{hint}") from None


def _on_signals(stop: Callable[[], None]) -> Callable[[], None]:
    """SIGTERM and SIGINT call ``stop`` (main thread only); a second SIGINT (Ctrl-C twice)
    interrupts at once. Returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    asked: set[int] = set()

    def handler(signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and signum in asked:
            raise KeyboardInterrupt
        asked.add(signum)
        stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore
