"""Writes a ledger may defer to its next write transaction: journal lines that record no
change (a duplicate notification, say) and "delivered" marks of hook events.

Neither is needed for correctness, so neither is worth a commit of its own on the path that
acknowledges a provider: a deferred item is written inside the next write transaction this
ledger object makes (any of them), or by :meth:`~gateway_core.ledger.Ledger.flush`, by a read
of the journal or the outbox through the same object, and on ``close()``. A crash loses what
was still deferred: a journal line of a message that changed nothing, or a delivery mark, so
the event is delivered again once its lease ends (delivery is at least once). Never a state
change. The buffer is bounded (:data:`MAX_ITEMS`), and a delivery mark waits at most about
:data:`MAX_MARK_AGE`: past either, the deferral that notices writes the buffer (in a process
that only sees duplicates, one write per :data:`MAX_ITEMS` lines). A process that falls idle
keeps its marks until its next write or ``close()``; if that is after the lease, another
worker may deliver the event again (at least once).
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

import attrs

from gateway_core.ledger._records import JournalEntry

#: Deferred items kept at most; the deferral that reaches it writes them all.
MAX_ITEMS = 256
#: Seconds the oldest delivery mark may wait; a later deferral writes the buffer. Half the
#: lease (60 s) of an event delivered inline, so a busy process records deliveries in time.
MAX_MARK_AGE = 30.0


@attrs.frozen
class DeferredItems:
    """What one write transaction takes over from the buffer."""

    journal: tuple[JournalEntry, ...] = ()
    delivered: tuple[tuple[str, datetime], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.journal or self.delivered)


class Deferred:
    """A thread-safe buffer of deferred journal lines and delivery marks."""

    def __init__(self, *, max_items: int = MAX_ITEMS, max_mark_age: float = MAX_MARK_AGE) -> None:
        self._lock = threading.Lock()
        self._journal: list[JournalEntry] = []
        self._delivered: dict[str, datetime] = {}
        self._marks_since: float | None = None  # when the oldest mark was deferred
        self._max_items = max_items
        self._max_mark_age = max_mark_age

    def __len__(self) -> int:
        return len(self._journal) + len(self._delivered)

    def add_journal(self, entry: JournalEntry) -> bool:
        """Keep ``entry``; True when the buffer is now due for a flush."""
        with self._lock:
            self._journal.append(entry)
            return self._due()

    def add_delivered(self, event_id: str, at: datetime) -> bool:
        """Keep a delivery mark (the first time is kept); True when due for a flush."""
        with self._lock:
            self._delivered.setdefault(event_id, at)
            if self._marks_since is None:
                self._marks_since = time.monotonic()
            return self._due()

    def _due(self) -> bool:
        if len(self._journal) + len(self._delivered) >= self._max_items:
            return True
        since = self._marks_since
        return since is not None and time.monotonic() - since >= self._max_mark_age

    def take(self) -> DeferredItems:
        """Everything kept, oldest first; the buffer is left empty."""
        with self._lock:
            if not self._journal and not self._delivered:
                return DeferredItems()
            items = DeferredItems(tuple(self._journal), tuple(sorted(self._delivered.items())))
            self._journal, self._delivered, self._marks_since = [], {}, None
            return items

    def put_back(self, items: DeferredItems) -> None:
        """Return items a rolled-back transaction did not write (ahead of newer ones)."""
        if not items:
            return
        with self._lock:
            self._journal[:0] = items.journal
            for event_id, at in items.delivered:
                self._delivered.setdefault(event_id, at)
            if items.delivered and self._marks_since is None:
                self._marks_since = time.monotonic()
