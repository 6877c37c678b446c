"""Redaction: keep secrets and personal data out of logs, reprs, errors and journals.

Two layers. Code logs only fields it has chosen (an allow-list by habit), and every logger
made by :func:`get_logger` carries a :class:`RedactingFilter` that scrubs, as a last line,
registered secret values, anything shaped like a hex signature, e-mail addresses, phone
numbers and the query of URLs, from both the message and its arguments.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

_HEX_SIGNATURE = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{32,128}(?![0-9A-Fa-f])")
# Anchored at the start of the local part: unanchored, a long run of word characters with no
# "@" makes the engine retry from every position (quadratic; a forged body could exploit it).
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w.:/-])\+?(?:62|0)?8\d{7,13}(?![\w])")
_URL_QUERY = re.compile(r"(https?://[^\s?#'\"]+)\?[^\s'\"]*")
_PATH_SIGNATURE = re.compile(r"(/pws/\d+/\d+/)[^\s/?'\"]+")
_CONTROL = re.compile(r"[\r\n\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

REDACTED = "[redacted]"


def mask_email(value: str) -> str:
    """``john@gmail.com`` → ``j***@***``; empty stays empty."""
    if not value:
        return "''"
    local = value.split("@", 1)[0]
    return repr(f"{local[:1]}***@***")


def mask_phone(value: str) -> str:
    """Keep the last two digits only: ``8562927907`` → ``********07``."""
    if not value:
        return "''"
    return repr("*" * max(len(value) - 2, 0) + value[-2:])


def mask_url(value: str) -> str:
    """Keep scheme, host and the first path segment; drop the rest (signatures live there)."""
    if not value:
        return "''"
    try:
        parts = urlsplit(value)
    except ValueError:
        return repr(REDACTED)
    first = parts.path.strip("/").split("/", 1)[0]
    return repr(f"{parts.scheme}://{parts.netloc}/{first}/…{REDACTED}")


class _SecretBook:
    """Process-wide set of literal secret values to scrub (passwords, signatures)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: frozenset[str] = frozenset()

    def add(self, values: Iterable[str]) -> None:
        new = {v for v in values if v and len(v) >= 4}
        if not new - self._values:
            return
        with self._lock:
            self._values = self._values | new

    def scrub(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, REDACTED)
        return text


_SECRETS = _SecretBook()


def register_secret(*values: str) -> None:
    """Declare literal values (a password, a signature) that must never be logged."""
    _SECRETS.add(values)


def redact_text(text: str) -> str:
    """Scrub a free-form string: registered secrets, signatures, e-mails, phones, URL queries.

    CR, LF and other control characters are escaped so attacker-controlled fields cannot forge
    log lines.
    """
    text = _SECRETS.scrub(text)
    text = _URL_QUERY.sub(lambda m: m.group(1) + "?" + REDACTED, text)
    text = _PATH_SIGNATURE.sub(lambda m: m.group(1) + REDACTED, text)
    text = _HEX_SIGNATURE.sub(REDACTED, text)
    text = _EMAIL.sub(REDACTED, text)
    text = _PHONE.sub(REDACTED, text)
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def redact_value(value: Any) -> Any:
    """Redact a log argument, keeping numbers as numbers so ``%d`` still formats."""
    if isinstance(value, bool | int | float) or value is None:
        return value
    return redact_text(str(value))


class RedactingFilter(logging.Filter):
    """A logging filter that rewrites the record's message and arguments through redaction."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_text(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact_value(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact_value(v) for k, v in record.args.items()}
        if record.exc_info and record.exc_info[1] is not None:
            # The formatted traceback would print str(exc); exceptions in this library never
            # carry secrets, but a third party's might: keep the type, drop the text.
            exc = record.exc_info[1]
            record.msg = f"{record.msg} [{type(exc).__name__}: {redact_text(str(exc))}]"
            record.exc_info = None
            record.exc_text = None
        return True


_FILTER = RedactingFilter()


def get_logger(name: str) -> logging.Logger:
    """A standard logger that redacts everything passed to it."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger


#: Loggers of the HTTP stack under the library: urllib3 logs every request target at DEBUG,
#: and a redirect path or a return query carries a signature.
THIRD_PARTY_LOGGERS = (
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.poolmanager",
    "urllib3.response",
    "urllib3.util.retry",
    "requests",
)


def protect_third_party_loggers() -> None:
    """Put the redacting filter on the HTTP stack's loggers too (idempotent)."""
    for name in THIRD_PARTY_LOGGERS:
        get_logger(name)
