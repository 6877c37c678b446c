"""Settings of one Midtrans Snap gateway, validated once at start-up.

``MidtransConfig.from_settings`` reads a mapping (a TOML table) with the environment as a
fallback (``MIDTRANS_SERVER_KEY``, ``MIDTRANS_CLIENT_KEY``, ``MIDTRANS_ENV``,
``MIDTRANS_MERCHANT_ID``, ``MIDTRANS_BASE_URL``, ``MIDTRANS_SNAP_BASE_URL``,
``MIDTRANS_API_BASE_URL``, ``MIDTRANS_ENABLED_PAYMENTS`` (comma-separated),
``MIDTRANS_NOTIFICATION_URL``); values in the mapping win. Every error is a
:class:`gateway_core.ConfigurationError` naming the key; the server key never appears in an
error, a log line or a ``repr``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final
from urllib.parse import urlsplit

import attrs

from gateway_core import ConfigurationError, SettingsReader
from gateway_midtrans_snap._codes import KNOWN_PAYMENTS, PROVIDER

SANDBOX: Final = "sandbox"
PRODUCTION: Final = "production"

#: Snap hosts per environment (§1.1); requests go to ``<host>/snap/v1/transactions``.
SNAP_BASE_URLS: Mapping[str, str] = {
    SANDBOX: "https://app.sandbox.midtrans.com",
    PRODUCTION: "https://app.midtrans.com",
}
#: Core API hosts per environment (§1.1); requests go to ``<host>/v2/{order_id}/...``.
API_BASE_URLS: Mapping[str, str] = {
    SANDBOX: "https://api.sandbox.midtrans.com",
    PRODUCTION: "https://api.midtrans.com",
}

ENV_NAMES: Mapping[str, str] = {
    "server_key": "MIDTRANS_SERVER_KEY",
    "client_key": "MIDTRANS_CLIENT_KEY",
    "environment": "MIDTRANS_ENV",
    "merchant_id": "MIDTRANS_MERCHANT_ID",
    "base_url": "MIDTRANS_BASE_URL",
    "snap_base_url": "MIDTRANS_SNAP_BASE_URL",
    "api_base_url": "MIDTRANS_API_BASE_URL",
    "enabled_payments": "MIDTRANS_ENABLED_PAYMENTS",
    "notification_url": "MIDTRANS_NOTIFICATION_URL",
}

#: Setting keys whose values are secrets.
SECRET_SETTINGS: Final = frozenset({"server_key"})

#: Snap refuses an expiry below 20 s and caps it at 7 days (§2.7; D6 says 5 minutes is the
#: minimum): the plugin never asks for less than 5 minutes nor more than 7 days.
MIN_EXPIRY: Final = timedelta(minutes=5)
MAX_EXPIRY: Final = timedelta(days=7)
_LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


def _error(key: str, problem: str) -> ConfigurationError:
    return ConfigurationError(f"setting {key!r} {problem}", key=key, provider=PROVIDER)


def check_url(key: str, value: str, *, path_allowed: bool = True) -> str:
    """Validate a URL setting; return it without a trailing slash.

    ``https`` is required except for loopback hosts (``127.0.0.1``, ``localhost``, ``::1``),
    where plain ``http`` is allowed for a local emulator. User info, a query and a fragment are
    refused. The value is never echoed.
    """
    problem = "must be an https URL (http only for 127.0.0.1, localhost or ::1)"
    if not isinstance(value, str) or _CONTROL.search(value) or " " in value:
        raise _error(key, problem)
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise _error(key, problem) from None
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise _error(key, "must not contain user info")
    if parts.query or parts.fragment:
        raise _error(key, "must not have a query or fragment")
    if not host or parts.scheme not in {"https", "http"}:
        raise _error(key, problem)
    if parts.scheme == "http" and host not in _LOOPBACK:
        raise _error(key, problem)
    if not path_allowed and parts.path.strip("/"):
        raise _error(key, "must be a host, without a path")
    return value.rstrip("/")


def _server_key(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    # Never show the value: not even its length or its type's repr.
    if not isinstance(value, str) or not value.strip():
        raise _error("server_key", "must be a non-empty string")
    if len(value) > 256 or _CONTROL.search(value) or value != value.strip():
        raise _error("server_key", "must be at most 256 printable characters")


def _payments(value: object) -> tuple[str, ...]:
    """``enabled_payments`` as a tuple of known names (a list, or a comma-separated string)."""
    return SettingsReader.parse_names(
        value,
        key="enabled_payments",
        item="Midtrans payment",
        known=sorted(KNOWN_PAYMENTS),
        provider=PROVIDER,
    )


def _expiry(instance: object, attribute: attrs.Attribute[timedelta], value: timedelta) -> None:
    if not isinstance(value, timedelta) or not MIN_EXPIRY <= value <= MAX_EXPIRY:
        raise _error("expiry_minutes", "must be between 5 minutes and 7 days")


@attrs.frozen(kw_only=True)
class MidtransConfig:
    """Everything one Midtrans Snap gateway needs to know.

    ``snap_base_url`` and ``api_base_url`` override the environment's hosts (a local
    emulator serves both from one ``base_url``). ``merchant_id`` (the dashboard's merchant
    id, e.g. ``G123450001``) is optional: when set, a notification naming another merchant is
    held for review. ``enabled_payments`` limits the Snap page to those payments (empty: every
    payment the merchant has activated). ``notification_url`` is sent as
    ``X-Override-Notification`` with every create, so notifications of this gateway's orders go
    there instead of the dashboard's URL (two gateways, each with its own endpoint).
    """

    server_key: str = attrs.field(repr=False, validator=_server_key)
    client_key: str = ""
    environment: str = SANDBOX
    merchant_id: str = ""
    snap_base_url: str = ""
    api_base_url: str = ""
    enabled_payments: tuple[str, ...] = attrs.field(default=(), converter=_payments)
    notification_url: str = attrs.field(default="", repr=False)
    expiry: timedelta = attrs.field(default=timedelta(hours=24), validator=_expiry)
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    deadline: float = 45.0
    max_retries: int = 2
    max_notification_bytes: int = 65536

    def __attrs_post_init__(self) -> None:
        if self.environment not in (SANDBOX, PRODUCTION):
            raise _error("environment", "must be one of production, sandbox")
        if self.environment == PRODUCTION and self.server_key.startswith("SB-"):
            raise _error("server_key", "is a sandbox key (SB-...) but environment is production")
        if self.environment == SANDBOX and self.server_key.startswith("Mid-server-"):
            raise _error("server_key", "is a production key but environment is sandbox")
        for key in ("snap_base_url", "api_base_url", "notification_url"):
            if getattr(self, key):
                check_url(key, getattr(self, key))

    @property
    def snap_base(self) -> str:
        """Where Snap calls go: the override, else the environment's Snap host."""
        return self.snap_base_url.rstrip("/") or SNAP_BASE_URLS[self.environment]

    @property
    def api_base(self) -> str:
        """Where Core API calls go: the override, else the environment's API host."""
        return self.api_base_url.rstrip("/") or API_BASE_URLS[self.environment]

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], environ: Mapping[str, str] | None = None
    ) -> MidtransConfig:
        """Read and validate settings; ``environ`` (default ``os.environ``) fills the gaps.

        Keys: ``server_key``, ``client_key``, ``environment``, ``merchant_id``, ``base_url``
        (both APIs), ``snap_base_url``, ``api_base_url``, ``enabled_payments`` (a list, or in
        ``MIDTRANS_ENABLED_PAYMENTS`` a comma-separated string), ``notification_url``,
        ``expiry_minutes``, ``connect_timeout``, ``read_timeout``, ``deadline``,
        ``max_retries``, ``max_notification_bytes`` (and ``provider``, ignored). Unknown keys
        are rejected.
        """
        env = os.environ if environ is None else environ
        read = SettingsReader(
            settings,
            provider=PROVIDER,
            environ=env,
            env_names=ENV_NAMES,
            secrets=SECRET_SETTINGS,
        )
        base_url = read.text("base_url", "")
        values: dict[str, Any] = {
            "server_key": read.text("server_key"),
            "client_key": read.text("client_key", "", pattern=r"[\w-]{0,128}"),
            "environment": read.text(
                "environment", SANDBOX, choices=frozenset({SANDBOX, PRODUCTION})
            ),
            "merchant_id": read.text("merchant_id", "", pattern=r"[A-Za-z0-9_-]{0,64}"),
            "snap_base_url": read.text("snap_base_url", "") or base_url,
            "api_base_url": read.text("api_base_url", "") or base_url,
            "enabled_payments": read.names(
                "enabled_payments", (), item="Midtrans payment", known=sorted(KNOWN_PAYMENTS)
            ),
            "notification_url": read.text("notification_url", ""),
            "expiry": timedelta(
                minutes=read.integer("expiry_minutes", 1440, minimum=5, maximum=10080)
            ),
            "connect_timeout": read.number("connect_timeout", 5.0, minimum=0.01, maximum=300),
            "read_timeout": read.number("read_timeout", 30.0, minimum=0.01, maximum=600),
            "deadline": read.number("deadline", 45.0, minimum=0.01, maximum=3600),
            "max_retries": read.integer("max_retries", 2, minimum=0, maximum=10),
            "max_notification_bytes": read.integer(
                "max_notification_bytes", 65536, minimum=4096, maximum=1 << 20
            ),
        }
        if base_url:
            check_url("base_url", base_url)
        read.finish()
        return cls(**values)
