"""The write budget of a notification, observed on the wire of the ledger's own connection.

A first delivery is ONE write transaction (the order-wide paid receipt, the compare-and-set,
the transition, the outbox event, the journal entry, and the delivery mark the previous
notification's inline hook left for the next write); the hook runs after that commit. A
duplicate is decided by a read: no write transaction, no commit. Both backends (a SQLite file,
PostgreSQL), for a provider whose signature settles a payment
(:class:`gateway_core.testing.FakeGateway`) and for Faspay against its emulator, whose
notifications are confirmed by an inquiry (an HTTP call, never inside the transaction).

SQLite's statements come from ``sqlite3``'s trace callback on the ledger's connection;
PostgreSQL's from libpq's protocol trace of the ledger's connection (every ``BEGIN``, every
statement executed, every ``COMMIT`` sent to the server). Not timed.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

from gateway_core import (
    Customer,
    EventKind,
    Money,
    PaymentRequest,
    PaymentService,
    PaymentStatus,
    PluginHost,
    Settings,
)
from gateway_core._runtime import build_runtime
from gateway_core.ledger import Ledger
from gateway_core.testing import FakeGateway, HookRecorder
from gateway_faspay_dana.emulator import EmulatorApp, EmulatorServer, Merchant
from gateway_faspay_dana.testing import signed_notification

S = PaymentStatus
_WRITES = ("INSERT", "UPDATE", "DELETE")


@attrs.frozen
class Transaction:
    statements: tuple[str, ...]
    ended_with: str  # "COMMIT", "ROLLBACK", or "" for a statement run in autocommit

    @property
    def writes(self) -> bool:
        return any(s.lstrip().upper().startswith(_WRITES) for s in self.statements)


def transactions(sent: list[str]) -> list[Transaction]:
    """The statements sent, grouped into transactions (BEGIN ... COMMIT / ROLLBACK; a
    statement outside them is a transaction of its own, as in SQLite's autocommit)."""
    found: list[Transaction] = []
    current: list[str] | None = None
    for statement in sent:
        word = statement.strip().upper()
        if word.startswith("BEGIN"):
            assert current is None, "nested BEGIN"
            current = []
        elif word in ("COMMIT", "ROLLBACK"):
            assert current is not None, f"{word} outside a transaction"
            found.append(Transaction(tuple(current), word))
            current = None
        elif word.startswith("PRAGMA"):
            continue
        elif current is None:
            found.append(Transaction((statement,), ""))
        else:
            current.append(statement)
    assert current is None, "a transaction left open"
    return found


@attrs.frozen
class Budget:
    statements: int
    write_transactions: int
    commits_of_writes: int
    written: tuple[str, ...]


def budget(sent: list[str]) -> Budget:
    txs = transactions(sent)
    writing = [t for t in txs if t.writes]
    return Budget(
        statements=sum(len(t.statements) for t in txs),
        write_transactions=len(writing),
        commits_of_writes=sum(1 for t in writing if t.ended_with in ("COMMIT", "")),
        written=tuple(" ".join(s.split()[:3]) for t in writing for s in t.statements if s.split()),
    )


# -- observing the ledger's connection ---------------------------------------------------------


def sqlite_trace(ledger: Ledger) -> tuple[Callable[[], None], Callable[[], list[str]]]:
    conn = ledger._connection()  # type: ignore[attr-defined]  # this thread's connection
    sent: list[str] = []

    def start() -> None:
        sent.clear()
        conn.set_trace_callback(sent.append)

    def stop() -> list[str]:
        conn.set_trace_callback(None)
        return list(sent)

    return start, stop


_PARSE = re.compile(r'^F\t\d+\tParse\t "([^"]*)" "(.*)" \d+')
_BIND = re.compile(r'^F\t\d+\tBind\t "[^"]*" "([^"]*)"')
_QUERY = re.compile(r'^F\t\d+\tQuery\t "(.*)"$')


def postgres_trace(ledger: Ledger) -> tuple[Callable[[], None], Callable[[], list[str]]]:
    from psycopg import pq

    conn = ledger._connection()  # type: ignore[attr-defined]
    handle = tempfile.TemporaryFile()  # noqa: SIM115 - kept open across start() and stop()
    prepared: dict[str, str] = {}

    def start() -> None:
        handle.seek(0)
        handle.truncate()
        conn.pgconn.trace(handle.fileno())
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)

    def stop() -> list[str]:
        conn.pgconn.untrace()
        handle.seek(0)
        sent: list[str] = []
        bound = ""
        for line in handle.read().decode("utf-8", "replace").splitlines():
            if m := _QUERY.match(line):
                sent.append(m.group(1))
            elif m := _PARSE.match(line):
                prepared[m.group(1)] = m.group(2)
            elif m := _BIND.match(line):
                bound = prepared.get(m.group(1), "?")
            elif line.startswith("F\t") and "\tExecute\t" in line:
                sent.append(bound)
        return sent

    return start, stop


