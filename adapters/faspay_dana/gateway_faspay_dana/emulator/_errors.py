"""Errors of the emulator's Python and HTTP control API, each mapped to an HTTP status."""

from __future__ import annotations


class EmulatorError(Exception):
    """A control-API error with the HTTP status it maps to."""

    http_status = 400

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        if http_status is not None:
            self.http_status = http_status


class UnknownBill(EmulatorError):
    """No bill matches."""

    http_status = 404


class TransitionNotAllowed(EmulatorError):
    """The bill's status does not allow that action (pass ``force=True`` to do it anyway)."""

    http_status = 409
