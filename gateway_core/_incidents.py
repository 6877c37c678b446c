"""One log line per incident, not one traceback per request.

While the ledger is down every request fails the same way; logging each would bury the one
line that matters. :class:`IncidentLog` logs a WARNING when the first failure opens an
incident, counts the failures that follow, and logs one INFO line when a success closes it
(how long it lasted and how many requests failed meanwhile).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


class IncidentLog:
    """The open/closed state of one kind of trouble (``what``, e.g. ``"ledger"``)."""

    def __init__(
        self, logger: logging.Logger, what: str, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._log = logger
        self._what = what
        self._clock = clock
        self._lock = threading.Lock()
        self._open = False
        self._since = 0.0
        self._failures = 0

    @property
    def open(self) -> bool:
        """Whether an incident is in progress (the last outcome was a failure)."""
        return self._open

    def failed(self, exc: BaseException, where: str) -> None:
        """Record a failure; the first of an incident logs one WARNING line (no traceback)."""
        with self._lock:
            self._failures += 1
            if self._open:
                return
            self._open = True
            self._since = self._clock()
            self._failures = 1
        self._log.warning(
            "%s unavailable (%s: %s) in %s; answering failure replies until it recovers",
            self._what,
            type(exc).__name__,
            " ".join(str(exc).split()),
            where,
        )

    def recovered(self) -> None:
        """Record a success; the first after an incident logs one INFO line."""
        if not self.open:  # the common case, without taking the lock
            return
        with self._lock:
            was_open, self._open = self._open, False
            lasted = self._clock() - self._since
            failures = self._failures
        if not was_open:  # another thread logged it
            return
        self._log.info(
            "%s available again after %.1f s; %d request(s) failed meanwhile",
            self._what,
            lasted,
            failures,
        )
