"""The entry-point module: one hook implementation, as for any gateway_core plugin."""

from gateway_core import ProviderRegistry, hookimpl


@hookimpl
def gateway_register_providers(registry: ProviderRegistry) -> None:
    from acme_pay import AcmePayGateway

    registry.add(AcmePayGateway)
