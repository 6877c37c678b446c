"""The ``gateway_core`` entry point of the Faspay DANA provider.

Loading this module registers nothing by itself and imports no transport: the gateway class
is imported when the plugin host calls :func:`gateway_register_providers`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway_core import hookimpl

if TYPE_CHECKING:
    from gateway_core import ProviderRegistry


@hookimpl
def gateway_register_providers(registry: ProviderRegistry) -> None:
    """Register :class:`~adapters.faspay_dana.FaspayDanaGateway` as ``faspay_dana``."""
    from adapters.faspay_dana._gateway import FaspayDanaGateway

    registry.add(FaspayDanaGateway)
