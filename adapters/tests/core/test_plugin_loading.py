"""Plugins load through the "gateway_core" entry points; mistakes fail at start-up, named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from plugin_distributions import EXAMPLE_PLUGIN_DIR, make_distribution

from gateway_core import (
    Capability,
    ConfigurationError,
    Gateways,
    HttpResponse,
    MockTransport,
    Money,
    PluginError,
    PluginHost,
    Settings,
    hookimpl,
)
from gateway_core.testing import HookRecorder


def test_first_party_provider_is_discovered_from_installed_metadata() -> None:
    host = PluginHost()
    info = host.registry.get("faspay_dana")
    assert info.plugin == "faspay_dana"
    assert info.distribution == "gateway-faspay-dana"
    assert info.version


def test_the_midtrans_provider_is_discovered_from_its_own_distribution() -> None:
    host = PluginHost()
    info = host.registry.get("midtrans_snap")
    assert info.plugin == "midtrans_snap"
    assert info.distribution == "gateway-midtrans-snap"
    assert info.version
    assert Capability.REFUND in info.capabilities


def test_third_party_plugin_is_discovered_configured_and_usable(
    example_plugin_on_path: Path,
) -> None:
    host = PluginHost()
    info = host.registry.get("acme_pay")
    assert (info.distribution, info.version) == ("acme-pay", "1.0.0")
    assert Capability.INQUIRE in info.capabilities

    def handler(request):  # type: ignore[no-untyped-def]
        return HttpResponse(200, b'{"id": "ac_1", "checkout_url": "https://pay.acme.example/x"}')

    settings = Settings.from_mapping(
        {"providers": {"shop": {"provider": "acme_pay", "account": "shop_1", "api_secret": "s"}}}
    )
    gateways = Gateways.from_settings(
        settings,
        registry=host.registry,
        environ={},
        transports={"shop": MockTransport(handler)},
    )
    from gateway_core import Customer, PaymentRequest

    payment = gateways["shop"].create(
        PaymentRequest(
            order_reference="o-1",
            merchant_reference="o-1-1",
            amount=Money("10.00", "USD"),
            customer=Customer("Ann"),
            description="tea",
            return_url="https://shop.example/back",
        )
    )
    assert payment.provider == "acme_pay"
    assert payment.provider_reference == "ac_1"


def test_swapping_provider_is_a_configuration_change(example_plugin_on_path: Path) -> None:
    host = PluginHost()
    dana = Settings.from_mapping(
        {
            "providers": {
                "checkout": {
                    "provider": "faspay_dana",
                    "merchant_id": "99999",
                    "merchant_name": "Shop",
                    "password": "a-long-test-password",
                }
            }
        }
    )
    acme = Settings.from_mapping(
        {"providers": {"checkout": {"provider": "acme_pay", "account": "shop", "api_secret": "x"}}}
    )
    first = Gateways.from_settings(dana, registry=host.registry, environ={})["checkout"]
    second = Gateways.from_settings(acme, registry=host.registry, environ={})["checkout"]
    assert type(first).name == "faspay_dana"
    assert type(second).name == "acme_pay"


def _load_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str) -> None:
    make_distribution(
        tmp_path,
        name,
        {f"{name}_plugin": source},
        f"[gateway_core]\n{name} = {name}_plugin\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path))


def test_plugin_with_misspelled_hook_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _load_with(
        tmp_path,
        monkeypatch,
        "typo",
        "from gateway_core import hookimpl\n\n"
        "@hookimpl\ndef gateway_payment_payed(event):\n    pass\n",
    )
    with pytest.raises(PluginError, match="typo") as info:
        PluginHost()
    assert info.value.plugin == "typo"
    assert "gateway_payment_payed" in str(info.value)


def test_plugin_that_raises_on_import_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _load_with(tmp_path, monkeypatch, "broken", "raise RuntimeError('boom at import')\n")
    with pytest.raises(PluginError, match="broken") as info:
        PluginHost()
    assert "failed to import" in str(info.value)


def test_duplicate_provider_name_is_refused_naming_both_plugins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, example_plugin_on_path: Path
) -> None:
    _load_with(
        tmp_path,
        monkeypatch,
        "copycat",
        "from gateway_core import hookimpl\n"
        "from acme_pay import AcmePayGateway\n\n"
        "class Again(AcmePayGateway):\n    pass\n\n"
        "@hookimpl\ndef gateway_register_providers(registry):\n    registry.add(Again)\n",
    )
    with pytest.raises(PluginError, match="registered twice") as info:
        PluginHost()
    assert "acme_pay" in str(info.value)
    assert "copycat" in str(info.value)


def test_registering_something_that_is_not_a_gateway_is_refused() -> None:
    class Bad:
        @hookimpl
        def gateway_register_providers(self, registry):  # type: ignore[no-untyped-def]
            registry.add(dict)

    with pytest.raises(PluginError, match="not a Gateway subclass"):
        PluginHost(entry_points=False, plugins=[Bad()])


def test_order_system_plugin_can_be_added_after_start() -> None:
    host = PluginHost(entry_points=False)
    recorder = HookRecorder()
    host.register(recorder, name="orders")
    assert "orders" in host.hooks.implementations("gateway_payment_paid")


def test_two_hosts_share_nothing() -> None:
    first = PluginHost(entry_points=False)
    first.register(HookRecorder(), name="orders")
    second = PluginHost(entry_points=False)
    assert second.hooks.implementations("gateway_payment_paid") == []


def test_unknown_provider_name_is_a_configuration_error() -> None:
    host = PluginHost()
    settings = Settings.from_mapping({"providers": {"x": {"provider": "nope"}}})
    with pytest.raises(ConfigurationError, match="no provider named 'nope'"):
        Gateways.from_settings(settings, registry=host.registry, environ={})


def _run_cli(*args: str, extra_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = None
    if extra_path is not None:
        import os

        env = dict(os.environ, PYTHONPATH=str(extra_path))
    return subprocess.run(
        [sys.executable, "-m", "gateway_core.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_providers_command_lists_installed_plugins_as_json() -> None:
    result = _run_cli("providers", "--json", extra_path=EXAMPLE_PLUGIN_DIR)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)["providers"]}
    assert set(rows) >= {"faspay_dana", "acme_pay"}
    assert rows["acme_pay"]["distribution"] == "acme-pay"
    assert rows["faspay_dana"]["notification_signature_covers"] == ["merchant_reference", "status"]
    assert "inquire" in rows["faspay_dana"]["capabilities"]
    assert rows["midtrans_snap"]["distribution"] == "gateway-midtrans-snap"
    assert "status" not in rows["midtrans_snap"]["notification_signature_covers"]
    assert "refund" in rows["midtrans_snap"]["capabilities"]


def test_providers_command_human_output_names_capabilities() -> None:
    result = _run_cli("providers")
    assert result.returncode == 0, result.stderr
    assert "faspay_dana" in result.stdout
    assert "capabilities:" in result.stdout


def test_discovery_does_not_import_provider_implementations() -> None:
    code = (
        "import sys, gateway_core\n"
        "host = gateway_core.PluginHost()\n"
        "assert 'faspay_dana' in host.registry and 'midtrans_snap' in host.registry\n"
        "loaded = [m for m in ('gateway_faspay_dana._gateway', 'gateway_midtrans_snap._gateway',"
        " 'requests', 'tenacity')"
        " if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_a_provider_registered_by_a_broken_reference_fails_naming_the_plugin() -> None:
    class Broken:
        @hookimpl
        def gateway_register_providers(self, registry):  # type: ignore[no-untyped-def]
            registry.add("no_such_module_xyz:Gateway", name="ghost")

    host = PluginHost(entry_points=False, plugins=[Broken()])
    assert "ghost" in host.registry  # registered by reference: nothing imported yet
    with pytest.raises(PluginError, match="cannot load provider 'ghost'"):
        _ = host.registry.get("ghost").gateway_class
