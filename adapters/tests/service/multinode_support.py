"""Helpers for the multi-node proof (``test_multinode.py``): the ``gateway`` console script run
as real OS processes (``gateway serve``, ``gateway worker``, ``gateway emulator faspay_dana``)
with their output in files, a loopback round-robin TCP proxy in front of the web processes
(the load balancer), a RabbitMQ consumer thread that applies events with the documented
consumer example (dedupe by message id) and counts raw deliveries, a ``/metrics`` scraper and
ledger queries over PostgreSQL.

Only processes started here are ever signalled, by their own pid.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from types import ModuleType
from typing import Any

import pika
import pytest
from prometheus_client.parser import text_string_to_metric_families

WORKERS_DIR = Path(__file__).resolve().parent / "workers"
ROOT = Path(__file__).resolve().parents[3]
BROKER_HOST = "127.0.0.1"
BROKER_PORT = int(os.environ.get("GATEWAY_TEST_RABBITMQ_PORT", "5672"))
BROKER_URL = f"amqp://guest:guest@{BROKER_HOST}:{BROKER_PORT}/%2F"


def gateway_command() -> list[str]:
    """The installed ``gateway`` console script (next to this interpreter), else ``-m``."""
    script = Path(sys.executable).parent / "gateway"
    if script.exists():
        return [str(script)]
    found = shutil.which("gateway")
    return [found] if found else [sys.executable, "-m", "gateway_core.cli"]


def require_broker() -> None:
    """Skip (fail under CI=true) when no RabbitMQ answers on the test port."""
    try:
        with socket.create_connection((BROKER_HOST, BROKER_PORT), timeout=2):
            return
    except OSError as exc:
        reason = f"no RabbitMQ at {BROKER_HOST}:{BROKER_PORT}: {exc}"
        if os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


# -- processes ---------------------------------------------------------------------------------


class GatewayProcess:
    """``gateway ARGS`` started at once, stdout and stderr in files under ``workdir``; waits
    for the first stdout line matching ``banner`` (group 1 is kept as :attr:`url`)."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        workdir: Path,
        banner: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.stdout_path = workdir / f"{name}.out"
        self.stderr_path = workdir / f"{name}.err"
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "FASPAY_"))}
        environ.update(PYTHONUNBUFFERED="1", **(env or {}))
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [*gateway_command(), *args],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=environ,
                cwd=str(WORKERS_DIR),  # --plugin worker_hooks:plugin imports from here
            )
        self._banner = re.compile(banner)
        self.url = ""

    def wait_ready(self, timeout: float = 60.0) -> GatewayProcess:
        deadline = time.monotonic() + timeout
        while True:
            found = self._banner.search(self.stdout())
            if found:
                self.url = found.group(1)
                return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError(
                    f"{self.name} did not start (exit {self.proc.returncode}):\n"
                    f"{self.stdout()}\n{self.stderr()}"
                )
            time.sleep(0.05)

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signum)

    def sigkill(self) -> None:
        """SIGKILL, the way a power cut would, and reap it."""
        self.signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait; the exit code."""
        self.signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


def start_emulator(workdir: Path, password: str, notification_url: str) -> GatewayProcess:
    """``gateway emulator faspay_dana`` POSTing notifications to ``notification_url``, one
    second between attempts (Faspay's four attempts, one minute apart, compressed)."""
    args = ["emulator", "faspay_dana", "--port", "0", "--password", password]
    args += ["--notification-url", notification_url, "--retry-interval", "1"]
    return GatewayProcess(
        "emulator", args, workdir, r"listening on (http://127\.0\.0\.1:\d+)"
    ).wait_ready()


def start_serve(name: str, config: Path, workdir: Path, hook_log: Path) -> GatewayProcess:
    """``gateway --config FILE --plugin worker_hooks:plugin serve --port 0`` (not waited)."""
    args = ["--config", str(config), "--plugin", "worker_hooks:plugin", "serve"]
    args += ["--host", "127.0.0.1", "--port", "0", "--threads", "8"]
    return GatewayProcess(
        name,
        args,
        workdir,
        r"notifications POST (http://127\.0\.0\.1:\d+)/notify/",
        env={"WORKER_HOOK_LOG": str(hook_log)},
    )


def start_worker(
    name: str, config: Path, workdir: Path, hook_log: Path, *, delay: float = 0.0
) -> GatewayProcess:
    """``gateway --config FILE --plugin worker_hooks:plugin worker --health-port 0``."""
    args = ["--config", str(config), "--plugin", "worker_hooks:plugin", "worker"]
    args += ["--health-port", "0"]
    return GatewayProcess(
        name,
        args,
        workdir,
        r"health on (http://[0-9.]+:\d+)/healthz",
        env={"WORKER_HOOK_LOG": str(hook_log), "WORKER_HOOK_DELAY": str(delay)},
    )


# -- the load balancer -------------------------------------------------------------------------


class RoundRobinProxy:
    """A loopback TCP load balancer: each connection goes to the next backend in turn; a
    backend that refuses the connection (its process is gone) is skipped, as a load balancer's
    health check would. Every connection is recorded: the backend, whether a reply came back,
    and the seconds from accepting it to the backend closing it (the emulator sends
    ``Connection: close``, so one connection is one notification)."""

    def __init__(self) -> None:
        self.backends: list[tuple[str, int]] = []
        self.port = 0
        self.records: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._next = 0
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RoundRobinProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(256)
        listener.settimeout(0.1)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._spawn(self._accept, listener)
        return self

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name="rr-proxy")
        self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._spawn(self._serve, client, time.monotonic())

    def _connect(self) -> tuple[int, socket.socket] | None:
        with self._lock:
            count = len(self.backends)
            start, self._next = self._next, self._next + 1
        for step in range(count):
            index = (start + step) % count
            try:
                return index, socket.create_connection(self.backends[index], timeout=5)
            except OSError:
                continue
        return None

    def _serve(self, client: socket.socket, accepted: float) -> None:
        record: dict[str, Any] = {"backend": None, "replied": False, "accepted": accepted}
        upstream = None
        try:
            chosen = self._connect()
            if chosen is None:
                return
            record["backend"], upstream = chosen
            upstream.settimeout(30)
            client.settimeout(30)
            pump = threading.Thread(target=self._pump, args=(client, upstream), daemon=True)
            pump.start()
            while data := upstream.recv(65536):
                record["replied"] = True
                with suppress(OSError):
                    client.sendall(data)
            if record["replied"]:  # a whole reply: the backend closed after it
                record["finished"] = time.monotonic()
                record["seconds"] = record["finished"] - accepted
        except OSError:
            pass
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    # shutdown, not only close: the pump thread blocked in recv() on the same
                    # socket would otherwise keep it open, and the emulator would wait for
                    # its timeout instead of seeing the connection cut
                    with suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                    with suppress(OSError):
                        sock.close()
            with self._lock:
                self.records.append(record)

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def replied(self, backend: int) -> int:
        """Connections to ``backend`` that carried a whole reply back."""
        with self._lock:
            return sum(1 for r in self.records if r["backend"] == backend and "finished" in r)

    def latencies(self) -> list[float]:
        """Seconds from accepting each answered connection to its reply's end."""
        with self._lock:
            return sorted(r["seconds"] for r in self.records if "finished" in r)

    def throughput(self) -> float:
        """Answered connections a second, from the first accepted to the last answered."""
        with self._lock:
            answered = [r for r in self.records if "finished" in r]
        if len(answered) < 2:
            return float("nan")
        span = max(r["finished"] for r in answered) - min(r["accepted"] for r in answered)
        return len(answered) / span

    def per_second(self, since: float) -> list[int]:
        """Replies that ended in each whole second after ``since`` (monotonic)."""
        with self._lock:
            bins = Counter(int(r["finished"] - since) for r in self.records if "finished" in r)
        return [bins.get(n, 0) for n in range(max(bins, default=-1) + 1)]

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            self._listener.close()
        for thread in self._threads:
            thread.join(timeout=2)


