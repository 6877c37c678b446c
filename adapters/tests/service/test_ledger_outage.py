"""Issue 9 item 11: database trouble fails fast and speaks the provider's language.

A PostgreSQL server of the test's own (see ``throwaway_postgres.py``) is frozen (SIGSTOP) and
then stopped while the Faspay emulator delivers notifications to the merchant's endpoints over
loopback HTTP. Every notification gets Faspay's failure reply (503, ``response_code`` 99)
within the ledger's configured bounds, ``/health`` says the ledger is down, each incident is
logged as one warning line without a traceback, and after the server is back every payment
the emulator paid is paid once, with one paid event.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from test_scenarios_support import (
    effects,
    get_return,
    paid_transitions,
    pay_without_notifying,
    post_notification,
    provider_body,
    response_code,
    return_query_for,
    root_conftest,
)
from throwaway_postgres import ThrowawayPostgres, binaries

from gateway_core import EventKind, LedgerUnavailable, PaymentStatus
from gateway_core.ledger import PostgresLedger, SQLiteLedger

#: The ledger's bounds in this test: statement_timeout 1 s, so a transaction is cut
#: client-side after 2 s; connecting gives up after 2 s (psycopg's minimum).
BOUND = 2.0
MARGIN = 1.5
LEDGER_OPTIONS = "statement_timeout=1000&lock_timeout=500&connect_timeout=2"


@pytest.fixture(scope="module")
def server() -> Iterator[ThrowawayPostgres]:
    """A throwaway PostgreSQL cluster (skipped without the binaries, except under CI)."""
    bindir = binaries()
    if bindir is None:
        message = "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
        if os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}:
            pytest.fail(f"CI=true needs them: {message}", pytrace=False)
        pytest.skip(message)
    pg = ThrowawayPostgres(bindir).init()
    try:
        pg.start()
        yield pg
    finally:
        pg.remove()


@pytest.fixture
def stack(server: ThrowawayPostgres, pytestconfig: pytest.Config) -> Iterator[Any]:
    conf = root_conftest(pytestconfig)
    store = conf.Store("postgres", f"{server.url}?{LEDGER_OPTIONS}", "gw_outage")
    built, close = conf.build_stack(store, emulator_options={"max_attempts": 2})
    try:
        yield built
    finally:
        close()


def _health(stack: Any) -> tuple[int, float]:
    started = time.monotonic()
    reply = requests.get(f"{stack.merchant_url}/health", timeout=30)
    return reply.status_code, time.monotonic() - started


def _pay_all(stack: Any, bills: list[str]) -> list[dict[str, Any]]:
    """Have the emulator pay ``bills`` (it notifies the merchant at once) and wait for its
    deliveries (both attempts) to end."""
    for bill_no in bills:
        stack.emulator.pay(bill_no)
    stack.wait(timeout=30)
    return [d for bill_no in bills for d in stack.emulator.deliveries(bill_no)]


def _assert_failure_replies(deliveries: list[dict[str, Any]]) -> list[float]:
    """Every attempt got Faspay's failure reply (not a generic 500) within the bound."""
    elapsed = []
    for delivery in deliveries:
        assert delivery["state"] == "failed"
        for attempt in delivery["attempts"]:
            assert (attempt["http_status"], attempt["response_code"]) == (503, "99"), attempt
            assert '"bill_no"' in attempt["reply"]
            assert attempt["elapsed"] < BOUND + MARGIN, attempt
            elapsed.append(attempt["elapsed"])
    return elapsed


