"""WSGI plumbing shared by the emulator's handlers: the reply value, body reading, base URL.

A handler returns a :class:`Reply`; besides what goes on the wire it carries what the request
log records (the Faspay ``response_code``, the bill and merchant it concerned, a detail).
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any
from urllib.parse import quote
from wsgiref.types import StartResponse, WSGIEnvironment

from gateway_faspay_dana.emulator._errors import EmulatorError

#: WSGI environ keys shared with :class:`EmulatorServer`.
FAULT_KEY = "faspay_emulator.fault"
CONTROL_KEY = "faspay_emulator.control"
CONNECTION_KEY = "faspay_emulator.connection"

#: Path prefix of the DANA customer page (``<prefix><stage>/<signature>``).
PAGE_PREFIX = "/pws/100003/"

_MAX_BODY = 1024 * 1024


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


def status_line(status: int) -> str:
    """``"404 Not Found"`` (``"599 Unknown"`` for codes without a phrase)."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def send(start_response: StartResponse, reply: Reply) -> list[bytes]:
    """Start the response for ``reply`` and return its body."""
    headers = [*reply.headers, ("Content-Length", str(len(reply.body)))]
    start_response(status_line(reply.status), headers)
    return [reply.body]


def read_body(environ: WSGIEnvironment) -> bytes:
    """The request body (raises :class:`EmulatorError` for a bad or too large length)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise EmulatorError("bad Content-Length") from None
    if length > _MAX_BODY:
        raise EmulatorError("request body too large", http_status=413)
    if length <= 0:
        return b""
    stream = environ["wsgi.input"]
    data: bytes = stream.read(length)
    return data


def base_url(environ: WSGIEnvironment, public_url: str | None) -> str:
    """The emulator's own base URL: ``public_url`` if set, else the request's host."""
    if public_url:
        return public_url
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST")
    if not host:
        host = environ.get("SERVER_NAME", "127.0.0.1")
        port = environ.get("SERVER_PORT", "")
        if port and port not in ("80", "443"):
            host = f"{host}:{port}"
    return f"{scheme}://{host}{quote(environ.get('SCRIPT_NAME', ''))}"


def text_or_none(value: object) -> str | None:
    """A non-empty string or integer field as text; None for anything else."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int)):
        text = str(value)
        return text or None
    return None