def tracer(kind: str, ledger: Ledger) -> tuple[Callable[[], None], Callable[[], list[str]]]:
    return sqlite_trace(ledger) if kind == "sqlite" else postgres_trace(ledger)


def test_the_grouping_counts_a_second_write_transaction() -> None:
    """The counter itself can fail: two write transactions are two."""
    sent = ["BEGIN IMMEDIATE", "UPDATE t SET a = 1", "COMMIT", "BEGIN", "INSERT INTO t", "COMMIT"]
    assert budget(sent).write_transactions == 2
    assert budget(["SELECT 1", "INSERT INTO t VALUES (1)"]).commits_of_writes == 1
    assert budget(["BEGIN", "SELECT 1", "COMMIT"]).write_transactions == 0


# -- the two providers ------------------------------------------------------------------------


class Provider:
    """Payments to notify, and their signed notifications."""

    service: PaymentService
    ledger: Ledger
    recorder: HookRecorder

    def paid_notification(self, reference: str) -> tuple[bytes, dict[str, str]]:
        raise NotImplementedError

    def inquiries(self) -> int:
        return 0


class Fake(Provider):
    def __init__(self, store: Any) -> None:
        self.gateway = FakeGateway()
        self.recorder = HookRecorder()
        self.ledger = store.open()
        self.ledger.migrate()
        host = PluginHost(entry_points=False, plugins=[self.recorder])
        self.service = PaymentService(
            gateways={"fake": self.gateway}, ledger=self.ledger, hooks=host.hooks
        )
        self.name = "fake"

    def start(self, order: str) -> str:
        request = PaymentRequest(
            order_reference=order,
            amount=Money("10.00", "USD"),
            customer=Customer("Ana"),
            description=order,
            return_url="https://shop.invalid/return",
        )
        return self.service.start_payment("fake", request).payment.merchant_reference

    def paid_notification(self, reference: str) -> tuple[bytes, dict[str, str]]:
        body, headers = self.gateway.notification(reference, S.PAID)
        return body, dict(headers or {})

    def close(self) -> None:
        self.ledger.close()


class Faspay(Provider):
    def __init__(self, store: Any, suite: Any, emulator: EmulatorServer) -> None:
        self.emulator = emulator
        self.recorder = HookRecorder()
        mapping = {
            "ledger": {"url": store.url},
            "providers": {
                "dana": {
                    "provider": "faspay_dana",
                    "merchant_id": "99999",
                    "merchant_name": "Test Store",
                    "password": suite.TEST_PASSWORD,
                    "base_url": emulator.url,
                    "read_timeout": 2.0,
                    "deadline": 6.0,
                    "max_retries": 1,
                }
            },
        }
        self.runtime = build_runtime(
            Settings.from_mapping(mapping), plugins=[self.recorder], environ={}
        )
        self.service = self.runtime.service
        self.ledger = self.runtime.ledger
        self.name = "dana"
        self.records: dict[str, Any] = {}

    def start(self, order: str) -> str:
        request = PaymentRequest(
            order_reference=order,
            amount=Money("15000", "IDR"),
            customer=Customer("Budi", email="budi@example.com", phone="081234567890"),
            description="Write budget order",
            return_url="http://127.0.0.1:9/return/dana",
        )
        record = self.service.start_payment("dana", request).payment
        self.emulator.app.pay(record.merchant_reference)  # the inquiry will confirm it
        self.records[record.merchant_reference] = record
        return str(record.merchant_reference)

    def paid_notification(self, reference: str) -> tuple[bytes, dict[str, str]]:
        record = self.records[reference]
        body = signed_notification(
            self.runtime.gateways["dana"],
            bill_no=reference,
            trx_id=record.provider_reference,
            status=S.PAID,
            amount=record.amount,
        )
        return body, {}

    def inquiries(self) -> int:
        return len(self.emulator.app.requests_log("inquiry"))

    def close(self) -> None:
        self.runtime.close()


@pytest.fixture
def emulator(suite: Any) -> Iterator[EmulatorServer]:
    merchant = Merchant("99999", merchant_name="Test Store", password=suite.TEST_PASSWORD)
    server = EmulatorServer(EmulatorApp(merchant)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["fake", "faspay"])
