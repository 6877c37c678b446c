"""The entry-point module: one hook implementation, as for any gateway_core plugin."""

from gateway_core import ProviderRegistry, hookimpl


@hookimpl
def gateway_register_providers(registry: ProviderRegistry) -> None:
    # By reference: the gateway module is imported on first use, not at discovery.
    registry.add("bayar_kilat._gateway:BayarKilatGateway", name="bayar_kilat")
