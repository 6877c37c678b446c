"""The ``gateway_core`` entry point of the Faspay DANA provider.

Loading this module registers nothing by itself and imports no transport. The provider is
registered by reference, so discovering plugins does not import its implementation: the
class is imported the first time a gateway is built or its capabilities are read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway_core import hookimpl

if TYPE_CHECKING:
    from gateway_core import ProviderRegistry


@hookimpl
def gateway_register_providers(registry: ProviderRegistry) -> None:
    """Register :class:`~adapters.faspay_dana.FaspayDanaGateway` as ``faspay_dana``."""
    registry.add("adapters.faspay_dana._gateway:FaspayDanaGateway", name="faspay_dana")
