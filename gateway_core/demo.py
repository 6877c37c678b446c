"""``gateway demo``: a whole payment, end to end, on a laptop.

It starts the provider's emulator and the merchant endpoints on free loopback ports with a
throwaway SQLite ledger, creates a payment, plays the customer (open the redirect, act on the
provider's page, follow the return), waits for the notification, and prints the story with
the ledger's final state and the hook events the demo's order system received.
"""

from __future__ import annotations

import importlib
import shutil
import socketserver
import tempfile
import threading
import time
import wsgiref.simple_server
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

import attrs

from gateway_core._config import Settings
from gateway_core._events import EventKind, PaymentEvent
from gateway_core._exceptions import GatewayError
from gateway_core._models import (
    Customer,
    LineItem,
    Money,
    PaymentInstructions,
    PaymentRequest,
    PaymentStatus,
    RedirectInstruction,
)
from gateway_core._plugins import PluginHost
from gateway_core._redact import mask_url, protect_third_party_loggers
from gateway_core._runtime import build_runtime
from gateway_core.hookspecs import hookimpl
from gateway_core.ledger import Ledger, TransitionRecord
from gateway_core.sandbox import CustomerAction, Sandbox, SandboxFaults
from gateway_core.web import make_wsgi_app

GATEWAY_NAME = "demo"


@attrs.frozen
class DemoOptions:
    """What the demo does."""

    provider: str = ""
    customer: str = "pay"
    duplicate_notifications: int = 0
    drop_notifications: bool = False
    amount: str = "2000"
    #: ISO 4217 code; empty: the provider's ``default_currency`` (an error if it has none).
    currency: str = ""
    keep_ledger: bool = False
    notification_timeout: float = 15.0
    #: The payment method (the provider's own name, e.g. a channel); empty: its default.
    method: str = ""


class DemoOrderSystem:
    """The demo's order system: applies each event once (by event id).

    Hooks run on whichever thread delivered the event (a notification's request thread, the
    return's, the narrator's own); they only record it. The narrator prints the events with
    :meth:`take_new` at the step that delivered them, after waiting for that step to finish,
    so the story's order never depends on thread scheduling.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.received: list[tuple[PaymentEvent, bool]] = []  # (event, already applied)
        self.applied: dict[str, PaymentEvent] = {}
        self._told = 0

    def _handle(self, event: PaymentEvent) -> None:
        with self._lock:
            duplicate = event.event_id in self.applied
            if not duplicate:
                self.applied[event.event_id] = event
            self.received.append((event, duplicate))

    def take_new(self) -> list[tuple[PaymentEvent, bool]]:
        """The events received since the last call, in the order they arrived."""
        with self._lock:
            new = self.received[self._told :]
            self._told = len(self.received)
        return new

    @hookimpl
    def gateway_payment_created(self, event: PaymentEvent) -> None:
        self._handle(event)

    @hookimpl
    def gateway_payment_paid(self, event: PaymentEvent) -> None:
        self._handle(event)

    @hookimpl
    def gateway_payment_failed(self, event: PaymentEvent) -> None:
        self._handle(event)

    @hookimpl
    def gateway_payment_expired(self, event: PaymentEvent) -> None:
        self._handle(event)

    @hookimpl
    def gateway_payment_cancelled(self, event: PaymentEvent) -> None:
        self._handle(event)

    @hookimpl
    def gateway_payment_reversed(self, event: PaymentEvent) -> None:
        self._handle(event)

    @hookimpl
    def gateway_payment_needs_review(self, event: PaymentEvent) -> None:
        self._handle(event)


class _QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, wsgiref.simple_server.WSGIServer):
    daemon_threads = True


class _LateApp:
    """A WSGI app whose target is set after the server has a port."""

    def __init__(self) -> None:
        self.target: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        result: Iterable[bytes] = self.target(environ, start_response)
        return result


class _Narrator:
    """Tells each step from what really happened, read after the step has finished: the
    emulator's delivery log, the ledger's new transitions (with their recorded sources) and
    the events the order system received."""

    def __init__(
        self,
        say: Callable[[str], None],
        ledger: Ledger,
        orders: DemoOrderSystem,
        sandbox: Sandbox,
        timeout: float,
    ) -> None:
        self.say = say
        self._ledger = ledger
        self._orders = orders
        self._sandbox = sandbox
        self._timeout = timeout
        self._step = 0
        self._told = 0
        self.payment_id = 0
        self.attempts = 0
        self.reached = 0

    def step(self, text: str) -> None:
        self._step += 1
        self.say(f"{self._step}. {text}")

    def notifications(self, when: str) -> None:
        """Wait for the emulator's deliveries to finish, then report their attempts."""
        deliveries = self._sandbox.wait_for_notifications(self._timeout)
        reached = sum(1 for d in deliveries if d.get("reached"))
        self.attempts += len(deliveries)
        self.reached += reached
        self.step(
            f"Notifications {when}: the emulator made {len(deliveries)} delivery attempt(s), "
            f"{reached} reached the merchant"
        )
        for delivery in deliveries:
            self.say(f"   - status {delivery.get('status')}: {delivery.get('reply', '')}")

    def news(self, unchanged: str) -> None:
        """Report the ledger's transitions and the order system's events since last time."""
        transitions = self._ledger.transitions(self.payment_id)
        for t in transitions[self._told :]:
            self.say(f"   ledger: {_transition(t)}")
        if len(transitions) == self._told and unchanged:
            self.say(f"   ledger: {unchanged}")
        self._told = len(transitions)
        for event, duplicate in self._orders.take_new():
            note = " (already applied: ignored)" if duplicate else ""
            self.say(
                f"   order system: {event.kind.value} event for order {event.order_reference}{note}"
            )


