"""The contract between ``gateway demo`` (and other tooling) and a provider's local emulator.

A provider plugin that ships an emulator exposes a factory through its gateway class's
``sandbox_entry`` (``"module:factory"``); the factory takes no arguments and returns an object
following :class:`Sandbox`. The demo then runs a complete payment against it with no
credentials and no network beyond loopback.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Protocol

import attrs

from gateway_core._models import PaymentInstructions, RedirectInstruction


class CustomerAction(enum.Enum):
    """What the simulated customer does on the provider's page."""

    PAY = "pay"
    FAIL = "fail"
    ABANDON = "abandon"


@attrs.frozen
class SandboxFaults:
    """Notification faults the demo can ask for."""

    duplicate_notifications: int = 0
    drop_notifications: bool = False


@attrs.frozen
class CustomerVisit:
    """What the customer's browser went through on the provider's side."""

    steps: tuple[str, ...]
    return_url: str = attrs.field(default="", repr=False)


class Sandbox(Protocol):
    """A running local emulator of one provider."""

    def start(
        self, *, notification_url: str, return_url: str, faults: SandboxFaults
    ) -> Mapping[str, Any]:
        """Start the emulator; return gateway settings (credentials, base URL) pointing at it."""
        ...

    def customer(
        self, redirect: RedirectInstruction | PaymentInstructions, action: CustomerAction
    ) -> CustomerVisit:
        """Play the customer: open the redirect, act on the page, stop at the return URL
        (not followed: the caller follows it to the merchant's endpoint). For instructions
        (a virtual account, a code, a QR, a push), act as the provider's simulated payer (a
        transfer, a counter payment, a scan, an approval); there is no return URL then."""
        ...

    def settle_pending(self) -> None:
        """Make the provider finish anything still in flight (for example expire abandoned
        bills by advancing its clock)."""
        ...

    def wait_for_notifications(self, timeout: float) -> list[Mapping[str, Any]]:
        """Wait until notification deliveries are done; return the records of the attempts
        made since the last call: ``status`` (the provider's code), ``reply`` (what the
        merchant answered, as text) and ``reached`` (True when the request got an HTTP reply
        from the merchant)."""
        ...

    def stop(self) -> None:
        """Stop the emulator."""
        ...
