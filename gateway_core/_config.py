"""Configuration: which providers, with which settings, from a mapping, a TOML file or the
environment. Validation happens at load; errors name the bad key and never echo a secret.

A configuration file looks like::

    [ledger]
    url = "sqlite:////var/lib/shop/payments.db"   # four slashes: an absolute path

    [providers.dana]              # the gateway's name in this platform
    provider = "faspay_dana"      # the installed provider (defaults to the table name)
    merchant_id = "99999"
    password = "..."              # or leave it out and set FASPAY_PASSWORD

Swapping the provider behind ``dana`` is a change of ``provider`` and its settings only.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from gateway_core._exceptions import ConfigurationError, PluginError
from gateway_core._gateway import Gateway
from gateway_core._redact import register_secret
from gateway_core._registry import ProviderRegistry
from gateway_core._transport import Transport

_MISSING: Any = object()

CONFIG_ENV = "GATEWAY_CONFIG"
LEDGER_ENV = "GATEWAY_LEDGER_URL"
PROVIDERS_ENV = "GATEWAY_PROVIDERS"


class SettingsReader:
    """Typed, validated reads of one provider's settings.

    Each value comes from ``settings[key]`` or, failing that, from the environment variable
    named in ``env_names[key]``. Errors name the key (and the variable) but print a value only
    for keys not listed in ``secrets``. Call :meth:`finish` last: it rejects unknown keys.
    """

    def __init__(
        self,
        settings: Mapping[str, Any],
        *,
        provider: str,
        environ: Mapping[str, str] | None = None,
        env_names: Mapping[str, str] | None = None,
        secrets: frozenset[str] = frozenset(),
        ignore: frozenset[str] = frozenset({"provider"}),
    ) -> None:
        if not isinstance(settings, Mapping):
            raise ConfigurationError(
                f"settings for {provider!r} must be a table/mapping", provider=provider
            )
        self._settings = settings
        self._provider = provider
        self._environ = environ if environ is not None else {}
        self._env_names = env_names or {}
        self._secrets = secrets
        self._seen = set(ignore)

    def _where(self, key: str) -> str:
        env = self._env_names.get(key)
        return f"{key!r} (or ${env})" if env else repr(key)

    def _error(self, key: str, problem: str, value: object = _MISSING) -> ConfigurationError:
        shown = ""
        if value is not _MISSING and key not in self._secrets:
            shown = f", got {value!r}"
        return ConfigurationError(
            f"setting {self._where(key)} {problem}{shown}", key=key, provider=self._provider
        )

    def _raw(self, key: str, default: Any) -> Any:
        self._seen.add(key)
        if key in self._settings and self._settings[key] is not None:
            return self._settings[key]
        env = self._env_names.get(key)
        if env and self._environ.get(env, "") != "":
            return self._environ[env]
        if default is _MISSING:
            typo = self._misspelling_of(key)
            if typo is not None:
                raise ConfigurationError(
                    f"unknown setting {typo!r}: did you mean {key!r}?",
                    key=typo,
                    provider=self._provider,
                )
            raise self._error(key, "is required")
        return default

    def _misspelling_of(self, key: str) -> str | None:
        """A key given in the settings, read by nobody, that looks like ``key``."""
        unread = [k for k in self._settings if isinstance(k, str) and k not in self._seen]
        close = difflib.get_close_matches(key, unread, n=1, cutoff=0.75)
        return close[0] if close else None

    def text(
        self,
        key: str,
        default: str | None = None,
        *,
        pattern: str | None = None,
        max_length: int | None = None,
        choices: frozenset[str] | None = None,
    ) -> str:
        """A string setting, optionally checked against a regex, a length or a set."""
        value = self._raw(key, _MISSING if default is None else default)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise self._error(key, "must be a string", value)
        if choices is not None and value not in choices:
            raise self._error(key, f"must be one of {', '.join(sorted(choices))}", value)
        if pattern is not None and not re.fullmatch(pattern, value):
            raise self._error(key, f"must match {pattern}", value)
        if max_length is not None and len(value) > max_length:
            raise self._error(key, f"must be at most {max_length} characters", value)
        return value

    def names(
        self,
        key: str,
        default: Sequence[str],
        *,
        item: str,
        known: Sequence[str] | None = None,
        required: bool = False,
    ) -> tuple[str, ...]:
        """A list of names: a TOML list, or a comma-separated string (as environment
        variables give it), checked by :meth:`parse_names`."""
        value = self._raw(key, list(default))
        return self.parse_names(
            value, key=key, item=item, known=known, required=required, provider=self._provider
        )

    @staticmethod
    def parse_names(
        value: object,
        *,
        key: str,
        item: str,
        known: Sequence[str] | None = None,
        required: bool = False,
        provider: str = "",
    ) -> tuple[str, ...]:
        """``value`` (a list of strings, or a comma-separated string) as a tuple of names.
        ``item`` words the errors ("payment method"); with ``known``, unknown names are
        refused with the known ones listed; a name given twice is refused; ``required``: at
        least one name. Usable as an ``attrs`` converter of a plugin's configuration."""

        def error(problem: str) -> ConfigurationError:
            return ConfigurationError(f"setting {key!r} {problem}", key=key, provider=provider)

        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise error(f"must be a list of {item} names")
        names = tuple(value)
        if required and not names:
            raise error(f"must name at least one {item}")
        unknown = [name for name in names if known is not None and name not in known]
        if unknown:
            raise error(
                f"names unknown {item}s {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(known or ())}"
            )
        if len(set(names)) != len(names):
            raise error(f"names a {item} twice")
        return names

    def number(
        self, key: str, default: float, *, minimum: float = 0.0, maximum: float = 1e9
    ) -> float:
        """A number setting within [minimum, maximum]."""
        value = self._raw(key, default)
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise self._error(key, "must be a number", value) from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._error(key, "must be a number", value)
        if not minimum <= value <= maximum:
            raise self._error(key, f"must be between {minimum} and {maximum}", value)
        return float(value)

    def integer(self, key: str, default: int, *, minimum: int = 0, maximum: int = 10**9) -> int:
        """An integer setting within [minimum, maximum]."""
        value = self._raw(key, default)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._error(key, "must be an integer", value)
        if not minimum <= value <= maximum:
            raise self._error(key, f"must be between {minimum} and {maximum}", value)
        return value

    def flag(self, key: str, default: bool) -> bool:
        """A boolean setting (``true``/``false``, ``1``/``0``, ``yes``/``no`` from strings)."""
        value = self._raw(key, default)
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
        if not isinstance(value, bool):
            raise self._error(key, "must be true or false", value)
        return value

    def finish(self) -> None:
        """Reject keys nobody read: they are misspellings or settings of another provider."""
        unknown = sorted(set(self._settings) - self._seen)
        if unknown:
            read = sorted(self._seen)
            close = difflib.get_close_matches(str(unknown[0]), read, n=1, cutoff=0.75)
            hint = f": did you mean {close[0]!r}?" if close else ""
            raise ConfigurationError(
                f"unknown setting {unknown[0]!r} for provider {self._provider!r}{hint}",
                key=unknown[0],
                provider=self._provider,
            )


