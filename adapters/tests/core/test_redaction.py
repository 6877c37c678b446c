"""Redaction scrubs secrets, signatures, personal data and log-forging characters."""

from __future__ import annotations

import logging
import re

import pytest
from redaction_cost import hostile_cost_ratio

from gateway_core import (
    PluginError,
    PluginHost,
    ProviderRegistry,
    get_logger,
    hookimpl,
    redact_text,
    register_secret,
    register_secret_pattern,
)
from gateway_core._redact import REDACTED, redact_excerpt


def test_registered_secret_is_scrubbed() -> None:
    register_secret("S3NT1NEL-pw-redaction")
    assert "S3NT1NEL" not in redact_text("password is S3NT1NEL-pw-redaction!")


def test_signatures_emails_phones_and_url_queries_are_scrubbed() -> None:
    text = redact_text(
        "sig 7ad74a4aa1c86aeb1308ea5c44e4aa0f4d6ed4e7 mail john@gmail.com tel +4915112345678 "
        "url https://x.example/pay/abc?order=1&token=2"
    )
    assert "7ad74a4a" not in text
    assert "john@gmail.com" not in text
    assert "15112345678" not in text
    assert "order=1" not in text
    assert "token=2" not in text
    assert "https://x.example/pay/abc?" in text


def test_the_core_redacts_phone_numbers_in_international_form() -> None:
    """National formats are the provider plugins' to contribute (issue 10, item 7)."""
    assert redact_text("call +12025550123 now") == f"call {REDACTED} now"
    assert redact_text("order 20250101 total 15") == "order 20250101 total 15"


# -- patterns contributed by plugins (issue 10, item 7) -------------------------------------


def test_a_registered_pattern_is_redacted_whole() -> None:
    register_secret_pattern(r"(?=Z)ZQ-CARD-\d{6}(?!\d)")
    assert redact_text("card ZQ-CARD-123456 used") == f"card {REDACTED} used"


def test_a_registered_pattern_with_a_secret_group_keeps_the_rest_of_its_match() -> None:
    register_secret_pattern(re.compile(r"/zq-page/\d+/(?P<secret>[0-9a-z]{3,64})"))
    assert redact_text("GET /zq-page/7/tok3n ok") == f"GET /zq-page/7/{REDACTED} ok"


def test_a_pattern_matching_the_empty_string_is_refused() -> None:
    with pytest.raises(ValueError, match="empty string"):
        register_secret_pattern(r"\d*")


def _plugin_contributing(*patterns: str) -> object:
    class Plugin:
        @hookimpl
        def gateway_register_providers(self, registry: ProviderRegistry) -> None:
            registry.add_redaction(*patterns)

    return Plugin()


def test_a_plugin_contributes_patterns_from_its_registration_hook() -> None:
    assert "ZQ-PIN-4242" in redact_text("pin ZQ-PIN-4242")
    PluginHost(entry_points=False, plugins=[_plugin_contributing(r"(?=Z)ZQ-PIN-\d{4}")])
    assert redact_text("pin ZQ-PIN-4242") == f"pin {REDACTED}"


@pytest.mark.parametrize("pattern", [r"(unclosed", r"x*"])
def test_a_bad_contributed_pattern_fails_at_start_up_naming_the_plugin(pattern: str) -> None:
    with pytest.raises(PluginError, match="bad redaction pattern"):
        PluginHost(entry_points=False, plugins=[_plugin_contributing(pattern)])


def test_control_characters_cannot_forge_log_lines() -> None:
    assert "\n" not in redact_text("shop\nINFO forged line")


def test_logger_filter_redacts_message_and_arguments(caplog: pytest.LogCaptureFixture) -> None:
    log = get_logger("gateway_core.test_redaction")
    with caplog.at_level(logging.DEBUG, logger="gateway_core.test_redaction"):
        log.info("sent %s to %s", "7ad74a4aa1c86aeb1308ea5c44e4aa0f4d6ed4e7", "a@b.example")
    text = caplog.text
    assert "7ad74a4a" not in text
    assert "a@b.example" not in text
    assert "sent" in text


# -- cost and cutting (issue 9, item 7) ----------------------------------------------------------


@pytest.mark.parametrize(
    "unit",
    ["http://", "https://a", "\n", "\x00", "a@", "a@b.", "0 ", "+1 ", "+1234567 ", "+", " "],
    ids=repr,
)
def test_a_hostile_16_kib_body_costs_at_most_twice_ordinary_junk(unit: str) -> None:
    ratio = hostile_cost_ratio(unit)
    assert ratio <= 2.0, f"{unit!r} costs {ratio:.1f}x junk"


SECRETS = {
    "signature": "7ad74a4aa1c86aeb1308ea5c44e4aa0f4d6ed4e7",
    "email": "budi.santoso@mail.example.com",
    "phone": "+6281234567890",
    "registered": "pass phrase-S3NT1NEL-cut",
    "url query": "https://pay.example/notify?signature=beef-secret-query",
}


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_a_cut_never_leaves_part_of_a_secret(kind: str) -> None:
    register_secret(SECRETS["registered"])
    secret = SECRETS[kind]
    text = 'note: {"x": ' + secret + " tail} " + "more " * 20
    start = text.index(secret)
    if kind == "url query":
        start = text.index("?")  # what is secret is the query, not the URL before it
        secret = secret[secret.index("?") :]
    for limit in range(start - 2, len(text) + 1):
        excerpt = redact_excerpt(text, limit)
        assert len(excerpt) <= limit
        leaked = [secret[:k] for k in range(2, len(secret) + 1) if secret[:k] in excerpt]
        assert not leaked, (limit, excerpt)
    assert REDACTED in redact_excerpt(text, len(text))
