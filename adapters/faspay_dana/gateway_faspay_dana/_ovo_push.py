"""OVO "Push to Pay" (channels reference §4.2 option b), sent right after the OVO bill is
created when ``ovo_flow = "push"``; the messages are in :mod:`gateway_faspay_dana._messages.ovo`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from gateway_core import (
    HttpRequest,
    HttpResponse,
    NeverSent,
    OutcomeUnknown,
    ProviderError,
    ProviderUnavailable,
    get_logger,
)
from gateway_faspay_dana._config import FaspayConfig
from gateway_faspay_dana._instructions import PHONE, PUSH, PUSH_SENT, PUSH_UNCONFIRMED
from gateway_faspay_dana._messages.ovo import (
    FORM_HEADERS,
    PATH_OVO_PUSH,
    OvoPushRequest,
    mask_phone,
)

T = TypeVar("T")

log = get_logger("gateway_faspay_dana")


class _Caller(Protocol):
    def call(
        self,
        request: HttpRequest,
        parse: Callable[[HttpResponse], T],
        *,
        merchant_reference: str = "",
    ) -> T: ...


def push_ovo(
    client: _Caller,
    config: FaspayConfig,
    *,
    trx_id: str,
    bill_no: str,
    phone: str,
    parse: Callable[[HttpResponse], Any],
    cancel: Callable[[], object],
) -> dict[str, str]:
    """Push the OVO bill ``trx_id`` to ``phone``'s OVO app; what ``provider_data`` keeps of
    it (the masked number, whether the push was acknowledged).

    Not idempotent (a second push would reach the customer twice), so it is never retried. A
    lost answer means "sent, wait" (ASSUMPTION, C18: the call may stay open until the
    customer acts): the outcome comes by notification or inquiry. A refusal (ASSUMPTION:
    ``18`` for a number without OVO) cancels the bill, best effort, and raises.
    """
    message = OvoPushRequest.for_bill(config, trx_id=trx_id, phone=phone)
    request = HttpRequest(
        method="POST",
        url=config.api_base + PATH_OVO_PUSH,
        body=message.to_form(),
        headers=dict(FORM_HEADERS),
        operation="ovo_push",
        idempotent=False,
    )
    data = {PHONE: mask_phone(message.ovo_number), PUSH: PUSH_SENT}
    try:
        client.call(request, parse, merchant_reference=bill_no)
    except (OutcomeUnknown, NeverSent, ProviderUnavailable) as exc:
        log.warning("faspay ovo_push bill_no=%s: no answer (%s)", bill_no, type(exc).__name__)
        data[PUSH] = PUSH_UNCONFIRMED
    except ProviderError:
        try:
            cancel()
        except Exception as exc:  # best effort: the bill expires anyway
            log.warning("faspay cancel after a refused OVO push failed: %s", type(exc).__name__)
        raise
    log.info("faspay ovo_push bill_no=%s %s", bill_no, data[PUSH])
    return data
