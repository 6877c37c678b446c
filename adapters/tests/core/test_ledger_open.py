"""Opening a ledger: URLs, SQLite settings, the public surface, and the records' own rules.

Nothing here needs a PostgreSQL server: a :class:`PostgresLedger` connects on first use.
"""

from __future__ import annotations

import inspect
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import gateway_core.ledger
from gateway_core import ConfigurationError, EventKind, Money, PaymentEvent, PaymentStatus
from gateway_core.ledger import (
    SCHEMA_VERSION,
    ApplyResult,
    JournalEntry,
    OutboxEvent,
    PaymentRecord,
    PostgresLedger,
    SQLiteLedger,
    TransitionRecord,
    open_ledger,
)

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def record(**fields: object) -> PaymentRecord:
    values: dict[str, object] = {
        "gateway": "dana",
        "provider": "faspay_dana",
        "order_reference": "ORDER-1",
        "merchant_reference": "BILL-1",
        "status": PaymentStatus.PENDING,
        "amount": Money("2000", "IDR"),
        "created_at": T0,
    }
    values.update(fields)
    return PaymentRecord(**values)  # type: ignore[arg-type]


# -- the public surface ----------------------------------------------------------------------


def test_all_is_sorted_and_complete() -> None:
    exported = gateway_core.ledger.__all__
    assert exported == sorted(exported)
    public = {
        name
        for name, value in vars(gateway_core.ledger).items()
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and getattr(value, "__module__", "gateway_core.ledger").startswith("gateway_core.ledger")
        and name != "TYPE_CHECKING"
    }
    # PostgresLedger is imported when first named (module __getattr__).
    lazy = {name for name in exported if name not in vars(gateway_core.ledger)}
    assert lazy <= {"PostgresLedger"}
    assert public | lazy == set(exported)
    assert all(getattr(gateway_core.ledger, name) is not None for name in exported)


def test_sqlite_users_do_not_need_psycopg(tmp_path: Path) -> None:
    script = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from gateway_core import ConfigurationError\n"
        "from gateway_core.ledger import open_ledger, PostgresLedger\n"
        f"ledger = open_ledger({'sqlite:///' + str(tmp_path / 'l.db')!r})\n"
        "print(ledger.schema_version()); ledger.close()\n"
        "try:\n"
        "    PostgresLedger('postgresql://localhost/x')\n"
        "except ConfigurationError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    lines = done.stdout.splitlines()
    assert lines[0] == str(SCHEMA_VERSION)
    assert "pip install 'gateway-core[postgres]'" in lines[1]


# -- SQLite URLs and settings ----------------------------------------------------------------


def test_a_relative_sqlite_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with open_ledger("sqlite:///ledger.db") as ledger:
        assert isinstance(ledger, SQLiteLedger)
        assert ledger.path == tmp_path / "ledger.db"
        assert ledger.schema_version() == SCHEMA_VERSION
    assert (tmp_path / "ledger.db").exists()


def test_an_absolute_sqlite_url_has_four_slashes(tmp_path: Path) -> None:
    with open_ledger(f"sqlite:///{tmp_path / 'abs.db'}", migrate=False) as ledger:
        assert isinstance(ledger, SQLiteLedger)
        assert ledger.path == tmp_path / "abs.db"
        assert ledger.schema_version() == 0


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///:memory:",
        "sqlite:///file::memory:?cache=shared",
        "sqlite:///",
        "sqlite://relative.db",
        "sqlite:///x.db?journal_mode=delete",
        "sqlite:///x.db?synchronous=OFF",
        "sqlite:///x.db?busy_timeout=100",
        "sqlite:///x.db?busy_timeout=soon",
        "mysql://localhost/shop",
        "",
    ],
)
def test_unusable_ledger_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError):
        open_ledger(url)


def test_an_in_memory_database_is_refused_by_the_class_too() -> None:
    with pytest.raises(ConfigurationError, match="in-memory"):
        SQLiteLedger(":memory:")


def _pragma(ledger: SQLiteLedger, name: str) -> object:
    row = ledger._connection().execute(f"PRAGMA {name}").fetchone()
    return row[0]


def test_sqlite_runs_in_wal_mode_with_full_sync_and_a_long_busy_timeout(
    tmp_path: Path,
) -> None:
    """Issue 9 item 10: durable before acknowledged, by default."""
    with SQLiteLedger(tmp_path / "l.db") as ledger:
        ledger.migrate()
        assert ledger.synchronous == "FULL"
        assert _pragma(ledger, "journal_mode") == "wal"
        assert _pragma(ledger, "synchronous") == 2  # FULL
        busy = _pragma(ledger, "busy_timeout")
        assert isinstance(busy, int)
        assert busy >= 5000
        assert _pragma(ledger, "foreign_keys") == 1
    outside = sqlite3.connect(tmp_path / "l.db")
    try:  # WAL is a property of the file, seen by every process
        assert outside.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        outside.close()


def test_a_ledger_opened_from_a_plain_url_syncs_every_commit(tmp_path: Path) -> None:
    with open_ledger(f"sqlite:///{tmp_path / 'l.db'}") as ledger:
        assert isinstance(ledger, SQLiteLedger)
        assert _pragma(ledger, "synchronous") == 2  # FULL


