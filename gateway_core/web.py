"""A framework-neutral WSGI application with every configured gateway's endpoints.

Routes (``prefix`` defaults to ``""``)::

    POST {prefix}/notify/<gateway>   the provider's server-to-server notification
    GET  {prefix}/return/<gateway>   the customer's browser coming back from the provider
    POST {prefix}/return/<gateway>   (the same, for a provider that returns it by a POSTed form)
    GET  {prefix}/health             200 ``ok``, or 503 when the ledger does not answer
    GET  {prefix}/pay/<gateway>/<merchant_reference>
                                     the customer's way to pay: 302 to a GET redirect, an
                                     auto-submitting form for a POST redirect, a page of
                                     instructions; 404 once it cannot be paid
                                     (:mod:`gateway_core._customer_action`)

The notification endpoint reads the raw body (capped), hands the bytes to the payment
service and answers with exactly the status, content type and body the provider expects.
A malformed or forged notification gets the provider's failure reply and a 4xx, and leaves the
ledger's payments untouched (it is journalled, redacted). The return endpoint verifies the
query, lets the service confirm by inquiry, and sends the customer on (303) to
``return_page`` with ``order``, ``reference`` and ``status`` query parameters.

When the ledger is unreachable or does not answer within its bounds (``LedgerError``), a
notification gets the provider's failure reply with status 503 (the provider re-sends it
later; nothing was recorded), the return endpoint a short "try again" page (503), and the
trouble is logged once per incident (``gateway_core._incidents``), never as a traceback per
request. ``/health`` pings the ledger, bounded by ``health_timeout`` seconds.

Mount it in Flask, Django or FastAPI: see ``docs/frameworks.md``. The routing and decisions
live in :mod:`gateway_core._web_core`, shared with the native ASGI app (:mod:`gateway_core.asgi`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from gateway_core._inbound import InboundRequest, Reason
from gateway_core._web_core import (
    DEFAULT_MAX_BODY,
    INVALID_LINK,
    EndpointCore,
    Network,
    Reply,
    in_networks,
    log,
)

if TYPE_CHECKING:
    from gateway_core._service import PaymentService

__all__ = [
    "DEFAULT_MAX_BODY",
    "SERVER_BODY_MARGIN",
    "GatewayWSGIApp",
    "Network",
    "log",
    "make_wsgi_app",
    "server_body_limit",
]

Environ = dict[str, Any]
StartResponse = Callable[..., Any]

#: What a server may buffer beyond ``max_body`` before the app sees the request: room for
#: chunked framing and one byte over, so the app still answers "too large" in the provider's
#: format; anything larger the server refuses by itself (see :func:`server_body_limit`).
SERVER_BODY_MARGIN = 64 * 1024


def server_body_limit(max_body: int = DEFAULT_MAX_BODY) -> int:
    """The request body size a server in front of the app should refuse by itself
    (waitress' ``max_request_body_size``), so nothing near its 1 GiB default is ever read."""
    return max_body + 1 + SERVER_BODY_MARGIN


def headers_of(environ: Environ) -> dict[str, str]:
    headers = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    if "CONTENT_TYPE" in environ:
        headers["content-type"] = str(environ["CONTENT_TYPE"])
    return headers


class GatewayWSGIApp(EndpointCore):
    """The WSGI application. Build it with :func:`make_wsgi_app`. The decisions are
    :class:`~gateway_core._web_core.EndpointCore`'s, shared with the ASGI app."""

    def client_address(self, environ: Environ) -> str:
        """The peer address; ``X-Forwarded-For`` counts only when the peer is a trusted proxy
        (the right-most address not itself a trusted proxy)."""
        return self.client_of(
            str(environ.get("REMOTE_ADDR", "")), str(environ.get("HTTP_X_FORWARDED_FOR", ""))
        )

    @staticmethod
    def _in(address: str, networks: tuple[Network, ...]) -> bool:
        return in_networks(address, networks)

    def _read_body(self, environ: Environ) -> bytes | None:
        """The body, at most one byte over the cap (enough to see "too large"); None when it
        cannot be read safely: no Content-Length and a server that does not promise an
        end-of-stream (``wsgi.input_terminated``), where a read would wait for bytes that
        never come (wsgiref with a chunked body)."""
        stream = environ.get("wsgi.input")
        if stream is None:
            return b""
        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            length = -1
        if length < 0 and not environ.get("wsgi.input_terminated"):
            return None
        wanted = self.max_body + 1 if length < 0 else min(length, self.max_body + 1)
        chunks: list[bytes] = []
        while wanted > 0:
            chunk: bytes = stream.read(wanted)
            if not chunk:
                break
            chunks.append(chunk)
            wanted -= len(chunk)
        return b"".join(chunks)

    @staticmethod
    def _send(start_response: StartResponse, reply: Reply) -> list[bytes]:
        start_response(reply.status_line, reply.header_list())
        return [reply.body]

    # -- WSGI ---------------------------------------------------------------------------------

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        route = self.route(method, path)
        if route.reply is not None:
            reply = route.reply
        elif route.kind == "health":
            reply = self.health()
        elif route.kind == "pay":
            reply = self.pay(route.gateway, route.reference)
        elif route.kind == "done":
            query = parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
            reply = self.done(dict(query))
        elif route.kind == "notify":
            reply = self._notify(environ, route.gateway)
        else:
            reply = self._return(environ, route.gateway, method)
        return self._send(start_response, reply)

    def _notify(self, environ: Environ, gateway_name: str) -> Reply:
        headers = headers_of(environ)
        query = dict(parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True))
        if not self.source_allowed(gateway_name, self.client_address(environ)):
            request = InboundRequest("POST", headers, query)
            return self.refuse(403, gateway_name, Reason.SOURCE_NOT_ALLOWED, request)
        # Only now, for an allowed source, is the body read (and never past the cap).
        body = self._read_body(environ)
        if body is None:
            request = InboundRequest("POST", headers, query)
            return self.refuse(411, gateway_name, Reason.LENGTH_REQUIRED, request)
        return self.notify(gateway_name, InboundRequest("POST", headers, query, {}, body))

    def _return(self, environ: Environ, gateway_name: str, method: str) -> Reply:
        query = dict(parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True))
        headers = headers_of(environ)
        if method == "POST":
            body = self._read_body(environ)
            if body is None or len(body) > self.max_body:
                return INVALID_LINK
            request = InboundRequest.post(body, headers, query=query)
        else:
            request = InboundRequest.get(query, headers)
        return self.return_(gateway_name, request)


def make_wsgi_app(
    service: PaymentService,
    *,
    prefix: str = "",
    return_page: str = "/",
    max_body: int = DEFAULT_MAX_BODY,
    allowed_sources: Iterable[str] | None = None,
    trusted_proxies: Iterable[str] = (),
) -> GatewayWSGIApp:
    """The notification and return endpoints of every gateway the service knows.

    ``allowed_sources`` (addresses or networks) restricts who may POST notifications;
    ``trusted_proxies`` are the reverse proxies whose ``X-Forwarded-For`` is believed.
    """
    return GatewayWSGIApp(
        service,
        prefix=prefix,
        return_page=return_page,
        max_body=max_body,
        allowed_sources=allowed_sources,
        trusted_proxies=trusted_proxies,
    )
