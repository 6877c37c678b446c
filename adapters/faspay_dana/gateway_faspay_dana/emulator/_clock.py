"""The emulator's controllable clock: real time plus an offset, as Asia/Jakarta wall time."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

#: Faspay's time zone (WIB, UTC+7). The docs never say so; Indonesian plugins use it (§4.2).
JAKARTA = ZoneInfo("Asia/Jakarta")

#: ``YYYY-MM-DD HH:MM:SS``, the format of every Faspay datetime (§4.2).
FASPAY_DATETIME = "%Y-%m-%d %H:%M:%S"


class EmulatorClock:
    """Real time shifted by a controllable offset, in Asia/Jakarta.

    ``advance(seconds)`` moves the emulator's notion of "now" forward (never backward) and then
    calls the listeners (the app registers one that expires due bills and notifies).
    ``set(moment)`` jumps to an absolute time. Reading the clock is thread-safe.
    """

    def __init__(self, offset: float = 0.0, *, tz: ZoneInfo = JAKARTA) -> None:
        self._offset = float(offset)
        self._tz = tz
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], object]] = []

    @property
    def tz(self) -> ZoneInfo:
        """The time zone of :meth:`now` (Asia/Jakarta by default)."""
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
        """:meth:`now` as Faspay's ``YYYY-MM-DD HH:MM:SS`` wall time."""
        return self.now().strftime(FASPAY_DATETIME)

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
        """Parse a Faspay wall-time string into an aware datetime in the clock's zone."""
        return datetime.strptime(text, FASPAY_DATETIME).replace(tzinfo=self._tz)

    def format(self, moment: datetime) -> str:
        """Format an aware datetime as Faspay wall time in the clock's zone."""
        return moment.astimezone(self._tz).strftime(FASPAY_DATETIME)
