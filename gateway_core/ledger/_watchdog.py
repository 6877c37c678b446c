"""A client-side deadline for database round trips: the bound a frozen server cannot ignore.

PostgreSQL's ``statement_timeout`` and ``lock_timeout`` are enforced by the server, so a
server that stops answering (a ``SIGSTOP``, a hung VM, a network path that black-holes
packets) would keep a request waiting for ever: the kernel still acknowledges what we send,
so TCP keepalives and ``tcp_user_timeout`` never fire. A :class:`Watchdog` watches the
transactions in flight; one that outlives its deadline has its socket shut down, which wakes
the waiting driver at once with "server closed the connection" and leaves the connection
broken (it is replaced on next use).

One daemon thread per watchdog, started on first use, sleeping until the earliest deadline;
arming and disarming cost a dictionary update and a ``dup()`` of the socket (held so that a
descriptor number reused after the driver closed its socket is never shut down by mistake).
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import threading
import time
import weakref

_WATCHDOGS: weakref.WeakSet[Watchdog] = weakref.WeakSet()


def _reset_after_fork() -> None:
    for watchdog in list(_WATCHDOGS):
        watchdog._reset()


os.register_at_fork(after_in_child=_reset_after_fork)


class Ticket:
    """One armed deadline; ``fired`` tells whether the watchdog cut the connection."""

    __slots__ = ("deadline", "fd", "fired")

    def __init__(self, fd: int, deadline: float) -> None:
        self.fd = fd
        self.deadline = deadline
        self.fired = False


class Watchdog:
    """Shuts down the socket of any armed transaction whose deadline passes."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._reset()
        _WATCHDOGS.add(self)

    def _reset(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._tickets: set[Ticket] = set()
        self._wakes_at = math.inf
        self._thread: threading.Thread | None = None
        self._stopped = False

    def arm(self, fd: int, seconds: float) -> Ticket:
        """Watch the socket ``fd`` for ``seconds``; pass the ticket to :meth:`disarm`."""
        ticket = Ticket(os.dup(fd), time.monotonic() + seconds)
        with self._cond:
            self._tickets.add(ticket)
            if self._thread is None or not self._thread.is_alive():
                self._stopped = False
                self._thread = threading.Thread(
                    target=self._loop, name=f"{self._name}-watchdog", daemon=True
                )
                self._thread.start()
            elif ticket.deadline < self._wakes_at:
                self._cond.notify()
        return ticket

    def disarm(self, ticket: Ticket) -> None:
        """Stop watching (the transaction ended, one way or the other)."""
        with self._cond:
            self._tickets.discard(ticket)
            if ticket.fd >= 0:
                os.close(ticket.fd)
                ticket.fd = -1

    def stop(self) -> None:
        """End the thread; tickets still armed are left alone."""
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def _loop(self) -> None:
        with self._cond:
            while not self._stopped:
                now = time.monotonic()
                for ticket in [t for t in self._tickets if t.deadline <= now]:
                    self._tickets.discard(ticket)
                    ticket.fired = True
                    _cut(ticket.fd)
                    ticket.fd = -1
                self._wakes_at = min((t.deadline for t in self._tickets), default=math.inf)
                self._cond.wait(None if self._wakes_at == math.inf else self._wakes_at - now)
                self._wakes_at = math.inf


def _cut(fd: int) -> None:
    """Shut the connection down both ways (the driver's own descriptor then reads EOF) and
    close our duplicate."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.close(fd)
        return
    with sock, contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
