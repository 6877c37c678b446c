"""Helpers shared by the notification-scenario tests (``test_scenarios_*.py``, reliability plan
§7.3, N1–N11): building and posting signed messages over loopback HTTP, reading the
merchant's acknowledgements, and checking the global invariants I1–I5 after a scenario.

The scenarios run for every provider: their stack is a
:class:`provider_drivers.ProviderStack` whose ``driver`` knows the provider (``faspay_dana``,
``midtrans_snap``); the :func:`provider_stack` fixture factory parameterises a module by
provider and backend. The helpers also accept the root conftest's Faspay-only ``Stack`` (other
test files use them with Faspay status codes such as ``"2"``).

This module holds no tests; it is named ``test_scenarios_*`` only so that it sits with the
scenario files (pytest collects it and finds nothing).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests
from defusedxml.ElementTree import fromstring
from provider_drivers import Driver, matrix, open_provider_stack

from gateway_core import EventKind, PaymentStatus
from gateway_core._state import allowed
from gateway_core.ledger import JournalEntry, PaymentRecord
from gateway_faspay_dana.testing import signed_notification, signed_return_query

S = PaymentStatus

#: Sources that may put a payment in ``paid``: a verified notification, or an inquiry (run
#: directly, after a customer's return, or by reconciliation). Never ``create``/``operator``.
PAID_SOURCES = frozenset({"notification", "inquiry", "return", "reconcile"})

#: The emulator's ``payment_status_code`` for "the provider says the money moved".
PROVIDER_PAID = frozenset({"2", "4"})
#: The provider's status (as a core status) when the money moved, and when it is final.
MONEY_MOVED = frozenset({S.PAID, S.REVERSED, S.PARTIALLY_REFUNDED, S.REFUNDED})
SETTLED = frozenset({S.PAID, S.FAILED, S.REVERSED, S.EXPIRED, S.CANCELLED})

HTTP_TIMEOUT = 10.0


# -- building and sending messages ------------------------------------------------------------


def gateway(stack: Any) -> Any:
    """The configured gateway: its credentials sign the test's messages."""
    return stack.service.gateways[stack.gateway_name]


def driver(stack: Any) -> Driver | None:
    """The stack's provider driver (None: the root conftest's Faspay stack)."""
    found: Driver | None = getattr(stack, "driver", None)
    return found


#: Faspay's ``payment_status_code`` of a core status (for the root conftest's Faspay stack).
_FASPAY_CODE = {S.PAID: "2", S.FAILED: "3", S.REVERSED: "4", S.IN_PROCESS: "1"}
_CORE_OF_CODE = {code: status for status, code in _FASPAY_CODE.items()}


def _core(status: PaymentStatus | str) -> PaymentStatus:
    if isinstance(status, PaymentStatus):
        return status
    return _CORE_OF_CODE.get(status) or PaymentStatus(status)


def notification_for(
    stack: Any, record: PaymentRecord, status: PaymentStatus | str = "2", **changes: Any
) -> bytes:
    """A correctly signed notification for ``record`` reporting ``status`` (a core status, or
    Faspay's code on the root conftest's stack); ``changes`` tamper with it (see
    :meth:`Driver.notification_for`, or :func:`signed_notification` for Faspay)."""
    found = driver(stack)
    if found is not None:
        return found.notification_for(stack, record, _core(status), **changes)
    if isinstance(status, PaymentStatus):
        status = _FASPAY_CODE[status]
    values: dict[str, Any] = {
        "bill_no": record.merchant_reference,
        "trx_id": record.provider_reference,
        "status": status,
        "amount": record.amount,
    }
    values.update(changes)
    return signed_notification(gateway(stack), **values)


def return_query_for(stack: Any, record: PaymentRecord, status: str = "2") -> dict[str, str]:
    """The customer's signed return query for ``record`` claiming ``status`` (``"2"``: paid)."""
    found = driver(stack)
    if found is not None:
        return found.return_query_for(stack, record, claims_paid=status in ("2", "paid"))
    return signed_return_query(
        gateway(stack),
        bill_no=record.merchant_reference,
        trx_id=record.provider_reference,
        status=status,
        amount=record.amount,
    )


def post_notification(
    stack: Any,
    body: bytes,
    *,
    content_type: str = "application/json",
    session: requests.Session | None = None,
) -> requests.Response:
    """POST ``body`` to the merchant's notification endpoint, as the provider would."""
    sender = session or requests
    return sender.post(
        stack.notify_url,
        data=body,
        headers={"Content-Type": content_type},
        timeout=HTTP_TIMEOUT,
    )


def get_return(
    stack: Any, query: dict[str, str], *, session: requests.Session | None = None
) -> requests.Response:
    """The customer's browser arriving at the return URL (redirects not followed)."""
    sender = session or requests
    return sender.get(stack.return_url, params=query, allow_redirects=False, timeout=HTTP_TIMEOUT)


