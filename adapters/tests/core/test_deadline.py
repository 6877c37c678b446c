"""Specifications for the per-attempt wall-clock deadline (``gateway_core._deadline``).

The watchdog expires an exchange by shutting its socket down, which wakes a thread blocked in
``recv``; what the exchange saw (a byte sent or not) decides how the failure is classified.
The last test runs the TLS handshake phase of ``RequestsTransport`` against a real socket.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from gateway_core import HttpRequest, NeverSent, ProviderClient, RequestsTransport, RetryPolicy
from gateway_core._deadline import Exchange, Watchdog


class Connection:
    """Stands in for a urllib3 connection: the watchdog only tags it with its owner."""

    gateway_exchange: Exchange | None = None


@pytest.fixture
def watchdog() -> Iterator[Watchdog]:
    running = Watchdog()
    yield running
    running.stop()


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    yield ours, theirs
    ours.close()
    theirs.close()


def test_an_expired_exchange_wakes_a_blocked_read_at_its_deadline(
    watchdog: Watchdog, pair: tuple[socket.socket, socket.socket]
) -> None:
    ours, _ = pair
    exchange = Exchange(time.monotonic() + 0.3)
    exchange.claim(Connection(), ours, sending=True)
    watchdog.watch(exchange)
    started = time.monotonic()
    assert ours.recv(10) == b""  # the shutdown reads as end of stream
    assert 0.25 <= time.monotonic() - started <= 0.4
    assert exchange.finish() is True
    assert exchange.sent is True


def test_a_finished_exchange_is_left_alone(
    watchdog: Watchdog, pair: tuple[socket.socket, socket.socket]
) -> None:
    ours, theirs = pair
    exchange = Exchange(time.monotonic() + 0.05)
    exchange.claim(Connection(), ours, sending=True)
    watchdog.watch(exchange)
    assert exchange.finish() is False
    time.sleep(0.15)
    theirs.sendall(b"ok")
    assert ours.recv(10) == b"ok"


def test_an_exchange_that_expired_before_sending_refuses_to_send(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, _ = pair
    exchange = Exchange(time.monotonic())
    exchange.expire()
    with pytest.raises(ConnectionAbortedError):
        exchange.claim(Connection(), ours, sending=True)
    assert exchange.sent is False


def test_an_expiry_spares_a_connection_another_exchange_took_over(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, theirs = pair
    connection = Connection()
    first, second = Exchange(time.monotonic()), Exchange(time.monotonic() + 10)
    first.claim(connection, ours, sending=True)
    second.claim(connection, ours, sending=True)  # back from the pool, reused by another call
    first.expire()
    theirs.sendall(b"still open")
    assert ours.recv(20) == b"still open"


def trickle_tls_handshake(listener: socket.socket, stop: threading.Event) -> None:
    """Read the ClientHello, then promise a 16 KiB handshake record and send it a byte at a
    time: every read succeeds well inside any socket timeout."""
    conn, _ = listener.accept()
    with conn:
        conn.recv(65536)
        conn.sendall(b"\x16\x03\x03\x40\x00")
        for _ in range(30):
            if stop.wait(0.2):
                return
            try:
                conn.sendall(b"\x00")
            except OSError:
                return


def test_a_trickling_tls_handshake_is_never_sent_and_ends_at_the_deadline() -> None:
    """Issue 9 item 5: the deadline covers the connection's set-up too, and a deadline hit
    before a request byte was written is never-sent."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    server = threading.Thread(target=trickle_tls_handshake, args=(listener, stop), daemon=True)
    server.start()
    transport = RequestsTransport(connect_timeout=20.0, read_timeout=20.0)
    client = ProviderClient(transport, RetryPolicy(deadline=1.5), sleep=lambda _: None)
    url = f"https://127.0.0.1:{listener.getsockname()[1]}/pay"
    started = time.monotonic()
    try:
        with client, pytest.raises(NeverSent):
            client.call(HttpRequest("POST", url, body=b"{}", operation="create"), repr)
        assert 1.5 * 0.9 <= time.monotonic() - started <= 1.5 * 1.1
    finally:
        stop.set()
        server.join(2)
        listener.close()
