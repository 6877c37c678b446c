"""Plugin loading and the typed hook facade (the only code that touches ``pm.hook``)."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

from gateway_core import hookspecs
from gateway_core._events import EventKind, PaymentEvent
from gateway_core._exceptions import ConfigurationError, PluginError
from gateway_core._redact import get_logger
from gateway_core._registry import ProviderRegistry

if TYPE_CHECKING:
    from gateway_core._config import PluginConfig

log = get_logger(__name__)

ENTRY_POINT_GROUP = hookspecs.PROJECT


class Hooks:
    """Typed access to the hooks. Nothing else in the library calls ``pm.hook``."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._pm = pm

    def register_providers(
        self,
        registry: ProviderRegistry,
        *,
        dists: Mapping[str, tuple[str, str]] | None = None,
        only: object | None = None,
    ) -> None:
        """Call every plugin's registration hook, one plugin at a time so errors name it.

        ``dists`` maps plugin names to their (distribution, version).
        """
        dists = dists or {}
        for impl in self._pm.hook.gateway_register_providers.get_hookimpls():
            if only is not None and impl.plugin is not only:
                continue
            name, version = dists.get(impl.plugin_name, ("", ""))
            registry._loading(impl.plugin_name, name, version)
            try:
                impl.function(registry=registry)
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(
                    f"plugin {impl.plugin_name!r} failed while registering providers: "
                    f"{type(exc).__name__}: {exc}",
                    plugin=impl.plugin_name,
                ) from exc
            finally:
                registry._loading("")

    def configure(self, config: PluginConfig) -> None:
        """Call every plugin's configuration hook, one plugin at a time so errors name it."""
        for impl in self._pm.hook.gateway_configure.get_hookimpls():
            try:
                impl.function(config=config)
            except (ConfigurationError, PluginError):
                raise
            except Exception as exc:
                raise PluginError(
                    f"plugin {impl.plugin_name!r} failed while reading its configuration: "
                    f"{type(exc).__name__}",
                    plugin=impl.plugin_name,
                ) from exc

    def emit(self, event: PaymentEvent) -> None:
        """Deliver ``event`` to every implementation of its hook (a lifecycle hook, or
        ``gateway_provider_event`` for a provider event).

        Exceptions from handlers propagate: the caller (the outbox) keeps the event for a
        later retry.
        """
        caller = getattr(self._pm.hook, event.kind.hook_name)
        caller(event=event)

    def handles(self, kind: EventKind) -> bool:
        """True when at least one plugin implements the hook for ``kind``."""
        return bool(getattr(self._pm.hook, kind.hook_name).get_hookimpls())

    def implementations(self, hook_name: str) -> list[str]:
        """Names of the plugins implementing ``hook_name``."""
        return [impl.plugin_name for impl in getattr(self._pm.hook, hook_name).get_hookimpls()]


class PluginHost:
    """A plugin manager, its hook facade and the provider registry, built together.

    There is no global instance: each platform (and each test) makes its own::

        host = PluginHost()                      # loads the "gateway_core" entry points
        host = PluginHost(entry_points=False, plugins=[my_plugin])

    Every plugin error surfaces here, at start-up, as a :class:`~gateway_core.PluginError`
    naming the plugin: an import failure, an unknown (misspelled) hook, a bad hook signature,
    a duplicate provider name.
    """

    def __init__(
        self,
        *,
        entry_points: bool = True,
        plugins: Iterable[object] = (),
        group: str = ENTRY_POINT_GROUP,
    ) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.hooks = Hooks(self.pm)
        self.registry = ProviderRegistry()
        self.distributions: dict[str, tuple[str, str]] = {}
        self._configured: list[object] = []
        if entry_points:
            self._load_entry_points(group)
        for plugin in plugins:
            self._register(plugin, None)
        self._check()
        self.hooks.register_providers(self.registry, dists=self.distributions)

    def _load_entry_points(self, group: str) -> None:
        for ep in sorted(importlib.metadata.entry_points(group=group), key=lambda e: e.name):
            dist = ep.dist
            label = ep.name if dist is None else f"{ep.name} ({dist.metadata['name']})"
            if self.pm.get_plugin(ep.name) is not None or self.pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(
                    f"plugin {label!r} failed to import {ep.value!r}: {type(exc).__name__}: {exc}",
                    plugin=ep.name,
                ) from exc
            self._register(plugin, ep.name)
            if dist is not None:
                self.distributions[ep.name] = (dist.metadata["name"], dist.version)
            log.debug("loaded plugin %s from entry point %s", ep.name, ep.value)

    def _register(self, plugin: object, name: str | None) -> str:
        name = name or self._name_for(plugin)
        try:
            registered = self.pm.register(plugin, name=name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            label = str(name or getattr(plugin, "__name__", repr(plugin)))
            raise PluginError(f"plugin {label!r} is invalid: {exc}", plugin=label) from exc
        assert registered is not None
        return registered

    def _name_for(self, plugin: object) -> str | None:
        """A readable name for an unnamed plugin instance (``shop.hooks.OrderSystem``, then
        ``#2``...), where pluggy would use its ``id()``; modules and classes keep pluggy's."""
        if isinstance(plugin, type) or hasattr(plugin, "__name__"):
            return None
        cls = type(plugin)
        base = name = f"{cls.__module__}.{cls.__qualname__}"
        n = 1
        while self.pm.get_plugin(name) is not None or self.pm.is_blocked(name):
            n += 1
            name = f"{base}#{n}"
        return name

    def _check(self) -> None:
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            plugin = str(self.pm.get_name(exc.plugin) or repr(exc.plugin))
            raise PluginError(
                f"plugin {plugin!r} implements a hook that does not exist: {exc}", plugin=plugin
            ) from exc

    def register(self, plugin: object, name: str | None = None) -> str:
        """Add a plugin after start-up (an order system's hook implementations, usually)."""
        registered = self._register(plugin, name)
        try:
            self._check()
        except PluginError:
            self.pm.unregister(plugin)
            raise
        self.hooks.register_providers(self.registry, dists=self.distributions, only=plugin)
        return registered

    def configure(
        self, tables: Mapping[str, Mapping[str, Any]], environ: Mapping[str, str]
    ) -> None:
        """Hand the ``[plugins.*]`` tables to every plugin (``gateway_configure``) and register
        the hook implementations they enable. A second call replaces what the first enabled.
        A table no plugin reads is a :class:`~gateway_core.ConfigurationError`."""
        from gateway_core._config import PluginConfig  # only when configuring

        self.close_configured()
        config = PluginConfig(tables, environ)
        self.hooks.configure(config)
        unread = config.unread()
        if unread:
            raise ConfigurationError(
                f"no installed plugin reads [plugins.{unread[0]}] (installed plugins: "
                f"{', '.join(self.plugin_names()) or 'none'})",
                key=f"plugins.{unread[0]}",
            )
        for name, plugin in config.enabled:
            self.register(plugin, name)
            self._configured.append(plugin)

    def close_configured(self) -> None:
        """Unregister (and ``close()``, when they have one) the plugins :meth:`configure`
        enabled."""
        configured, self._configured = self._configured, []
        for plugin in configured:
            self.pm.unregister(plugin)
            close = getattr(plugin, "close", None)
            if callable(close):
                close()

    def unregister(self, plugin: object) -> None:
        """Remove a plugin registered with :meth:`register` (its providers stay registered)."""
        self.pm.unregister(plugin)

    def plugin_names(self) -> list[str]:
        """Names of every registered plugin."""
        return sorted(name for name, _ in self.pm.list_name_plugin() if name)
