"""Acceptance of "secrets never in clear" (reliability plan §7.6).

A realistic flow runs through the whole stack (emulator, merchant endpoints over loopback, the
payment service on SQLite) with the sentinel password, every logger captured at DEBUG and
``logging.raiseExceptions`` on. Then everything an operator could read is scanned:

* every log record: the formatted message, the raw ``msg`` and each argument, and the fully
  formatted line (with any traceback);
* ``str()`` and ``repr()`` of every exception the flow raised, with its whole cause chain;
* ``repr()`` of every model the flow produced (request, payment, redirect, notification, the
  gateway, its config and client, the ledger and its records, the service's outcomes);
* what the ledger stores: journal bodies and reasons, outbox payloads and ``last_error``,
  transition event keys (read back through the ledger API).

Forbidden in clear: the sentinel password; every signature derived from it for the bills used
(``sha1(md5(user_id + password + bill_no))`` and its ``+ status`` variants for statuses 0..9,
and the constant channel-inquiry one); the full redirect URL(s); the customer's phone number
(as given and normalised) and e-mail address.

The customer's browser is simulated with ``http.client`` (which does not log) on purpose: it is
not part of the system under test, and a logging HTTP client there would put the customer's
own redirect URL into the captured logs.

``gateway demo`` gets the same treatment for its generated password and its customer's data
(and its signatures, in what it prints and in every log record except the request lines urllib3
logs for the demo's own simulated browser: a known finding, reported as xfail). One test checks
that CR/LF in attacker-controlled fields cannot forge a log line.
"""

from __future__ import annotations

import http.client
import io
import json
import logging
import re
from collections.abc import Callable, Iterable
from datetime import timedelta
from html.parser import HTMLParser
from types import ModuleType
from typing import Any
from urllib.parse import urlencode, urlsplit

import attrs
import pytest

from gateway_core import (
    BadSignature,
    LedgerError,
    OutcomeUnknown,
    PaymentStatus,
    ProviderRefused,
    Settings,
    UnknownPayment,
    hookimpl,
)
from gateway_core._events import PaymentEvent
from gateway_faspay_dana._signature import sign
from gateway_faspay_dana.testing import signed_notification, signed_return_query

PHONE = "081234567890"
PHONE_NORMALISED = "81234567890"
EMAIL = "budi@example.com"
MERCHANT_ID = "99999"
USER_ID = "bot" + MERCHANT_ID
FORMATTER = logging.Formatter("%(levelname)s %(name)s %(threadName)s %(message)s")


# -- the scanner ---------------------------------------------------------------------------


