"""Channels through the whole stack: the payment service on a real ledger (SQLite, and
PostgreSQL when available), the emulator over loopback HTTP, the merchant's WSGI endpoints.
The checkout picks a method per payment; the customer pays through the emulator's simulated
bank / store / QRIS app; the emulator's notification settles the payment."""

from __future__ import annotations

from datetime import timedelta

import pytest
from channel_stack_support import GATEWAY, ChannelStack

from gateway_core import (
    InstructionKind,
    InvalidRequest,
    Money,
    PaymentStatus,
    Reason,
    Verdict,
)
from gateway_faspay_dana.testing import signed_notification


def test_the_gateway_offers_its_enabled_channels(channel_stack: ChannelStack) -> None:
    gateway = channel_stack.service.gateway(GATEWAY)
    assert gateway.payment_methods == ("dana", "bca_va", "indomaret", "qris_paydia", "ovo")
    with pytest.raises(InvalidRequest):
        channel_stack.service.start_payment(GATEWAY, channel_stack.request("O-1", "bri_va"))


def test_a_virtual_account_paid_by_transfer_settles_by_notification(
    channel_stack: ChannelStack,
) -> None:
    service = channel_stack.service
    started = service.start_payment(GATEWAY, channel_stack.request("O-VA", "bca_va"))
    shown = started.instructions
    assert shown is not None
    assert shown.kind is InstructionKind.VIRTUAL_ACCOUNT
    assert (shown.bank, shown.amount) == ("BCA", Money("150000", "IDR"))
    record = started.payment
    assert record.method == "bca_va"
    assert record.expires_at - record.created_at == timedelta(days=1)  # ASSUMPTION default
    again = service.start_payment(GATEWAY, channel_stack.request("O-VA", "bca_va"))
    assert again.reused
    assert again.instructions == shown  # rebuilt from provider_data, nothing re-sent
    channel_stack.control(f"va/{shown.number}/transfer")
    channel_stack.wait()
    assert service.payment(GATEWAY, record.merchant_reference).status is PaymentStatus.PAID


def test_switching_method_makes_a_new_attempt(channel_stack: ChannelStack) -> None:
    service = channel_stack.service
    first = service.start_payment(GATEWAY, channel_stack.request("O-SW", "indomaret"))
    second = service.start_payment(GATEWAY, channel_stack.request("O-SW", "qris_paydia"))
    assert not second.reused
    assert second.payment.merchant_reference != first.payment.merchant_reference
    qr = second.instructions
    assert qr is not None
    assert qr.kind is InstructionKind.QR
    assert qr.payload.startswith("000201")
    channel_stack.control(f"qr/{second.payment.provider_reference}/scan")
    channel_stack.wait()
    paid = service.payment(GATEWAY, second.payment.merchant_reference)
    assert paid.status is PaymentStatus.PAID


def test_ovo_without_a_phone_is_refused_before_anything_is_recorded(
    channel_stack: ChannelStack,
) -> None:
    service = channel_stack.service
    with pytest.raises(InvalidRequest):
        service.start_payment(GATEWAY, channel_stack.request("O-OVO", "ovo", phone=""))
    assert service.ledger.payments_for_order(GATEWAY, "O-OVO") == []


def test_the_default_method_is_the_first_enabled_channel(channel_stack: ChannelStack) -> None:
    started = channel_stack.service.start_payment(GATEWAY, channel_stack.request("O-D", ""))
    assert started.instructions is None  # dana: a redirect
    assert started.payment.method == ""


def test_a_notification_for_another_channel_is_held_for_review(
    channel_stack: ChannelStack,
) -> None:
    service = channel_stack.service
    started = service.start_payment(GATEWAY, channel_stack.request("O-MM", "bca_va"))
    record = started.payment
    body = signed_notification(
        service.gateway(GATEWAY),
        bill_no=record.merchant_reference,
        trx_id=record.provider_reference,
        status="2",
        amount=record.amount,
        payment_channel_uid="819",
    )
    outcome = service.handle_notification(GATEWAY, body)
    assert (outcome.verdict, outcome.reason) == (Verdict.REVIEW, Reason.METHOD_MISMATCH)
    assert service.payment(GATEWAY, record.merchant_reference).status is PaymentStatus.PENDING