def _instruction_lines(instructions: PaymentInstructions) -> list[str]:
    """What the customer would see for ``instructions`` (the QR payload abbreviated)."""
    lines = [f"{instructions.kind.value.replace('_', ' ')}"]
    if instructions.bank:
        lines.append(f"bank / issuer: {instructions.bank}")
    if instructions.number:
        lines.append(f"number: {instructions.number}")
    if instructions.amount is not None:
        lines.append(f"amount: {instructions.amount} (exactly)")
    if instructions.expires_at is not None:
        lines.append(f"pay before: {instructions.expires_at.isoformat()}")
    if instructions.payload:
        payload = instructions.payload
        lines.append(f"QR payload: {payload[:24]}...{payload[-8:]} ({len(payload)} characters)")
    if instructions.url:
        lines.append(f"link: {mask_url(instructions.url)}")
    if instructions.text:
        lines.append(instructions.text)
    return lines


def _transition(t: TransitionRecord) -> str:
    return f"{t.from_status.value if t.from_status else '-'} -> {t.to_status.value}  ({t.source})"


def _pick_sandbox(host: PluginHost, provider: str) -> tuple[str, Sandbox]:
    # By name, so the default never depends on the order plugins were installed in.
    candidates = sorted(
        (info for info in host.registry if info.gateway_class.sandbox_entry),
        key=lambda info: info.name,
    )
    if provider:
        candidates = [info for info in candidates if info.name == provider]
        if not candidates:
            raise GatewayError(f"provider {provider!r} is not installed or ships no sandbox")
    if not candidates:
        raise GatewayError("no installed provider ships a sandbox for the demo")
    info = candidates[0]
    module, _, factory = info.gateway_class.sandbox_entry.partition(":")
    sandbox: Sandbox = getattr(importlib.import_module(module), factory)()
    return info.name, sandbox


