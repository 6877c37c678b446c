"""``gateway worker`` as real OS processes on one PostgreSQL schema (the test's own, dropped
after): two workers drain an outbox backlog delivering each event once; a SIGKILLed worker's
leased events go to the other once the lease ends (and only the events it had delivered
before dying may be delivered twice: the at-least-once window); SIGTERM exits 0 with the
in-flight hook finished, its delivery recorded and the unstarted claims handed back; the
health endpoint answers. The order system is ``workers/worker_hooks.py``, which records every
delivery durably in a file per worker.

Every wait below is a ceiling on how long a broken worker may hang the run, never an
assertion about speed.
"""

from __future__ import annotations

import signal
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from worker_support import WorkerProcess, deliveries, seed_backlog, wait_until, write_config

from gateway_core.ledger import Ledger

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_store(suite: Any) -> Iterator[Any]:
    suite.require_postgres()
    schema = f"gw_worker_{uuid.uuid4().hex[:12]}"
    try:
        yield suite.Store("postgres", suite.POSTGRES_URL, schema)
    finally:
        suite.drop_schema(schema)


@pytest.fixture
def ledger(pg_store: Any) -> Iterator[Ledger]:
    with pg_store.open() as opened:
        opened.migrate()
        yield opened


def _config(tmp_path: Path, store: Any, **worker: Any) -> Path:
    table = {"tick_seconds": 0.05, "reconcile": False, "refunds": False, **worker}
    return write_config(tmp_path / "gateway.toml", {"ledger": {"url": store.url}, "worker": table})


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _undelivered(ledger: Ledger) -> list[Any]:
    return ledger.outbox(delivered=False)


def test_two_workers_deliver_a_backlog_once_each_and_answer_health(
    pg_store: Any, ledger: Ledger, tmp_path: Path
) -> None:
    ids = seed_backlog(ledger, 200)
    config = _config(tmp_path, pg_store, deliver_batch=10)
    logs = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    workers: list[WorkerProcess] = []
    try:
        workers = [WorkerProcess(config, log, delay=0.002) for log in logs]
        for worker in workers:
            assert _get(f"{worker.health_url}/healthz") == (200, "ok\n")
            assert _get(f"{worker.health_url}/readyz") == (200, "ready\n")
            assert _get(f"{worker.health_url}/nothing-here")[0] == 404
        wait_until(lambda: not _undelivered(ledger), 60, "the backlog drained")
        results = [worker.stop() for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    for code, out, err in results:
        assert code == 0, err
        assert "Traceback" not in err, err
        assert "stopped" in out
    seen = Counter(d["event_id"] for d in deliveries(*logs))
    assert set(seen) == set(ids)
    assert set(seen.values()) == {1}, [k for k, v in seen.items() if v > 1]
    print("deliveries per worker:", [len(deliveries(log)) for log in logs])


def test_a_killed_workers_leased_events_go_to_another_after_the_lease(
    pg_store: Any, ledger: Ledger, tmp_path: Path
) -> None:
    ids = seed_backlog(ledger, 12)
    config = _config(tmp_path, pg_store, deliver_batch=4, event_lease_seconds=3)
    log_a, log_b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a = WorkerProcess(config, log_a, delay=0.4)  # a slow order system: leases held a while
    b = None
    try:
        wait_until(lambda: len(deliveries(log_a)) >= 2, 30, "worker A delivering")
        a.signal(signal.SIGKILL)
        a.proc.wait(timeout=30)
        killed_at = datetime.now(UTC)
        leased = [e for e in _undelivered(ledger) if e.next_attempt_at > killed_at]
        assert leased, "worker A died holding no lease"
        b = WorkerProcess(config, log_b)
        wait_until(lambda: not _undelivered(ledger), 30, "worker B drained the outbox")
        code, _, err = b.stop()
    finally:
        a.kill()
        if b is not None:
            b.kill()
    assert code == 0, err
    by_a = [d["event_id"] for d in deliveries(log_a)]
    by_b = {d["event_id"]: d for d in deliveries(log_b)}
    assert len(by_b) == len(deliveries(log_b))  # B delivered nothing twice
    assert set(by_a) | set(by_b) == set(ids)  # nothing lost
    # Delivered twice only within the at-least-once window: events A's hook had run for
    # before it died (their marks were still deferred).
    twice = set(by_a) & set(by_b)
    assert len(by_a) == len(set(by_a))
    assert twice <= set(by_a)
    # A's leased events were taken by B only once their lease had ended.
    for event in leased:
        assert by_b[event.event_id]["at"] >= event.next_attempt_at.timestamp()
    print(f"A delivered {len(by_a)}, B {len(by_b)}, {len(twice)} twice (A's unrecorded marks)")


def test_sigterm_finishes_the_hook_records_it_and_hands_back_the_rest(
    pg_store: Any, ledger: Ledger, tmp_path: Path
) -> None:
    ids = seed_backlog(ledger, 10)
    # A lease far longer than the test: only a hand-back makes the rest due again.
    config = _config(tmp_path, pg_store, deliver_batch=10, event_lease_seconds=600)
    log = tmp_path / "w.jsonl"
    worker = WorkerProcess(config, log, delay=0.3)
    try:
        wait_until(lambda: len(deliveries(log)) >= 2, 30, "the worker delivering")
        code, out, err = worker.stop()
    finally:
        worker.kill()
    assert code == 0, err
    assert "Traceback" not in err, err
    delivered = {d["event_id"] for d in deliveries(log)}
    assert 2 <= len(delivered) < len(ids)
    pending = _undelivered(ledger)
    # Every hook that ran is recorded delivered (the deferred marks were flushed) ...
    assert {e.event_id for e in pending} == set(ids) - delivered
    # ... and what it had claimed but not started is due now, not in ten minutes.
    now = datetime.now(UTC)
    assert all(e.next_attempt_at <= now for e in pending)
    assert len(ledger.claim_events(now=now, limit=100)) == len(pending)
    assert "delivered=" in out
