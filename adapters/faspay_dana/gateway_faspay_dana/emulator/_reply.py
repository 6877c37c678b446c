"""WSGI plumbing shared by the emulator's handlers: the reply value (body reading, the base
URL, status lines and the server's environ keys are the emulation kit's, re-exported here).

A handler returns a :class:`Reply`; besides what goes on the wire it carries what the request
log records (the Faspay ``response_code``, the bill and merchant it concerned, a detail).
"""

from __future__ import annotations

import json
from typing import Any
from wsgiref.types import StartResponse

from gateway_core.emulation.control import base_url, read_body
from gateway_core.emulation.faults import status_line
from gateway_core.emulation.http_server import CONNECTION_KEY, CONTROL_KEY, FAULT_KEY

__all__ = [
    "CONNECTION_KEY",
    "CONTROL_KEY",
    "FAULT_KEY",
    "PAGE_PREFIX",
    "Reply",
    "base_url",
    "json_reply",
    "read_body",
    "send",
    "status_line",
    "text_or_none",
]

#: Path prefix of the DANA customer page (``<prefix><stage>/<signature>``).
PAGE_PREFIX = "/pws/100003/"


class Reply:
    """An HTTP reply plus what the request log records about it."""

    __slots__ = (
        "bill_no",
        "body",
        "code",
        "data",
        "detail",
        "headers",
        "leniencies",
        "merchant_id",
        "status",
    )

    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        *,
        code: str | None = None,
        detail: str = "",
        bill_no: str | None = None,
        merchant_id: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        data: Any = None,
        leniencies: tuple[str, ...] = (),
    ) -> None:
        self.status = status
        self.body = body
        self.headers = [("Content-Type", content_type), *(headers or [])]
        self.code = code
        self.detail = detail
        self.bill_no = bill_no
        self.merchant_id = merchant_id
        self.data = data
        """The answer as a dict before serialisation (so the XML twin can render it)."""
        self.leniencies = leniencies
        """Documented limits the request broke but the emulator accepted (request log)."""


def json_reply(status: int, value: Any, **kwargs: Any) -> Reply:
    """A JSON reply (keyword arguments as for :class:`Reply`)."""
    return Reply(status, json.dumps(value).encode("utf-8"), data=value, **kwargs)


def send(start_response: StartResponse, reply: Reply) -> list[bytes]:
    """Start the response for ``reply`` and return its body."""
    headers = [*reply.headers, ("Content-Length", str(len(reply.body)))]
    start_response(status_line(reply.status), headers)
    return [reply.body]


def text_or_none(value: object) -> str | None:
    """A non-empty string or integer field as text; None for anything else."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int)):
        text = str(value)
        return text or None
    return None
