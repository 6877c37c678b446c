"""The Faspay plugin's overall deadline holds against a provider that trickles its answer.

``requests``' read timeout bounds each socket read, so a server that sends one byte every
0.2 s never trips it. The deadline (``RetryPolicy.deadline``, here 1.5 s) must end the whole
exchange anyway, whether the bytes trickle in the status line and headers or in the body,
through the production stack (``FaspayDanaGateway`` -> ``ProviderClient`` ->
``RequestsTransport``) against a real loopback socket. ``create`` (not idempotent) must end
with ``OutcomeUnknown`` after sending exactly once; ``inquire`` with ``ProviderUnavailable``.

The read timeout is left at 20 s so that only the deadline can stop the call. The server
trickles for at most ``TRICKLE_FOR`` seconds so that a broken deadline fails the test instead
of hanging it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from gateway_core import (
    Customer,
    LineItem,
    Money,
    OutcomeUnknown,
    Payment,
    PaymentRequest,
    PaymentStatus,
    ProviderUnavailable,
)
from gateway_faspay_dana import JAKARTA, FaspayDanaGateway

DEADLINE = 1.5
#: The deadline may be overrun by 10 %: the watchdog fires at the deadline, and 150 ms covers
#: waking the blocked thread and raising through the stack on a loaded machine.
ALLOWED = DEADLINE * 1.1
TRICKLE_EVERY = 0.2
TRICKLE_FOR = 6.0

HEADER_TRICKLE = "headers"
BODY_TRICKLE = "body"


class TricklingServer:
    """Accepts connections on 127.0.0.1, reads each request, then answers one byte at a time.

    ``headers``: the status line, then an endless header value. ``body``: complete headers
    promising 4096 bytes, then the body a byte at a time.
    """

    def __init__(self, mode: str) -> None:
        self._mode = mode
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.requests_read = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept_loop, daemon=True)]
        self._threads[0].start()

    def close(self) -> None:
        self._stop.set()
        for thread in list(self._threads):
            thread.join(2)
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(1.0)
            try:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                with self._lock:
                    self.requests_read += 1
                if self._mode == HEADER_TRICKLE:
                    answer = b"HTTP/1.1 200 OK\r\nX-Trickle: " + b"a" * 10_000
                else:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n")
                    answer = b"{" * 4096
                give_up = time.monotonic() + TRICKLE_FOR
                for byte in answer:
                    if self._stop.wait(TRICKLE_EVERY) or time.monotonic() > give_up:
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                return  # the client gave up and closed: what the deadline should make it do


@pytest.fixture(params=[HEADER_TRICKLE, BODY_TRICKLE])
def trickling(request: pytest.FixtureRequest) -> Iterator[TricklingServer]:
    server = TricklingServer(request.param)
    yield server
    server.close()


@pytest.fixture
def gateway(trickling: TricklingServer) -> Iterator[FaspayDanaGateway]:
    settings: dict[str, Any] = {
        "merchant_id": "99999",
        "merchant_name": "Sophia Store",
        "password": "p@ssw0rd",
        "base_url": trickling.url,
        "connect_timeout": 1.0,
        "read_timeout": 20.0,
        "deadline": DEADLINE,
        "max_retries": 2,
    }
    made = FaspayDanaGateway.from_config(settings, environ={})
    yield made
    made.close()


def payment_request() -> PaymentRequest:
    return PaymentRequest(
        order_reference="ORDER-B-trickle",
        amount=Money("2000", "IDR"),
        customer=Customer("John Doe", "john@example.com", "08123456789"),
        description="Order B-trickle",
        return_url="https://unused.example/return",
        expires_at=datetime.now(JAKARTA) + timedelta(hours=1),
        items=[LineItem("Thing", 2, Money("1000", "IDR"))],
        merchant_reference="B-trickle",
    )


def pending_payment() -> Payment:
    return Payment(
        provider="faspay_dana",
        merchant_reference="20201222023626",
        status=PaymentStatus.PENDING,
        amount=Money("2000", "IDR"),
        provider_reference="9999981900021790",
    )


def timed_failure(call: Callable[[], object]) -> tuple[BaseException, float]:
    started = time.monotonic()
    with pytest.raises(Exception) as info:
        call()
    return info.value, time.monotonic() - started


def test_create_against_a_trickling_answer_is_outcome_unknown_within_the_deadline(
    trickling: TricklingServer, gateway: FaspayDanaGateway
) -> None:
    """Issue 9, item 5: one deadline for connect, send, headers and body, for ``create`` too."""
    error, elapsed = timed_failure(lambda: gateway.create(payment_request()))
    assert type(error) is OutcomeUnknown, repr(error)
    assert DEADLINE * 0.9 <= elapsed <= ALLOWED, f"gave up after {elapsed:.3f} s"
    assert trickling.requests_read == 1  # sent once, never re-sent


def test_inquire_against_a_trickling_answer_gives_up_within_the_deadline(
    trickling: TricklingServer, gateway: FaspayDanaGateway
) -> None:
    """Issue 9, item 5: an idempotent call gives up at the deadline, retries included."""
    error, elapsed = timed_failure(lambda: gateway.inquire(pending_payment()))
    assert type(error) is ProviderUnavailable, repr(error)
    assert error.may_have_been_received is True
    assert DEADLINE * 0.9 <= elapsed <= ALLOWED, f"gave up after {elapsed:.3f} s"
