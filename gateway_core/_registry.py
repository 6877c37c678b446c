"""The provider registry that the registration hook fills."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator

import attrs

from gateway_core._exceptions import PluginError
from gateway_core._gateway import REQUIRED_CAPABILITIES, Gateway
from gateway_core._models import Capability, TrustDeclaration
from gateway_core._redact import register_secret_pattern


def _validate(gateway_class: object, label: str) -> type[Gateway]:
    """Check that ``gateway_class`` is a usable provider; PluginError naming ``label``."""
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
    if (
        not gateway_class.trust.notification_settles
        and Capability.INQUIRE not in gateway_class.capabilities
    ):
        raise PluginError(
            f"plugin {label!r}: provider {name!r} declares that its notifications must be "
            "confirmed by an inquiry (notification_settles=False) but cannot inquire",
            plugin=label,
        )
    return gateway_class


@attrs.define
class ProviderInfo:
    """One registered provider and where it came from.

    A provider registered by reference (``"module:Class"``) is imported and checked on first
    use of :attr:`gateway_class`, so discovering plugins imports no provider implementation.
    """

    name: str
    plugin: str
    distribution: str = ""
    version: str = ""
    target: str = ""
    _gateway_class: type[Gateway] | None = attrs.field(default=None, alias="gateway_class")

    @property
    def gateway_class(self) -> type[Gateway]:
        """The gateway class (imported now if it was registered by reference)."""
        if self._gateway_class is None:
            module_name, _, attribute = self.target.partition(":")
            try:
                loaded = getattr(importlib.import_module(module_name), attribute)
            except Exception as exc:
                raise PluginError(
                    f"plugin {self.plugin!r}: cannot load provider {self.name!r} from "
                    f"{self.target!r}: {type(exc).__name__}: {exc}",
                    plugin=self.plugin,
                ) from exc
            cls = _validate(loaded, self.plugin)
            if cls.name != self.name:
                raise PluginError(
                    f"plugin {self.plugin!r} registered {self.target!r} as {self.name!r}, "
                    f"but its name is {cls.name!r}",
                    plugin=self.plugin,
                )
            self._gateway_class = cls
        return self._gateway_class

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

    def add(self, gateway: type[Gateway] | str, *, name: str = "") -> None:
        """Register a gateway class under its ``name``; a taken name is an error.

        ``gateway`` may also be a reference, ``"package.module:ClassName"``, with ``name``
        given: the class is then imported on first use (keeps start-up cheap).
        """
        plugin, distribution, version = self._current
        label = plugin or "<direct>"
        if isinstance(gateway, str):
            if not name.isidentifier() or ":" not in gateway:
                raise PluginError(
                    f"plugin {label!r}: a provider registered by reference needs "
                    "'module:Class' and an identifier name=",
                    plugin=label,
                )
            info = ProviderInfo(name, label, distribution, version, target=gateway)
        else:
            cls = _validate(gateway, label)
            info = ProviderInfo(cls.name, label, distribution, version, gateway_class=cls)
        if info.name in self._providers:
            first = self._providers[info.name].plugin
            raise PluginError(
                f"provider name {info.name!r} registered twice: by plugin {first!r} and by "
                f"plugin {label!r}",
                plugin=label,
            )
        self._providers[info.name] = info

    def add_redaction(self, *patterns: str | re.Pattern[str]) -> None:
        """Contribute regular expressions whose matches are scrubbed from every log line,
        error and journal entry, from now on and for the whole process (see
        :func:`gateway_core.register_secret_pattern` for the rules a pattern must follow).

        For the provider-specific shapes the core cannot know: a national phone format, a URL
        path segment that carries a signature. Call it from ``gateway_register_providers``, so
        the patterns are active as soon as the plugin is loaded, before its gateway class is
        imported. A pattern that does not compile or matches the empty string is a
        :class:`~gateway_core.PluginError` naming the plugin.
        """
        label = self._current[0] or "<direct>"
        try:
            register_secret_pattern(*patterns)
        except (re.error, ValueError, TypeError) as exc:
            raise PluginError(
                f"plugin {label!r} contributed a bad redaction pattern: {exc}", plugin=label
            ) from exc

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
