"""One database connection per thread (and per process), shared by both ledger backends.

A thread's connection is closed when the thread ends (its slot is garbage collected) or when
the ledger is closed. After ``fork()`` the child opens its own connections and never closes
the parent's: those are kept referenced (never closed, never used) so their sockets or file
handles stay the parent's.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from gateway_core._exceptions import LedgerError

C = TypeVar("C")

# This process's id, kept current across fork() without a system call per transaction.
_this_pid = os.getpid()


def _after_fork_in_child() -> None:
    global _this_pid
    _this_pid = os.getpid()


os.register_at_fork(after_in_child=_after_fork_in_child)

#: Connections inherited from a parent process: referenced, never closed nor used.
_INHERITED: list[Any] = []


def _release(conn: Any, close: Callable[[Any], None], owner_pid: int) -> None:
    if _this_pid != owner_pid:
        _INHERITED.append(conn)
        return
    with contextlib.suppress(Exception):  # closing a broken connection
        close(conn)


class _Slot:
    """One thread's connection; when the thread ends, the slot is dropped and closes it."""

    __slots__ = ("__weakref__", "conn", "pid")

    def __init__(self, conn: Any, pid: int) -> None:
        self.conn = conn
        self.pid = pid


class ThreadConnections(Generic[C]):
    """This thread's connection, opened with ``connect`` on first use; ``usable`` says when a
    kept connection must be replaced (a PostgreSQL connection the server closed, say)."""

    def __init__(
        self,
        connect: Callable[[], C],
        close: Callable[[C], None],
        usable: Callable[[C], bool] = lambda conn: True,
    ) -> None:
        self._connect = connect
        self._close = close
        self._usable = usable
        self._local = threading.local()
        self._lock = threading.Lock()
        self._finalizers: list[tuple[int, weakref.finalize[Any, Any]]] = []
        self._closed = False

    def check_open(self) -> None:
        """Raise :class:`LedgerError` once the ledger is closed."""
        if self._closed:
            raise LedgerError("the ledger is closed")

    def get(self) -> C:
        """This thread's connection (opened now if it has none, or its old one broke)."""
        self.check_open()
        pid = _this_pid
        slot: _Slot | None = getattr(self._local, "slot", None)
        if slot is not None and slot.pid == pid and self._usable(slot.conn):
            conn: C = slot.conn
            return conn
        conn = self._connect()
        slot = _Slot(conn, pid)
        finalizer = weakref.finalize(slot, _release, conn, self._close, pid)
        with self._lock:
            if self._closed:
                finalizer()
                raise LedgerError("the ledger is closed")
            self._finalizers = [(p, f) for p, f in self._finalizers if f.alive]
            self._finalizers.append((pid, finalizer))
        self._local.slot = slot
        return conn

    def close(self) -> None:
        """Close this process's connections; others' (a parent's) are left alone."""
        with self._lock:
            self._closed = True
            finalizers, self._finalizers = self._finalizers, []
        pid = _this_pid
        for owner, finalizer in finalizers:
            if owner == pid:
                finalizer()
            else:
                finalizer.detach()
