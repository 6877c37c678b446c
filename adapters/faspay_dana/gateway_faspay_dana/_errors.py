"""Errors of the Faspay DANA plugin that the core's tree has no place for.

:class:`InvalidRequest` is raised *before* anything is sent, when the data of one request
breaks a Faspay field rule (a ``bill_no`` of 40 characters, a missing e-mail, an expiry beyond
30 days). It is neither a configuration error (the settings are fine) nor a provider error
(Faspay never saw the request), so it is a :class:`gateway_core.InvalidRequest`;
it is also a :class:`ValueError`, since the caller passed a bad value.

:class:`PayloadError` is what the message classes' ``from_payload`` / ``from_query`` raise when
a wire message does not have the documented shape. The gateway turns it into
:class:`gateway_core.MalformedResponse` (Faspay's answers) or
:class:`gateway_core.MalformedNotification` (inbound messages); an emulator parsing our
requests can catch it directly. Messages name the field, never its value.
"""

from __future__ import annotations

from gateway_core import InvalidRequest as CoreInvalidRequest

PROVIDER = "faspay_dana"


class InvalidRequest(CoreInvalidRequest):
    """One request's data breaks a Faspay field rule; nothing was sent. ``field`` names it."""

    def __init__(self, message: str, *, field: str = "", merchant_reference: str = "") -> None:
        super().__init__(
            message, field=field, provider=PROVIDER, merchant_reference=merchant_reference
        )


class PayloadError(ValueError):
    """A wire message (JSON object, XML document, query) lacks the documented shape.

    ``field`` names the offending field ("" for the message as a whole).
    """

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field
