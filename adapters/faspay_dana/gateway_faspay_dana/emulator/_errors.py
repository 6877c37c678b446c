"""Errors of the emulator's Python and HTTP control API, each mapped to an HTTP status.

:class:`EmulatorError` is the emulation kit's (``gateway_core.emulation.control``); the bill
errors are Faspay's.
"""

from __future__ import annotations

from gateway_core.emulation.control import EmulatorError

__all__ = ["EmulatorError", "TransitionNotAllowed", "UnknownBill"]


class UnknownBill(EmulatorError):
    """No bill matches."""

    http_status = 404


class TransitionNotAllowed(EmulatorError):
    """The bill's status does not allow that action (pass ``force=True`` to do it anyway)."""

    http_status = 409