def accepted(stack: Any, response: requests.Response) -> bool:
    """The merchant's reply acknowledges the notification (the provider stops retrying)."""
    found = driver(stack)
    if found is not None:
        return found.accepted(response)
    return response.status_code == 200 and response_code(response) == "00"


def refused(stack: Any, response: requests.Response, reason: str) -> bool:
    """The merchant's reply refuses the notification the way the provider is told ``reason``
    (Faspay: the HTTP status and ``response_code`` ``"99"``; Midtrans: a non-2xx status
    chosen for its retry classes)."""
    found = driver(stack)
    if found is None or found.name == "faspay_dana":
        status = {"bad_signature": 403, "too_large": 413}.get(reason, 400)
        return response.status_code == status and response_code(response) == "99"
    return not found.accepted(response) and response.status_code == found.refusal_status(reason)


def response_code(response: requests.Response) -> str | None:
    """``response_code`` of a Faspay acknowledgement (JSON or XML), or None."""
    body = response.content
    try:
        if body.lstrip().startswith(b"<"):
            element = fromstring(body)
            found = element.find("response_code")
            return None if found is None else (found.text or "")
        value = json.loads(body)
    except Exception:
        return None
    code = value.get("response_code") if isinstance(value, dict) else None
    return code if isinstance(code, str) else None


def pay_without_notifying(stack: Any, bill_no: str) -> None:
    """The customer pays at the provider, but every delivery of that notification is lost
    (the merchant endpoint is unreachable): the test delivers it itself."""
    found = driver(stack)
    if found is not None:
        found.pay_without_notifying(stack, bill_no)
        return
    stack.emulator.add_fault("notification", "drop", bill_no=bill_no, on_status="2")
    stack.emulator.pay(bill_no)
    stack.wait()


def provider_body(stack: Any, bill_no: str, status: PaymentStatus | str = "2") -> bytes:
    """The exact body the emulator built (and, with a ``drop`` fault, never delivered) for the
    last ``status`` notification of ``bill_no``."""
    found = driver(stack)
    if found is not None:
        return found.provider_body(stack, bill_no, _core(status))
    if isinstance(status, PaymentStatus):
        status = _FASPAY_CODE[status]
    deliveries = [d for d in stack.emulator.deliveries(bill_no) if d["status"] == status]
    assert deliveries, f"the emulator made no status-{status} notification for {bill_no}"
    body: str = deliveries[-1]["body"]
    return body.encode("utf-8")


# -- reading the ledger and the order system ------------------------------------------------


def journal(stack: Any, kind: str | None = None) -> list[JournalEntry]:
    """The gateway's journal (oldest first), optionally one ``kind`` only."""
    entries = stack.ledger.journal(stack.gateway_name, limit=10_000)
    return [e for e in entries if kind is None or e.kind == kind]


def verdicts(entries: Iterable[JournalEntry]) -> list[tuple[str, str]]:
    """(verdict, reason) of each entry."""
    return [(e.verdict, e.reason) for e in entries]


def paid_transitions(stack: Any, record: PaymentRecord) -> list[Any]:
    """The transitions of ``record`` into ``paid``."""
    assert record.id is not None
    return [t for t in stack.ledger.transitions(record.id) if t.to_status is S.PAID]


def effects(stack: Any, order: str, kind: EventKind) -> int:
    """How many distinct ``kind`` events the order system applied for ``order``."""
    return int(stack.recorder.effects.get((order, kind), 0))


def reviews(stack: Any, order: str) -> list[str]:
    """Reasons of the distinct ``needs_review`` events the order system received for ``order``."""
    seen: dict[str, str] = {}
    for event in stack.recorder.of_kind(EventKind.NEEDS_REVIEW):
        if event.order_reference == order:
            seen.setdefault(event.event_id, event.reason)
    return list(seen.values())


def outbox_reviews(stack: Any, record: PaymentRecord) -> list[str]:
    """Reasons of the ``needs_review`` events written to the outbox for ``record``."""
    return [
        str(event.payload.get("reason", ""))
        for event in stack.ledger.outbox(record.id)
        if event.kind is EventKind.NEEDS_REVIEW
    ]


def snapshot(stack: Any) -> dict[str, Any]:
    """Everything a rejected input must leave alone: payments, transitions, outbox, events."""
    payments = stack.ledger.list_payments(gateway=stack.gateway_name, limit=1000)
    return {
        "payments": sorted(payments, key=lambda p: p.id or 0),
        "transitions": {p.id: stack.ledger.transitions(p.id) for p in payments},
        "outbox": [e.event_id for e in stack.ledger.outbox()],
        "events": [e.event_id for e in stack.recorder.events],
    }


# -- the global invariants (reliability plan §7.3) --------------------------------------------