@attrs.define
class Scanner:
    """Collects (where, text) pairs and finds forbidden values in them."""

    forbidden: dict[str, str] = attrs.field(factory=dict)  # value -> label
    texts: list[tuple[str, str]] = attrs.field(factory=list)

    def forbid(self, label: str, *values: str) -> None:
        for value in values:
            if value:
                self.forbidden.setdefault(value, label)

    def forbid_bill(self, password: str, bill_no: str, user_id: str = USER_ID) -> None:
        self.forbid(f"signature(bill {bill_no})", sign(user_id, password, bill_no))
        for status in range(10):
            self.forbid(
                f"signature(bill {bill_no}, status {status})",
                sign(user_id, password, bill_no, str(status)),
            )

    def add(self, where: str, text: object) -> None:
        self.texts.append((where, text if isinstance(text, str) else repr(text)))

    def add_repr(self, where: str, value: object) -> None:
        self.add(f"repr({where})", repr(value))
        self.add(f"str({where})", str(value))

    def add_exception(self, where: str, exc: BaseException) -> None:
        seen: list[BaseException] = []
        current: BaseException | None = exc
        depth = 0
        while current is not None and not any(current is s for s in seen) and depth < 16:
            seen.append(current)
            self.add(f"str({where}#{depth} {type(current).__name__})", str(current))
            self.add(f"repr({where}#{depth} {type(current).__name__})", repr(current))
            for name in ("message", "merchant_reference", "provider_code", "reason"):
                value = getattr(current, name, None)
                if isinstance(value, str):
                    self.add(f"{where}#{depth}.{name}", value)
            ack = getattr(current, "acknowledgement", None)
            if ack is not None:
                self.add(f"{where}#{depth}.acknowledgement", repr(ack))
                self.add(
                    f"{where}#{depth}.acknowledgement.body", ack.body.decode("utf-8", "replace")
                )
            current = current.__cause__ or current.__context__
            depth += 1

    def add_records(self, where: str, records: Iterable[logging.LogRecord]) -> None:
        for index, record in enumerate(records):
            label = f"{where}[{index}] {record.name}:{record.levelname}"
            self.add(f"{label} message", record.getMessage())
            self.add(f"{label} msg", str(record.msg))
            args = record.args
            values: Iterable[object] = ()
            if isinstance(args, tuple):
                values = args
            elif isinstance(args, dict):
                values = args.values()
            for position, arg in enumerate(values):
                self.add(f"{label} arg{position} str", str(arg))
                self.add(f"{label} arg{position} repr", repr(arg))
            self.add(f"{label} formatted", FORMATTER.format(record))

    def hits(self) -> list[str]:
        found = []
        for where, text in self.texts:
            for value, label in self.forbidden.items():
                if value in text:
                    start = text.index(value)
                    excerpt = text[max(0, start - 60) : start + len(value) + 20]
                    found.append(f"{label} in {where}: …{excerpt!r}…")
        return found


def expect(
    errors: list[tuple[str, BaseException]],
    where: str,
    kind: type[BaseException],
    call: Callable[..., Any],
    *args: Any,
    **kwargs: Any,
) -> BaseException:
    """Run ``call``; it must raise ``kind``; keep the exception for the scan."""
    with pytest.raises(kind) as info:
        call(*args, **kwargs)
    errors.append((where, info.value))
    return info.value


