"""Cheap statistics of the SQL ledgers for monitoring (read at every metrics scrape): the
outbox backlog per event kind, with the creation time of its oldest undelivered event, and the
open refunds per status, with the oldest one's last change.

Each is one read-only query over the open rows only (the partial index ``gw_outbox_due_idx
... WHERE delivered_at IS NULL``, the index ``gw_refunds_open_idx (status, updated_at)``), so
its cost follows the backlog, not the history.
"""

from __future__ import annotations

from datetime import datetime

from gateway_core.ledger._sql_machinery import SQLMachinery
from gateway_core.ledger._statements import Tx

OUTBOX_BACKLOG = (
    "SELECT kind, COUNT(*), MIN(created_at) FROM {p}gw_outbox "
    "WHERE delivered_at IS NULL GROUP BY kind"
)
OPEN_REFUNDS = (
    "SELECT status, COUNT(*), MIN(updated_at) FROM {p}gw_refunds "
    "WHERE status IN ('requested', 'pending', 'unknown') GROUP BY status"
)


class SQLStats(SQLMachinery):
    """:meth:`outbox_backlog_by_kind` and :meth:`open_refunds_by_status` for the SQL ledgers."""

    def outbox_backlog_by_kind(self) -> dict[str, tuple[int, datetime]]:
        sql = self._sql(OUTBOX_BACKLOG)
        self.flush()  # the delivery marks this process deferred count as delivered

        def work(tx: Tx) -> dict[str, tuple[int, datetime]]:
            return {
                str(kind): (int(count), self._load_time(oldest))
                for kind, count, oldest in tx.all(sql)
                if count
            }

        return self._run("outbox_backlog", work, write=False)

    def open_refunds_by_status(self) -> dict[str, tuple[int, datetime]]:
        sql = self._sql(OPEN_REFUNDS)

        def work(tx: Tx) -> dict[str, tuple[int, datetime]]:
            return {
                str(status): (int(count), self._load_time(oldest))
                for status, count, oldest in tx.all(sql)
                if count
            }

        return self._run("open_refunds", work, write=False)
