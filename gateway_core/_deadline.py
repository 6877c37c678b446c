"""A wall-clock deadline for one transport attempt, enforced from a watchdog thread.

Socket timeouts bound each read, so a server that trickles a byte at a time never trips them.
Each attempt is an :class:`Exchange` with a deadline; a :class:`Watchdog` thread expires it on
time by shutting its socket down (``shutdown(SHUT_RDWR)`` wakes a thread blocked in ``recv``;
``close`` does not), so whatever the attempt was blocked on fails at once. The exchange also
records whether a request byte may have been written, which decides between "never sent" and
"may have been received". The transport tells the exchange about its socket; for ``requests``
see ``_requests_deadline``. Standard library only, so ``import gateway_core`` stays light.

A connection belongs to the last exchange that used it (checked under one lock): an exchange
that expires after its connection went back to the pool and another call took it cannot shut
that call's socket down.
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import itertools
import socket
import threading
import time

__all__ = ["Exchange", "Watchdog", "current_exchange"]

#: The exchange of the attempt running in this thread (``None`` outside ``send``).
current_exchange: contextvars.ContextVar[Exchange | None] = contextvars.ContextVar(
    "gateway_core_exchange", default=None
)

# One lock for every exchange and connection: its sections are a few assignments long.
_LOCK = threading.Lock()


def _shutdown(sock: socket.socket) -> None:
    # OSError: already closed, nothing left to interrupt.
    with contextlib.suppress(OSError):
        # The plain socket's shutdown, also for an SSLSocket: ssl's own would drop the TLS
        # state under the feet of the thread still reading it.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class Exchange:
    """One attempt's deadline (``time.monotonic()`` seconds) and what it has done so far."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self._conn: object = None
        self._sock: socket.socket | None = None
        self._connected = False
        self._sent = False
        self._expired = False
        self._finished = False

    @property
    def connected(self) -> bool:
        """True once a socket was claimed: then :attr:`sent` is known, not guessed."""
        return self._connected

    @property
    def sent(self) -> bool:
        """True once a request byte may have been written."""
        return self._sent

    @property
    def expired(self) -> bool:
        """True once the deadline passed while the exchange was running."""
        return self._expired

    @property
    def finished(self) -> bool:
        """True once :meth:`finish` was called."""
        return self._finished

    def claim(self, conn: object, sock: socket.socket | None, *, sending: bool) -> None:
        """Make ``sock``, the socket of ``conn``, the one to shut down at the deadline
        (``None``: keep the one claimed before, e.g. under a TLS-in-TLS proxy tunnel).

        With ``sending``, record that a request byte is about to be written; if the deadline
        already passed, raise ``ConnectionAbortedError`` instead, so nothing is written.
        """
        with _LOCK:
            conn.gateway_exchange = self  # type: ignore[attr-defined]
            self._conn = conn
            self._connected = True
            if sock is not None:
                self._sock = sock
            if self._expired:
                if self._sock is not None:
                    _shutdown(self._sock)
                if sending:
                    raise ConnectionAbortedError("deadline reached before sending")
            elif sending:
                self._sent = True

    def expire(self) -> None:
        """The deadline passed: interrupt whatever the exchange is blocked on."""
        with _LOCK:
            if self._finished:
                return
            self._expired = True
            if self._sock is not None and getattr(self._conn, "gateway_exchange", None) is self:
                _shutdown(self._sock)

    def finish(self) -> bool:
        """End the exchange; after this the watchdog leaves its socket alone.

        Returns whether it expired first (then a reply in hand may be cut short).
        """
        with _LOCK:
            self._finished = True
            self._conn = self._sock = None
            return self._expired


class Watchdog:
    """Expires exchanges at their deadlines, from one daemon thread started when needed."""

    def __init__(self, name: str = "gateway-core-deadline") -> None:
        self._name = name
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int, Exchange]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._prune_at = 1024

    def watch(self, exchange: Exchange) -> None:
        """Expire ``exchange`` at its deadline unless it finishes first."""
        with self._condition:
            self._stopping = False
            heap = self._heap
            # The earliest deadlines are mostly of exchanges that finished long ago (a
            # sequential client finishes each before the next): drop those from the top, so
            # the queue holds about the exchanges in flight, not the last thousand.
            while heap and heap[0][2].finished:
                heapq.heappop(heap)
            if len(self._heap) >= self._prune_at:
                self._prune()
                self._prune_at = max(1024, 2 * len(self._heap))
            heapq.heappush(self._heap, (exchange.deadline, next(self._order), exchange))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            elif self._heap[0][2] is exchange:
                self._condition.notify()

    def stop(self) -> None:
        """Let the thread end once no unfinished exchange is left (it does not wait)."""
        with self._condition:
            self._stopping = True
            self._prune()
            self._condition.notify()

    def _prune(self) -> None:
        # Finished exchanges stay queued until their deadline; drop them in one pass.
        self._heap = [entry for entry in self._heap if not entry[2].finished]
        heapq.heapify(self._heap)

    def _run(self) -> None:
        while True:
            with self._condition:
                while self._heap and self._heap[0][0] > time.monotonic():
                    self._condition.wait(self._heap[0][0] - time.monotonic())
                if not self._heap:
                    if self._stopping:
                        self._thread = None
                        return
                    self._condition.wait()
                    continue
                exchange = heapq.heappop(self._heap)[2]
            exchange.expire()
