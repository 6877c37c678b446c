"""Validation of a Snap create body (protocol reference §2.2–§2.7, §11.2).

Every problem becomes one message ``"<json.path> <problem>"`` (the documented wordings where
the reference has them: ``is required``, ``is not a number``, ``is not equal to the sum of
item_details``); the emulator answers them all at once, HTTP 400 ``{"error_messages": [...]}``.

ASSUMPTIONS (§2.3, §2.7, §11.2): order_id alphabet is lenient by default (any printable text
of at most 50 characters; ``strict`` allows ``[A-Za-z0-9-_.~]`` only); over-long item and
customer strings are accepted unless ``strict``; ``gross_amount`` may be a numeric string;
``expiry``/``page_expiry`` under 20 seconds are refused and over 7 days silently capped.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta
from typing import Any

from gateway_midtrans_snap.emulator._model import expand_methods

MAX_ORDER_ID = 50
MIN_EXPIRY = timedelta(seconds=20)
MAX_EXPIRY = timedelta(days=7)
_STRICT_ORDER_ID = re.compile(r"[A-Za-z0-9\-_.~]{1,50}")
_UNITS = {"day": 86400, "days": 86400, "hour": 3600, "hours": 3600, "minute": 60, "minutes": 60}
_START_FORMAT = "%Y-%m-%d %H:%M:%S %z"


class CreateRejected(Exception):
    """The create body breaks rules; ``messages`` are Snap's ``error_messages``."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


@dataclasses.dataclass
class CreateRequest:
    """A valid create request."""

    order_id: str
    gross_amount: int
    methods: list[str]
    page_lifetime: timedelta | None
    expiry_start: datetime | None
    expiry_lifetime: timedelta | None
    custom: dict[str, str]


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,15}(\.0+)?", value.strip()):
        return int(value.strip().split(".")[0])
    return None


def _duration(path: str, spec: Any, problems: list[str]) -> timedelta | None:
    if not isinstance(spec, dict):
        problems.append(f"{path} is not an object")
        return None
    duration = _integer(spec.get("duration"))
    unit = spec.get("unit")
    if spec.get("duration") is None:
        problems.append(f"{path}.duration is required")
        return None
    if duration is None:
        problems.append(f"{path}.duration is not a number")
        return None
    if not isinstance(unit, str) or unit.lower() not in _UNITS:
        problems.append(f"{path}.unit must be one of day, hour, minute")
        return None
    lifetime = timedelta(seconds=duration * _UNITS[unit.lower()])
    if lifetime < MIN_EXPIRY:
        problems.append(f"{path}.duration must be at least 20 seconds")
        return None
    return min(lifetime, MAX_EXPIRY)


def _text(path: str, value: Any, limit: int, problems: list[str], *, strict: bool) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        problems.append(f"{path} is not a string")
    elif strict and len(value) > limit:
        problems.append(f"{path} is too long (max {limit} characters)")


def _items(items: Any, gross: int | None, problems: list[str], *, strict: bool) -> None:
    if not isinstance(items, list):
        problems.append("item_details is not an array")
        return
    total = 0
    complete = True
    for number, item in enumerate(items):
        path = f"item_details[{number}]"
        if not isinstance(item, dict):
            problems.append(f"{path} is not an object")
            complete = False
            continue
        price, quantity = _integer(item.get("price")), _integer(item.get("quantity"))
        for key, value in (("price", price), ("quantity", quantity)):
            if item.get(key) is None:
                problems.append(f"{path}.{key} is required")
            elif value is None:
                problems.append(f"{path}.{key} is not a number")
        if quantity is not None and quantity < 1:
            problems.append(f"{path}.quantity must be greater than or equal to 1")
        if not item.get("name"):
            problems.append(f"{path}.name is required")
        for key in ("name", "id", "brand", "category", "merchant_name", "url"):
            _text(f"{path}.{key}", item.get(key), 50, problems, strict=strict)
        if price is None or quantity is None:
            complete = False
        else:
            total += price * quantity
    if complete and gross is not None and total != gross:
        problems.append("transaction_details.gross_amount is not equal to the sum of item_details")


