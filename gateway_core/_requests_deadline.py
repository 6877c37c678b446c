"""urllib3 connections that report their socket and first byte to the attempt's deadline.

:class:`DeadlineAdapter` (a ``requests`` ``HTTPAdapter``) gives its pool managers connection
pools whose ``ConnectionCls`` tells the calling thread's :class:`~gateway_core._deadline.Exchange`
(a ``ContextVar``) when it opens a socket (before any TLS handshake) and before it writes each
request byte, so the watchdog can shut the right socket down and the transport knows whether
anything was sent. urllib3's documented extension points only: no patching.

If the deadline passes in the microseconds between the pool handing out a connection that a
finished call used and the new call claiming it, the new call sees a broken connection: an
outcome-unknown failure, never a duplicate.
"""

from __future__ import annotations

import socket
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager
from urllib3.poolmanager import pool_classes_by_scheme as _default_pool_classes

from gateway_core._deadline import Exchange, current_exchange

__all__ = ["DeadlineAdapter"]


class _ReportingMixin:
    """Tells the calling thread's exchange about the socket and the first byte sent."""

    sock: socket.socket | None
    #: The exchange that used this connection last.
    gateway_exchange: Exchange | None = None

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        exchange = current_exchange.get()
        if exchange is not None:
            exchange.claim(self, sock, sending=False)  # before a TLS handshake, if any
        return sock

    def send(self, data: Any) -> None:
        if self.sock is None:
            self.connect()  # type: ignore[attr-defined]  # http.client's auto-open, done first
        exchange = current_exchange.get()
        if exchange is not None:
            sock = self.sock if isinstance(self.sock, socket.socket) else None
            exchange.claim(self, sock, sending=True)
        super().send(data)  # type: ignore[misc]


class _HTTPConnection(_ReportingMixin, HTTPConnection):
    pass


class _HTTPSConnection(_ReportingMixin, HTTPSConnection):
    pass


class _HTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOL_CLASSES = {"http": _HTTPConnectionPool, "https": _HTTPSConnectionPool}


def _use_reporting_pools(manager: PoolManager) -> None:
    # Only a manager with urllib3's default pools (not a SOCKS manager's own): there the
    # deadline falls back to the per-read socket timeouts.
    if manager.pool_classes_by_scheme == _default_pool_classes:
        manager.pool_classes_by_scheme = dict(_POOL_CLASSES)


class DeadlineAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose connections report to :data:`current_exchange`."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        _use_reporting_pools(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> PoolManager:
        manager: PoolManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        _use_reporting_pools(manager)
        return manager