# -- the order system on another machine ------------------------------------------------------


def consumer_example() -> ModuleType:
    """``docs/examples/rabbitmq_consumer.py``, the documented consumer (dedupe by id)."""
    path = ROOT / "docs" / "examples" / "rabbitmq_consumer.py"
    spec = importlib.util.spec_from_file_location("rabbitmq_consumer_example", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class EventConsumer:
    """A consumer thread on a queue bound (``#``) to the test's own exchange, both declared
    here and deleted by :meth:`close`. Each message is applied with the consumer example's
    ``apply_once`` (its message id and effect in one SQLite transaction) and acknowledged
    after; :attr:`raw` keeps every delivery (message id, routing key), duplicates included."""

    def __init__(self, db_path: Path) -> None:
        self.exchange = f"test.multinode.{uuid.uuid4().hex}"
        self.queue = f"{self.exchange}.orders"
        self.db_path = db_path
        self.raw: list[tuple[str, str]] = []
        self._example = consumer_example()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
        channel = connection.channel()
        channel.exchange_declare(exchange=self.exchange, exchange_type="topic", durable=True)
        channel.queue_declare(queue=self.queue, durable=True)
        channel.queue_bind(queue=self.queue, exchange=self.exchange, routing_key="#")
        connection.close()
        self._thread = threading.Thread(target=self._run, daemon=True, name="consumer")
        self._thread.start()

    def _run(self) -> None:
        try:
            db = self._example.open_store(str(self.db_path))
            connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
            channel = connection.channel()
            channel.basic_qos(prefetch_count=100)
            for method, properties, body in channel.consume(self.queue, inactivity_timeout=0.1):
                if method is not None:
                    self._example.apply_once(db, properties.message_id, body)
                    channel.basic_ack(method.delivery_tag)  # only after the commit
                    with self._lock:
                        self.raw.append((properties.message_id, method.routing_key))
                if self._stop.is_set():
                    break
            channel.cancel()
            connection.close()
            db.close()
        except BaseException as exc:  # reported by close()
            self._error = exc

    def message_ids(self) -> list[str]:
        with self._lock:
            return [message_id for message_id, _ in self.raw]

    def effects(self) -> list[tuple[str, str, str]]:
        """The consumer's effects: (order_reference, kind, event_id), one row per applied id."""
        with sqlite3.connect(self.db_path) as db:
            rows = db.execute("SELECT order_reference, kind, event_id FROM order_events")
            return [tuple(row) for row in rows]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
        channel = connection.channel()
        channel.queue_delete(queue=self.queue)
        channel.exchange_delete(exchange=self.exchange)
        connection.close()
        if self._error is not None:
            raise AssertionError(f"the consumer failed: {self._error!r}")


# -- observation ---------------------------------------------------------------------------------


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``GET url/metrics``, parsed: (sample name, sorted labels) -> value."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as reply:
        text = reply.read().decode("utf-8")
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **want: str
) -> float:
    """The sum of ``name``'s samples whose labels include ``want``."""
    found = 0.0
    for (sample, labels), value in samples.items():
        if sample == name and all(dict(labels).get(k) == v for k, v in want.items()):
            found += value
    return found


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