def validate_create(body: Any, now: datetime, *, strict: bool = False) -> CreateRequest:
    """Check a create body; :class:`CreateRejected` lists every problem."""
    problems: list[str] = []
    if not isinstance(body, dict):
        raise CreateRejected(
            ["transaction_details is required", "transaction_details.order_id is required"]
        )
    details = body.get("transaction_details")
    if not isinstance(details, dict):
        raise CreateRejected(["transaction_details is required"])
    order_id = details.get("order_id")
    if order_id is None or order_id == "":
        problems.append("transaction_details.order_id is required")
    elif not isinstance(order_id, str):
        problems.append("transaction_details.order_id is not a string")
    elif len(order_id) > MAX_ORDER_ID:
        problems.append("transaction_details.order_id is too long (max 50 characters)")
    elif not order_id.isprintable() or (strict and not _STRICT_ORDER_ID.fullmatch(order_id)):
        problems.append("transaction_details.order_id contains invalid characters")
    gross: int | None = None
    if details.get("gross_amount") is None:
        problems.append("transaction_details.gross_amount is required")
    else:
        gross = _integer(details["gross_amount"])
        if gross is None:
            problems.append("transaction_details.gross_amount is not a number")
        elif gross < 1:
            problems.append("transaction_details.gross_amount must be greater than or equal to 1")
            gross = None
    if body.get("item_details") is not None:
        _items(body["item_details"], gross, problems, strict=strict)
    customer = body.get("customer_details")
    if customer is not None:
        if not isinstance(customer, dict):
            problems.append("customer_details is not an object")
        else:
            for key in ("first_name", "last_name", "email", "phone"):
                _text(f"customer_details.{key}", customer.get(key), 255, problems, strict=strict)
    methods = body.get("enabled_payments")
    if methods is not None and (
        not isinstance(methods, list) or not all(isinstance(m, str) for m in methods)
    ):
        problems.append("enabled_payments is not an array of strings")
        methods = None
    callbacks = body.get("callbacks")
    if callbacks is not None:
        if not isinstance(callbacks, dict):
            problems.append("callbacks is not an object")
        else:
            for key in ("finish", "error"):
                value = callbacks.get(key)
                _text(f"callbacks.{key}", value, 255, problems, strict=True)
    custom: dict[str, str] = {}
    for key in ("custom_field1", "custom_field2", "custom_field3"):
        value = body.get(key)
        _text(key, value, 255, problems, strict=True)
        if isinstance(value, str):
            custom[key] = value
    page_lifetime = expiry_lifetime = None
    start: datetime | None = None
    if body.get("page_expiry") is not None:
        page_lifetime = _duration("page_expiry", body["page_expiry"], problems)
    if body.get("expiry") is not None:
        expiry_lifetime = _duration("expiry", body["expiry"], problems)
        raw_start = body["expiry"].get("start_time") if isinstance(body["expiry"], dict) else None
        if raw_start is not None:
            try:
                start = datetime.strptime(str(raw_start), _START_FORMAT)
            except ValueError:
                problems.append("expiry.start_time must be yyyy-MM-dd HH:mm:ss Z")
        # Capped at 7 days after the token's creation (§2.7).
        if (
            start is not None
            and expiry_lifetime is not None
            and start + expiry_lifetime > now + MAX_EXPIRY
        ):
            expiry_lifetime = now + MAX_EXPIRY - start
    if problems:
        raise CreateRejected(problems)
    assert isinstance(order_id, str)
    assert gross is not None
    return CreateRequest(
        order_id=order_id,
        gross_amount=gross,
        methods=expand_methods(methods),
        page_lifetime=page_lifetime,
        expiry_start=start,
        expiry_lifetime=expiry_lifetime,
        custom=custom,
    )
