"""Redaction: keep secrets and personal data out of logs, reprs, errors and journals.

Two layers. Code logs only fields it has chosen (an allow-list by habit), and every logger
made by :func:`get_logger` carries a :class:`RedactingFilter` that scrubs, as a last line,
registered secret values, anything shaped like a hex signature, e-mail addresses, phone
numbers in international form and the query of URLs, from both the message and its
arguments, and whatever the patterns that provider plugins contribute match (a national phone
format, a path segment that carries a signature: see :func:`register_pattern`).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

# Any run of 32 or more hex digits (a longer run is a signature with something appended).
_HEX_SIGNATURE = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{32,}")
# Anchored at the start of the local part: unanchored, a long run of word characters with no
# "@" makes the engine retry from every position (quadratic; a forged body could exploit it).
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# E.164: "+" and 8 to 15 digits. National formats are the provider plugins' to contribute.
# The lookahead first lets the engine skip to a possible first character; a lookbehind first
# was tried at every position (16 KiB of spaces cost 3x junk).
_PHONE = re.compile(r"(?=\+)(?<![\w.:/+-])\+\d{8,15}(?![\w])")
# A URL query is found in two linear steps. A run of URL characters ending in "?" is matched
# only from the run's start (the lookbehind) and possessively, so a failed run is scanned
# once; the scheme is then looked for inside that run. One regex for the whole shape retried
# from every "http://" of a run, which was quadratic (16 KiB of "http://" cost 150x junk).
_RUN_TO_QUERY = re.compile(r"(?<![^\s?#'\"])[^\s?#'\"]++\?")
_SCHEME = re.compile(r"https?://(?=.)", re.DOTALL)
_QUERY = re.compile(r"[^\s'\"]*+")
# Every C0 control character but TAB, and DEL; escaped a run at a time (one call per run,
# not per character: 16 KiB of newlines must cost no more than other junk).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]+")
#: Characters that hex signatures, e-mail addresses and phone numbers are made of: a cut that
#: falls inside a run of them drops the run (see :func:`redact_excerpt`).
_TOKEN_CHAR = re.compile(r"[\w.+@-]")

#: Something at least one built-in rule could act on: "?" (a URL query), "@" (an e-mail),
#: "+" (a phone), 32 hex digits in a row (a signature) or a control character. Text without
#: any (most log arguments, a form-encoded or numeric field) skips those rules in one search.
_MAY_NEED_RULES = re.compile(r"[?@+\x00-\x08\x0a-\x1f\x7f]|[0-9A-Fa-f]{32}")

_SHORT = 512

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

    @property
    def values(self) -> frozenset[str]:
        return self._values

    def scrub(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, REDACTED)
        return text


_SECRETS = _SecretBook()


def register_secret(*values: str) -> None:
    """Declare literal values (a password, a signature) that must never be logged."""
    _SECRETS.add(values)


#: A contributed pattern with a group of this name has only that group redacted (the rest of
#: the match, a path prefix say, stays readable).
SECRET_GROUP = "secret"  # noqa: S105 - a regex group name


class _PatternBook:
    """Process-wide, append-only tuple of patterns contributed by provider plugins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._patterns: tuple[re.Pattern[str], ...] = ()

    def add(self, patterns: Iterable[str | re.Pattern[str]]) -> None:
        compiled = [_compile_pattern(p) for p in patterns]
        with self._lock:
            known = {(p.pattern, p.flags) for p in self._patterns}
            for pattern in compiled:
                if (pattern.pattern, pattern.flags) not in known:
                    known.add((pattern.pattern, pattern.flags))
                    self._patterns = (*self._patterns, pattern)

    @property
    def patterns(self) -> tuple[re.Pattern[str], ...]:
        return self._patterns

    def scrub(self, text: str) -> str:
        for pattern in self._patterns:
            text = pattern.sub(_redact_match, text)
        return text


def _compile_pattern(pattern: str | re.Pattern[str]) -> re.Pattern[str]:
    compiled = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern)
    if not isinstance(compiled.pattern, str):
        raise ValueError(f"redaction pattern {compiled.pattern!r} must be a str pattern")
    if compiled.fullmatch("") is not None:
        raise ValueError(f"redaction pattern {compiled.pattern!r} matches the empty string")
    return compiled


def _redact_match(match: re.Match[str]) -> str:
    if SECRET_GROUP not in match.re.groupindex:
        return REDACTED
    start, end = match.span(SECRET_GROUP)
    if start < 0:
        return REDACTED
    whole = match.group()
    offset = match.start()
    return whole[: start - offset] + REDACTED + whole[end - offset :]


_PATTERNS = _PatternBook()


def register_secret_pattern(*patterns: str | re.Pattern[str]) -> None:
    """Declare regular expressions whose matches must never be logged (process-wide).

    A provider plugin contributes the shapes only it knows (a national phone format, a URL
    path segment carrying a signature) through ``registry.add_redaction(...)`` in its
    registration hook, which calls this. Every match is replaced by ``[redacted]``; when the
    pattern has a group named ``secret``, only that group is. Registering a pattern twice is
    harmless. ``ValueError`` for a pattern that matches the empty string.

    Redaction runs on attacker-controlled text (notification bodies), so a pattern must run
    in linear time: start it with a lookahead on its first character, bound every repetition
    and nest no quantifiers. What it redacts should be made of ``[\\w.+@-]`` characters (or
    follow a kept prefix), so that a cut excerpt never leaves a part of it behind.
    """
    _PATTERNS.add(patterns)


