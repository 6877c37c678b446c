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
from gateway_core.metrics import Metrics, ServiceMetrics, metrics_from_settings

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
        """Close gateways (pooled connections), the plugins the configuration enabled, and
        the ledger."""
        self.gateways.close()
        self.host.close_configured()
        self.service.metrics.close()
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
    metrics: ServiceMetrics | bool | None = None,
    **service_options: Any,
) -> Runtime:
    """Load plugins, build every configured gateway, open (and migrate) the ledger.

    ``plugins`` are extra plugin objects to register, typically the order system's hook
    implementations. The ``[plugins.*]`` tables go to every plugin's ``gateway_configure``
    hook (:meth:`PluginHost.configure`), which enables the hooks they configure.

    ``metrics``: a :class:`~gateway_core.metrics.Metrics` to use as it is, or whether to
    make one (default: ``[service] metrics``); one made here watches the ledger's outbox.
    """
    env = os.environ if environ is None else environ
    host = host or PluginHost()
    for plugin in plugins:
        host.register(plugin)
    host.configure(settings.plugins, env)  # the [plugins.*] tables: before anything opens
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
    if metrics is None or isinstance(metrics, bool):
        try:
            metrics = metrics_from_settings(settings.service, enabled=metrics)
        except Exception:
            ledger.close()
            raise
        if isinstance(metrics, Metrics):
            metrics.watch_outbox(ledger)
    service = PaymentService(
        gateways=gateways,
        ledger=ledger,
        hooks=host.hooks,
        policy=policy,
        metrics=metrics,
        **service_options,
    )
    return Runtime(host, gateways, ledger, service)
