"""The worker's loop: one pass delivers due outbox events, reconciles, settles open refunds
and prunes the journal, each when it is due; passes repeat until :meth:`Worker.stop`.

What keeps a fleet of workers (and ``gateway serve`` processes) from doing the same work
twice, on one ledger:

* outbox events are claimed with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and
  delivered by the claimer; a worker that stops hands back what it claimed and did not
  deliver; one that is killed leaves its events to whoever claims them after the lease;
* reconcile batches are claimed the same way
  (:meth:`~gateway_core.ledger.Ledger.claim_reconcile`): a payment examined by one worker is
  not inquired by any other for ``reconcile_lease_seconds``;
* settling refunds and pruning the journal run in one worker at a time, at most once per
  interval, under a named lease (:meth:`~gateway_core.ledger.Ledger.acquire_lease`).

Provider inquiries (reconcile, refunds) are paced per gateway by a token bucket.
"""

from __future__ import annotations

import math
import os
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from gateway_core._exceptions import GatewayError
from gateway_core._redact import get_logger
from gateway_core._service import PaymentService
from gateway_core._worker._config import WorkerConfig

log = get_logger("gateway_core.worker")

#: Names of the fleet-wide job leases in the ledger (``gw_leases``).
REFUNDS_LEASE = "worker:settle_refunds"
PRUNE_LEASE = "worker:prune_journal"


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` kept; a rate of 0 gives none."""

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = float(rate)
        self.burst = max(1, int(burst))
        self._clock = clock
        self._tokens = float(self.burst) if rate > 0 else 0.0
        self._at = clock()

    def available(self) -> int:
        """Whole tokens available now."""
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now
        return max(0, math.floor(self._tokens))

    def spend(self, count: int) -> None:
        """Take ``count`` tokens (after the work: the bucket may go below zero, and then
        refills before the next work)."""
        self.available()
        self._tokens -= count


def default_holder() -> str:
    """This process' name in leases: host, process id and a random tail."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Worker:
    """Runs the background work of one process against ``service`` (see the module
    docstring); :meth:`run` until :meth:`stop`, which is safe from a signal handler or
    another thread."""

    def __init__(
        self,
        service: PaymentService,
        config: WorkerConfig,
        *,
        holder: str = "",
        clock: Callable[[], datetime] = _utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.config = config
        self.holder = holder or default_holder()
        self._clock = clock
        self._monotonic = monotonic
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._totals: Counter[str] = Counter()
        self._buckets = {
            name: TokenBucket(config.rate_for(name), config.inquiry_burst, clock=monotonic)
            for name in sorted(service.gateways)
        }
        self._last_pass: float | None = None
        self._due = {"reconcile": 0.0, "refunds": 0.0, "prune": 0.0}

    # -- control and state (any thread) ------------------------------------------------------

    def stop(self) -> None:
        """Finish the work in hand, hand back unstarted claims, and leave :meth:`run`."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def alive(self) -> bool:
        """Whether a pass finished within ``health_stale_seconds`` (or none is due yet)."""
        last = self._last_pass
        if last is None:
            return True  # the first pass is under way
        return self._monotonic() - last <= self.config.health_stale_seconds

    @property
    def totals(self) -> dict[str, int]:
        """What this worker did since it started (a snapshot): ``passes``, ``delivered``,
        ``delivery_failed``, ``examined``, ``changed``, ``inquiry_errors``,
        ``refunds_examined``, ``refunds_settled``, ``journal_pruned``, ``errors``."""
        with self._lock:
            return dict(self._totals)

    def _add(self, **counts: int) -> None:
        with self._lock:
            self._totals.update(counts)

    # -- the loop ----------------------------------------------------------------------------

    def run(self, *, once: bool = False) -> None:
        """Passes until :meth:`stop` (one pass with ``once``); then the deferred ledger
        writes (delivery marks) are written."""
        try:
            while not self.stopping:
                busy = self.run_pass()
                if once:
                    break
                if not busy:
                    self._pause(self.config.tick_seconds)
        finally:
            try:
                self.service.ledger.flush()
            except Exception as exc:  # the marks are lost: delivered again after the lease
                log.warning("worker: deferred writes not flushed: %s", type(exc).__name__)

    def _pause(self, seconds: float) -> None:
        # Short sleeps, not an Event wait: a signal handler may call stop() at any point.
        end = self._monotonic() + seconds
        while not self.stopping:
            left = end - self._monotonic()
            if left <= 0:
                return
            time.sleep(min(0.05, left))

    def run_pass(self) -> bool:
        """One pass over the jobs that are due; True when there is more to do at once."""
        busy = False
        for name, job in (
            ("delivery", self._deliver),
            ("reconcile", self._reconcile),
            ("refunds", self._refunds),
            ("prune", self._prune),
        ):
            if self.stopping:
                break
            try:
                busy = job() or busy
            except Exception as exc:  # a down ledger or provider: the next pass tries again
                self._add(errors=1)
                detail = f": {exc}" if isinstance(exc, GatewayError) else ""
                log.warning("worker: %s failed: %s%s", name, type(exc).__name__, detail)
        self._last_pass = self._monotonic()
        self._add(passes=1)
        return busy

    def _deliver(self) -> bool:
        batch = self.config.deliver_batch
        report = self.service.deliver_events(
            limit=batch,
            lease_seconds=self.config.event_lease_seconds,
            stop=self._stopping.is_set,
        )
        self._add(delivered=report.delivered, delivery_failed=report.failed)
        return report.delivered + report.failed >= batch

    def _take_turn(self, job: str, interval: float) -> bool:
        now = self._monotonic()
        if now < self._due[job]:
            return False
        self._due[job] = now + interval
        return True

    def _reconcile(self) -> bool:
        config = self.config
        if not config.reconcile or not self._take_turn(
            "reconcile", config.reconcile_interval_seconds
        ):
            return False
        more = False
        for name, bucket in self._buckets.items():
            if self.stopping:
                break
            limit = min(config.reconcile_batch, bucket.available())
            if limit <= 0:
                continue
            report = self.service.reconcile(
                gateway_names=[name],
                limit=limit,
                min_interval=0,  # paced by the bucket instead
                lease=config.reconcile_lease_seconds,
                refunds=False,  # settled by its own job, under the fleet-wide lease
            )
            bucket.spend(report.examined - report.waiting)  # the inquiries made
            self._add(
                examined=report.examined, changed=report.changed, inquiry_errors=report.errors
            )
            if report.examined >= limit:
                more = True
        if more:
            self._due["reconcile"] = 0.0  # the next pass goes on, as the buckets allow
        return more

    def _refunds(self) -> bool:
        config = self.config
        if not config.refunds or not self._take_turn("refunds", config.refund_interval_seconds):
            return False
        ledger = self.service.ledger
        interval = config.refund_interval_seconds
        if not ledger.acquire_lease(
            REFUNDS_LEASE, self.holder, now=self._clock(), seconds=interval
        ):
            return False  # another worker settles refunds this interval
        try:
            for name, bucket in self._buckets.items():
                if self.stopping:
                    break
                limit = min(config.refund_batch, bucket.available())
                if limit <= 0:
                    continue
                report = self.service.settle_refunds(gateway_names=[name], limit=limit)
                bucket.spend(report.examined)
                self._add(refunds_examined=report.examined, refunds_settled=report.settled)
        finally:
            # The next pass, by any worker, one interval after this one ended.
            ledger.end_lease(
                REFUNDS_LEASE, self.holder, at=self._clock() + timedelta(seconds=interval)
            )
        return False

    def _prune(self) -> bool:
        config = self.config
        older = config.prune_journal_older_than
        if older is None or not self._take_turn("prune", config.prune_interval_seconds):
            return False
        ledger = self.service.ledger
        now = self._clock()
        if not ledger.acquire_lease(
            PRUNE_LEASE, self.holder, now=now, seconds=config.prune_interval_seconds
        ):
            return False  # pruned by another worker within the interval
        deleted = ledger.prune_journal(now - older)
        self._add(journal_pruned=deleted)
        if deleted:
            log.info("worker: %d journal entries pruned (older than %s)", deleted, older)
        return False
