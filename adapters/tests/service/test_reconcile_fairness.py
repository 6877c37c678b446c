"""Reconciliation reaches every open payment, whatever the others answer (issue 9, item 3).

Each pass takes the least recently examined payments first and stamps them, so payments that
answer "still pending", wait for their expiry or fail their inquiry go to the back of the
queue instead of being taken again by every pass. The gateway filter is part of the query,
and payments of gateways no longer configured are reported, never examined.

The open payments are seeded in one transaction; the provider is a stub gateway (no HTTP)
whose inquiry answers by bill number.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Self

import pytest

from gateway_core import (
    Capability,
    EventKind,
    Gateway,
    Money,
    PaymentService,
    PaymentStatus,
    PluginHost,
    ProviderTemporaryError,
    StatusReport,
    TrustDeclaration,
)
from gateway_core._gateway import REQUIRED_CAPABILITIES
from gateway_core.ledger import Ledger, PaymentRecord
from gateway_core.ledger._statements import INSERT_PAYMENT
from gateway_core.testing import HookRecorder

S = PaymentStatus
OPEN = 10_000
LIMIT = 1_000
#: Every seeded payment last changed a day ago, one millisecond apart (oldest first).
SEEDED_AT = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)


class StubGateway(Gateway):
    """Inquiries only: ``PAID-*`` is paid, ``FLAKY-*`` fails, everything else is pending."""

    name: ClassVar[str] = "stub"
    capabilities: ClassVar[frozenset[Capability]] = REQUIRED_CAPABILITIES | {Capability.INQUIRE}
    trust: ClassVar[TrustDeclaration] = TrustDeclaration(
        notification_covers=frozenset(), notification_replayable=True
    )

    def __init__(self) -> None:
        self.inquired: Counter[str] = Counter()

    @classmethod
    def from_config(cls, settings: Mapping[str, Any], **_: Any) -> Self:
        return cls()

    @property
    def merchant_id(self) -> str:
        return "stub-merchant"

    def inquire(self, payment: Any) -> StatusReport:
        self.inquired[payment.merchant_reference] += 1
        if payment.merchant_reference.startswith("FLAKY-"):
            raise ProviderTemporaryError("the provider is having a bad day", provider=self.name)
        paid = payment.merchant_reference.startswith("PAID-")
        return StatusReport(
            provider=self.name,
            merchant_reference=payment.merchant_reference,
            provider_reference=payment.provider_reference,
            status=S.PAID if paid else S.PENDING,
            provider_status="paid" if paid else "open",
        )

    def create(self, request: Any) -> Any:
        raise NotImplementedError

    def redirect(self, payment: Any) -> Any:
        raise NotImplementedError

    def parse_return(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def parse_notification(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def reply(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


def open_payment(reference: str, n: int, *, gateway: str = "stub", **fields: Any) -> PaymentRecord:
    """The ``n``-th oldest open payment: pending, with a provider transaction id."""
    changed = SEEDED_AT + timedelta(milliseconds=n)
    values: dict[str, Any] = {
        "gateway": gateway,
        "provider": "stub",
        "order_reference": f"order-{reference}",
        "merchant_reference": reference,
        "provider_reference": f"trx-{reference}",
        "status": S.PENDING,
        "amount": Money("10.00", "USD"),
        "merchant_id": "stub-merchant",
        "expires_at": SEEDED_AT + timedelta(days=30),
        "created_at": changed,
        "updated_at": changed,
    }
    values.update(fields)
    return PaymentRecord(**values)


def seed(ledger: Ledger, records: list[PaymentRecord]) -> None:
    """Insert ``records`` in one transaction (``insert_payment`` commits each on its own)."""
    sql = ledger._sql(INSERT_PAYMENT)  # type: ignore[attr-defined]
    dump = ledger._dump_time  # type: ignore[attr-defined]
    rows = [
        (
            r.gateway,
            r.provider,
            r.order_reference,
            r.merchant_reference,
            r.provider_reference,
            r.status.value,
            r.amount.minor_units,
            r.amount.currency,
            r.merchant_id,
            r.attempt,
            r.superseded,
            None if r.expires_at is None else dump(r.expires_at),
            dump(r.created_at),
            dump(r.updated_at),
            None,
            ledger._dump_json(r.provider_data),  # type: ignore[attr-defined]
            r.idempotency_key,
            r.method,
        )
        for r in records
    ]

    def work(tx: Any) -> None:
        for row in rows:
            tx.execute(sql, row)

    ledger._run("seed", work, write=True)  # type: ignore[attr-defined]


class Shop:
    """A service with the stub gateway configured as ``stub`` (and ``other`` when asked)."""

    def __init__(self, ledger: Ledger, names: tuple[str, ...] = ("stub",)) -> None:
        self.ledger = ledger
        self.gateways = {name: StubGateway() for name in names}
        self.recorder = HookRecorder()
        host = PluginHost(entry_points=False, plugins=[self.recorder])
        self.service = PaymentService(
            gateways=self.gateways, ledger=ledger, hooks=host.hooks, sleep=_no_sleep
        )

    def reconcile(self, **kwargs: Any) -> Any:
        return self.service.reconcile(min_interval=0, grace=timedelta(0), **kwargs)

    def status(self, reference: str, gateway: str = "stub") -> PaymentStatus:
        record = self.ledger.get_payment(gateway, reference)
        assert record is not None
        return record.status


def _no_sleep(seconds: float) -> None:
    raise AssertionError("min_interval=0 must not sleep")


@pytest.fixture
def ledger(any_store: Any) -> Iterator[Ledger]:
    with any_store.open() as opened:
        opened.migrate()
        yield opened


def test_a_lost_notification_on_the_newest_of_10000_open_payments_is_settled_in_time(
    ledger: Ledger,
) -> None:
    """Issue 9 item 3: the newest of 10,000 open payments is reached within
    ceil(10,000 / limit) passes, though every older payment stays open: most answer
    "pending", some are unknown attempts waiting for their expiry, some inquiries fail."""
    records = []
    for n in range(OPEN - 1):
        if n % 10 == 0:
            records.append(open_payment(f"WAIT-{n}", n, status=S.UNKNOWN, provider_reference=""))
        elif n % 10 == 1:
            records.append(open_payment(f"FLAKY-{n}", n))
        else:
            records.append(open_payment(f"OPEN-{n}", n))
    records.append(open_payment("PAID-NEWEST", OPEN))
    seed(ledger, records)
    shop = Shop(ledger)

    runs = 0
    started = time.perf_counter()
    while shop.status("PAID-NEWEST") is not S.PAID and runs < 2 * math.ceil(OPEN / LIMIT):
        report = shop.reconcile(limit=LIMIT)
        runs += 1
        assert report.examined == LIMIT
    per_run = (time.perf_counter() - started) / runs

    assert shop.status("PAID-NEWEST") is S.PAID, f"still open after {runs} passes"
    assert runs <= math.ceil(OPEN / LIMIT)
    assert [e.merchant_reference for e in shop.recorder.of_kind(EventKind.PAID)] == ["PAID-NEWEST"]
    # Each payment with a provider id was asked once: nobody was taken twice before all were.
    inquired = shop.gateways["stub"].inquired
    assert len(inquired) == OPEN - OPEN // 10
    assert set(inquired.values()) == {1}
    print(f"settled in {runs} passes of {LIMIT}, {per_run * 1000:.0f} ms per pass")


def test_examination_moves_neither_version_nor_updated_at(ledger: Ledger) -> None:
    seed(ledger, [open_payment("OPEN-1", 1)])
    before = ledger.get_payment("stub", "OPEN-1")
    assert before is not None
    assert before.last_examined_at is None

    report = Shop(ledger).reconcile(limit=10)

    after = ledger.get_payment("stub", "OPEN-1")
    assert after is not None
    assert report.unchanged == 1
    assert (after.version, after.updated_at, after.status) == (
        before.version,
        before.updated_at,
        S.PENDING,
    )
    assert after.last_examined_at is not None
    assert after.last_examined_at > SEEDED_AT
    assert before.id is not None  # a compare-and-set on the old version still wins
    ledger.set_provider_reference(before.id, "trx-new", expected_version=before.version)


def test_the_gateway_filter_is_applied_before_the_limit(ledger: Ledger) -> None:
    """A run for one gateway examines ``limit`` of its payments even when older payments of
    another gateway fill the first ``limit`` places."""
    older = [open_payment(f"OTHER-{n}", n, gateway="other") for n in range(50)]
    mine = [open_payment(f"MINE-{n}", 100 + n) for n in range(20)]
    seed(ledger, older + mine)
    shop = Shop(ledger, ("stub", "other"))

    report = shop.reconcile(gateway_names=["stub"], limit=10)

    assert report.examined == 10
    assert sum(shop.gateways["stub"].inquired.values()) == 10
    assert shop.gateways["other"].inquired == Counter()
    second = shop.reconcile(gateway_names=["stub"], limit=10)
    assert second.examined == 10
    assert set(shop.gateways["stub"].inquired) == {r.merchant_reference for r in mine}


def test_payments_of_gateways_no_longer_configured_are_reported_not_examined(
    ledger: Ledger,
) -> None:
    gone = [open_payment(f"GONE-{n}", n, gateway="removed") for n in range(30)]
    seed(ledger, [*gone, open_payment("PAID-1", 100)])
    shop = Shop(ledger)

    report = shop.reconcile(limit=10)

    assert (report.examined, report.changed, report.unconfigured) == (1, 1, 30)
    assert report.unconfigured_gateways == ("removed",)
    assert shop.status("PAID-1") is S.PAID
    for record in gone:
        stored = ledger.get_payment("removed", record.merchant_reference)
        assert stored is not None
        assert stored.last_examined_at is None
    # Asked about another gateway only, the orphans are not that run's business.
    assert shop.reconcile(gateway_names=["stub"], limit=10).unconfigured == 0
    assert shop.reconcile(gateway_names=["removed"], limit=10).unconfigured == 30