# -- a browser that does not log -------------------------------------------------------------


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, tuple[str, dict[str, str]]] = {}
        self._current: str | None = None

    def handle_starttag(self, tag: str, attributes: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attributes}
        if tag == "form":
            self._current = values.get("id", "")
            self.forms[self._current] = (values.get("action", ""), {})
        elif tag == "input" and self._current is not None and values.get("name"):
            self.forms[self._current][1][values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def browse(
    method: str, url: str, form: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, str, bytes]:
    """One HTTP exchange with ``http.client`` (no logging, no redirects followed)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    headers: dict[str, str] = {}
    if form is not None:
        body = urlencode(form).encode("ascii")
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body, headers)
        reply = conn.getresponse()
        return reply.status, reply.getheader("Location", "") or "", reply.read()
    finally:
        conn.close()


def customer_pays(redirect_url: str) -> str:
    """Open the DANA page, press Pay; the Location (the merchant's signed return URL)."""
    status, _, page = browse("GET", redirect_url)
    assert status == 200, page[:200]
    forms = _Forms()
    forms.feed(page.decode("utf-8"))
    action, fields = forms.forms["dana-pay"]
    target = action if action.startswith("http") else redirect_url.split("/pws/")[0] + action
    status, location, _ = browse("POST", target, form={**fields, "action": "pay"})
    assert status == 302, status
    assert location
    return location


# -- an order system whose hook fails once, with personal data in the error ----------------


class FlakyMailer:
    """Fails the first paid event the way a careless order system would: PII in the error."""

    def __init__(self) -> None:
        self.failures = 0

    @hookimpl
    def gateway_payment_paid(self, event: PaymentEvent) -> None:
        if self.failures == 0:
            self.failures += 1
            raise RuntimeError(
                f"SMTP 550: cannot send the receipt for {event.order_reference} to {EMAIL} "
                f"(SMS fallback {PHONE} failed too)"
            )


# -- the flow ------------------------------------------------------------------------------


@pytest.fixture
def root(suite: ModuleType) -> ModuleType:
    """``adapters/tests/conftest.py`` (``build_stack``, ``TEST_PASSWORD``)."""
    return suite


@pytest.fixture
def captured(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> pytest.LogCaptureFixture:
    monkeypatch.setattr(logging, "raiseExceptions", True)
    caplog.set_level(logging.DEBUG)  # the root logger: every library, ours and third-party
    return caplog


def _notify(stack: Any, body: bytes) -> tuple[int, bytes]:
    status, _, reply = browse("POST", stack.notify_url, body=body)
    return status, reply


def test_secrets_never_in_clear_through_a_whole_flow(
    root: ModuleType, sqlite_store: Any, captured: pytest.LogCaptureFixture
) -> None:
    password = root.TEST_PASSWORD  # the stack's merchant password: a sentinel
    stack, close = root.build_stack(sqlite_store)
    scanner = Scanner()
    errors: list[tuple[str, BaseException]] = []
    models: list[tuple[str, object]] = []
    redirects: list[str] = []
    try:
        service, ledger = stack.service, stack.ledger
        gateway = service.gateway("dana")
        assert gateway.config.password == password
        mailer = FlakyMailer()
        stack.runtime.host.register(mailer)

        # 1. Create: the customer's e-mail and phone go to Faspay; the redirect comes back.
        request_a = stack.request("ORD-A")
        models.append(("PaymentRequest A", request_a))
        models.append(("Customer", request_a.customer))
        started_a = stack.start("ORD-A")
        ref_a = started_a.payment.merchant_reference
        redirects.append(started_a.redirect.url)
        models += [
            ("StartedPayment A", started_a),
            ("RedirectInstruction A", started_a.redirect),
            ("PaymentRecord A", started_a.payment),
        ]

        # Double-click on "pay": the same attempt comes back.
        again = stack.start("ORD-A")
        assert again.reused
        assert again.payment.merchant_reference == ref_a
        models.append(("StartedPayment A (reused)", again))

        # 2. The customer opens the redirect and pays; DANA sends the browser back (a return).
        return_url = customer_pays(started_a.redirect.url)
        status, location, _ = browse("GET", return_url)
        assert status == 303, status
        assert "reference=" in location
        stack.wait()  # 3. the paid notification
        paid = stack.record(ref_a)
        assert paid.status is PaymentStatus.PAID
        models.append(("PaymentRecord A paid", paid))

        # 4. A duplicate delivery of the paid notification.
        stack.emulator.notify(ref_a)
        stack.wait()
        deliveries = stack.emulator.deliveries(ref_a)
        assert len(deliveries) >= 2

        # The payment, its redirect and a verified notification as the plugin hands them over.
        payment_a = service.as_payment(paid)
        models += [("Payment A", payment_a), ("Redirect A", gateway.redirect(payment_a))]
        body_a = signed_notification(
            gateway, bill_no=ref_a, trx_id=paid.provider_reference, status="2", amount="200000"
        )
        notification = gateway.handle_notification(body_a, {})
        models += [
            ("Notification A", notification),
            ("Acknowledgement A", gateway.acknowledge(notification)),
        ]
        outcome = service.handle_notification("dana", body_a, {})
        assert outcome.verdict == "duplicate"
        models.append(("NotificationOutcome duplicate", outcome))

        # A Payment straight from the plugin's create, with its redirect (a bill of its own).
        direct_request = attrs.evolve(request_a, merchant_reference="DIRECT-1")
        direct = gateway.create(direct_request)
        assert direct.redirect is not None
        redirects.append(direct.redirect.url)
        models += [("Payment direct", direct), ("Redirect direct", direct.redirect)]

        # 5. A forged notification (signed with a guessed password) for order A.
        forged = signed_notification(
            (MERCHANT_ID, "guessed-password"),
            bill_no=ref_a,
            trx_id=paid.provider_reference,
            status="2",
            amount="200000",
        )
        status, _ = _notify(stack, forged)
        assert status == 403
        expect(errors, "forged notification", BadSignature, gateway.handle_notification, forged)

        # 6. A tampered amount on another order (the signature does not cover amounts).
        started_b = stack.start("ORD-B", "5000")
        ref_b = started_b.payment.merchant_reference
        redirects.append(started_b.redirect.url)
        tampered = signed_notification(
            gateway,
            bill_no=ref_b,
            trx_id=started_b.payment.provider_reference,
            status="2",
            amount="100",
        )
        status, _ = _notify(stack, tampered)
        assert status == 200  # quarantined and acknowledged (ServicePolicy.acknowledge_review)
        assert stack.record(ref_b).status is PaymentStatus.PENDING
        review = service.handle_notification("dana", tampered, {})
        assert review.verdict == "review"
        models.append(("NotificationOutcome review", review))

        # 7. Returns: a genuine one through the service, and a forged one.
        query_b = signed_return_query(
            gateway, bill_no=ref_b, status="1", trx_id=started_b.payment.provider_reference
        )
        returned = service.handle_return("dana", query_b)
        models += [("ReturnOutcome B", returned), ("ReturnResult B", returned.claimed)]
        forged_query = dict(query_b, signature="0" * 40)
        expect(errors, "forged return", BadSignature, service.handle_return, "dana", forged_query)
        status, _, _ = browse("GET", f"{stack.return_url}?{urlencode(forged_query)}")
        assert status == 400

        # 8. Reconcile (order B is pending; the emulator still says so). The first inquiry
        # meets a 503, so the retry loop logs its before_sleep line too.
        stack.emulator.add_fault("inquiry", "http_5xx")
        report = service.reconcile(grace=timedelta(0), min_interval=0)
        assert report.examined >= 1
        models.append(("ReconcileReport", report))
        models.append(("StatusReport B", gateway.inquire(service.as_payment(stack.record(ref_b)))))

        # 9. Cancel another payment; cancelling the paid one is refused.
        started_c = stack.start("ORD-C")
        ref_c = started_c.payment.merchant_reference
        redirects.append(started_c.redirect.url)
        cancelled = service.cancel("dana", ref_c, "customer changed their mind")
        assert cancelled.status is PaymentStatus.CANCELLED
        models.append(("PaymentRecord C cancelled", cancelled))
        expect(errors, "cancel paid", ProviderRefused, service.cancel, "dana", ref_a)
        expect(errors, "restart paid order", LedgerError, stack.start, "ORD-A")
        expect(errors, "unknown payment", UnknownPayment, service.payment, "dana", "NOPE-1")

        # 10. A create whose reply is lost after Faspay processed it.
        stack.emulator.add_fault("create", "reset_after_read")
        expect(errors, "create outcome unknown", OutcomeUnknown, stack.start, "ORD-D")
        unknown = [p for p in ledger.payments_for_order("dana", "ORD-D")]
        assert [p.status for p in unknown] == [PaymentStatus.UNKNOWN]
        models.append(("PaymentRecord D unknown", unknown[0]))

        stack.wait()
        service.redeliver(force=True)  # the mailer's failed paid event, now delivered
        assert mailer.failures == 1

        # Everything the emulator created: every bill's signatures and redirect are secrets.
        bills = stack.emulator.bills()
        assert {ref_a, ref_b, ref_c, "DIRECT-1", unknown[0].merchant_reference} <= {
            b["bill_no"] for b in bills
        }
        for bill in bills:
            scanner.forbid_bill(password, bill["bill_no"])
            redirects.append(bill["redirect_url"])
        models += [
            ("gateway", gateway),
            ("config", gateway.config),
            ("client", getattr(gateway, "_client", None)),
            ("transport", getattr(getattr(gateway, "_client", None), "transport", None)),
            ("gateways", stack.runtime.gateways),
            ("ledger", ledger),
            ("service policy", service.policy),
            (
                "settings",
                Settings(providers={"dana": {"password": password}}, ledger_url="x"),
            ),
        ]
        for record in ledger.list_payments():
            models.append((f"ledger payment {record.merchant_reference}", record))
            assert record.id is not None
            for transition in ledger.transitions(record.id):
                models.append((f"transition {record.merchant_reference}", transition))
        journal = ledger.journal()
        assert any(entry.body for entry in journal), "notification bodies are journalled"
        for entry in journal:
            where = f"journal #{entry.id} {entry.kind}/{entry.verdict}"
            scanner.add(f"{where} body", entry.body)
            scanner.add(f"{where} reason", entry.reason)
            models.append((where, entry))
        outbox = ledger.outbox()
        assert outbox
        assert any(event.last_error for event in outbox), "the mailer's failure is recorded"
        for event in outbox:
            where = f"outbox {event.event_id}"
            scanner.add(f"{where} payload", json.dumps(event.payload))
            scanner.add(f"{where} last_error", event.last_error)
            models.append((where, event))
    finally:
        close()

    scanner.forbid("password", password)
    scanner.forbid("signature(channel inquiry)", sign(USER_ID, password))
    scanner.forbid("redirect URL", *redirects)
    scanner.forbid("phone", PHONE, PHONE_NORMALISED)
    scanner.forbid("e-mail", EMAIL)
    for where, model in models:
        scanner.add_repr(where, model)
    for where, exc in errors:
        scanner.add_exception(where, exc)
    scanner.add_records("log", captured.records)
    scanner.add("caplog.text", captured.text)

    assert len(captured.records) > 20, "logging was not captured"
    hits = scanner.hits()
    assert not hits, "secrets in clear:\n" + "\n".join(hits)


def test_the_scanner_finds_planted_secrets(captured: pytest.LogCaptureFixture) -> None:
    """Guards against a vacuous scan: each kind of source, with a secret planted in it."""
    password = "planted-Pw-1234"
    signature = sign(USER_ID, password, "BILL-1", "2")
    logging.getLogger("third.party").debug("calling %s", f"/x/{signature}?a=1")
    scanner = Scanner()
    scanner.forbid("password", password)
    scanner.forbid_bill(password, "BILL-1")
    scanner.forbid("e-mail", EMAIL)
    scanner.add_records("log", captured.records)
    try:
        raise RuntimeError("wrapped") from ValueError(f"bad password {password}")
    except RuntimeError as exc:
        scanner.add_exception("error", exc)
    scanner.add_repr("model", {"contact": EMAIL})
    hits = scanner.hits()
    assert any("signature(bill BILL-1, status 2) in log" in h for h in hits), hits
    assert any(h.startswith("password in str(error#1 ValueError)") for h in hits), hits
    assert any(h.startswith("e-mail in repr(model)") for h in hits), hits


# -- gateway demo --------------------------------------------------------------------------


def _is_browser_request(record: logging.LogRecord) -> bool:
    """urllib3's request line for the demo's simulated customer browser (page or return)."""
    return record.name.startswith("urllib3") and any(
        isinstance(arg, str) and (arg.startswith("/pws/") or arg.startswith("/return/"))
        for arg in (record.args if isinstance(record.args, tuple) else ())
    )


def test_demo_prints_and_logs_no_secrets(
    captured: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway_core.demo import DemoOptions, run_demo
    from gateway_faspay_dana import sandbox as faspay_sandbox

    # The demo generates its password inside the sandbox: catch the settings it hands over.
    settings_seen: list[dict[str, Any]] = []
    start = faspay_sandbox.FaspaySandbox.start

    def spying_start(self: Any, **kwargs: Any) -> Any:
        settings = start(self, **kwargs)
        settings_seen.append(dict(settings))
        return settings

    monkeypatch.setattr(faspay_sandbox.FaspaySandbox, "start", spying_start)
    out = io.StringIO()
    summary = run_demo(DemoOptions(notification_timeout=10.0), out=out)
    printed = out.getvalue()
    assert summary["ok"], printed
    assert len(settings_seen) == 1
    password = settings_seen[0]["password"]
    bill_no = summary["merchant_reference"]
    records = list(captured.records)
    assert records

    # Password and the customer's data: nowhere, neither printed nor in any log record.
    scanner = Scanner()
    scanner.forbid("demo password", password)
    scanner.forbid("phone", PHONE, PHONE_NORMALISED)
    scanner.forbid("e-mail", EMAIL)
    scanner.add("printed output", printed)
    scanner.add_records("log", records)
    scanner.add("caplog.text", captured.text)
    hits = scanner.hits()
    # Signatures: never printed (not even something shaped like one), never in the library's
    # own log records nor in any third-party record other than the simulated browser's.
    signatures = Scanner()
    signatures.forbid_bill(password, bill_no)
    signatures.forbid("signature(channel inquiry)", sign(USER_ID, password))
    signatures.add("printed output", printed)
    signatures.add_records("log", [r for r in records if not _is_browser_request(r)])
    hits += signatures.hits()
    hits += [f"40-hex run in printed output: {m!r}" for m in re.findall(r"[0-9a-f]{40}", printed)]
    assert not hits, "secrets in clear:\n" + "\n".join(hits)

    # The demo plays the customer's browser in-process with requests; urllib3 logs each
    # request target at DEBUG (the redirect path and the return query carry signatures).
    # The library puts its redacting filter on those loggers too.
    browser = Scanner()
    browser.forbid_bill(password, bill_no)
    browser.add_records("log", [r for r in records if _is_browser_request(r)])
    assert not browser.hits(), "signatures in urllib3 records:\n" + "\n".join(browser.hits())


# -- log forging ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_crlf_in_attacker_fields_cannot_forge_log_lines(
    root: ModuleType, sqlite_store: Any, captured: pytest.LogCaptureFixture, fmt: str
) -> None:
    stack, close = root.build_stack(sqlite_store)
    try:
        gateway = stack.service.gateway("dana")
        started = stack.start("ORD-CRLF")
        ref = started.payment.merchant_reference
        evil = "x\nINFO forged\r\nINFO forged too"
        bodies = [
            # Validly signed (the merchant field is not covered by the signature) ...
            signed_notification(
                gateway,
                bill_no=ref,
                trx_id=started.payment.provider_reference,
                status="2",
                amount="200000",
                fmt=fmt,
                merchant=evil,
                payment_status_desc=evil,
            ),
            # ... forged, for a bill the ledger does not know, and with a poisoned bill_no.
            signed_notification(
                (MERCHANT_ID, "guessed"),
                bill_no=ref,
                trx_id="1",
                status="2",
                amount="1",
                fmt=fmt,
                merchant=evil,
            ),
            signed_notification(
                gateway,
                bill_no="NOPE-1",
                trx_id="1",
                status="2",
                amount="1",
                fmt=fmt,
                merchant=evil,
            ),
            signed_notification(
                gateway, bill_no=evil, trx_id="1", status="2", amount="1", fmt=fmt, merchant=evil
            ),
        ]
        for body in bodies:
            _notify(stack, body)
        query = signed_return_query(gateway, bill_no=ref, status="2", merchant=evil)
        browse("GET", f"{stack.return_url}?{urlencode(query)}")
        stack.service.handle_return("dana", dict(query, bank_user_name=evil))
        stack.wait()
        stored = [(e.body, e.reason) for e in stack.ledger.journal()]
    finally:
        close()

    assert captured.records
    forged = []
    for record in captured.records:
        formatted = FORMATTER.format(record)
        lines = formatted.splitlines()
        if any(line.startswith("INFO forged") for line in lines[1:]) or (
            "INFO forged" in formatted and len(lines) > 1
        ):
            forged.append(f"{record.name}: {formatted!r}")
    assert not forged, "forged log lines:\n" + "\n".join(forged)
    assert stored
    raw = [text for pair in stored for text in pair if "\n" in text or "\r" in text]
    assert not raw, f"raw CR/LF stored in the journal: {raw!r}"
