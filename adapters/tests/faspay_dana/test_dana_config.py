"""Settings: read from a mapping and the environment, validated, secrets kept out."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway_core import ConfigurationError, HttpRequest, HttpResponse, MockTransport
from gateway_faspay_dana import FaspayConfig, FaspayDanaGateway

SECRET = "s3cret-Passw0rd-value"
MINIMAL = {"merchant_id": "99999", "merchant_name": "Sophia Store", "password": SECRET}


def test_minimal_settings_use_the_documented_defaults() -> None:
    config = FaspayConfig.from_settings(MINIMAL, environ={})
    assert config.user_id == "bot99999"
    assert config.environment == "sandbox"
    assert config.api_base == "https://debit-sandbox.faspay.co.id"
    assert config.stage == "0830000010100000"
    assert config.notification_format == "json"
    assert (config.connect_timeout, config.read_timeout, config.deadline) == (3.05, 20.0, 30.0)
    assert config.max_retries == 2
    assert config.accept_legacy_signature is False
    assert config.max_notification_bytes == 16384
    assert config.bill_expiry == timedelta(minutes=60)


def test_production_uses_the_production_host_and_stage() -> None:
    config = FaspayConfig.from_settings({**MINIMAL, "environment": "production"}, environ={})
    assert config.api_base == "https://web.faspay.co.id"
    assert config.stage == "2830000010100000"


def test_settings_come_from_the_environment() -> None:
    environ = {
        "FASPAY_MERCHANT_ID": "31025",
        "FASPAY_MERCHANT_NAME": "Env Store",
        "FASPAY_USER_ID": "bot31025x",
        "FASPAY_PASSWORD": SECRET,
        "FASPAY_ENV": "production",
        "FASPAY_BASE_URL": "http://127.0.0.1:8765/",
    }
    config = FaspayConfig.from_settings({}, environ=environ)
    assert config.merchant_id == "31025"
    assert config.merchant_name == "Env Store"
    assert config.user_id == "bot31025x"
    assert config.password == SECRET
    assert config.environment == "production"
    assert config.api_base == "http://127.0.0.1:8765"


def test_mapping_wins_over_the_environment() -> None:
    environ = {"FASPAY_MERCHANT_ID": "11111", "FASPAY_PASSWORD": "from-env-password"}
    config = FaspayConfig.from_settings(MINIMAL, environ=environ)
    assert config.merchant_id == "99999"
    assert config.password == SECRET


def test_missing_password_names_the_key_and_its_variable() -> None:
    settings = {k: v for k, v in MINIMAL.items() if k != "password"}
    with pytest.raises(ConfigurationError) as info:
        FaspayConfig.from_settings(settings, environ={})
    assert info.value.key == "password"
    assert "FASPAY_PASSWORD" in str(info.value)


@pytest.mark.parametrize(
    "bad",
    [[SECRET], {"value": SECRET}, SECRET + "\n", SECRET * 20],
    ids=["list", "table", "control character", "too long"],
)
def test_a_bad_password_is_never_echoed(bad: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        FaspayConfig.from_settings({**MINIMAL, "password": bad}, environ={})
    assert info.value.key == "password"
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)


def test_unknown_keys_are_rejected() -> None:
    with pytest.raises(ConfigurationError) as info:
        FaspayConfig.from_settings({**MINIMAL, "pasword": "x"}, environ={})
    assert info.value.key == "pasword"


def test_provider_key_is_allowed() -> None:
    config = FaspayConfig.from_settings({**MINIMAL, "provider": "faspay_dana"}, environ={})
    assert config.merchant_id == "99999"


@pytest.mark.parametrize("merchant_id", ["9999", "999999", "9999a", "bot99999"])
def test_merchant_id_must_be_five_digits(merchant_id: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        FaspayConfig.from_settings({**MINIMAL, "merchant_id": merchant_id}, environ={})
    assert info.value.key == "merchant_id"


def test_merchant_name_is_at_most_32_characters() -> None:
    with pytest.raises(ConfigurationError) as info:
        FaspayConfig.from_settings({**MINIMAL, "merchant_name": "x" * 33}, environ={})
    assert info.value.key == "merchant_name"


@pytest.mark.parametrize(
    "url",
    [
        "http://faspay.example.com",
        "http://10.0.0.5:8080",
        "ftp://127.0.0.1",
        "https://user:pw@faspay.example.com",
        "https://faspay.example.com/?x=1",
        "not a url",
    ],
)
def test_base_url_must_be_https_unless_loopback(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        FaspayConfig.from_settings({**MINIMAL, "base_url": url}, environ={})
    assert info.value.key == "base_url"


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080", "http://localhost:9000", "http://[::1]:80", "https://x.test"]
)
def test_base_url_accepts_https_and_loopback_http(url: str) -> None:
    config = FaspayConfig.from_settings({**MINIMAL, "base_url": url}, environ={})
    assert config.api_base == url


def test_flags_and_numbers_are_read_from_strings() -> None:
    settings = {
        **MINIMAL,
        "accept_legacy_signature": "true",
        "max_retries": "0",
        "read_timeout": "5.5",
        "bill_expiry_minutes": "15",
        "notification_format": "xml",
    }
    config = FaspayConfig.from_settings(settings, environ={})
    assert config.accept_legacy_signature is True
    assert config.max_retries == 0
    assert config.read_timeout == 5.5
    assert config.bill_expiry == timedelta(minutes=15)
    assert config.notification_format == "xml"


def test_expiry_beyond_thirty_days_is_refused() -> None:
    with pytest.raises(ConfigurationError) as info:
        FaspayConfig.from_settings({**MINIMAL, "bill_expiry_minutes": 43201}, environ={})
    assert info.value.key == "bill_expiry_minutes"


def test_config_repr_hides_the_password() -> None:
    config = FaspayConfig.from_settings(MINIMAL, environ={})
    assert SECRET not in repr(config)
    assert SECRET not in str(config)


def _no_network(request: HttpRequest) -> HttpResponse:
    raise AssertionError("no request expected")


def test_gateway_repr_hides_the_password() -> None:
    gateway = FaspayDanaGateway.from_config(
        MINIMAL, environ={}, transport=MockTransport(_no_network)
    )
    assert SECRET not in repr(gateway)
    assert "99999" in repr(gateway)


def test_from_config_builds_a_gateway_for_the_merchant() -> None:
    gateway = FaspayDanaGateway.from_config(
        MINIMAL, environ={}, transport=MockTransport(_no_network)
    )
    assert gateway.merchant_id == "99999"
    assert gateway.config.user_id == "bot99999"
