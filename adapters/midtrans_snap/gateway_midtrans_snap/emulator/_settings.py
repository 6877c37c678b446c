"""The Midtrans emulator's switchable behaviours (each an ASSUMPTION of the protocol
reference, or a timing the tests want to shorten); changed at run time through the control API
(``PATCH /_emulator/settings``)."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal


@dataclasses.dataclass
class Settings:
    """The emulator's settings; see the field comments for the reference section of each."""

    #: §2.3/§11.2: the documented order_id alphabet and string lengths (lenient by default).
    strict: bool = False
    #: §2.7: the dashboard's page lifetime when the request has neither expiry nor page_expiry.
    default_page_expiry: float = 24 * 3600.0
    #: §11.3: seconds after which a card ``capture`` becomes ``settlement`` on the clock.
    card_settlement_delay: float = 24 * 3600.0
    #: §6.3 ASSUMPTION: a denied challenge ends ``deny`` (fraud deny) or ``cancel``.
    challenge_deny_status: Literal["deny", "cancel"] = "deny"
    #: §4.5: the webhook ``status_code`` of a ``cancel``.
    cancel_webhook_code: str = "202"
    #: §1.5/§11.1 ASSUMPTION: Core errors as HTTP = body code ("same") or HTTP 200 ("200").
    core_error_http: Literal["same", "200"] = "same"
    #: §2.10 ASSUMPTION: an order whose attempts were all denied may be created again.
    deny_reuses_order: bool = True
    #: §3.2/D9: denied attempts tolerated on the page before the error redirect (the next
    #: denial goes to the error URL; earlier ones back to the page).
    error_after_denials: int = 3
    #: §3.2: ``merchant_id`` in the return query (the current D8 example has it).
    return_merchant_id: bool = True
    #: §1.4/§11.7: seconds a successful Core POST stays stored under its Idempotency-Key.
    idempotency_ttl: float = 300.0
    #: §11.3: a card paid on the page goes ``pending`` (3DS step) before ``capture``.
    card_3ds: bool = True
    #: The base URL written into ``redirect_url`` (None: the request's Host).
    public_url: str | None = None
    #: §11.4 ASSUMPTION: the ``refund_method`` recorded for API refunds.
    refund_method: str = "online"

    def update(self, changes: dict[str, Any]) -> Settings:
        """Apply ``changes`` (known names only, checked types); returns self."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        for name, value in changes.items():
            if name not in fields:
                raise ValueError(f"unknown setting {name!r} (one of {', '.join(fields)})")
            current = getattr(self, name)
            if isinstance(current, bool) and not isinstance(value, bool):
                raise ValueError(f"setting {name} takes true or false")
            if isinstance(current, float) and not isinstance(value, (int, float)):
                raise ValueError(f"setting {name} takes a number")
            whole = isinstance(current, int) and not isinstance(current, bool)
            if whole and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"setting {name} takes an integer")
            if name == "challenge_deny_status" and value not in ("deny", "cancel"):
                raise ValueError("challenge_deny_status is deny or cancel")
            if name == "core_error_http" and value not in ("same", "200"):
                raise ValueError("core_error_http is same or 200")
            setattr(self, name, float(value) if isinstance(current, float) else value)
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return dataclasses.asdict(self)
