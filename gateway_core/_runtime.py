"""Assemble a working service from configuration: plugins, gateways, ledger, hooks."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from gateway_core._config import Gateways, Settings
from gateway_core._plugins import PluginHost
from gateway_core._service import PaymentService, ServicePolicy
from gateway_core.ledger import Ledger, open_ledger

#: Where the ledger lives when the configuration does not say.
DEFAULT_LEDGER_URL = "sqlite:///gateway-ledger.db"


@attrs.define
class Runtime:
    """Everything a running platform needs, built together and closed together."""

    host: PluginHost
    gateways: Gateways
    ledger: Ledger
    service: PaymentService

    def close(self) -> None:
        """Close gateways (pooled connections) and the ledger."""
        self.gateways.close()
        self.ledger.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_runtime(
    settings: Settings,
    *,
    host: PluginHost | None = None,
    environ: Mapping[str, str] | None = None,
    plugins: Iterable[object] = (),
    policy: ServicePolicy | None = None,
    **service_options: Any,
) -> Runtime:
    """Load plugins, build every configured gateway, open (and migrate) the ledger.

    ``plugins`` are extra plugin objects to register, typically the order system's hook
    implementations.
    """
    env = os.environ if environ is None else environ
    host = host or PluginHost()
    for plugin in plugins:
        host.register(plugin)
    gateways = Gateways.from_settings(settings, registry=host.registry, environ=env)
    ledger = open_ledger(settings.ledger_url or DEFAULT_LEDGER_URL)
    try:
        ledger.migrate()
    except Exception:
        ledger.close()
        raise
    if policy is None:
        try:
            policy = ServicePolicy.from_settings(settings.service)
        except Exception:
            ledger.close()
            raise
    service = PaymentService(
        gateways=gateways, ledger=ledger, hooks=host.hooks, policy=policy, **service_options
    )
    return Runtime(host, gateways, ledger, service)
