"""The plugin module, the public surface and the integrators' test builders."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import gateway_faspay_dana as package
from gateway_core import Money, PaymentStatus, PluginHost
from gateway_faspay_dana import FaspayConfig, FaspayDanaGateway, plugin
from gateway_faspay_dana.testing import config_of, signed_notification, signed_return_query


def test_the_plugin_registers_faspay_dana() -> None:
    host = PluginHost(entry_points=False, plugins=[plugin])
    info = host.registry.get("faspay_dana")
    assert info.gateway_class is FaspayDanaGateway


def test_importing_the_plugin_does_not_import_a_transport() -> None:
    code = (
        "import sys, gateway_faspay_dana.plugin\n"
        "print(sorted(m for m in ('requests', 'urllib3', 'defusedxml') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_all_is_sorted() -> None:
    assert package.__all__ == sorted(package.__all__)


def test_all_is_complete() -> None:
    # Public names load lazily: every name in __all__ has a source module, and resolves.
    assert set(package._LAZY) == set(package.__all__)
    for name in package.__all__:
        value = getattr(package, name)
        module = getattr(value, "__module__", "gateway_faspay_dana")
        if inspect.isclass(value) or inspect.isfunction(value):
            assert module.startswith("gateway_faspay_dana."), name


def test_unknown_names_are_attribute_errors() -> None:
    assert not hasattr(package, "NoSuchThing")


def test_builders_accept_a_pair_of_credentials() -> None:
    config = config_of(("31025", "p@ssw0rd"))
    assert (config.user_id, config.password) == ("bot31025", "p@ssw0rd")


def test_builders_accept_a_settings_mapping() -> None:
    config = config_of({"merchant_id": "31025", "password": "p@ssw0rd"})
    assert config.merchant_id == "31025"


def test_signed_notification_reproduces_the_docs_json_signature() -> None:
    body = signed_notification(
        ("31835", "p@ssw0rd"),
        bill_no="220171004154635022158001",
        trx_id="3183540500001172",
        status="2",
        amount=5000000,
    )
    assert json.loads(body)["signature"] == "075c4983ba9883d41e1b3eab0de580dfc73d875b"


def test_signed_notification_legacy_reproduces_the_docs_xml_signature() -> None:
    body = signed_notification(
        ("31025", "p@ssw0rd"),
        bill_no="300134486",
        trx_id="8985310250011254",
        status=PaymentStatus.PAID,
        amount=5000000,
        fmt="xml",
        legacy=True,
    )
    assert b"<signature>9ed18926fa88f83b469f3ae73ef71ef2a4835c03</signature>" in body


def test_overrides_replace_or_remove_fields_after_signing() -> None:
    config = FaspayConfig(merchant_id="99999", merchant_name="Store", password="p@ssw0rd")
    body = signed_notification(
        config,
        bill_no="B1",
        trx_id="1",
        status="2",
        amount=Money("1", "IDR"),
        payment_total="999",
        merchant=None,
    )
    payload = json.loads(body)
    assert payload["payment_total"] == "999"
    assert "merchant" not in payload


def test_signed_return_query_reproduces_the_docs_example() -> None:
    query = signed_return_query(
        ("99999", "p@ssw0rd"),
        bill_no="4370",
        status="0",
        trx_id="8985999990013136",
        amount=10000,
    )
    assert query["signature"] == "0da33ad07fe9980f7b7ff70a964803e821a86866"
    assert list(query)[:4] == ["trx_id", "merchant_id", "merchant", "bill_no"]
    assert query["bill_ref"] == "4370"


def test_importing_the_plugin_does_not_import_the_provider() -> None:
    code = (
        "import sys, gateway_faspay_dana.plugin\n"
        "print(sorted(m for m in sys.modules if m.startswith('gateway_faspay_dana.')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "['gateway_faspay_dana.plugin']"