class LedgerProbe:
    """Read-only queries on the test's PostgreSQL schema."""

    def __init__(self, url: str, schema: str) -> None:
        import psycopg

        self._conn = psycopg.connect(url, autocommit=True)
        self._schema = schema

    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        return list(self._conn.execute(sql.replace("{s}", f'"{self._schema}".')).fetchall())

    def statuses(self) -> dict[str, str]:
        """merchant reference -> status."""
        return dict(self._rows("SELECT merchant_reference, status FROM {s}gw_payments"))

    def undelivered(self) -> int:
        return int(self._rows("SELECT count(*) FROM {s}gw_outbox WHERE delivered_at IS NULL")[0][0])

    def paid_transitions(self) -> dict[str, int]:
        """merchant reference -> how many transitions to paid it has (only those with any)."""
        rows = self._rows(
            "SELECT p.merchant_reference, count(*) FROM {s}gw_transitions t "
            "JOIN {s}gw_payments p ON p.id = t.payment_id WHERE t.to_status = 'paid' "
            "GROUP BY p.merchant_reference"
        )
        return {ref: int(n) for ref, n in rows}

    def paid_sources(self) -> dict[str, int]:
        """source of the transition to paid (notification, reconcile...) -> count."""
        rows = self._rows(
            "SELECT source, count(*) FROM {s}gw_transitions "
            "WHERE to_status = 'paid' GROUP BY source"
        )
        return {source: int(n) for source, n in rows}

    def close(self) -> None:
        self._conn.close()
