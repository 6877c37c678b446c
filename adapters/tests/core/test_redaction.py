"""Redaction scrubs secrets, signatures, personal data and log-forging characters."""

from __future__ import annotations

import logging
import random
import string
import time

import pytest

from gateway_core import get_logger, redact_text, register_secret
from gateway_core._redact import REDACTED, redact_excerpt


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


# -- cost and cutting (issue 9, item 7) ----------------------------------------------------------

SIZE = 16 * 1024


def _junk() -> str:
    """An ordinary body of junk: random printable ASCII with spaces and JSON punctuation."""
    rnd = random.Random(9)
    alphabet = string.ascii_letters + string.digits + ' {}:,"'
    return "".join(rnd.choice(alphabet) for _ in range(SIZE))


def _cpu(text: str) -> float:
    """The least CPU time of several runs of five redactions (min: the run least disturbed)."""
    best = float("inf")
    for _ in range(9):
        start = time.process_time()
        for _ in range(5):
            redact_text(text)
        best = min(best, time.process_time() - start)
    return best


@pytest.mark.parametrize(
    "unit",
    ["http://", "https://a", "\n", "\x00", "a@", "a@b.", "0 ", "+628 ", "/pws/1/1/", " "],
    ids=repr,
)
def test_a_hostile_16_kib_body_costs_at_most_twice_ordinary_junk(unit: str) -> None:
    hostile = (unit * (SIZE // len(unit) + 1))[:SIZE]
    junk = _junk()
    _cpu(junk)  # warm up
    ratio = _cpu(hostile) / _cpu(junk)
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
