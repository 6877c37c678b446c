"""The log of API requests the emulator received (bounded), with counts per endpoint.

Each entry records the wire format (``json`` or ``xml``) and the ``leniencies`` applied: every
documented limit the request broke that the emulator accepted anyway (lenient mode), so a
developer sees what real Faspay might refuse.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from typing import Any

from gateway_faspay_dana.emulator._clock import EmulatorClock
from gateway_faspay_dana.emulator._faults import Fault


class RequestLog:
    """Entries oldest first; the oldest drop out past ``limit``, the counts never do."""

    def __init__(self, *, clock: EmulatorClock, lock: threading.RLock, limit: int) -> None:
        self._clock = clock
        self._lock = lock
        self._seq = itertools.count(1)
        self._entries: deque[dict[str, Any]] = deque(maxlen=limit)
        self._counts: dict[str, int] = {}

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
        response_code: str | None = None,
        merchant_id: str | None = None,
        bill_no: str | None = None,
        detail: str = "",
        leniencies: tuple[str, ...] = (),
        wire_format: str = "json",
    ) -> None:
        """Add an entry (``leniencies``: documented limits broken but accepted)."""
        with self._lock:
            self._entries.append(
                {
                    "seq": next(self._seq),
                    "at": self._clock.wall(),
                    "endpoint": endpoint,
                    "method": method,
                    "path": path,
                    "connection": connection,
                    "fault": fault.kind if fault else None,
                    "processed": processed,
                    "http_status": http_status,
                    "response_code": response_code,
                    "merchant_id": merchant_id,
                    "bill_no": bill_no,
                    "detail": detail,
                    "format": wire_format,
                    "leniencies": list(leniencies),
                }
            )
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
