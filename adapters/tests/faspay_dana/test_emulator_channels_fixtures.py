"""The pytest plugin's override points for the channel families: ``faspay_emulator_channels``
enables every family, the default notification format is XML, and the builders and the
control client work for a VA bill (over real HTTP on loopback)."""

from __future__ import annotations

import pytest
import requests

from gateway_core import PaymentStatus
from gateway_faspay_dana.emulator import EmulatorServer, Merchant, example_post_data
from gateway_faspay_dana.emulator._control import EmulatorControl


@pytest.fixture
def faspay_emulator_channels() -> tuple[str, ...]:
    return ("all",)


def test_a_va_bill_through_the_fixtures(
    faspay_emulator: EmulatorServer,
    faspay_emulator_merchant: Merchant,
    faspay_emulator_control: EmulatorControl,
    faspay_notification: object,
    faspay_dana_gateway: object,
) -> None:
    assert faspay_emulator_merchant.notification_format == "xml"
    assert "801" in faspay_emulator_merchant.channels
    body = example_post_data(faspay_emulator_merchant, "FX-1", payment_channel="801")
    answer = requests.post(faspay_emulator.url + "/cvr/300011/10", json=body, timeout=5).json()
    record = faspay_emulator_control.transfer(answer["trx_id"], bank="BNI")
    assert (record["status"], record["family"]) == ("2", "virtual_account")
    assert {c["code"] for c in faspay_emulator_control.channels()} >= {"801", "711", "812"}
    notification = faspay_notification("FX-1")  # type: ignore[operator]
    assert notification.startswith(b"<?xml")
    assert b"<payment_channel_uid>801</payment_channel_uid>" in notification
    assert b"<payment_channel>BNI Virtual Account</payment_channel>" in notification
    parsed = faspay_dana_gateway.handle_notification(notification, {})  # type: ignore[attr-defined]
    assert parsed.status is PaymentStatus.PAID
    refused = requests.post(
        f"{faspay_emulator.url}/_emulator/va/{answer['trx_id']}/transfer", json={}, timeout=5
    )
    assert refused.status_code == 409
    assert refused.json()["reason"] == "already_paid"
