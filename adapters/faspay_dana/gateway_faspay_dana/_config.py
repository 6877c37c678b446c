"""Settings of one Faspay DANA gateway, validated once at start-up.

``FaspayConfig.from_settings`` reads a mapping (a TOML table) with the environment as a
fallback (``FASPAY_MERCHANT_ID``, ``FASPAY_MERCHANT_NAME``, ``FASPAY_USER_ID``,
``FASPAY_PASSWORD``, ``FASPAY_ENV``, ``FASPAY_BASE_URL``, ``FASPAY_CHANNELS`` (comma-separated),
``FASPAY_OVO_FLOW``); values in the mapping win. Every
error is a :class:`gateway_core.ConfigurationError` naming the key; the password never appears
in an error, a log line or a ``repr``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import attrs

from gateway_core import ConfigurationError, SettingsReader
from gateway_faspay_dana._channels import DEFAULT_CHANNELS, known_methods
from gateway_faspay_dana._errors import PROVIDER

SANDBOX = "sandbox"
PRODUCTION = "production"

#: API hosts per environment (§2.1).
BASE_URLS: Mapping[str, str] = {
    SANDBOX: "https://debit-sandbox.faspay.co.id",
    PRODUCTION: "https://web.faspay.co.id",
}
#: The fixed ``<stage>`` path segment of the browser redirect URL per environment (§7).
REDIRECT_STAGES: Mapping[str, str] = {
    SANDBOX: "0830000010100000",
    PRODUCTION: "2830000010100000",
}

ENV_NAMES: Mapping[str, str] = {
    "merchant_id": "FASPAY_MERCHANT_ID",
    "merchant_name": "FASPAY_MERCHANT_NAME",
    "user_id": "FASPAY_USER_ID",
    "password": "FASPAY_PASSWORD",
    "environment": "FASPAY_ENV",
    "base_url": "FASPAY_BASE_URL",
    "ovo_flow": "FASPAY_OVO_FLOW",
    # method names separated by commas (in a settings table: a list, or the same string)
    "channels": "FASPAY_CHANNELS",
}

#: How OVO (812) is paid: ``redirect`` to Faspay's OVO page (option a, what the official
#: plugins do) or ``push`` from our side (option b, ``POST /pws/ovo_direct``; its answer and
#: timing are ASSUMPTIONS, channels reference §4.2).
OVO_REDIRECT = "redirect"
OVO_PUSH = "push"

#: Setting keys whose values are secrets.
SECRET_SETTINGS = frozenset({"password"})

MAX_EXPIRY = timedelta(days=30)
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _error(key: str, problem: str) -> ConfigurationError:
    return ConfigurationError(f"setting {key!r} {problem}", key=key, provider=PROVIDER)


def _merchant_id(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or re.fullmatch(r"[0-9]{5}", value) is None:
        raise _error("merchant_id", "must be exactly 5 digits (Faspay's merchant code)")


def _merchant_name(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not 1 <= len(value) <= 32 or _CONTROL.search(value):
        raise _error("merchant_name", "must be 1 to 32 printable characters")


def _user_id(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or re.fullmatch(r"[A-Za-z0-9_.@-]{1,64}", value) is None:
        raise _error("user_id", "must be 1 to 64 letters, digits or _ . @ -")


def _password(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    # Never show the value: not even its length or its type's repr.
    if not isinstance(value, str) or not value:
        raise _error("password", "must be a non-empty string")
    if len(value) > 256 or _CONTROL.search(value):
        raise _error("password", "must be at most 256 printable characters")


def _choice(*choices: str) -> Any:
    def check(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
        if value not in choices:
            raise _error(attribute.name, f"must be one of {', '.join(choices)}")

    return check


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise _error(attribute.name, "must be a positive number")


def _non_negative_int(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _error(attribute.name, "must be a non-negative integer")


def _base_url(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value == "":
        return
    check_base_url(value)


def check_base_url(value: str) -> str:
    """Validate a base URL override; return it without a trailing slash.

    ``https`` is required except for loopback hosts (``127.0.0.1``, ``localhost``, ``::1``),
    where plain ``http`` is allowed for a local emulator. User info, a query and a fragment are
    refused. The value is not echoed (it might carry credentials).
    """
    problem = "must be an https URL (http only for 127.0.0.1, localhost or ::1)"
    if not isinstance(value, str) or _CONTROL.search(value) or " " in value:
        raise _error("base_url", problem)
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise _error("base_url", problem) from None
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise _error("base_url", "must not contain user info")
    if parts.query or parts.fragment:
        raise _error("base_url", "must not have a query or fragment")
    if not host or parts.scheme not in {"https", "http"}:
        raise _error("base_url", problem)
    if parts.scheme == "http" and host not in _LOOPBACK:
        raise _error("base_url", problem)
    return value.rstrip("/")


def _expiry(instance: object, attribute: attrs.Attribute[timedelta], value: timedelta) -> None:
    if not isinstance(value, timedelta) or not timedelta(minutes=1) <= value <= MAX_EXPIRY:
        raise _error("bill_expiry_minutes", "must be between 1 minute and 30 days")


def _channels(value: object) -> tuple[str, ...]:
    """``channels`` as a tuple of known method names (a list, or a comma-separated string)."""
    return SettingsReader.parse_names(
        value,
        key="channels",
        item="payment method",
        known=known_methods(),
        required=True,
        provider=PROVIDER,
    )


def _default_user_id(self: FaspayConfig) -> str:
    return "bot" + self.merchant_id


@attrs.frozen(kw_only=True)
class FaspayConfig:
    """Everything one Faspay DANA gateway needs to know.

    ``user_id`` defaults to ``"bot" + merchant_id`` (the API user Faspay issues, §3.1).
    ``base_url`` overrides the environment's host (for a local emulator). ``redirect_stage``
    defaults to the environment's stage (§7). ``accept_legacy_signature`` lets a notification
    signed without its status (the docs' XML sample, §14 #3) through; it is off by default
    because that legacy value equals the post-data signature, which every customer sees in
    their redirect URL, so anyone could forge any status with it.

    ``channels`` are the enabled payment methods (names of
    :data:`gateway_faspay_dana._channels.CHANNELS`; the first is the default method), ``dana``
    alone unless set. ``ovo_flow`` is how OVO is paid (``redirect`` or ``push``).
    """

    merchant_id: str = attrs.field(validator=_merchant_id)
    merchant_name: str = attrs.field(validator=_merchant_name)
    password: str = attrs.field(repr=False, validator=_password)
    user_id: str = attrs.field(
        default=attrs.Factory(_default_user_id, takes_self=True), validator=_user_id
    )
    environment: str = attrs.field(default=SANDBOX, validator=_choice(SANDBOX, PRODUCTION))
    base_url: str = attrs.field(default="", validator=_base_url)
    redirect_stage: str = attrs.field(default="")
    notification_format: str = attrs.field(default="json", validator=_choice("json", "xml"))
    connect_timeout: float = attrs.field(default=3.05, validator=_positive)
    read_timeout: float = attrs.field(default=20.0, validator=_positive)
    deadline: float = attrs.field(default=30.0, validator=_positive)
    max_retries: int = attrs.field(default=2, validator=_non_negative_int)
    accept_legacy_signature: bool = False
    max_notification_bytes: int = attrs.field(default=16384, validator=_non_negative_int)
    bill_expiry: timedelta = attrs.field(default=timedelta(minutes=60), validator=_expiry)
    channels: tuple[str, ...] = attrs.field(default=DEFAULT_CHANNELS, converter=_channels)
    ovo_flow: str = attrs.field(default=OVO_REDIRECT, validator=_choice(OVO_REDIRECT, OVO_PUSH))

    def __attrs_post_init__(self) -> None:
        if self.redirect_stage and re.fullmatch(r"[0-9]{16}", self.redirect_stage) is None:
            raise _error("redirect_stage", "must be 16 digits")

    @property
    def api_base(self) -> str:
        """The host API calls go to: the override, else the environment's host."""
        return self.base_url.rstrip("/") if self.base_url else BASE_URLS[self.environment]

    @property
    def stage(self) -> str:
        """The redirect URL's stage segment."""
        return self.redirect_stage or REDIRECT_STAGES[self.environment]

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], environ: Mapping[str, str] | None = None
    ) -> FaspayConfig:
        """Read and validate settings; ``environ`` (default ``os.environ``) fills the gaps.

        Keys: ``merchant_id``, ``merchant_name``, ``user_id``, ``password``, ``environment``,
        ``base_url``, ``redirect_stage``, ``notification_format``, ``connect_timeout``,
        ``read_timeout``, ``deadline``, ``max_retries``, ``accept_legacy_signature``,
        ``max_notification_bytes``, ``bill_expiry_minutes``, ``channels`` (a list, or in
        ``FASPAY_CHANNELS`` a comma-separated string), ``ovo_flow`` (and ``provider``,
        ignored). Unknown keys are rejected; so are unknown channel names, with the list of
        known ones.
        """
        env = os.environ if environ is None else environ
        read = SettingsReader(
            settings,
            provider=PROVIDER,
            environ=env,
            env_names=ENV_NAMES,
            secrets=SECRET_SETTINGS,
        )
        merchant_id = read.text("merchant_id", pattern=r"[0-9]{5}")
        values: dict[str, Any] = {
            "merchant_id": merchant_id,
            "merchant_name": read.text("merchant_name", max_length=32),
            "user_id": read.text("user_id", "") or "bot" + merchant_id,
            "password": read.text("password"),
            "environment": read.text(
                "environment", SANDBOX, choices=frozenset({SANDBOX, PRODUCTION})
            ),
            "base_url": read.text("base_url", ""),
            "redirect_stage": read.text("redirect_stage", "", pattern=r"(?:[0-9]{16})?"),
            "notification_format": read.text(
                "notification_format", "json", choices=frozenset({"json", "xml"})
            ),
            "connect_timeout": read.number("connect_timeout", 3.05, minimum=0.01, maximum=300),
            "read_timeout": read.number("read_timeout", 20.0, minimum=0.01, maximum=600),
            "deadline": read.number("deadline", 30.0, minimum=0.01, maximum=3600),
            "max_retries": read.integer("max_retries", 2, minimum=0, maximum=10),
            "accept_legacy_signature": read.flag("accept_legacy_signature", False),
            "max_notification_bytes": read.integer(
                "max_notification_bytes", 16384, minimum=1024, maximum=1 << 20
            ),
            "bill_expiry": timedelta(
                minutes=read.integer("bill_expiry_minutes", 60, minimum=1, maximum=43200)
            ),
            "channels": read.names(
                "channels",
                DEFAULT_CHANNELS,
                item="payment method",
                known=known_methods(),
                required=True,
            ),
            "ovo_flow": read.text(
                "ovo_flow", OVO_REDIRECT, choices=frozenset({OVO_REDIRECT, OVO_PUSH})
            ),
        }
        read.finish()
        return cls(**values)
