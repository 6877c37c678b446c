"""Configuration errors name the key and never echo a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway_core import ConfigurationError, PluginHost, Settings, SettingsReader
from gateway_core._config import Gateways


def test_reader_names_the_missing_key_and_its_environment_variable() -> None:
    read = SettingsReader({}, provider="p", env_names={"password": "P_PASSWORD"})
    with pytest.raises(ConfigurationError) as info:
        read.text("password")
    assert info.value.key == "password"
    assert "$P_PASSWORD" in str(info.value)


def test_reader_never_echoes_a_secret_value() -> None:
    read = SettingsReader(
        {"password": ["S3NT1NEL-secret"]}, provider="p", secrets=frozenset({"password"})
    )
    with pytest.raises(ConfigurationError) as info:
        read.text("password")
    assert "S3NT1NEL" not in str(info.value)
    assert "password" in str(info.value)


def test_reader_shows_non_secret_bad_values() -> None:
    read = SettingsReader({"merchant_id": "12"}, provider="p")
    with pytest.raises(ConfigurationError, match="'12'"):
        read.text("merchant_id", pattern=r"\d{5}")


def test_mapping_wins_over_environment() -> None:
    read = SettingsReader(
        {"a": "from-map"}, provider="p", environ={"A": "env"}, env_names={"a": "A"}
    )
    assert read.text("a") == "from-map"


def test_environment_fills_what_the_mapping_lacks() -> None:
    read = SettingsReader({}, provider="p", environ={"A": "env"}, env_names={"a": "A"})
    assert read.text("a") == "env"


def test_unknown_keys_are_rejected_by_name() -> None:
    read = SettingsReader({"pasword": "x"}, provider="p")
    with pytest.raises(ConfigurationError, match="'pasword'"):
        read.finish()


def test_numbers_and_flags_are_validated() -> None:
    read = SettingsReader({"t": "abc", "f": "maybe", "n": 99}, provider="p")
    with pytest.raises(ConfigurationError, match="number"):
        read.number("t", 1.0)
    with pytest.raises(ConfigurationError, match="true or false"):
        read.flag("f", False)
    with pytest.raises(ConfigurationError, match="between"):
        read.integer("n", 1, maximum=10)


def test_settings_load_from_toml_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(
        '[ledger]\nurl = "sqlite:///a.db"\n\n[providers.dana]\nprovider = "faspay_dana"\n'
    )
    settings = Settings.load(
        path, environ={"GATEWAY_LEDGER_URL": "sqlite:///b.db", "GATEWAY_PROVIDERS": "other=x"}
    )
    assert settings.ledger_url == "sqlite:///b.db"
    assert settings.gateway_names == ["dana", "other"]
    assert settings.providers["other"]["provider"] == "x"


def test_settings_reject_unknown_sections(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text("[provider.dana]\n")
    with pytest.raises(ConfigurationError, match="unknown section 'provider'"):
        Settings.load(path, environ={})


def test_missing_config_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        Settings.load(tmp_path / "nope.toml", environ={})


def test_several_providers_at_once_and_errors_name_the_gateway() -> None:
    host = PluginHost()
    settings = Settings.from_mapping(
        {
            "providers": {
                "dana_a": {
                    "provider": "faspay_dana",
                    "merchant_id": "11111",
                    "merchant_name": "A",
                    "password": "pw-aaaaaaaaaaaa",
                },
                "dana_b": {
                    "provider": "faspay_dana",
                    "merchant_id": "22222",
                    "merchant_name": "B",
                    "password": "pw-bbbbbbbbbbbb",
                },
            }
        }
    )
    gateways = Gateways.from_settings(settings, registry=host.registry, environ={})
    assert sorted(gateways) == ["dana_a", "dana_b"]
    assert gateways["dana_b"].merchant_id == "22222"
    bad = Settings.from_mapping(
        {"providers": {"dana_c": {"provider": "faspay_dana", "merchant_id": "1"}}}
    )
    with pytest.raises(ConfigurationError, match="dana_c"):
        Gateways.from_settings(bad, registry=host.registry, environ={})


def test_service_policy_comes_from_the_service_table(tmp_path: Path) -> None:
    from gateway_core import ServicePolicy

    path = tmp_path / "gateway.toml"
    path.write_text("[service]\nreconcile_grace_seconds = 60\nacknowledge_unknown_payment = true\n")
    policy = ServicePolicy.from_settings(Settings.load(path, environ={}).service)
    assert policy.reconcile_grace.total_seconds() == 60
    assert policy.acknowledge_unknown_payment is True
    assert policy.expiry_margin.total_seconds() == 300  # the default


def test_service_table_rejects_unknown_keys_by_name() -> None:
    from gateway_core import ServicePolicy

    with pytest.raises(ConfigurationError, match="'grace'"):
        ServicePolicy.from_settings({"grace": 1})
