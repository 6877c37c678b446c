"""A controllable clock for emulators: real time plus an offset, in a chosen time zone."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo

#: ``YYYY-MM-DD HH:MM:SS``, the default wall-time format.
WALL_FORMAT = "%Y-%m-%d %H:%M:%S"


class EmulatorClock:
    """Real time shifted by a controllable offset, in ``tz`` (UTC unless given).

    ``advance(seconds)`` moves the emulator's notion of "now" forward (never backward) and then
    calls the listeners (an emulator registers one that expires what is due and notifies).
    ``set(moment)`` jumps to an absolute time. Reading the clock is thread-safe. ``wall()``,
    ``parse()`` and ``format()`` use ``wall_format``.
    """

    def __init__(
        self, offset: float = 0.0, *, tz: tzinfo = UTC, wall_format: str = WALL_FORMAT
    ) -> None:
        self._offset = float(offset)
        self._tz = tz
        self.wall_format = wall_format
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], object]] = []

    @property
    def tz(self) -> tzinfo:
        """The time zone of :meth:`now`."""
        return self._tz

    @property
    def offset(self) -> float:
        """Seconds added to real time."""
        with self._lock:
            return self._offset

    def now(self) -> datetime:
        """The current emulator time, timezone-aware."""
        with self._lock:
            offset = self._offset
        return datetime.now(self._tz) + timedelta(seconds=offset)

    def wall(self) -> str:
        """:meth:`now` as wall time (``wall_format``)."""
        return self.now().strftime(self.wall_format)

    def advance(self, seconds: float) -> datetime:
        """Move forward by ``seconds`` (>= 0), run the listeners, return the new time."""
        if seconds < 0:
            raise ValueError("the emulator clock only moves forward")
        with self._lock:
            self._offset += float(seconds)
        self._fire()
        return self.now()

    def set(self, moment: datetime) -> datetime:
        """Jump to ``moment`` (naive values are taken as the clock's time zone)."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self._tz)
        with self._lock:
            self._offset = (moment - datetime.now(self._tz)).total_seconds()
        self._fire()
        return self.now()

    def reset(self) -> None:
        """Back to real time (offset 0); listeners are not called."""
        with self._lock:
            self._offset = 0.0

    def subscribe(self, listener: Callable[[], object]) -> None:
        """Call ``listener()`` after every :meth:`advance` or :meth:`set`."""
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[], object]) -> None:
        """Stop calling ``listener``."""
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _fire(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def parse(self, text: str) -> datetime:
        """Parse a wall-time string into an aware datetime in the clock's zone."""
        return datetime.strptime(text, self.wall_format).replace(tzinfo=self._tz)

    def format(self, moment: datetime) -> str:
        """Format an aware datetime as wall time in the clock's zone."""
        return moment.astimezone(self._tz).strftime(self.wall_format)