def test_notifications_get_the_failure_reply_while_postgres_is_frozen_or_stopped(
    server: ThrowawayPostgres,
    stack: Any,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO, logger="gateway_core.web")
    bills = [stack.start(f"ORDER-OUT-{i}").payment.merchant_reference for i in range(6)]
    assert _health(stack)[0] == 200
    pool = concurrent.futures.ThreadPoolExecutor(4)

    # -- frozen: the kernel still accepts bytes, the server never answers ----------------------
    server.freeze()
    try:
        health = pool.submit(_health, stack)
        frozen = _assert_failure_replies(_pay_all(stack, bills[:3]))
        status, took = health.result()
        assert status == 503
        assert took < BOUND + MARGIN
        assert _health(stack)[0] == 503
    finally:
        server.thaw()
    assert _health(stack)[0] == 200  # recovered: ends the first incident

    # -- stopped: connections are refused ------------------------------------------------------
    returning = stack.record(bills[3])
    server.stop()
    try:
        health = pool.submit(_health, stack)
        stopped = _assert_failure_replies(_pay_all(stack, bills[3:]))
        assert health.result()[0] == 503
        page = get_return(stack, return_query_for(stack, returning))
        assert page.status_code == 503
        assert "reload this page" in page.text
    finally:
        server.start()
    pool.shutdown()

    # -- recovery: reconciliation asks Faspay, Faspay's re-sends are duplicates ----------------
    assert _health(stack)[0] == 200
    stack.service.reconcile(min_interval=0)
    for bill_no in bills:
        stack.emulator.notify(bill_no)
    stack.wait(timeout=30)
    for i, bill_no in enumerate(bills):
        record = stack.record(bill_no)
        assert record.status is PaymentStatus.PAID
        assert len(paid_transitions(stack, record)) == 1
        assert effects(stack, f"ORDER-OUT-{i}", EventKind.PAID) == 1
        assert stack.emulator.deliveries(bill_no)[-1]["state"] == "delivered"

    incidents = [r for r in caplog.records if "unavailable" in r.getMessage()]
    recoveries = [r for r in caplog.records if "available again" in r.getMessage()]
    assert [r.levelno for r in incidents] == [logging.WARNING, logging.WARNING]
    assert len(recoveries) == 2
    assert not [r for r in caplog.records if r.exc_info]
    assert "Traceback" not in capfd.readouterr().err
    print(
        f"time to failure reply: frozen max {max(frozen):.2f} s, stopped max {max(stopped):.2f} s"
    )


def test_ledger_connections_carry_the_server_side_timeouts(server: ThrowawayPostgres) -> None:
    ledger = PostgresLedger(
        server.url, schema="gw_bounds", statement_timeout_ms=1000, lock_timeout_ms=500
    )
    with ledger:
        conn = ledger._connection()
        shown = [
            conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
            for name in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")
        ]
        conn.rollback()
        assert shown == ["1s", "500ms", "30s"]
        assert ledger.deadline == 2.0


def test_a_row_lock_held_elsewhere_fails_within_lock_timeout(server: ThrowawayPostgres) -> None:
    import psycopg

    with PostgresLedger(server.url, schema="gw_locks", lock_timeout_ms=300) as ledger:
        ledger.migrate()
        with psycopg.connect(server.url) as holder:
            holder.execute('LOCK TABLE "gw_locks".gw_journal IN ACCESS EXCLUSIVE MODE')
            started = time.monotonic()
            with pytest.raises(LedgerUnavailable, match="lock timeout"):
                ledger.journal("dana", "BILL-1")
            assert time.monotonic() - started < 1.0


# -- SQLite: a file locked from outside ---------------------------------------------------------


def test_a_notification_meets_a_locked_sqlite_file_with_the_failure_reply_in_bounded_time(
    tmp_path: Any, pytestconfig: pytest.Config, caplog: pytest.LogCaptureFixture
) -> None:
    """The write waits ``busy_timeout`` (5 s) in all, not once per retry (25 s before)."""
    caplog.set_level(logging.INFO, logger="gateway_core.web")
    conf = root_conftest(pytestconfig)
    path = tmp_path / "ledger.db"
    built, close = conf.build_stack(conf.Store("sqlite", str(path)))
    try:
        record = built.start("ORDER-LOCKED").payment
        pay_without_notifying(built, record.merchant_reference)
        body = provider_body(built, record.merchant_reference)
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            pool = concurrent.futures.ThreadPoolExecutor(2)
            replies = list(pool.map(lambda _: _timed_post(built, body), range(2)))
            pool.shutdown()
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        for reply, took in replies:
            assert (reply.status_code, response_code(reply)) == (503, "99")
            assert took < 5.0 + MARGIN
        assert built.record(record.merchant_reference).status is PaymentStatus.PENDING

        healed = post_notification(built, body)

        assert (healed.status_code, response_code(healed)) == (200, "00")
        assert built.record(record.merchant_reference).status is PaymentStatus.PAID
    finally:
        close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "stayed locked" in warnings[0].getMessage()
    assert warnings[0].exc_info is None
    assert len([r for r in caplog.records if "available again" in r.getMessage()]) == 1


def test_a_sqlite_write_gives_up_after_busy_timeout_in_all(tmp_path: Any) -> None:
    path = tmp_path / "l.db"
    with SQLiteLedger(path) as ledger:
        ledger.migrate()
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        try:
            with pytest.raises(LedgerUnavailable):
                ledger.mark_delivered("no-such-event", at=_now())
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        took = time.monotonic() - started
        assert 4.5 < took < 5.0 + MARGIN
        assert ledger._connection().execute("PRAGMA busy_timeout").fetchone()[0] == 5000


def _timed_post(stack: Any, body: bytes) -> tuple[requests.Response, float]:
    started = time.monotonic()
    reply = post_notification(stack, body)
    return reply, time.monotonic() - started


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)
