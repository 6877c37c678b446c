"""Leases for many workers sharing one ledger (schema version 6): what ``gateway worker``
claims so that no two processes do the same piece of work at once.

* :meth:`SQLLeases.claim_reconcile`: a reconcile batch, taken and stamped examined in one
  write transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's write transaction
  serialises the claims). A payment examined less than ``lease_seconds`` ago is not taken
  again, by anyone: two workers never inquire the same payment in one pass, and a worker that
  dies mid-pass leaves its payments to whoever comes after the lease.
* :meth:`SQLLeases.release_events`: outbox events a worker claimed and will not deliver (it
  is stopping) are handed back at once instead of at the end of their lease; only while the
  lease is still the one it took (nobody claimed them since).
* :meth:`SQLLeases.acquire_lease` / :meth:`SQLLeases.end_lease`: named leases in
  ``gw_leases`` for the jobs one worker of the fleet does at a time and at most once per
  interval (settling open refunds, pruning the journal). A lease is taken only when it has
  ended; a holder that dies leaves it to end by itself.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime, timedelta

import attrs

from gateway_core._models import PaymentStatus
from gateway_core.ledger import _statements as st
from gateway_core.ledger._records import PaymentRecord, to_utc
from gateway_core.ledger._sql_machinery import _MARK_BATCH, SQLMachinery, _marks
from gateway_core.ledger._statements import Tx, check_limit

# ``{statuses}``, ``{only_gateways}`` as in ``TO_RECONCILE``; ``{skip_locked}`` is
# `` FOR UPDATE SKIP LOCKED`` on PostgreSQL: rows another claim holds are passed over.
CLAIM_RECONCILE = (
    st.SELECT_PAYMENT + " WHERE status IN ({statuses}) AND updated_at < ?{only_gateways} "
    "AND (last_examined_at IS NULL OR last_examined_at <= ?) "
    "ORDER BY last_examined_at NULLS FIRST, updated_at, id LIMIT ?{skip_locked}"
)
ANY_TO_CLAIM = (
    "SELECT 1 FROM {p}gw_payments WHERE status IN ({statuses}) AND updated_at < ?"
    "{only_gateways} AND (last_examined_at IS NULL OR last_examined_at <= ?) LIMIT 1"
)
# Only while the event is still undelivered and under the lease this worker took.
RELEASE_EVENTS = (
    "UPDATE {p}gw_outbox SET next_attempt_at = ? WHERE event_id IN ({ids}) "
    "AND delivered_at IS NULL AND next_attempt_at = ?"
)
ACQUIRE_LEASE = (
    "INSERT INTO {p}gw_leases AS l (name, holder, lease_until) VALUES (?, ?, ?) "
    "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
    "lease_until = excluded.lease_until WHERE l.lease_until <= ? RETURNING holder"
)
END_LEASE = "UPDATE {p}gw_leases SET lease_until = ? WHERE name = ? AND holder = ?"


class SQLLeases(SQLMachinery):
    """The lease operations of the SQL ledgers (see the module docstring)."""

    def claim_reconcile(
        self,
        *,
        statuses: Collection[PaymentStatus],
        updated_before: datetime,
        limit: int,
        now: datetime,
        lease_seconds: float,
        gateways: Collection[str] | None = None,
    ) -> list[PaymentRecord]:
        wanted = sorted({PaymentStatus(s).value for s in statuses})
        check_limit(limit)
        if lease_seconds < 0:
            raise ValueError("lease_seconds must not be negative")
        names = None if gateways is None else sorted({str(g) for g in gateways})
        if not wanted or limit == 0 or names == []:
            return []
        now = to_utc(now)
        only = "" if names is None else f" AND gateway IN ({_marks(names)})"
        examined_before = self._dump_time(now - timedelta(seconds=lease_seconds))
        params = (*wanted, self._dump_time(updated_before), *(names or ()), examined_before)
        # A read first: most passes of an idle worker find nothing, and need no write lock.
        probe = self._render(ANY_TO_CLAIM, statuses=_marks(wanted), only_gateways=only)
        if not self._run("claim_reconcile", lambda tx: tx.all(probe, params), write=False):
            return []
        claim = self._render(CLAIM_RECONCILE, statuses=_marks(wanted), only_gateways=only)
        stamp = self._dump_time(now)

        def work(tx: Tx) -> list[PaymentRecord]:
            records = [self._payment(row) for row in tx.all(claim, (*params, limit))]
            ids = sorted(r.id for r in records if r.id is not None)
            for start in range(0, len(ids), _MARK_BATCH):
                chunk = ids[start : start + _MARK_BATCH]
                tx.execute(self._render(st.MARK_EXAMINED, ids=_marks(chunk)), (stamp, *chunk))
            return [attrs.evolve(r, last_examined_at=now) for r in records]

        return self._write("claim_reconcile", work)

    def release_events(
        self, event_ids: Iterable[str], *, leased_until: datetime, at: datetime
    ) -> int:
        ids = sorted({str(i) for i in event_ids})
        if not ids:
            return 0
        until, due = self._dump_time(to_utc(leased_until)), self._dump_time(to_utc(at))

        def work(tx: Tx) -> int:
            released = 0
            for start in range(0, len(ids), _MARK_BATCH):
                chunk = ids[start : start + _MARK_BATCH]
                sql = self._render(RELEASE_EVENTS, ids=_marks(chunk))
                released += tx.execute(sql, (due, *chunk, until))
            return released

        return self._write("release_events", work)

    def acquire_lease(self, name: str, holder: str, *, now: datetime, seconds: float) -> bool:
        if not name or not holder:
            raise ValueError("a lease needs a name and a holder")
        if seconds <= 0:
            raise ValueError("seconds must be positive")
        now = to_utc(now)
        until = self._dump_time(now + timedelta(seconds=seconds))
        params = (name, holder, until, self._dump_time(now))
        sql = self._sql(ACQUIRE_LEASE)
        return self._write("acquire_lease", lambda tx: tx.one(sql, params) is not None)

    def end_lease(self, name: str, holder: str, *, at: datetime) -> bool:
        params = (self._dump_time(to_utc(at)), name, holder)
        return bool(self._write("end_lease", lambda tx: tx.execute(self._sql(END_LEASE), params)))
