"""``gateway serve``: the notification and return endpoints under waitress, bounded before
anything is read (waitress' ``max_request_body_size`` instead of its 1 GiB default, the app's
own cap and allow-list), with Prometheus metrics at ``/metrics`` (``--metrics``) and JSON log
lines (``--log-format json``) when asked. The dispatch lives in :mod:`gateway_core.cli`."""

from __future__ import annotations

import argparse
import errno
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import TextIO

from gateway_core._config import Settings, SettingsReader
from gateway_core._exceptions import ConfigurationError
from gateway_core._json_logs import LOG_FORMATS, use_json_logs
from gateway_core._runtime import Runtime
from gateway_core.metrics import ServiceMetrics, mount_metrics, switch_metrics
from gateway_core.web import make_wsgi_app, server_body_limit

#: Where ``gateway serve --metrics`` answers (whatever ``--prefix`` is).
METRICS_PATH = "/metrics"


class ServeError(Exception):
    """``gateway serve`` cannot start (one line for the user)."""


def add_observability_arguments(parser: argparse.ArgumentParser) -> None:
    """``--metrics`` / ``--no-metrics`` and ``--log-format`` (for ``serve``)."""
    parser.add_argument(
        "--metrics",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"serve Prometheus metrics at {METRICS_PATH} (default: [service] metrics); "
        "needs gateway-core[metrics]",
    )
    parser.add_argument(
        "--log-format",
        choices=sorted(LOG_FORMATS),
        default=None,
        help="log lines as text, or one JSON object per line on stderr, at INFO unless -v "
        "says more (default: [service] log_format, else text)",
    )


def log_format(args: argparse.Namespace) -> str:
    """``--log-format``, else the configuration's ``[service] log_format``, else ``text``."""
    chosen: str | None = getattr(args, "log_format", None)
    if chosen:
        return chosen
    service = Settings.load(getattr(args, "config", None), environ=os.environ).service
    reader = SettingsReader(service, provider="service")
    return reader.text("log_format", "text", choices=LOG_FORMATS)


def serve(rt: Runtime, args: argparse.Namespace, out: TextIO) -> None:
    """Serve ``rt``'s service until interrupted."""
    try:
        undo_logs: Callable[[], None] | None = None
        if log_format(args) == "json":
            undo_logs = use_json_logs()
        metrics = switch_metrics(rt.service, rt.ledger, getattr(args, "metrics", None))
    except ConfigurationError as exc:
        raise ServeError(str(exc)) from None
    try:
        _serve(rt, args, out, metrics)
    finally:
        if undo_logs is not None:
            undo_logs()


def _serve(rt: Runtime, args: argparse.Namespace, out: TextIO, metrics: ServiceMetrics) -> None:
    app = make_wsgi_app(
        rt.service,
        prefix=args.prefix,
        return_page=args.return_page or f"{args.prefix}/done",
        max_body=args.max_body,
        allowed_sources=args.allow or None,
        trusted_proxies=args.trusted_proxy,
    )
    try:
        import waitress
    except ImportError:
        raise ServeError(
            "`gateway serve` needs waitress: pip install 'gateway-core[serve]'"
        ) from None
    try:
        server = waitress.create_server(
            mount_metrics(app, metrics, METRICS_PATH) if metrics.enabled else app,
            host=args.host,
            port=args.port,
            threads=args.threads,
            ident="gateway",
            max_request_body_size=server_body_limit(args.max_body),  # not waitress' 1 GiB
            # The app decides which X-Forwarded-For to believe (--trusted-proxy); waitress
            # would otherwise strip the header before the app sees it.
            clear_untrusted_proxy_headers=not args.trusted_proxy,
        )
    except OSError as exc:  # bound before announcing: a port in use is one line, not a banner
        reason = (exc.strerror or type(exc).__name__).lower()
        in_use = exc.errno == errno.EADDRINUSE
        hint = ": pick another --port, or stop what listens there" if in_use else ""
        raise ServeError(f"cannot listen on {args.host}:{args.port}: {reason}{hint}") from None
    port = getattr(server, "effective_port", args.port)  # the real one, with --port 0
    for name in sorted(rt.gateways):
        out.write(
            f"{name}: notifications POST http://{args.host}:{port}{args.prefix}"
            f"/notify/{name}  returns GET .../return/{name}\n"
        )
    if metrics.enabled:
        out.write(f"metrics: GET http://{args.host}:{port}{METRICS_PATH}\n")
    out.flush()
    restore = _sigterm_stops_like_ctrl_c()
    try:
        server.run()
    finally:
        restore()
        server.close()


def _sigterm_stops_like_ctrl_c() -> Callable[[], None]:
    """SIGTERM (what systemd, Docker and Kubernetes send) stops like Ctrl-C: waitress finishes
    the requests in hand, then the runtime closes and writes its deferred journal lines and
    delivery marks (killed by the signal, they were lost). Main thread only; returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def _interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt  # waitress' run() ends on it, as on Ctrl-C

    previous = signal.signal(signal.SIGTERM, _interrupt)

    def _restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return _restore