def _provider_status(stack: Any, reference: str) -> PaymentStatus | None:
    """The payment's status in the provider's (the emulator's) own records."""
    found = driver(stack)
    if found is not None:
        return found.provider_status(stack, reference)
    code = stack.emulator.bill(reference)["status"]
    statuses = {"2": S.PAID, "3": S.FAILED, "4": S.REVERSED, "7": S.EXPIRED, "8": S.CANCELLED}
    return statuses.get(code, S.PENDING)


def assert_invariants(stack: Any, *, reconciled: bool = False) -> None:
    """I1 (when ``reconciled``), I2, I3, I4 over every payment of the stack, and every hook
    event in the outbox delivered. I5 (rejected inputs journalled) is asserted by each test
    for the inputs it sends."""
    records = stack.ledger.list_payments(gateway=stack.gateway_name, limit=1000)
    for record in records:
        assert record.id is not None
        transitions = stack.ledger.transitions(record.id)
        status = S.UNKNOWN
        for t in transitions:
            # The chain is contiguous and starts at ``unknown``.
            assert t.from_status is status, f"{record.merchant_reference}: {transitions}"
            status = t.to_status
            # I4: only allowed moves; ``paid`` only ever goes on to ``reversed``.
            assert allowed(t.from_status, t.to_status), f"{t.from_status} -> {t.to_status}"
            if t.from_status is S.PAID:
                assert t.to_status is S.REVERSED
            # I3: ``paid`` only from a verified notification or an inquiry, and only when the
            # provider (the emulator's ledger) really has the bill paid.
            if t.to_status is S.PAID:
                assert t.source in PAID_SOURCES, t
                at_provider = _provider_status(stack, record.merchant_reference)
                assert at_provider in MONEY_MOVED, (record.merchant_reference, at_provider)
        assert status is record.status
        if reconciled and record.provider_reference:
            # I1: a bill the provider has settled is settled the same way locally.
            at_provider = _provider_status(stack, record.merchant_reference)
            if at_provider in SETTLED:
                assert record.status is at_provider
    # I2: at most one effect per (order, kind) for the lifecycle kinds (``created`` is one per
    # attempt, ``needs_review`` one per distinct anomaly; tests assert those themselves).
    for (order, kind), count in stack.recorder.effects.items():
        if kind not in (EventKind.CREATED, EventKind.NEEDS_REVIEW):
            assert count <= 1, f"{count} {kind.value} effects for {order}"
    # At-least-once delivery has happened: nothing is left in the outbox.
    pending = [e.event_id for e in stack.ledger.outbox(delivered=False)]
    assert pending == [], f"undelivered hook events: {pending}"


# -- one stack shared by a module's tests (for the many cheap rejection cases) ---------------


def root_conftest(config: pytest.Config) -> ModuleType:
    """``adapters/tests/conftest.py`` as pytest loaded it (its ``build_stack``, ``Store``...).

    Test folders have no ``__init__.py``, so ``import conftest`` would find whichever conftest
    was imported last; the plugin manager knows the right one."""
    wanted = Path(__file__).resolve().parent.parent / "conftest.py"
    for plugin in config.pluginmanager.get_plugins():
        filename = getattr(plugin, "__file__", None)
        if isinstance(plugin, ModuleType) and filename and Path(filename).resolve() == wanted:
            return plugin
    raise RuntimeError(f"{wanted} is not loaded")  # pragma: no cover


@contextlib.contextmanager
def open_stack(
    config: pytest.Config, backend: str, directory: Path, **options: Any
) -> Iterator[Any]:
    """A whole stack (see ``build_stack``) on ``backend`` (``sqlite`` or ``postgres``), for a
    fixture of any scope; PostgreSQL is skipped (or fails under CI) when unreachable."""
    conf = root_conftest(config)
    schema = ""
    if backend == "sqlite":
        store = conf.Store("sqlite", str(directory / "ledger.db"))
    else:
        conf.require_postgres()
        schema = f"gw_test_{uuid.uuid4().hex[:16]}"
        store = conf.Store("postgres", conf.POSTGRES_URL, schema)
    try:
        built, close = conf.build_stack(store, **options)
        try:
            yield built
        finally:
            close()
    finally:
        if schema:
            conf.drop_schema(schema)


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def provider_stack(*, scope: str = "function", midtrans_postgres: bool = False) -> Any:
    """A ``stack`` fixture parameterised by provider and backend (see
    :func:`provider_drivers.matrix`): a fresh :class:`~provider_drivers.ProviderStack` per
    test (or per module, with ``scope="module"``)."""

    @pytest.fixture(scope=scope, params=matrix(midtrans_postgres=midtrans_postgres))
    def fixture(
        request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[Any]:
        provider, backend = request.param
        directory = tmp_path_factory.mktemp("ledger")
        with open_provider_stack(request.config, provider, backend, directory) as built:
            yield built

    return fixture


def new_order(prefix: str) -> str:
    """An order reference no other test of a shared stack uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
