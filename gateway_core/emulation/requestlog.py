"""The log of API requests an emulator received (bounded), with counts per endpoint.

Every entry has ``seq``, ``at`` (the emulator clock's wall time), ``endpoint``, ``method``,
``path``, ``connection``, ``fault``, ``processed``, ``http_status`` and ``detail``; an emulator
adds its own fields (``extra_fields`` with their defaults, given per :meth:`RequestLog.record`).
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Mapping
from typing import Any

from gateway_core.emulation.clock import EmulatorClock
from gateway_core.emulation.faults import Fault


class RequestLog:
    """Entries oldest first; the oldest drop out past ``limit``, the counts never do."""

    def __init__(
        self,
        *,
        clock: EmulatorClock,
        lock: threading.RLock | None = None,
        limit: int = 10_000,
        extra_fields: Mapping[str, Any] | None = None,
    ) -> None:
        self._clock = clock
        self._lock = lock or threading.RLock()
        self._seq = itertools.count(1)
        self._entries: deque[dict[str, Any]] = deque(maxlen=limit)
        self._counts: dict[str, int] = {}
        self._extra = dict(extra_fields or {})

    def record(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        fault: Fault | None,
        connection: int | None = None,
        http_status: int | None = None,
        processed: bool = False,
        detail: str = "",
        **fields: Any,
    ) -> None:
        """Add an entry (``fields``: the emulator's own, declared in ``extra_fields``)."""
        unknown = set(fields) - set(self._extra)
        if unknown:
            raise TypeError(f"undeclared request-log field(s): {', '.join(sorted(unknown))}")
        entry: dict[str, Any] = {
            "endpoint": endpoint,
            "method": method,
            "path": path,
            "connection": connection,
            "fault": fault.kind if fault else None,
            "processed": processed,
            "http_status": http_status,
            "detail": detail,
        }
        for name, default in self._extra.items():
            value = fields.get(name, default)
            entry[name] = list(value) if isinstance(value, (list, tuple)) else value
        with self._lock:
            entry = {"seq": next(self._seq), "at": self._clock.wall(), **entry}
            self._entries.append(entry)
            self._counts[endpoint] = self._counts.get(endpoint, 0) + 1

    def entries(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """Copies of the entries (oldest first), optionally for one endpoint."""
        with self._lock:
            return [dict(e) for e in self._entries if endpoint is None or e["endpoint"] == endpoint]

    def counts(self) -> dict[str, int]:
        """Number of requests received per endpoint."""
        with self._lock:
            return dict(self._counts)

    def clear(self) -> None:
        """Forget every entry and count."""
        with self._lock:
            self._entries.clear()
            self._counts.clear()
