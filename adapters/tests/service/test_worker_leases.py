"""The ledger operations that let many workers share one ledger (schema version 6), on both
backends: reconcile batches claimed with a lease (disjoint for concurrent claimers, taken
again only after the lease), outbox claims handed back by a stopping worker, and the named
leases of the fleet-wide jobs (refund settling, journal pruning)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from worker_support import open_payment, seed_backlog

from gateway_core import EventKind, PaymentStatus
from gateway_core.ledger import Ledger

OPEN = frozenset({PaymentStatus.PENDING, PaymentStatus.IN_PROCESS, PaymentStatus.UNKNOWN})


@pytest.fixture
def ledger(any_store: Any) -> Iterator[Ledger]:
    with any_store.open() as opened:
        opened.migrate()
        yield opened


def _claim(ledger: Ledger, now: datetime, limit: int, lease: float = 60.0) -> list[str]:
    return [
        r.merchant_reference
        for r in ledger.claim_reconcile(
            statuses=OPEN, updated_before=now, limit=limit, now=now, lease_seconds=lease
        )
    ]


def test_reconcile_claims_are_disjoint_and_end_with_their_lease(ledger: Ledger) -> None:
    for n in range(25):
        open_payment(ledger, f"P-{n:02d}")
    now = datetime.now(UTC)
    first = _claim(ledger, now, 10)
    second = _claim(ledger, now, 10)
    third = _claim(ledger, now, 100)
    assert (len(first), len(second), len(third)) == (10, 10, 5)
    assert len(set(first) | set(second) | set(third)) == 25
    # Each claim stamped its payments examined: within the lease nobody takes them again.
    assert _claim(ledger, now + timedelta(seconds=59), 100) == []
    record = ledger.get_payment("stub", first[0])
    assert record is not None
    assert record.last_examined_at == now
    assert record.version == 1  # an examination is not a change
    # After the lease (a worker that died mid-pass), the payments are claimed again, the
    # least recently examined first.
    later = now + timedelta(seconds=61)
    assert sorted(_claim(ledger, later, 100)) == sorted(first + second + third)


def test_concurrent_claimers_never_take_the_same_payment(any_store: Any) -> None:
    """Four claimers, each with its own ledger object (its own connections), claim a batch of
    five at a time until nothing is left: every payment is claimed exactly once."""
    with any_store.open() as setup:
        setup.migrate()
        for n in range(120):
            open_payment(setup, f"C-{n:03d}")
    now = datetime.now(UTC)
    taken: list[list[str]] = [[] for _ in range(4)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def claimer(index: int) -> None:
        try:
            with any_store.open() as mine:
                barrier.wait()
                while batch := _claim(mine, now, 5):
                    taken[index] += batch
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    everything = [ref for batch in taken for ref in batch]
    assert len(everything) == 120
    assert len(set(everything)) == 120
    print("claims per claimer:", [len(t) for t in taken])


def test_a_stopping_worker_hands_back_what_it_claimed(ledger: Ledger) -> None:
    ids = seed_backlog(ledger, 6)
    now = datetime.now(UTC)
    claimed = ledger.claim_events(now=now, limit=10, lease_seconds=600, kinds={EventKind.PAID})
    assert sorted(e.event_id for e in claimed) == sorted(ids)
    until = claimed[0].next_attempt_at
    assert ledger.claim_events(now=now, limit=10) == []  # leased
    ledger.mark_delivered(ids[0], at=now)
    # The wrong lease (someone claimed them since) hands back nothing.
    assert ledger.release_events(ids, leased_until=until + timedelta(seconds=1), at=now) == 0
    assert ledger.release_events(ids, leased_until=until, at=now) == 5  # not the delivered one
    again = ledger.claim_events(now=now, limit=10, lease_seconds=60)
    assert sorted(e.event_id for e in again) == sorted(ids[1:])


def test_named_leases_run_a_job_once_per_interval_across_the_fleet(ledger: Ledger) -> None:
    now = datetime.now(UTC)
    assert ledger.acquire_lease("job", "worker-a", now=now, seconds=60)
    assert not ledger.acquire_lease("job", "worker-b", now=now + timedelta(seconds=30), seconds=60)
    # Holding it does not renew it: the job runs at most once per interval, even here.
    assert not ledger.acquire_lease("job", "worker-a", now=now + timedelta(seconds=30), seconds=60)
    assert not ledger.end_lease("job", "worker-b", at=now)  # not its lease
    assert ledger.end_lease("job", "worker-a", at=now + timedelta(seconds=120))
    assert not ledger.acquire_lease("job", "worker-b", now=now + timedelta(seconds=90), seconds=60)
    # A holder that died: the lease ends by itself.
    assert ledger.acquire_lease("job", "worker-b", now=now + timedelta(seconds=120), seconds=60)
    assert ledger.acquire_lease("other", "worker-a", now=now, seconds=60)  # leases are per name
