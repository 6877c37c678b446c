"""Configuration by name: settings, environment fallbacks, hosts and overrides."""

from __future__ import annotations

from datetime import timedelta

import pytest
from midtrans_support import SERVER_KEY

from gateway_core import ConfigurationError, Gateways, PluginHost, Settings
from gateway_midtrans_snap import MidtransConfig, MidtransSnapGateway


def test_the_environment_fills_the_gaps_and_settings_win() -> None:
    environ = {
        "MIDTRANS_SERVER_KEY": SERVER_KEY,
        "MIDTRANS_CLIENT_KEY": "SB-Mid-client-abc",
        "MIDTRANS_MERCHANT_ID": "G123450001",
        "MIDTRANS_ENABLED_PAYMENTS": "gopay, bca_va",
    }
    config = MidtransConfig.from_settings({"merchant_id": "G999"}, environ)
    assert config.server_key == SERVER_KEY
    assert config.client_key == "SB-Mid-client-abc"
    assert config.merchant_id == "G999"
    assert config.enabled_payments == ("gopay", "bca_va")


def test_hosts_per_environment() -> None:
    sandbox = MidtransConfig.from_settings({"server_key": SERVER_KEY}, {})
    assert (sandbox.snap_base, sandbox.api_base) == (
        "https://app.sandbox.midtrans.com",
        "https://api.sandbox.midtrans.com",
    )
    production = MidtransConfig.from_settings(
        {"server_key": "Mid-server-abc", "environment": "production"}, {}
    )
    assert (production.snap_base, production.api_base) == (
        "https://app.midtrans.com",
        "https://api.midtrans.com",
    )


def test_base_url_overrides_both_apis_and_each_can_be_set_alone() -> None:
    both = MidtransConfig.from_settings(
        {"server_key": SERVER_KEY, "base_url": "http://127.0.0.1:8080/"}, {}
    )
    assert both.snap_base == both.api_base == "http://127.0.0.1:8080"
    split = MidtransConfig.from_settings(
        {
            "server_key": SERVER_KEY,
            "base_url": "http://127.0.0.1:8080",
            "api_base_url": "http://localhost:9090",
        },
        {},
    )
    assert (split.snap_base, split.api_base) == ("http://127.0.0.1:8080", "http://localhost:9090")


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({}, "server_key"),
        ({"server_key": ""}, "server_key"),
        ({"server_key": SERVER_KEY, "environment": "production"}, "server_key"),
        ({"server_key": "Mid-server-abc"}, "server_key"),
        ({"server_key": SERVER_KEY, "environment": "staging"}, "environment"),
        ({"server_key": SERVER_KEY, "base_url": "http://midtrans.example"}, "base_url"),
        ({"server_key": SERVER_KEY, "snap_base_url": "https://u:p@x.example"}, "snap_base_url"),
        ({"server_key": SERVER_KEY, "enabled_payments": ["gopay", "paypal"]}, "enabled_payments"),
        ({"server_key": SERVER_KEY, "enabled_payments": ["gopay", "gopay"]}, "enabled_payments"),
        ({"server_key": SERVER_KEY, "expiry_minutes": 2}, "expiry_minutes"),
        ({"server_key": SERVER_KEY, "expiry_minutes": 20000}, "expiry_minutes"),
        ({"server_key": SERVER_KEY, "notification_url": "ftp://x.example"}, "notification_url"),
        ({"server_key": SERVER_KEY, "sever_key": "x"}, "sever_key"),
    ],
)
def test_bad_settings_name_their_key(settings: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        MidtransConfig.from_settings(settings, {})
    assert info.value.key == key


def test_expiry_default_is_snaps_own() -> None:
    gateway = MidtransSnapGateway.from_config({"server_key": SERVER_KEY}, environ={})
    assert gateway.default_expiry == timedelta(hours=24)
    assert gateway.default_expiry_for("gopay") == timedelta(hours=24)
    shorter = MidtransSnapGateway.from_config(
        {"server_key": SERVER_KEY, "expiry_minutes": 30}, environ={}
    )
    assert shorter.default_expiry == timedelta(minutes=30)
    assert shorter.default_currency == "IDR"


def test_configured_by_name_through_the_plugin_host() -> None:
    host = PluginHost()
    info = host.registry.get("midtrans_snap")
    assert (info.plugin, info.distribution) == ("midtrans_snap", "gateway-midtrans-snap")
    settings = Settings.from_mapping(
        {"providers": {"snap": {"provider": "midtrans_snap", "merchant_id": "G123450001"}}}
    )
    gateways = Gateways.from_settings(
        settings, registry=host.registry, environ={"MIDTRANS_SERVER_KEY": SERVER_KEY}
    )
    gateway = gateways["snap"]
    assert type(gateway).name == "midtrans_snap"
    assert gateway.merchant_id == "G123450001"
    assert SERVER_KEY not in repr(gateway)
