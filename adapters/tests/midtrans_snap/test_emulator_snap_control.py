"""The Midtrans emulator's clock, control API and command line (protocol reference §2.7,
§11.4, §11.9): expiry driven by the controllable clock (webhook ``expire``/202, Get Status 407,
no webhook for a page expiry), card captures settling, Midtrans-side events, settings,
merchants with masked keys, reset, and ``gateway emulator midtrans_snap``."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests
from midtrans_emulator_support import (
    SERVER_KEY,
    MerchantEndpoint,
    core,
    create,
    running_merchant,
)

from gateway_core.emulation.control import EmulatorError
from gateway_midtrans_snap.emulator import Merchant
from gateway_midtrans_snap.emulator._model import JAKARTA


@pytest.fixture
def shop() -> Iterator[MerchantEndpoint]:
    yield from running_merchant()


@pytest.fixture
def midtrans_emulator_merchant(shop: MerchantEndpoint) -> Merchant:
    return Merchant(notification_url=shop.url)


def test_a_pending_va_expires_when_the_clock_passes_its_expiry(
    midtrans_emulator: Any, midtrans_control: Any, shop: MerchantEndpoint
) -> None:
    base = midtrans_emulator.url
    create(base, "CK-1", 50000)
    midtrans_control.choose("CK-1", "bca_va")
    assert midtrans_control.advance_clock(23 * 3600) == []
    assert core(base, "GET", "CK-1", "status").json()["status_code"] == "201"
    assert midtrans_control.advance_clock(3600 + 1) == ["CK-1"]
    status = core(base, "GET", "CK-1", "status").json()
    assert (status["status_code"], status["transaction_status"]) == ("407", "expire")
    assert midtrans_control.wait_for_deliveries(10)
    last = shop.bodies()[-1]
    assert (last["transaction_status"], last["status_code"]) == ("expire", "202")
    # an expired order_id may be used again (§2.10)
    assert create(base, "CK-1", 50000).status_code == 201


def test_a_blanket_expiry_bounds_the_attempt(midtrans_emulator: Any, midtrans_control: Any) -> None:
    base = midtrans_emulator.url
    start = midtrans_emulator.app.clock.now().astimezone(JAKARTA)
    expiry = {
        "start_time": start.strftime("%Y-%m-%d %H:%M:%S +0700"),
        "unit": "minute",
        "duration": 60,
    }
    create(base, "CK-2", 50000, expiry=expiry)
    txn = midtrans_control.choose("CK-2", "bca_va")
    expected = (start.replace(microsecond=0) + timedelta(minutes=60)).strftime("%Y-%m-%d %H:%M:%S")
    assert txn["expiry_time"] == expected
    midtrans_control.advance_clock(3601)
    assert midtrans_control.transaction("CK-2")["transaction_status"] == "expire"


def test_expiry_is_applied_on_read_with_a_moved_clock(
    midtrans_emulator: Any, midtrans_control: Any
) -> None:
    create(midtrans_emulator.url, "CK-3", 50000)
    midtrans_control.choose("CK-3", "gopay")
    midtrans_emulator.app.clock.set(datetime.now(JAKARTA) + timedelta(minutes=16))
    status = core(midtrans_emulator.url, "GET", "CK-3", "status").json()
    assert status["status_code"] == "407"


def test_a_card_capture_settles_after_the_settlement_delay(
    midtrans_emulator: Any, midtrans_control: Any
) -> None:
    create(midtrans_emulator.url, "CK-4", 50000)
    midtrans_control.act("capture", "CK-4")
    midtrans_control.settings(card_settlement_delay=600)
    midtrans_control.advance_clock(599)
    assert midtrans_control.transaction("CK-4")["transaction_status"] == "capture"
    midtrans_control.advance_clock(2)
    assert midtrans_control.transaction("CK-4")["transaction_status"] == "settlement"


def test_control_actions_refuse_what_the_state_machine_forbids(
    midtrans_emulator: Any, midtrans_control: Any
) -> None:
    create(midtrans_emulator.url, "CT-1", 50000)
    midtrans_control.pay("CT-1")
    with pytest.raises(EmulatorError) as refused:
        midtrans_control.expire("CT-1")
    assert refused.value.http_status == 409
    with pytest.raises(EmulatorError) as missing:
        midtrans_control.transaction("NOPE")
    assert missing.value.http_status == 404
    reversed_ = midtrans_control.act("reverse", "CT-1")
    assert reversed_["transaction_status"] == "deny"
    forced = midtrans_control.act("transition", "CT-1", status="chargeback")
    assert forced["transaction_status"] == "chargeback"
    history = [h["status"] for h in midtrans_control.transaction("CT-1")["history"]]
    assert history == ["pending", "settlement", "deny", "chargeback"]


def test_settings_merchants_and_reset(midtrans_emulator: Any, midtrans_control: Any) -> None:
    assert midtrans_control.settings()["challenge_deny_status"] == "deny"
    assert midtrans_control.settings(challenge_deny_status="cancel")["challenge_deny_status"] == (
        "cancel"
    )
    with pytest.raises(EmulatorError):
        midtrans_control.settings(no_such_setting=1)
    merchants = midtrans_control._call("GET", "merchants")["merchants"]
    assert SERVER_KEY not in str(merchants)
    create(midtrans_emulator.url, "RS-1")
    midtrans_control.choose("RS-1")
    assert midtrans_control.transactions()
    midtrans_control.reset()
    assert midtrans_control.transactions() == []
    assert midtrans_control.sessions() == []


def test_the_index_names_the_urls(midtrans_emulator: Any) -> None:
    index = requests.get(f"{midtrans_emulator.url}/_emulator/", timeout=10).json()
    assert index["emulator"] == "midtrans_snap"
    assert index["snap_base_url"] == index["api_base_url"] == midtrans_emulator.url


def test_the_command_line_prints_its_urls_and_a_masked_key() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway_core.cli", "emulator", "midtrans_snap", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        text = "".join(lines)
        url = text.split("listening on ")[1].split()[0]
        assert requests.get(f"{url}/_emulator/", timeout=10).json()["emulator"] == "midtrans_snap"
        assert "SB-Mid-server-" in text
        assert SERVER_KEY not in text
        assert f"MIDTRANS_BASE_URL={url}" in text
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)
    assert process.returncode == 0