def run_demo(options: DemoOptions, *, out: TextIO | None) -> dict[str, Any]:
    """Run the demo; print the story to ``out`` (None: silent). Returns a summary."""
    import requests

    protect_third_party_loggers()  # the simulated browser's requests carry signatures

    def say(text: str) -> None:
        if out is not None:
            out.write(text + "\n")
            out.flush()

    host = PluginHost()
    provider, sandbox = _pick_sandbox(host, options.provider)
    workdir = Path(tempfile.mkdtemp(prefix="gateway-demo-"))
    late = _LateApp()
    server = wsgiref.simple_server.make_server(
        "127.0.0.1", 0, late, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
    )
    base = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(  # a short poll: shutting down takes one poll interval
        target=server.serve_forever, args=(0.05,), name="demo-merchant", daemon=True
    )
    orders = DemoOrderSystem()
    summary: dict[str, Any] = {"ok": False, "provider": provider}
    try:
        say(f"== gateway demo: a {provider} payment, end to end, on loopback ==")
        faults = SandboxFaults(
            duplicate_notifications=options.duplicate_notifications,
            drop_notifications=options.drop_notifications,
        )
        gateway_settings = dict(
            sandbox.start(
                notification_url=f"{base}/notify/{GATEWAY_NAME}",
                return_url=f"{base}/return/{GATEWAY_NAME}",
                faults=faults,
            )
        )
        gateway_settings["provider"] = provider
        settings = Settings(
            providers={GATEWAY_NAME: gateway_settings},
            ledger_url=f"sqlite:///{workdir / 'ledger.db'}",
            source="demo",
        )
        runtime = build_runtime(settings, host=host, plugins=[orders], environ={})
        service = runtime.service
        late.target = make_wsgi_app(service, return_page=f"{base}/thanks")
        thread.start()
        story = _Narrator(say, runtime.ledger, orders, sandbox, options.notification_timeout)
        story.step(f"Started the {provider} emulator and the merchant endpoints on {base}")
        say(f"   notification endpoint: {base}/notify/{GATEWAY_NAME}")
        say(f"   ledger: SQLite at {workdir / 'ledger.db'} (throwaway)")
        if faults.drop_notifications:
            say("   fault injected: the emulator drops every notification")
        if faults.duplicate_notifications:
            say(
                f"   fault injected: each notification is delivered "
                f"{faults.duplicate_notifications} extra times"
            )

        currency = options.currency or service.gateway(GATEWAY_NAME).default_currency
        if not currency:
            raise GatewayError(f"provider {provider!r} has no default currency: pass a currency")
        order = f"DEMO-{int(time.time())}"
        amount = Money(options.amount, currency)
        request = PaymentRequest(
            order_reference=order,
            amount=amount,
            customer=Customer("Budi Santoso", email="budi@example.com", phone="081234567890"),
            description=f"Order {order}",
            return_url=f"{base}/return/{GATEWAY_NAME}",
            items=[LineItem("Kopi Luwak 100g", 1, amount)],
            method=options.method,
        )
        methods = service.gateway(GATEWAY_NAME).payment_methods
        if options.method and options.method not in methods:
            raise GatewayError(
                f"provider {provider!r} offers no method {options.method!r} in the demo"
                + (f"; methods: {', '.join(methods)}" if methods else "")
            )
        started = service.start_payment(GATEWAY_NAME, request)
        record = started.payment
        story.payment_id = record.id or 0
        story.step(
            f"Created the payment: order {order}, {amount}, bill {record.merchant_reference},"
            f" provider transaction {record.provider_reference}"
        )
        story.news("")
        redirect = started.redirect
        if isinstance(redirect, RedirectInstruction):
            say(f"   redirect the customer to {mask_url(redirect.url)} (signature hidden)")
        else:
            say("   no page to send the customer to: the shop shows these instructions")
            for line in _instruction_lines(redirect):
                say(f"   | {line}")

        # Each step finishes before the story goes on: the provider's notifications for the
        # customer's action are delivered (the browser is slow to follow the return), then
        # the browser returns. What each step changed is read afterwards, never assumed.
        action = CustomerAction(options.customer)
        visit = sandbox.customer(redirect, action)
        if isinstance(redirect, RedirectInstruction):
            story.step(f"The customer opens the redirect and chooses '{action.value}' on the page:")
        else:
            story.step(f"The customer follows the instructions ('{action.value}'):")
        for line in visit.steps:
            say(f"   - {line}")
        story.notifications("for the customer's action")
        story.news("no change")
        if visit.return_url and options.drop_notifications:
            story.step("The customer closes the browser instead of returning to the shop")
            say("   (so neither the return nor any notification reaches the merchant)")
        elif visit.return_url:
            reply = requests.get(visit.return_url, allow_redirects=False, timeout=10)
            story.step(
                f"The browser returns to the merchant: HTTP {reply.status_code} -> "
                f"{reply.headers.get('Location', '')}"
            )
            story.news("no change from the return")
        else:
            story.step("The customer never came back to the shop")
        record = service.payment(GATEWAY_NAME, record.merchant_reference)
        if action is CustomerAction.ABANDON or not record.status.is_final:
            sandbox.settle_pending()
            story.notifications("once the provider settled what was open (its clock moved on)")
            story.news("no change")
            record = service.payment(GATEWAY_NAME, record.merchant_reference)
        if not record.status.is_final:
            story.step("The payment is still open locally: running reconcile (inquiry)")
            report = service.reconcile(grace=timedelta(0), min_interval=0)
            say(
                f"   reconcile: examined={report.examined} changed={report.changed} "
                f"unchanged={report.unchanged}"
            )
            story.news("no change")
            record = service.payment(GATEWAY_NAME, record.merchant_reference)
        else:
            story.step("No reconcile needed")
        service.redeliver()
        story.news("")

        transitions = runtime.ledger.transitions(record.id or 0)
        story.step(
            f"Ledger final state: {record.merchant_reference} is {record.status.value.upper()}"
        )
        for t in transitions:
            say(f"   {_transition(t)}")
        kinds = [event.kind for event in orders.applied.values()]
        story.step(
            "Hook events the order system applied: " + (", ".join(k.value for k in kinds) or "none")
        )
        paid_events = kinds.count(EventKind.PAID)
        say(
            f"   paid events: {paid_events}; deliveries received by the order system: "
            f"{len(orders.received)}"
        )
        sources = [t.source for t in transitions]
        by_notification = sources.count("notification")
        say(
            f"   notifications: {story.attempts} delivery attempt(s), {story.reached} reached "
            f"the merchant; ledger changes made by a notification: {by_notification}"
        )
        expected = {
            "pay": PaymentStatus.PAID,
            "fail": PaymentStatus.FAILED,
            "abandon": PaymentStatus.EXPIRED,
        }[action.value]
        # A change the ledger credits to a notification needs a notification that arrived.
        ok = (
            record.status is expected
            and paid_events == (1 if expected is PaymentStatus.PAID else 0)
            and (story.reached > 0 or by_notification == 0)
        )
        say(
            f"== {'OK' if ok else 'UNEXPECTED'}: payment {record.status.value}, "
            f"{paid_events} paid event(s) =="
        )
        summary.update(
            ok=ok,
            order=order,
            merchant_reference=record.merchant_reference,
            status=record.status.value,
            transitions=[t.to_status.value for t in transitions],
            sources=sources,
            events=[k.value for k in kinds],
            paid_events=paid_events,
            notification_attempts=story.attempts,
            notifications_reached=story.reached,
        )
        runtime.close()
        return summary
    finally:
        server.shutdown() if thread.is_alive() else None
        server.server_close()
        sandbox.stop()
        if options.keep_ledger:
            say(f"ledger kept at {workdir / 'ledger.db'}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
