"""The ledger keeps each attempt's ``provider_data`` (a JSON object) and ``idempotency_key``,
on SQLite and PostgreSQL alike, and schema version 3 adds them to a version-2 store without
losing its rows (issue 10, item 3)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gateway_core import Money, PaymentStatus
from gateway_core.ledger import SCHEMA_VERSION, Ledger, PaymentRecord, _sql_machinery

T0 = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
DATA = {"token": "tok-1", "form": {"a": "1", "b": ["x", 2, None, True]}}


def record(reference: str = "B-1P", **changes: Any) -> PaymentRecord:
    values: dict[str, Any] = {
        "gateway": "g",
        "provider": "fake",
        "order_reference": "O-1",
        "merchant_reference": reference,
        "status": PaymentStatus.UNKNOWN,
        "amount": Money("2000", "IDR"),
        "created_at": T0,
    }
    values.update(changes)
    return PaymentRecord(**values)


@pytest.fixture
def ledger(any_store: Any) -> Any:
    opened = any_store.open()
    opened.migrate()
    try:
        yield opened
    finally:
        opened.close()


def test_provider_data_and_idempotency_key_round_trip(ledger: Ledger) -> None:
    stored = ledger.insert_payment(record(provider_data=DATA, idempotency_key="k-1"))
    assert stored.id is not None
    fetched = ledger.get_payment_by_id(stored.id)
    assert fetched is not None
    assert fetched.provider_data == DATA
    assert fetched.idempotency_key == "k-1"


def test_provider_data_is_stored_with_the_provider_reference(ledger: Ledger) -> None:
    stored = ledger.insert_payment(record())
    assert stored.id is not None
    assert stored.provider_data == {}
    updated = ledger.set_provider_reference(
        stored.id, "trx-1", expected_version=stored.version, provider_data=DATA
    )
    assert (updated.provider_reference, updated.provider_data) == ("trx-1", DATA)
    again = ledger.set_provider_reference(stored.id, "trx-1", expected_version=updated.version)
    assert again.provider_data == DATA  # None keeps what is stored


OLD_ROW = ("g", "fake", "O-OLD", "OLD-1P", "trx-old", "pending", 200000, "IDR", "m", 1)


def raw_insert_version_2_row(store: Any) -> None:
    """One payment written the way a version-2 library wrote it."""
    columns = (
        "gateway, provider, order_reference, merchant_reference, provider_reference, status, "
        "amount_minor, currency, merchant_id, attempt, superseded, expires_at, created_at, "
        "updated_at, version"
    )
    if store.kind == "sqlite":
        import sqlite3

        stamp = T0.isoformat(timespec="microseconds")
        with sqlite3.connect(store.target) as conn:
            conn.execute(
                f"INSERT INTO gw_payments ({columns}) "  # noqa: S608 - fixed text
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*OLD_ROW, 0, None, stamp, stamp, 2),
            )
        return
    import psycopg

    with psycopg.connect(store.target, autocommit=True) as conn:
        conn.execute(
            f'INSERT INTO "{store.schema}".gw_payments ({columns}) '  # noqa: S608
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (*OLD_ROW, False, None, T0, T0, 2),
        )


def test_migrating_a_version_2_store_keeps_its_rows_with_empty_provider_data_and_method(
    any_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert SCHEMA_VERSION >= 4  # later versions keep these rows too
    old = any_store.open()
    try:
        monkeypatch.setattr(_sql_machinery, "SCHEMA_VERSION", 2)
        old.migrate()
        assert old.schema_version() == 2
    finally:
        old.close()
    raw_insert_version_2_row(any_store)
    monkeypatch.undo()
    ledger = any_store.open()
    try:
        ledger.migrate()
        assert ledger.schema_version() == SCHEMA_VERSION
        kept = ledger.get_payment("g", "OLD-1P")
        assert kept is not None
        assert (kept.provider_reference, kept.status) == ("trx-old", PaymentStatus.PENDING)
        assert kept.amount == Money("2000", "IDR")
        assert kept.provider_data == {}
        assert kept.idempotency_key == ""
        assert kept.method == ""
        new = ledger.insert_payment(record("NEW-1P", provider_data=DATA, method="bca_va"))
        fetched = ledger.get_payment("g", new.merchant_reference)
        assert fetched is not None
        assert fetched.provider_data == DATA
        assert fetched.method == "bca_va"
    finally:
        ledger.close()