def provider(
    request: pytest.FixtureRequest, any_store: Any, suite: Any, emulator: EmulatorServer
) -> Iterator[Any]:
    built: Any = Fake(any_store) if request.param == "fake" else Faspay(any_store, suite, emulator)
    try:
        yield built
    finally:
        built.close()


# -- the budget -------------------------------------------------------------------------------


def test_a_first_delivery_is_one_write_transaction_and_a_duplicate_none(
    provider: Any, any_store: Any
) -> None:
    first_ref, second_ref = provider.start("WB-1"), provider.start("WB-2")
    # The first payment's notification leaves its delivery mark for the next write.
    body, headers = provider.paid_notification(first_ref)
    assert provider.service.handle_notification(provider.name, body, headers).verdict == "applied"
    assert [e.merchant_reference for e in provider.recorder.of_kind(EventKind.PAID)] == [first_ref]

    start, stop = tracer(any_store.kind, provider.ledger)
    body, headers = provider.paid_notification(second_ref)
    inquiries = provider.inquiries()
    start()
    try:
        outcome = provider.service.handle_notification(provider.name, body, headers)
    finally:
        sent = stop()
    first = budget(sent)
    assert outcome.verdict == "applied"
    assert outcome.acknowledgement.accepted
    assert outcome.payment is not None
    assert outcome.payment.status is S.PAID
    assert first.write_transactions == 1, first
    assert first.commits_of_writes == 1, first
    written = " | ".join(first.written).lower()
    for table in ("gw_receipts", "gw_payments", "gw_transitions", "gw_outbox", "gw_journal"):
        assert table in written, (table, first.written)
    # The previous delivery's mark went with this transaction: an UPDATE of the outbox.
    assert any(w.upper().startswith("UPDATE") and "gw_outbox" in w for w in first.written)
    # The hook ran after the commit, for the new event.
    assert [e.merchant_reference for e in provider.recorder.of_kind(EventKind.PAID)] == [
        first_ref,
        second_ref,
    ]
    if provider.name == "dana":  # confirmed by one inquiry, outside the transaction
        assert provider.inquiries() - inquiries == 1

    inquiries = provider.inquiries()
    before = provider.service.stats.get("duplicate", 0)
    start()
    try:
        again = provider.service.handle_notification(provider.name, body, headers)
    finally:
        sent = stop()
    duplicate = budget(sent)
    assert again.verdict == "duplicate"
    assert again.acknowledgement.accepted
    assert duplicate.write_transactions == 0, duplicate
    assert duplicate.commits_of_writes == 0, duplicate
    assert not any(s.strip().upper().startswith("BEGIN IMMEDIATE") for s in sent)
    assert provider.service.stats["duplicate"] == before + 1
    assert provider.inquiries() == inquiries  # a duplicate asks nothing
    assert len(provider.recorder.of_kind(EventKind.PAID)) == 2  # and delivers nothing

    # What was deferred is written by the next write (here a flush): the duplicate's journal
    # line and the second delivery's mark. One paid transition each; every event delivered.
    provider.ledger.flush()
    verdicts = [e.verdict for e in provider.ledger.journal(provider.name)]
    assert verdicts[-3:] == ["applied", "applied", "duplicate"]
    assert provider.ledger.outbox(delivered=False) == []
    for reference in (first_ref, second_ref):
        record = provider.service.payment(provider.name, reference)
        paid = [t for t in provider.ledger.transitions(record.id) if t.to_status is S.PAID]
        assert len(paid) == 1
    print(
        f"\n{any_store.kind}/{provider.name}: first delivery {first.statements} statements in "
        f"{first.write_transactions} write transaction; duplicate {duplicate.statements} "
        f"statements in {duplicate.write_transactions}"
    )


def test_deferred_lines_survive_a_clean_close(any_store: Any) -> None:
    """A duplicate's journal line waits for the next write; closing the ledger writes it."""
    provider = Fake(any_store)
    try:
        reference = provider.start("WB-CLOSE")
        body, headers = provider.paid_notification(reference)
        provider.service.handle_notification("fake", body, headers)
        assert provider.service.handle_notification("fake", body, headers).verdict == "duplicate"
    finally:
        provider.close()
    reopened = any_store.open()
    try:
        verdicts = [e.verdict for e in reopened.journal("fake")]
        assert verdicts[-2:] == ["applied", "duplicate"]
        assert reopened.outbox(delivered=False) == []
    finally:
        reopened.close()
