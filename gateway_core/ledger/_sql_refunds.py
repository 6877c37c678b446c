"""Refunds in the SQL ledgers: the ``gw_refunds`` table (schema version 5) and the two writes
that keep the refunded total honest.

:meth:`SQLRefunds.request_refund` records a refund *before* the provider is asked, in a write
transaction that first locks the payment's row, so two refunds racing for the same payment
are counted one after the other: a refund that would take the total of every refund not
known to have failed above the paid amount is refused there. :meth:`SQLRefunds.settle_refund`
records the provider's answer and, for a refund that succeeded, moves the payment to
``partially_refunded`` or ``refunded`` with its transition and the outbox events, in one
transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from datetime import datetime
from typing import Any

from gateway_core._exceptions import LedgerError
from gateway_core._models import Money, PaymentStatus
from gateway_core._refunds import RefundStatus
from gateway_core.ledger import _statements as st
from gateway_core.ledger._records import OutboxEvent, PaymentRecord, to_utc
from gateway_core.ledger._refund_records import (
    RefundRecord,
    RefundRefused,
    RefundSettlement,
    positive_minor_units,
)
from gateway_core.ledger._sql_machinery import SQLMachinery
from gateway_core.ledger._statements import Rollback, Tx

#: Events to record with a settled refund, or a function making them from the payment and
#: the refund as the transaction leaves them.
EventsFor = Iterable[OutboxEvent] | Callable[[PaymentRecord, RefundRecord], Iterable[OutboxEvent]]

_S = PaymentStatus
_R = RefundStatus

#: Payment statuses a refund may be asked from.
REFUNDABLE = frozenset({_S.PAID, _S.PARTIALLY_REFUNDED})


REFUND_COLUMNS = (
    "id, payment_id, gateway, merchant_reference, refund_key, amount_minor, currency, status, "
    "reason, provider_reference, created_at, updated_at, version"
)
SELECT_REFUND = "SELECT " + REFUND_COLUMNS + " FROM {p}gw_refunds"  # noqa: S608
INSERT_REFUND = (
    "INSERT INTO {p}gw_refunds (payment_id, gateway, merchant_reference, refund_key, "
    "amount_minor, currency, status, reason, provider_reference, created_at, updated_at, "
    "version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1) RETURNING {columns}"
).replace("{columns}", REFUND_COLUMNS)
UPDATE_REFUND = (
    "UPDATE {p}gw_refunds SET status = ?, provider_reference = ?, updated_at = ?, "
    "version = version + 1 WHERE id = ? AND version = ? RETURNING {columns}"
).replace("{columns}", REFUND_COLUMNS)
#: Takes the payment row's write lock (PostgreSQL) before the refunded total is read; on
#: SQLite the write transaction is already exclusive. It changes nothing.
LOCK_PAYMENT = "UPDATE {p}gw_payments SET version = version WHERE id = ?"
HELD_TOTAL = (
    "SELECT COALESCE(SUM(amount_minor), 0) FROM {p}gw_refunds "
    "WHERE payment_id = ? AND status <> 'failed' AND id <> ?"
)
SUCCEEDED_TOTAL = (
    "SELECT COALESCE(SUM(amount_minor), 0) FROM {p}gw_refunds "
    "WHERE payment_id = ? AND status = 'succeeded'"
)
CAS_STATUS_RETURNING = st.CAS_STATUS_RETURNING


class SQLRefunds(SQLMachinery):
    """The refund operations of the SQL ledgers."""

    def _refund(self, row: tuple[Any, ...]) -> RefundRecord:
        return RefundRecord(
            id=int(row[0]),
            payment_id=int(row[1]),
            gateway=row[2],
            merchant_reference=row[3],
            refund_key=row[4],
            amount=Money.from_minor_units(int(row[5]), row[6]),
            status=RefundStatus(row[7]),
            reason=row[8],
            provider_reference=row[9],
            created_at=self._load_time(row[10]),
            updated_at=self._load_time(row[11]),
            version=int(row[12]),
        )

    def request_refund(
        self,
        payment_id: int,
        *,
        refund_key: str,
        amount: Money,
        reason: str = "",
        provider_reference: str = "",
        status: RefundStatus = RefundStatus.REQUESTED,
    ) -> tuple[RefundRecord, bool]:
        """Record a refund of ``amount`` (``requested``) before the provider is asked; return
        it and whether it is to be sent. A key already recorded for the same amount returns
        that refund: to be sent again when it ``failed`` (re-opened as ``requested``) or its
        outcome is ``unknown`` or still ``requested`` (the same key is safe to re-send),
        not when it ``succeeded`` or is ``pending``. :class:`RefundRefused` when the payment
        is not paid, the key names another amount, or the refunded total would exceed the
        paid amount."""
        if not refund_key:
            raise ValueError("a refund needs a key")
        positive_minor_units(amount.minor_units)

        def work(tx: Tx) -> tuple[RefundRecord, bool]:
            now = self._now()
            if tx.execute(self._sql(LOCK_PAYMENT), (payment_id,)) == 0:
                raise LedgerError(f"no payment with id {payment_id}")
            payment = self._fetch_payment(tx, payment_id)
            assert payment is not None
            row = tx.one(
                self._sql(SELECT_REFUND + " WHERE gateway = ? AND refund_key = ?"),
                (payment.gateway, refund_key),
            )
            existing = None if row is None else self._refund(row)
            if existing is not None:
                if existing.payment_id != payment_id or existing.amount != amount:
                    raise RefundRefused(f"refund key {refund_key!r} names another refund")
                if existing.status in (_R.SUCCEEDED, _R.PENDING):
                    return existing, False
                if existing.status is not _R.FAILED:
                    return existing, True  # requested / unknown: the same key again
            if payment.status not in REFUNDABLE:
                raise RefundRefused(f"payment is {payment.status.value}, not refundable")
            if amount.currency != payment.amount.currency:
                raise RefundRefused("a refund must be in the payment's currency")
            held = tx.one(
                self._sql(HELD_TOTAL),
                (payment_id, -1 if existing is None else existing.id),
            )
            assert held is not None
            remaining = payment.amount.minor_units - int(held[0])
            if amount.minor_units > remaining:
                raise RefundRefused(
                    f"refund of {amount} exceeds what remains refundable "
                    f"({Money.from_minor_units(max(remaining, 0), amount.currency)})"
                )
            if existing is not None:  # a failed refund asked again under its own key
                reopened = tx.one(
                    self._sql(UPDATE_REFUND),
                    (
                        status.value,
                        existing.provider_reference,
                        self._dump_time(now),
                        existing.id,
                        existing.version,
                    ),
                )
                assert reopened is not None
                return self._refund(reopened), True
            inserted = tx.one(
                self._sql(INSERT_REFUND),
                (
                    payment_id,
                    payment.gateway,
                    payment.merchant_reference,
                    refund_key,
                    amount.minor_units,
                    amount.currency,
                    status.value,
                    reason[:255],
                    provider_reference,
                    self._dump_time(now),
                    self._dump_time(now),
                ),
            )
            assert inserted is not None
            return self._refund(inserted), True

        return self._write("request_refund", work)

    def settle_refund(
        self,
        refund_id: int,
        *,
        status: RefundStatus,
        provider_reference: str = "",
        source: str = "refund",
        events: EventsFor = (),
    ) -> RefundSettlement:
        """Record the provider's answer for a refund. For ``succeeded``: the payment moves to
        ``partially_refunded`` or ``refunded`` (by the succeeded total against the paid
        amount) with a transition from ``source``, and ``events`` go to the outbox, all in
        one transaction. A report of the status the refund already has changes nothing and
        adds no event; a final refund never changes again. ``events`` may be a function of the
        payment and the refund as settled (inside the transaction), for events that carry
        the payment's status after the refund."""

        def work(tx: Tx) -> RefundSettlement:
            now = self._now()
            row = tx.one(self._sql(SELECT_REFUND + " WHERE id = ?"), (refund_id,))
            if row is None:
                raise LedgerError(f"no refund with id {refund_id}")
            payment_id = self._refund(row).payment_id
            if tx.execute(self._sql(LOCK_PAYMENT), (payment_id,)) == 0:
                raise LedgerError(f"no payment with id {payment_id}")
            # Read again under the payment's lock: a report settling the same refund at the
            # same moment has committed by now, and its status decides.
            row = tx.one(self._sql(SELECT_REFUND + " WHERE id = ?"), (refund_id,))
            assert row is not None
            refund = self._refund(row)
            payment = self._fetch_payment(tx, refund.payment_id)
            assert payment is not None
            if refund.status is status or refund.status.is_final:
                raise Rollback(RefundSettlement(refund, payment, changed=False))
            updated = tx.one(
                self._sql(UPDATE_REFUND),
                (
                    status.value,
                    provider_reference or refund.provider_reference,
                    self._dump_time(now),
                    refund.id,
                    refund.version,
                ),
            )
            if updated is None:  # pragma: no cover - the payment's lock serialises settlers
                raise Rollback(RefundSettlement(refund, payment, changed=False))
            refund = self._refund(updated)
            if status is _R.SUCCEEDED:
                total = tx.one(self._sql(SUCCEEDED_TOTAL), (refund.payment_id,))
                assert total is not None
                refunded = int(total[0]) >= payment.amount.minor_units
                target = _S.REFUNDED if refunded else _S.PARTIALLY_REFUNDED
                if payment.status is not target and payment.status in REFUNDABLE:
                    moved = tx.one(
                        self._sql(CAS_STATUS_RETURNING),
                        (target.value, self._dump_time(now), payment.id, payment.status.value),
                    )
                    assert moved is not None
                    tx.execute(
                        self._sql(st.INSERT_TRANSITION),
                        (
                            payment.id,
                            payment.status.value,
                            target.value,
                            source,
                            f"refund:{refund.refund_key}",
                            self._dump_time(now),
                        ),
                    )
                    payment = self._payment(moved)
            made = events(payment, refund) if callable(events) else events
            inserted = self._insert_events(tx, made)
            return RefundSettlement(refund, payment, changed=True, events=inserted)

        return self._write("settle_refund", work)

    def refunds_for_payment(self, payment_id: int) -> list[RefundRecord]:
        """Every refund of a payment, oldest first."""

        def work(tx: Tx) -> list[RefundRecord]:
            rows = tx.all(
                self._sql(SELECT_REFUND + " WHERE payment_id = ? ORDER BY id"), (payment_id,)
            )
            return [self._refund(row) for row in rows]

        return self._run("refunds_for_payment", work, write=False)

    def refund_by_key(self, gateway: str, refund_key: str) -> RefundRecord | None:
        """The refund recorded under ``refund_key`` for ``gateway``, if any."""

        def work(tx: Tx) -> RefundRecord | None:
            row = tx.one(
                self._sql(SELECT_REFUND + " WHERE gateway = ? AND refund_key = ?"),
                (gateway, refund_key),
            )
            return None if row is None else self._refund(row)

        return self._run("refund_by_key", work, write=False)

    def refunds_to_settle(
        self,
        *,
        updated_before: datetime,
        limit: int = 100,
        gateways: Collection[str] | None = None,
    ) -> list[RefundRecord]:
        """Refunds still open (``requested``, ``unknown``, ``pending``) last changed or
        examined before ``updated_before``, oldest first, of ``gateways`` (default: all):
        reconciliation asks the provider about them."""
        names = sorted(gateways) if gateways is not None else None
        if names == []:
            return []
        where = " AND gateway IN (" + ", ".join(["?"] * len(names)) + ")" if names else ""

        def work(tx: Tx) -> list[RefundRecord]:
            rows = tx.all(
                self._render(
                    SELECT_REFUND + " WHERE status IN ('requested', 'unknown', 'pending') "
                    "AND updated_at < ?" + where + " ORDER BY updated_at, id LIMIT ?"
                ),
                (self._dump_time(to_utc(updated_before)), *(names or ()), int(limit)),
            )
            return [self._refund(row) for row in rows]

        return self._run("refunds_to_settle", work, write=False)

    def touch_refund(self, refund_id: int) -> None:
        """Stamp an open refund examined now (its ``updated_at``; not a change: its status
        and version stay), so the next pass takes the others first."""

        def work(tx: Tx) -> None:
            tx.execute(
                self._sql(
                    "UPDATE {p}gw_refunds SET updated_at = ? "
                    "WHERE id = ? AND status IN ('requested', 'unknown', 'pending')"
                ),
                (self._dump_time(self._now()), refund_id),
            )

        self._write("touch_refund", work)
