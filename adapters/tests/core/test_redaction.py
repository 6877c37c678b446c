"""Redaction scrubs secrets, signatures, personal data and log-forging characters."""

from __future__ import annotations

import logging

import pytest

from gateway_core import get_logger, redact_text, register_secret


def test_registered_secret_is_scrubbed() -> None:
    register_secret("S3NT1NEL-pw-redaction")
    assert "S3NT1NEL" not in redact_text("password is S3NT1NEL-pw-redaction!")


def test_signatures_emails_phones_and_url_queries_are_scrubbed() -> None:
    text = redact_text(
        "sig 7ad74a4aa1c86aeb1308ea5c44e4aa0f4d6ed4e7 mail john@gmail.com tel 08123456789 "
        "url https://x.example/pws/100003/0830000010100000/abc?trx_id=1&bill_no=2"
    )
    assert "7ad74a4a" not in text
    assert "john@gmail.com" not in text
    assert "08123456789" not in text
    assert "trx_id=1" not in text
    assert "/abc" not in text


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