@attrs.frozen
class Settings:
    """The whole configuration: gateways by name, and where the ledger lives."""

    providers: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict, repr=False)
    ledger_url: str = ""
    source: str = ""
    #: The ``[service]`` table: payment-service policy (see ``ServicePolicy.from_settings``).
    service: Mapping[str, Any] = attrs.field(factory=dict)
    #: The ``[plugins.<name>]`` tables: settings of hook plugins (see :class:`PluginConfig`).
    plugins: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict, repr=False)
    #: The ``[worker]`` table: ``gateway worker`` (see ``gateway_core._worker.WorkerConfig``).
    worker: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def gateway_names(self) -> list[str]:
        """Configured gateway names, sorted."""
        return sorted(self.providers)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "<mapping>") -> Settings:
        """Validate the shape of an already-parsed configuration."""
        unknown = sorted(set(data) - {"providers", "ledger", "service", "plugins", "worker"})
        if unknown:
            raise ConfigurationError(f"unknown section {unknown[0]!r} in {source}", key=unknown[0])
        providers = data.get("providers", {})
        if not isinstance(providers, Mapping):
            raise ConfigurationError(f"'providers' must be a table in {source}", key="providers")
        for name, table in providers.items():
            if not isinstance(table, Mapping):
                raise ConfigurationError(
                    f"'providers.{name}' must be a table in {source}", key=f"providers.{name}"
                )
            if not str(name).isidentifier():
                raise ConfigurationError(
                    f"gateway name {name!r} must be an identifier", key=f"providers.{name}"
                )
        ledger = data.get("ledger", {})
        if not isinstance(ledger, Mapping):
            raise ConfigurationError(f"'ledger' must be a table in {source}", key="ledger")
        url = ledger.get("url", "")
        if not isinstance(url, str):
            raise ConfigurationError("'ledger.url' must be a string", key="ledger.url")
        service = data.get("service", {})
        if not isinstance(service, Mapping):
            raise ConfigurationError(f"'service' must be a table in {source}", key="service")
        worker = data.get("worker", {})
        if not isinstance(worker, Mapping):
            raise ConfigurationError(f"'worker' must be a table in {source}", key="worker")
        plugins = data.get("plugins", {})
        if not isinstance(plugins, Mapping) or not all(
            isinstance(table, Mapping) for table in plugins.values()
        ):
            raise ConfigurationError(
                f"'plugins' must be a table of tables ([plugins.<name>]) in {source}",
                key="plugins",
            )
        return cls(
            providers=dict(providers),
            ledger_url=url,
            source=source,
            service=dict(service),
            plugins={str(name): dict(table) for name, table in plugins.items()},
            worker=dict(worker),
        )

    @classmethod
    def load(
        cls, path: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Read a TOML file (``path``, else ``$GATEWAY_CONFIG``), then apply the environment.

        ``$GATEWAY_LEDGER_URL`` overrides ``[ledger] url``; ``$GATEWAY_PROVIDERS`` (for example
        ``dana=faspay_dana,other``) adds gateways configured entirely from their providers'
        own environment variables.
        """
        env = os.environ if environ is None else environ
        if path is None and env.get(CONFIG_ENV):
            path = env[CONFIG_ENV]
        if path is not None:
            import tomllib  # only when there is a file to read

            file = Path(path)
            try:
                data = tomllib.loads(file.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise ConfigurationError(f"configuration file {file} does not exist") from None
            except tomllib.TOMLDecodeError as exc:
                raise ConfigurationError(f"configuration file {file} is not TOML: {exc}") from None
            settings = cls.from_mapping(data, source=str(file))
        else:
            settings = cls(source="<environment>")
        providers = dict(settings.providers)
        for entry in filter(None, (e.strip() for e in env.get(PROVIDERS_ENV, "").split(","))):
            name, _, provider = entry.partition("=")
            providers.setdefault(name.strip(), {"provider": (provider or name).strip()})
        return cls(
            providers=providers,
            ledger_url=env.get(LEDGER_ENV) or settings.ledger_url,
            source=settings.source,
            service=settings.service,
            plugins=settings.plugins,
            worker=settings.worker,
        )


class PluginConfig:
    """What a hook plugin's :func:`~gateway_core.hookspecs.gateway_configure` receives: the
    ``[plugins.<name>]`` tables, the environment, and :meth:`enable` to register the plugin
    objects the configuration turns on (hook implementations that must not exist, and so claim
    no outbox event, when their plugin is not configured).

    A ``[plugins.<name>]`` table that no plugin reads (:meth:`table`, :meth:`reader`) is an
    error, like an unknown key: a misspelt name, or a plugin that is not installed.
    """

    def __init__(self, tables: Mapping[str, Mapping[str, Any]], environ: Mapping[str, str]) -> None:
        self._tables = tables
        self.environ = environ
        self._read: set[str] = set()
        self.enabled: list[tuple[str, object]] = []

    def has(self, name: str) -> bool:
        """True when the configuration has a ``[plugins.<name>]`` table."""
        return name in self._tables

    def table(self, name: str) -> Mapping[str, Any]:
        """The ``[plugins.<name>]`` table (empty when there is none), marked as read."""
        self._read.add(name)
        return self._tables.get(name, {})

    def reader(
        self,
        name: str,
        *,
        env_names: Mapping[str, str] | None = None,
        secrets: frozenset[str] = frozenset(),
    ) -> SettingsReader:
        """A :class:`SettingsReader` over ``[plugins.<name>]`` and the environment."""
        return SettingsReader(
            self.table(name),
            provider=f"plugins.{name}",
            environ=self.environ,
            env_names=env_names,
            secrets=secrets,
            ignore=frozenset(),
        )

    def enable(self, plugin: object, name: str) -> None:
        """Register ``plugin`` (an object with hook implementations) under ``name`` once every
        plugin has read its configuration."""
        self.enabled.append((name, plugin))

    def unread(self) -> list[str]:
        """Names of the ``[plugins.*]`` tables no plugin read."""
        return sorted(set(self._tables) - self._read)


def build_gateway(
    provider: str,
    settings: Mapping[str, Any],
    *,
    registry: ProviderRegistry,
    environ: Mapping[str, str] | None = None,
    transport: Transport | None = None,
) -> Gateway:
    """Build one gateway of the installed provider ``provider`` from its settings."""
    info = registry.get(provider)
    secrets = [
        settings[key]
        for key in info.gateway_class.secret_settings
        if isinstance(settings.get(key), str)
    ]
    register_secret(*secrets)
    try:
        return info.gateway_class.from_config(settings, environ=environ, transport=transport)
    except ConfigurationError:
        raise
    except Exception as exc:
        raise PluginError(
            f"provider {provider!r} (plugin {info.plugin!r}) failed to build from its settings: "
            f"{type(exc).__name__}",
            plugin=info.plugin,
        ) from exc


class Gateways(Mapping[str, Gateway]):
    """Every configured gateway, built and validated at once, looked up by name."""

    def __init__(self, gateways: Mapping[str, Gateway]) -> None:
        self._gateways = dict(gateways)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        registry: ProviderRegistry,
        environ: Mapping[str, str] | None = None,
        transports: Mapping[str, Transport] | None = None,
    ) -> Gateways:
        """Build every gateway in ``settings``; the first invalid one raises."""
        env = os.environ if environ is None else environ
        built: dict[str, Gateway] = {}
        for name in settings.gateway_names:
            table = settings.providers[name]
            provider = table.get("provider", name)
            if not isinstance(provider, str):
                raise ConfigurationError(
                    f"'providers.{name}.provider' must be a string",
                    key=f"providers.{name}.provider",
                )
            try:
                built[name] = build_gateway(
                    provider,
                    table,
                    registry=registry,
                    environ=env,
                    transport=(transports or {}).get(name),
                )
            except ConfigurationError as exc:
                exc.message = f"gateway {name!r}: {exc.message}"
                raise
        return cls(built)

    def __getitem__(self, name: str) -> Gateway:
        try:
            return self._gateways[name]
        except KeyError:
            known = ", ".join(sorted(self._gateways)) or "none"
            raise ConfigurationError(
                f"no gateway named {name!r} is configured (configured: {known})", key=name
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._gateways

    def __iter__(self) -> Iterator[str]:
        return iter(self._gateways)

    def __len__(self) -> int:
        return len(self._gateways)

    def close(self) -> None:
        """Close every gateway's transport."""
        for gateway in self._gateways.values():
            gateway.close()
