"""Helpers for the relay tests: the local RabbitMQ (skipped when absent, failing under
``CI=true``), throwaway exchanges and queues (uuid names, deleted after), a loopback TCP proxy
a test can stop and restart, and a drain of a queue."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pika
import pytest

BROKER_HOST = "127.0.0.1"
BROKER_PORT = int(os.environ.get("GATEWAY_TEST_RABBITMQ_PORT", "5672"))
PASSWORD = "guest"


def broker_url(port: int = BROKER_PORT) -> str:
    return f"amqp://guest:{PASSWORD}@{BROKER_HOST}:{port}/%2F"


def require_broker() -> None:
    """Skip (fail under CI=true) when no RabbitMQ answers on the test port."""
    try:
        with socket.create_connection((BROKER_HOST, BROKER_PORT), timeout=2):
            return
    except OSError as exc:
        reason = f"no RabbitMQ at {BROKER_HOST}:{BROKER_PORT}: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


class Broker:
    """A test's own corner of the broker: names it made, deleted at the end."""

    def __init__(self) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(broker_url()))
        self.channel = self.connection.channel()
        self._exchanges: list[str] = []
        self._queues: list[str] = []

    def exchange(self) -> str:
        name = f"test.relay.{uuid.uuid4().hex}"
        self.channel.exchange_declare(exchange=name, exchange_type="topic", durable=True)
        self._exchanges.append(name)
        return name

    def queue(self, exchange: str, key: str = "#", **arguments: Any) -> str:
        name = f"test.relay.{uuid.uuid4().hex}"
        self.channel.queue_declare(queue=name, durable=True, arguments=arguments or None)
        self.channel.queue_bind(queue=name, exchange=exchange, routing_key=key)
        self._queues.append(name)
        return name

    def adopt_queue(self, name: str) -> None:
        self._queues.append(name)

    def drain(self, queue: str) -> list[tuple[Any, Any, bytes]]:
        """Every message waiting in ``queue`` as (method, properties, body), acknowledged."""
        out = []
        while True:
            method, properties, body = self.channel.basic_get(queue=queue, auto_ack=True)
            if method is None:
                return out
            out.append((method, properties, body))

    def close(self) -> None:
        for queue in self._queues:
            self.channel.queue_delete(queue=queue)
        for exchange in self._exchanges:
            self.channel.exchange_delete(exchange=exchange)
        self.connection.close()


@contextmanager
def broker() -> Iterator[Broker]:
    require_broker()
    made = Broker()
    try:
        yield made
    finally:
        made.close()


class TcpProxy:
    """A loopback TCP proxy to the broker that a test stops (the port refuses, every
    connection through it is cut) and restarts on the same port."""

    def __init__(self, target: tuple[str, int] = (BROKER_HOST, BROKER_PORT)) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self.accepted = 0

    @property
    def url(self) -> str:
        return broker_url(self.port)

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        listener.settimeout(0.05)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stopping.clear()
        self._spawn(self._accept, listener)
        return self

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name="tcp-proxy")
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
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
                self.accepted += 1
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Cut every connection through the proxy (it keeps listening)."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def stop(self) -> None:
        """Close the port and cut every connection: the broker is unreachable."""
        self._stopping.set()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self.cut()
        threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(timeout=5)
