"""The provider registry that the registration hook fills."""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from gateway_core._exceptions import PluginError
from gateway_core._gateway import REQUIRED_CAPABILITIES, Gateway
from gateway_core._models import Capability, TrustDeclaration


@attrs.frozen
class ProviderInfo:
    """One registered provider and where it came from."""

    name: str
    gateway_class: type[Gateway]
    plugin: str
    distribution: str = ""
    version: str = ""

    @property
    def capabilities(self) -> frozenset[Capability]:
        """The operations the provider declares."""
        return self.gateway_class.capabilities

    @property
    def trust(self) -> TrustDeclaration:
        """What the provider's inbound signatures prove."""
        return self.gateway_class.trust


class ProviderRegistry:
    """Provider classes by name. Plugins call :meth:`add` from ``gateway_register_providers``."""

    def __init__(self) -> None:
        self._providers: dict[str, ProviderInfo] = {}
        self._current = ("", "", "")

    def _loading(self, plugin: str, distribution: str = "", version: str = "") -> None:
        self._current = (plugin, distribution, version)

    def add(self, gateway_class: type[Gateway]) -> None:
        """Register a gateway class under its ``name``; a taken name is an error."""
        plugin, distribution, version = self._current
        label = plugin or "<direct>"
        if not (isinstance(gateway_class, type) and issubclass(gateway_class, Gateway)):
            raise PluginError(
                f"plugin {label!r} registered {gateway_class!r}, which is not a Gateway subclass",
                plugin=label,
            )
        name = getattr(gateway_class, "name", "")
        if not isinstance(name, str) or not name.isidentifier():
            raise PluginError(
                f"plugin {label!r}: {gateway_class.__qualname__}.name must be an identifier",
                plugin=label,
            )
        if getattr(gateway_class, "__abstractmethods__", None):
            missing = ", ".join(sorted(gateway_class.__abstractmethods__))
            raise PluginError(
                f"plugin {label!r}: provider {name!r} does not implement {missing}", plugin=label
            )
        missing_caps = REQUIRED_CAPABILITIES - gateway_class.capabilities
        if missing_caps:
            caps = ", ".join(sorted(c.value for c in missing_caps))
            raise PluginError(
                f"plugin {label!r}: provider {name!r} lacks required capabilities {caps}",
                plugin=label,
            )
        if not isinstance(getattr(gateway_class, "trust", None), TrustDeclaration):
            raise PluginError(
                f"plugin {label!r}: provider {name!r} must declare a TrustDeclaration as `trust`",
                plugin=label,
            )
        if name in self._providers:
            first = self._providers[name].plugin
            raise PluginError(
                f"provider name {name!r} registered twice: by plugin {first!r} and by "
                f"plugin {label!r}",
                plugin=label,
            )
        self._providers[name] = ProviderInfo(name, gateway_class, label, distribution, version)

    def get(self, name: str) -> ProviderInfo:
        """The provider called ``name``; :class:`~gateway_core.ConfigurationError` if absent."""
        try:
            return self._providers[name]
        except KeyError:
            known = ", ".join(sorted(self._providers)) or "none"
            raise PluginError(
                f"no provider named {name!r} is installed (installed: {known})", plugin=name
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._providers

    def __iter__(self) -> Iterator[ProviderInfo]:
        return iter(sorted(self._providers.values(), key=lambda p: p.name))

    def __len__(self) -> int:
        return len(self._providers)
