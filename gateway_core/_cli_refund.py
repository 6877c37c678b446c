"""``gateway refund`` (give back all or part of a paid payment) and the arguments of
``gateway demo``. The dispatch and the ``--json`` output live in :mod:`gateway_core.cli`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gateway_core._exceptions import InvalidRequest
from gateway_core._models import Money

if TYPE_CHECKING:
    from gateway_core._service import PaymentService

REFUND_HELP = "refund all or part of a paid payment (recorded first, never above the paid amount)"


def add_refund_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("reference", help="merchant reference (bill number) of the paid payment")
    p.add_argument("--gateway", help="configured gateway name (default: the only one)")
    p.add_argument("--amount", default="", help="decimal amount (default: all that remains)")
    p.add_argument("--reason", default="", help="reason sent to the provider")
    p.add_argument(
        "--key",
        default="",
        help="refund key the provider sees; the same key again never refunds twice "
        "(default: a fresh one)",
    )


def refund(service: PaymentService, gateway: str, args: argparse.Namespace) -> tuple[Any, str]:
    """Run one refund; the JSON document and the text line."""
    amount = None
    if args.amount:
        currency = service.payment(gateway, args.reference).amount.currency
        try:
            amount = Money(args.amount, currency)
        except (TypeError, ValueError) as exc:
            raise InvalidRequest(f"bad amount: {exc}", field="amount") from None
    record = service.refund(gateway, args.reference, amount, reason=args.reason, key=args.key)
    payment = service.payment(gateway, args.reference)
    data = {
        "refund_key": record.refund_key,
        "amount": str(record.amount.amount),
        "currency": record.amount.currency,
        "status": record.status.value,
        "provider_reference": record.provider_reference,
        "merchant_reference": record.merchant_reference,
        "payment_status": payment.status.value,
    }
    text = (
        f"refund {record.refund_key}: {record.amount} {record.status.value}; "
        f"payment {payment.merchant_reference} is {payment.status.value}"
    )
    return data, text


def add_demo_arguments(p: argparse.ArgumentParser, count: Callable[[str], int]) -> None:
    p.add_argument(
        "--provider",
        default="",
        help="provider to demo (default: the first by name that ships a sandbox)",
    )
    p.add_argument(
        "--method",
        "--channel",
        default="",
        help="payment method / channel, by the provider's name (default: the provider's)",
    )
    p.add_argument(
        "--customer",
        choices=["pay", "fail", "abandon"],
        default="pay",
        help="what the customer does",
    )
    p.add_argument(
        "--duplicate-notifications",
        type=count,
        default=0,
        metavar="N",
        help="the emulator delivers each notification N extra times",
    )
    p.add_argument(
        "--drop-notifications",
        action="store_true",
        help="the emulator never delivers notifications; reconcile settles the payment",
    )
    p.add_argument("--amount", default="2000", help="decimal amount (default 2000)")
    p.add_argument(
        "--currency", default="", help="ISO 4217 code (default: the provider's, if it has one)"
    )
    p.add_argument("--keep-ledger", action="store_true", help="keep the throwaway SQLite file")
