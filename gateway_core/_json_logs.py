"""JSON log lines for log shippers (``gateway serve --log-format json``, ``[service] log_format
= "json"``): one JSON object per line with ``ts`` (UTC, ISO 8601), ``level``, ``logger``,
``message``, the fields a record carries beyond the standard ones (``extra=``), and ``error``
(the exception's type) when it has one.

Every record still goes through redaction: the handler carries a
:class:`~gateway_core._redact.RedactingFilter` (records of other libraries' loggers too), and
the extra fields are redacted like arguments. JSON escapes every control character, so a field
cannot forge a line.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from gateway_core._redact import RedactingFilter, redact_text, redact_value

#: ``log_format`` values.
LOG_FORMATS = frozenset({"text", "json"})

#: Attributes every LogRecord has: anything else came with ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact_text(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in data:
                data[key] = redact_value(value)
        if record.exc_info and record.exc_info[1] is not None:
            data["error"] = type(record.exc_info[1]).__name__
        return json.dumps(data, ensure_ascii=False, default=str)


def json_handler(stream: TextIO | None = None) -> logging.Handler:
    """A handler writing JSON lines to ``stream`` (default: stderr), redacting every record."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    return handler


def use_json_logs(*, level: int = logging.INFO, stream: TextIO | None = None) -> Callable[[], None]:
    """Make the root logger's handlers that write to stderr (``gateway -v``) write JSON lines;
    when it has none (the ``gateway`` command without ``-v``), add one on ``stream`` (default
    stderr) at ``level``. Returns the undo."""
    root = logging.getLogger()
    swapped = [
        (handler, handler.formatter)
        for handler in root.handlers
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr
    ]
    redacting = RedactingFilter()
    added: logging.Handler | None = None
    previous = root.level
    for handler, _ in swapped:
        handler.setFormatter(JsonFormatter())
        handler.addFilter(redacting)
    if not swapped:
        added = json_handler(stream)
        root.addHandler(added)
        if root.level == logging.NOTSET or root.level > level:
            root.setLevel(level)

    def undo() -> None:
        for handler, formatter in swapped:
            handler.setFormatter(formatter)
            handler.removeFilter(redacting)
        if added is not None:
            root.removeHandler(added)
        root.setLevel(previous)

    return undo
