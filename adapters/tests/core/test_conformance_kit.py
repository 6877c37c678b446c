"""The conformance kit's failures say what the plugin did wrong: its checks run here against
deliberately broken variants of the Bayar Kilat example plugin."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from plugin_distributions import EXAMPLE_PLUGIN_DIR

from gateway_core import Acknowledgement, Gateway, Payment
from gateway_core.testing import GatewayConformance, KitTransport


@pytest.fixture(autouse=True)
def _kilat_on_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(EXAMPLE_PLUGIN_DIR))
    yield
    for name in [m for m in sys.modules if m.startswith("bayar_kilat")]:
        del sys.modules[name]


def _kit(broken: type[Gateway]) -> tuple[Any, Gateway, KitTransport]:
    """The Bayar Kilat conformance class, run against ``broken`` instead."""
    from test_bayar_kilat_conformance import API_KEY, WEBHOOK_SECRET, TestBayarKilatConformance

    kit = TestBayarKilatConformance()
    transport = KitTransport(kit.provider_transport())
    settings = {"account": "shop_1", "api_key": API_KEY, "webhook_secret": WEBHOOK_SECRET}
    return kit, broken.from_config(settings, environ={}, transport=transport), transport


def _failure(check: Any, *args: Any) -> str:
    with pytest.raises(pytest.fail.Exception) as info:
        check(*args)
    return str(info.value)


def test_a_redirect_that_forgets_provider_data_is_named() -> None:
    from bayar_kilat import BayarKilatGateway

    class Forgetful(BayarKilatGateway):
        def create(self, request: Any) -> Payment:
            import attrs

            return attrs.evolve(super().create(request), provider_data={})

    kit, gateway, _ = _kit(Forgetful)
    message = _failure(kit.test_redirect_is_rebuilt_from_provider_data, gateway)
    assert "plugin 'bayar_kilat'" in message
    assert "provider_data" in message


def test_a_create_that_drops_the_idempotency_key_is_named() -> None:
    from bayar_kilat import BayarKilatGateway

    class Keyless(BayarKilatGateway):
        def create(self, request: Any) -> Payment:
            import attrs

            return super().create(attrs.evolve(request, idempotency_key="fresh-every-time"))

    kit, gateway, transport = _kit(Keyless)
    message = _failure(kit.test_lost_create_answer, gateway, transport)
    assert "does not carry request.idempotency_key" in message


def test_a_failure_reply_the_provider_takes_as_success_is_named() -> None:
    from bayar_kilat import BayarKilatGateway

    class AlwaysOk(BayarKilatGateway):
        def reply(self, *args: Any, accepted: bool) -> Acknowledgement:
            return Acknowledgement(200, "text/plain", b"", accepted=accepted)

    kit, gateway, _ = _kit(AlwaysOk)
    message = _failure(kit.test_acknowledgements_follow_the_providers_rule, gateway)
    assert "the provider would take the failure reply as success" in message


def test_a_subclass_without_the_plugins_inputs_is_refused() -> None:
    with pytest.raises(TypeError, match="provider_transport, make_gateway"):

        class TestIncomplete(GatewayConformance):
            pass
