"""The message body: one :class:`~gateway_core.PaymentEvent` as JSON, schema ``gateway.event/1``.

Every field of the event is present in every message (``null`` or ``""`` when it has no value),
so consumers can read it without guessing. Amounts are decimal strings (never floats), in the
currency's major unit; times are ISO 8601 in UTC. A field added later is added under the same
schema name (consumers ignore fields they do not know); a change to a field's meaning would be
a new schema name.
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

from gateway_core import Money, PaymentEvent

#: The ``schema`` field of every message (and its AMQP ``type`` property).
SCHEMA = "gateway.event/1"


def _money(value: Money | None) -> dict[str, str] | None:
    if value is None:
        return None
    return {"amount": format(value.amount, "f"), "currency": value.currency}


def event_document(event: PaymentEvent) -> dict[str, Any]:
    """The JSON document of ``event`` (before encoding)."""
    return {
        "schema": SCHEMA,
        "event_id": event.event_id,
        "kind": event.kind.value,
        "gateway": event.gateway_name,
        "provider": event.provider,
        "order_reference": event.order_reference,
        "merchant_reference": event.merchant_reference,
        "provider_reference": event.provider_reference,
        "status": event.status.value,
        "previous_status": None if event.previous_status is None else event.previous_status.value,
        "amount": _money(event.amount),
        "occurred_at": event.occurred_at.astimezone(UTC).isoformat(),
        "reason": event.reason,
        "provider_kind": event.provider_kind,
        "event_amount": _money(event.event_amount),
        "refund_key": event.refund_key,
    }


def encode_event(event: PaymentEvent) -> bytes:
    """The message body of ``event``: compact UTF-8 JSON, keys sorted (stable bytes)."""
    return json.dumps(
        event_document(event), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