def redact_text(text: str) -> str:
    """Scrub a free-form string: registered secrets, signatures, e-mails, phones, URL queries,
    and matches of the patterns provider plugins registered.

    CR, LF and other control characters are escaped so attacker-controlled fields cannot forge
    log lines.
    """
    text = _SECRETS.scrub(text)
    if len(text) <= _SHORT and _MAY_NEED_RULES.search(text) is None:
        # None of the built-in rules can match (nor can a registered secret's "[redacted]"
        # make one match); only the plugins' patterns are left to apply. (Short text only:
        # log arguments and formats; a long body costs what any text of its length costs.)
        return _PATTERNS.scrub(text) if _PATTERNS.patterns else text
    text = _scrub_url_queries(text)
    text = _HEX_SIGNATURE.sub(REDACTED, text)
    text = _EMAIL.sub(REDACTED, text)
    text = _PHONE.sub(REDACTED, text)
    text = _PATTERNS.scrub(text)
    return _CONTROL.sub(_escape_controls, text)


def _escape_controls(run: re.Match[str]) -> str:
    return "\\x" + "\\x".join(run.group().encode("ascii").hex(" ").split(" "))


def redact_excerpt(text: str, limit: int) -> str:
    """At most ``limit`` characters of ``text``, redacted, cut before redaction so the cost
    follows ``limit`` and not the input, and never leaving part of a secret behind.

    Where the cut would split a registered secret, or a run of the characters signatures,
    e-mail addresses and phone numbers are made of, it moves back to that run's start (a URL
    query stays a URL query when cut, so it needs no such care). Escaped control characters
    may lengthen the redacted text; it is cut to ``limit`` again, which can only split a
    ``[redacted]`` marker or an escape, never a secret.
    """
    if limit < 0:
        raise ValueError("limit must not be negative")
    if len(text) > limit:
        text = text[: _safe_cut(text, limit)]
    return redact_text(text)[:limit]


def _safe_cut(text: str, cut: int) -> int:
    """The largest position at or before ``cut`` that splits no secret-shaped run."""
    while True:
        moved = cut
        for value in _SECRETS.values:
            start = text.find(value, max(cut - len(value) + 1, 0), cut + len(value) - 1)
            if 0 <= start < moved:
                moved = start
        if moved < len(text) and _TOKEN_CHAR.match(text, moved):
            while moved > 0 and _TOKEN_CHAR.match(text, moved - 1):
                moved -= 1
        if moved == cut:
            return cut
        cut = moved


def _scrub_url_queries(text: str) -> str:
    """Replace the query of every ``http(s)://`` URL with the redaction marker."""
    pieces: list[str] = []
    done = 0
    found = _RUN_TO_QUERY.search(text)
    while found is not None:
        end = found.end()
        if _SCHEME.search(text, found.start(), end - 1) is None:
            found = _RUN_TO_QUERY.search(text, end)
            continue
        pieces.append(text[done:end])
        pieces.append(REDACTED)
        query = _QUERY.match(text, end)
        done = query.end() if query is not None else end
        found = _RUN_TO_QUERY.search(text, done)
    pieces.append(text[done:])
    return "".join(pieces)


def redact_value(value: Any) -> Any:
    """Redact a log argument, keeping numbers as numbers so ``%d`` still formats."""
    if isinstance(value, bool | int | float) or value is None:
        return value
    return redact_text(str(value))


#: Redacted log formats by their text (formats are mostly literals that repeat), each with
#: the secret and pattern books it was redacted with; bounded.
_FORMATS: dict[str, tuple[object, object, str]] = {}
_FORMATS_KEPT = 256


def _redacted_format(msg: str) -> str:
    secrets, patterns = _SECRETS.values, _PATTERNS.patterns
    known = _FORMATS.get(msg)
    if known is not None and known[0] is secrets and known[1] is patterns:
        return known[2]
    text = redact_text(msg)
    if len(_FORMATS) >= _FORMATS_KEPT:
        _FORMATS.clear()
    _FORMATS[msg] = (secrets, patterns, text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that rewrites the record's message and arguments through redaction.

    It runs only for records the logger lets through (a level that is off costs nothing
    here); a record without arguments has only its message redacted, and a message seen
    before is redacted from a small cache."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg.__class__ is str:
            record.msg = _redacted_format(record.msg)
        elif isinstance(record.msg, str):
            record.msg = redact_text(record.msg)
        if not record.args:
            pass
        elif isinstance(record.args, tuple):
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


def scrub_secrets(text: str) -> str:
    """Only the registered secret values masked (nothing shaped like one): for text a person
    must be able to use as printed, such as the fields of a form the customer posts."""
    return _SECRETS.scrub(text)
