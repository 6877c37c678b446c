"""The ledger's records: payments, transitions, journal entries, outbox events.

Small frozen value objects with validators for their invariants; timestamps are always
timezone-aware UTC (:func:`to_utc` refuses naive datetimes).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar, Self

import attrs

from gateway_core._events import EventKind, PaymentEvent
from gateway_core._exceptions import LedgerError
from gateway_core._models import Money, PaymentStatus, json_object

# --------------------------------------------------------------------------------------------
# Time


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def to_utc(value: datetime) -> datetime:
    """``value`` converted to UTC; a naive datetime is refused (its zone would be a guess)."""
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError("ledger timestamps must be timezone-aware")
    return value.astimezone(UTC)


def _to_utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else to_utc(value)


# --------------------------------------------------------------------------------------------
# Records


def _is_text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{attribute.name} must be a str, not {type(value).__name__}")


def _non_empty(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _is_text(instance, attribute, value)
    if not value:
        raise ValueError(f"{attribute.name} must not be empty")


def _is_int(minimum: int) -> Callable[[object, attrs.Attribute[Any], object], None]:
    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{attribute.name} must be an int")
        if value < minimum:
            raise ValueError(f"{attribute.name} must be at least {minimum}")

    return check


def _optional_id(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _is_int(1)(instance, attribute, value)


_TOKEN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def _token(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _is_text(instance, attribute, value)
    assert isinstance(value, str)
    if not _TOKEN.match(value):
        raise ValueError(f"{attribute.name} must be a short lowercase token, not {value!r}")


def _one_of(allowed: frozenset[str]) -> Callable[[object, attrs.Attribute[Any], object], None]:
    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value not in allowed:
            raise ValueError(f"{attribute.name} must be one of {sorted(allowed)}, not {value!r}")

    return check


@attrs.frozen(kw_only=True)
class PaymentRecord:
    """One payment attempt as the ledger stores it.

    ``merchant_reference`` is the bill number sent to the provider; it is unique per
    ``gateway`` (the gateway's configured name). ``attempt`` counts the attempts of one order
    from 1 and is unique per (gateway, order). ``version`` is 0 for a record not yet stored
    and grows by one with every change the ledger makes, which makes it usable for
    compare-and-set (:meth:`Ledger.set_provider_reference`). ``last_examined_at`` is when
    reconciliation last took the payment (``None``: never); stamping it is bookkeeping, not
    a change: it moves neither ``version`` nor ``updated_at``. Timestamps are UTC.

    ``provider_data`` is the plugin's opaque memory of the attempt (a JSON object, see
    :attr:`gateway_core.Payment.provider_data`), stored with the provider's reference and
    kept out of ``repr``; ``idempotency_key`` is the key every send of this attempt's create
    carries, for a gateway that declares ``idempotent_create`` (empty otherwise). ``method``
    is the payment method the checkout chose for the attempt (see
    :attr:`gateway_core.PaymentRequest.method`; empty: the gateway's default).
    """

    id: int | None = attrs.field(default=None, validator=_optional_id)
    gateway: str = attrs.field(validator=_non_empty)
    provider: str = attrs.field(validator=_non_empty)
    order_reference: str = attrs.field(validator=_non_empty)
    merchant_reference: str = attrs.field(validator=_non_empty)
    provider_reference: str = attrs.field(default="", validator=_is_text)
    status: PaymentStatus = attrs.field(validator=attrs.validators.instance_of(PaymentStatus))
    amount: Money = attrs.field(validator=attrs.validators.instance_of(Money))
    merchant_id: str = attrs.field(default="", validator=_is_text)
    attempt: int = attrs.field(default=1, validator=_is_int(1))
    superseded: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    expires_at: datetime | None = attrs.field(default=None, converter=_to_utc_or_none)
    created_at: datetime = attrs.field(factory=utc_now, converter=to_utc)
    updated_at: datetime = attrs.field(converter=to_utc)
    version: int = attrs.field(default=0, validator=_is_int(0))
    last_examined_at: datetime | None = attrs.field(default=None, converter=_to_utc_or_none)
    provider_data: dict[str, Any] = attrs.field(
        factory=dict, converter=json_object, repr=False, hash=False
    )
    idempotency_key: str = attrs.field(default="", validator=_is_text, repr=False)
    method: str = attrs.field(default="", validator=_is_text)

    @updated_at.default
    def _updated_defaults_to_created(self) -> datetime:
        return self.created_at

    def __attrs_post_init__(self) -> None:
        if self.amount.amount < 0:
            raise ValueError("a payment amount cannot be negative")


@attrs.frozen(kw_only=True)
class TransitionRecord:
    """One status change of one payment, written in the same transaction as the change."""

    #: What may cause a transition.
    SOURCES: ClassVar[frozenset[str]] = frozenset(
        {
            "create",
            "notification",
            "inquiry",
            "return",
            "reconcile",
            "cancel",
            "operator",
            "refund",
        }
    )

    id: int | None = attrs.field(default=None, validator=_optional_id)
    payment_id: int = attrs.field(validator=_is_int(1))
    from_status: PaymentStatus = attrs.field(validator=attrs.validators.instance_of(PaymentStatus))
    to_status: PaymentStatus = attrs.field(validator=attrs.validators.instance_of(PaymentStatus))
    source: str = attrs.field(validator=_one_of(SOURCES))
    event_key: str = attrs.field(default="", validator=_is_text)
    at: datetime = attrs.field(factory=utc_now, converter=to_utc)


@attrs.frozen(kw_only=True)
class JournalEntry:
    """One inbound message or outbound call and what the platform decided about it.

    ``body`` must already be redacted by the caller; the ledger redacts it (and ``reason``)
    once more before storing, so what comes back from :meth:`Ledger.journal` may differ from
    what was appended, unless ``redacted`` says the body was made by
    :func:`~gateway_core._redact.redact_excerpt` already (the payment service's entries: the
    body is redacted once, where it enters). The journal is append-only.
    """

    #: The kinds the core writes (any short lowercase token is accepted).
    KINDS: ClassVar[frozenset[str]] = frozenset(
        {"notification", "return", "create", "inquiry", "cancel", "reconcile", "refund"}
    )
    #: The verdicts the core writes (any short lowercase token is accepted).
    VERDICTS: ClassVar[frozenset[str]] = frozenset(
        {"applied", "duplicate", "rejected", "review", "ignored", "unknown", "event"}
    )

    id: int | None = attrs.field(default=None, validator=_optional_id)
    gateway: str = attrs.field(validator=_non_empty)
    merchant_reference: str = attrs.field(validator=_is_text)
    kind: str = attrs.field(validator=_token)
    verdict: str = attrs.field(validator=_token)
    reason: str = attrs.field(default="", validator=_is_text)
    body: str = attrs.field(default="", validator=_is_text, repr=False)
    received_at: datetime = attrs.field(factory=utc_now, converter=to_utc)
    #: The body is already the output of ``redact_excerpt``: stored as it is. Not stored
    #: itself, nor compared.
    redacted: bool = attrs.field(default=False, kw_only=True, eq=False, repr=False)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else to_utc(value).isoformat()


@attrs.frozen(kw_only=True)
class OutboxEvent:
    """A hook event waiting to be delivered (at least once) to the order system.

    ``payload`` is a JSON-serialisable snapshot of the :class:`~gateway_core.PaymentEvent`
    (build it with :meth:`from_event`, read it back with :meth:`to_event`). ``event_id`` is
    unique: inserting an event whose id is already in the outbox does nothing, so a retried
    transaction cannot enqueue the same event twice. A worker claims due events
    (:meth:`Ledger.claim_events`), which moves ``next_attempt_at`` forward by a lease, then
    marks each delivered or failed.
    """

    event_id: str = attrs.field(validator=_non_empty)
    payment_id: int | None = attrs.field(validator=_optional_id)
    kind: EventKind = attrs.field(validator=attrs.validators.instance_of(EventKind))
    payload: dict[str, Any] = attrs.field(factory=dict, hash=False, repr=False)
    created_at: datetime = attrs.field(factory=utc_now, converter=to_utc)
    attempts: int = attrs.field(default=0, validator=_is_int(0))
    delivered_at: datetime | None = attrs.field(default=None, converter=_to_utc_or_none)
    last_error: str = attrs.field(default="", validator=_is_text)
    next_attempt_at: datetime = attrs.field(converter=to_utc)

    @next_attempt_at.default
    def _due_when_created(self) -> datetime:
        return self.created_at

    @classmethod
    def from_event(
        cls, event: PaymentEvent, payment_id: int | None, *, now: datetime | None = None
    ) -> Self:
        """An undelivered outbox row for ``event``, due at once (``now`` defaults to now)."""
        payload: dict[str, Any] = {
            "event_id": event.event_id,
            "kind": event.kind.value,
            "provider": event.provider,
            "order_reference": event.order_reference,
            "merchant_reference": event.merchant_reference,
            "status": event.status.value,
            "amount": str(event.amount.amount),
            "currency": event.amount.currency,
            "occurred_at": _iso(event.occurred_at),
            "provider_reference": event.provider_reference,
            "previous_status": (
                None if event.previous_status is None else event.previous_status.value
            ),
            "reason": event.reason,
            "gateway_name": event.gateway_name,
        }
        if event.provider_kind:
            payload["provider_kind"] = event.provider_kind
        if event.refund_key:
            payload["refund_key"] = event.refund_key
        if event.event_amount is not None:
            payload["event_amount"] = str(event.event_amount.amount)
            payload["event_currency"] = event.event_amount.currency
        return cls(
            event_id=event.event_id,
            payment_id=payment_id,
            kind=event.kind,
            payload=payload,
            created_at=now if now is not None else utc_now(),
        )

    def to_event(self) -> PaymentEvent:
        """The :class:`~gateway_core.PaymentEvent` this row carries."""
        p = self.payload
        try:
            previous = p.get("previous_status")
            return PaymentEvent(
                event_id=str(p["event_id"]),
                kind=EventKind(p["kind"]),
                provider=str(p["provider"]),
                order_reference=str(p["order_reference"]),
                merchant_reference=str(p["merchant_reference"]),
                status=PaymentStatus(p["status"]),
                amount=Money(Decimal(str(p["amount"])), str(p["currency"])),
                occurred_at=to_utc(datetime.fromisoformat(str(p["occurred_at"]))),
                provider_reference=str(p.get("provider_reference", "")),
                previous_status=None if previous is None else PaymentStatus(previous),
                reason=str(p.get("reason", "")),
                gateway_name=str(p.get("gateway_name", "")),
                provider_kind=str(p.get("provider_kind", "")),
                refund_key=str(p.get("refund_key", "")),
                event_amount=(
                    Money(Decimal(str(p["event_amount"])), str(p["event_currency"]))
                    if "event_amount" in p
                    else None
                ),
            )
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise LedgerError(
                f"outbox event {self.event_id!r} has an unreadable payload ({type(exc).__name__})"
            ) from None


class ApplyResult(enum.Enum):
    """What :meth:`Ledger.apply_transition` (or :meth:`Ledger.record_without_transition`) did."""

    #: Committed: the status changed (if asked) and the events and journal entry were written.
    APPLIED = "applied"
    #: The receipt key was already recorded: nothing was written.
    DUPLICATE = "duplicate"
    #: The payment's status was no longer the expected one: nothing was written.
    CONFLICT = "conflict"
