"""The Faspay emulator's clock: the emulation kit's controllable clock in Asia/Jakarta, with
Faspay's wall-time format."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from gateway_core.emulation.clock import EmulatorClock as _Clock

#: Faspay's time zone (WIB, UTC+7). The docs never say so; Indonesian plugins use it (§4.2).
JAKARTA = ZoneInfo("Asia/Jakarta")

#: ``YYYY-MM-DD HH:MM:SS``, the format of every Faspay datetime (§4.2).
FASPAY_DATETIME = "%Y-%m-%d %H:%M:%S"


class EmulatorClock(_Clock):
    """Real time shifted by a controllable offset, in Asia/Jakarta (see the kit's clock)."""

    def __init__(self, offset: float = 0.0, *, tz: ZoneInfo = JAKARTA) -> None:
        super().__init__(offset, tz=tz, wall_format=FASPAY_DATETIME)