def test_normal_sync_stays_an_explicit_choice(tmp_path: Path) -> None:
    with open_ledger(f"sqlite:///{tmp_path / 'l.db'}?synchronous=NORMAL") as ledger:
        assert isinstance(ledger, SQLiteLedger)
        assert ledger.synchronous == "NORMAL"
        assert _pragma(ledger, "synchronous") == 1
    with SQLiteLedger(tmp_path / "k.db", synchronous="normal") as ledger:
        assert _pragma(ledger, "synchronous") == 1


def test_full_sync_is_available_from_the_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}?synchronous=full&busy_timeout=8000"
    with open_ledger(url) as ledger:
        assert isinstance(ledger, SQLiteLedger)
        assert ledger.synchronous == "FULL"
        assert _pragma(ledger, "synchronous") == 2
        assert _pragma(ledger, "busy_timeout") == 8000


def test_a_writer_waits_for_another_process_holding_the_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    with SQLiteLedger(path) as ledger:
        ledger.migrate()
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        release = threading.Timer(0.4, lambda: holder.execute("COMMIT"))
        release.start()
        started = time.monotonic()
        try:
            stored = ledger.insert_payment(record())
        finally:
            release.join()
            holder.close()
        assert time.monotonic() - started >= 0.3
        assert stored.id is not None


def test_each_thread_uses_its_own_connection(tmp_path: Path) -> None:
    with SQLiteLedger(tmp_path / "l.db") as ledger:
        ledger.migrate()
        mine = ledger._connection()
        theirs: list[sqlite3.Connection] = []
        worker = threading.Thread(target=lambda: theirs.append(ledger._connection()))
        worker.start()
        worker.join()
        assert theirs[0] is not mine
        assert ledger._connection() is mine


# -- PostgreSQL URLs -------------------------------------------------------------------------


def test_a_postgres_url_passes_its_schema_to_the_ledger_and_the_rest_to_libpq() -> None:
    url = "postgres://shop:s3cret@db.internal:5433/shop?schema=payments&sslmode=require"
    ledger = open_ledger(url, migrate=False)
    assert isinstance(ledger, PostgresLedger)
    assert ledger.schema == "payments"
    assert "schema" not in ledger._conninfo
    assert "sslmode=require" in ledger._conninfo
    assert "s3cret" not in repr(ledger)
    ledger.close()


def test_the_default_postgres_schema_is_public() -> None:
    ledger = open_ledger("postgresql://localhost/shop", migrate=False)
    assert isinstance(ledger, PostgresLedger)
    assert ledger.schema == "public"
    ledger.close()


@pytest.mark.parametrize("schema", ["", "1abc", 'x"; DROP TABLE y; --', "a-b", "x" * 64])
def test_a_schema_must_be_a_plain_identifier(schema: str) -> None:
    with pytest.raises(ConfigurationError, match="schema"):
        PostgresLedger("postgresql://localhost/shop", schema=schema)


# -- records ---------------------------------------------------------------------------------


def test_records_refuse_naive_timestamps_and_store_utc() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        record(created_at=datetime(2024, 5, 1, 10, 0))
    local = datetime(2024, 5, 1, 17, 0, tzinfo=UTC).astimezone()
    assert record(created_at=local).created_at.tzinfo is UTC
    assert record().updated_at == T0  # defaults to created_at


def test_records_validate_their_fields() -> None:
    with pytest.raises(ValueError, match="attempt"):
        record(attempt=0)
    with pytest.raises(ValueError, match="negative"):
        record(amount=Money("-1", "IDR"))
    with pytest.raises(ValueError, match="source"):
        TransitionRecord(
            payment_id=1,
            from_status=PaymentStatus.PENDING,
            to_status=PaymentStatus.PAID,
            source="gossip",
        )
    with pytest.raises(ValueError, match="verdict"):
        JournalEntry(gateway="dana", merchant_reference="B", kind="return", verdict="Bad Verdict")


def test_an_outbox_event_round_trips_a_payment_event_through_json() -> None:
    event = PaymentEvent(
        event_id="dana:BILL-1:needs_review:paid_twice:x",
        kind=EventKind.NEEDS_REVIEW,
        provider="faspay_dana",
        order_reference="ORDER-1",
        merchant_reference="BILL-1",
        status=PaymentStatus.PAID,
        amount=Money("1234.50", "IDR"),
        occurred_at=T0 + timedelta(microseconds=7),
        provider_reference="TRX-1",
        previous_status=PaymentStatus.CANCELLED,
        reason="paid_twice",
        gateway_name="dana",
    )
    row = OutboxEvent.from_event(event, 7, now=T0)
    assert row.to_event() == event
    assert (row.event_id, row.kind, row.next_attempt_at) == (event.event_id, event.kind, T0)
    import json

    assert json.loads(json.dumps(row.payload)) == row.payload


def test_apply_result_values() -> None:
    assert {r.value for r in ApplyResult} == {"applied", "duplicate", "conflict"}
