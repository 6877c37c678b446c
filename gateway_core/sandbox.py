"""The contract between ``gateway demo`` (and other tooling) and a provider's local emulator.

A provider plugin that ships an emulator exposes a factory through its gateway class's
``sandbox_entry`` (``"module:factory"``); the factory takes no arguments and returns an object
following :class:`Sandbox`. The demo then runs a complete payment against it with no
credentials and no network beyond loopback.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from html.parser import HTMLParser
from typing import Any, Protocol
from urllib.parse import urljoin

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


# -- helpers a sandbox's scripted customer and narrator share --------------------------------


class _Forms(HTMLParser):
    """The forms of a page: id -> (action, fields of its inputs)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, tuple[str, dict[str, str]]] = {}
        self._current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = values.get("id", "")
            self.forms[self._current] = (values.get("action", ""), {})
        elif tag == "input" and self._current is not None and values.get("name"):
            self.forms[self._current][1][values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def page_forms(html: str) -> dict[str, tuple[str, dict[str, str]]]:
    """The forms of an HTML page by ``id``: (action, the names and values of its inputs)."""
    parser = _Forms()
    parser.feed(html)
    return parser.forms


@attrs.frozen
class Press:
    """What pressing a button on a provider's page did: the page's and the reply's HTTP
    status, and where the reply sends the browser (empty: nowhere)."""

    page_status: int
    status: int
    location: str = attrs.field(default="", repr=False)


def press(url: str, form_id: str, *, extra: Mapping[str, str] | None = None) -> Press:
    """Open the page at ``url`` like a browser and submit its form ``form_id`` (its fields,
    with ``extra``), without following the redirect (the caller follows it)."""
    import requests

    with requests.Session() as browser:
        page = browser.get(url, timeout=10)
        page.raise_for_status()
        target, fields = page_forms(page.text)[form_id]
        reply = browser.post(
            urljoin(page.url, target),
            data={**fields, **(extra or {})},
            allow_redirects=False,
            timeout=10,
        )
    return Press(page.status_code, reply.status_code, reply.headers.get("Location", ""))


def delivery_records(
    deliveries: Sequence[Mapping[str, Any]], *, reply: Callable[[Mapping[str, Any]], str]
) -> list[Mapping[str, Any]]:
    """:meth:`Sandbox.wait_for_notifications`'s records from an emulator's delivery log (the
    kit's notifier's ``deliveries()``): one per attempt; ``reply`` words an attempt that
    reached the merchant."""
    records: list[Mapping[str, Any]] = []
    for delivery in deliveries:
        for attempt in delivery["attempts"]:
            reached = bool(attempt.get("http_status"))
            text = (
                reply(attempt)
                if reached
                else f"nothing delivered ({attempt.get('error') or 'unreachable'})"
            )
            records.append({"status": delivery["status"], "reply": text, "reached": reached})
        if not delivery["attempts"]:
            records.append(
                {"status": delivery["status"], "reply": "not attempted", "reached": False}
            )
    return records
