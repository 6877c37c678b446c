"""A native ASGI 3 application with every configured gateway's endpoints (no WSGI adapter).

The routes, limits and replies are the WSGI app's (:mod:`gateway_core.web`): both front ends
share :class:`~gateway_core._web_core.EndpointCore`, which routes, checks the source and
turns the service's answers into replies. What differs is the I/O:

* the body is read from ``receive()`` chunk by chunk and never past ``max_body`` + 1 bytes;
  a notification from a source not allowed gets its 403 and one whose ``Content-Length``
  is over the cap its 413 before any of the body is read. The ASGI server delimits every
  body (chunked included), so there is no 411 here.
* every call into the payment service (ledger queries, provider inquiries over ``requests``,
  the order-system hooks) is blocking underneath and runs in the bounded thread pool of an
  :class:`~gateway_core.AsyncPaymentService`: the event loop keeps serving other requests
  while a return waits on a slow provider inquiry.

``lifespan`` scopes are accepted (startup and shutdown complete at once; on shutdown the app
closes the thread pool it made itself, never one it was given).

Run it with uvicorn (``pip install 'gateway-core[asgi]'``) or mount it in any ASGI framework:
see ``docs/frameworks.md``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from gateway_core._async_service import AsyncPaymentService
from gateway_core._inbound import InboundRequest, Reason
from gateway_core._web_core import DEFAULT_MAX_BODY, INVALID_LINK, EndpointCore, Reply

if TYPE_CHECKING:
    from gateway_core._service import PaymentService

__all__ = ["GatewayASGIApp", "make_asgi_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class _Disconnected(Exception):
    """The client went away before its body was read."""


class GatewayASGIApp(EndpointCore):
    """The ASGI application. Build it with :func:`make_asgi_app`."""

    def __init__(
        self,
        service: PaymentService | AsyncPaymentService,
        *,
        max_workers: int = 8,
        **options: Any,
    ) -> None:
        if isinstance(service, AsyncPaymentService):
            self.async_service = service
            self._owns_pool = False
        else:
            self.async_service = AsyncPaymentService(service, max_workers=max_workers)
            self._owns_pool = True
        super().__init__(self.async_service.service, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":  # websocket: not ours
            raise RuntimeError(f"gateway_core.asgi serves HTTP only, not {scope['type']!r}")
        try:
            reply = await self._handle(scope, receive)
        except _Disconnected:
            return
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [
                    (name.lower().encode("latin-1"), value.encode("latin-1"))
                    for name, value in reply.header_list()
                ],
            }
        )
        await send({"type": "http.response.body", "body": reply.body, "more_body": False})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._owns_pool:
                    await self.async_service.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _handle(self, scope: Scope, receive: Receive) -> Reply:
        path = str(scope.get("path", ""))
        root_path = str(scope.get("root_path", ""))
        if root_path and path.startswith(root_path):  # mounted: the path below the mount
            path = path[len(root_path) :]
        method = str(scope.get("method", "GET")).upper()
        route = self.route(method, path)
        run = self.async_service.run
        if route.reply is not None:
            return route.reply
        if route.kind == "health":
            return await run(self.health)
        if route.kind == "pay":
            return await run(self.pay, route.gateway, route.reference)
        headers = _headers(scope)
        raw_query = bytes(scope.get("query_string", b"")).decode("latin-1")
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        if route.kind == "done":
            return await run(self.done, query)
        if route.kind == "notify":
            return await self._notify(scope, receive, route.gateway, headers, query)
        if method == "POST":
            body = await self._read_body(receive, headers)
            if body is None or len(body) > self.max_body:
                return INVALID_LINK
            request = InboundRequest.post(body, headers, query=query)
        else:
            request = InboundRequest.get(query, headers)
        return await run(self.return_, route.gateway, request)

    async def _notify(
        self,
        scope: Scope,
        receive: Receive,
        gateway_name: str,
        headers: dict[str, str],
        query: dict[str, str],
    ) -> Reply:
        run = self.async_service.run
        client = scope.get("client") or ("", 0)
        source = self.client_of(str(client[0]), headers.get("x-forwarded-for", ""))
        bare = InboundRequest("POST", headers, query)
        if not self.source_allowed(gateway_name, source):
            return await run(self.refuse, 403, gateway_name, Reason.SOURCE_NOT_ALLOWED, bare)
        # Only now, for an allowed source, is the body read (and never past the cap).
        body = await self._read_body(receive, headers)
        if body is None:  # declared over the cap: refused unread
            return await run(self.refuse, 413, gateway_name, Reason.TOO_LARGE, bare)
        request = InboundRequest("POST", headers, query, {}, body)
        return await run(self.notify, gateway_name, request)

    async def _read_body(self, receive: Receive, headers: dict[str, str]) -> bytes | None:
        """The body, at most one byte over the cap; None, unread, when its declared length
        is already over the cap."""
        declared = headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > self.max_body:
            return None
        chunks: list[bytes] = []
        size = 0
        more = True
        while more and size <= self.max_body:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = bytes(message.get("body", b""))
            chunks.append(chunk)
            size += len(chunk)
            more = bool(message.get("more_body", False))
        return b"".join(chunks)[: self.max_body + 1]


def _headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = bytes(raw_name).decode("latin-1").lower()
        value = bytes(raw_value).decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


def make_asgi_app(
    service: PaymentService | AsyncPaymentService,
    *,
    prefix: str = "",
    return_page: str = "/",
    max_body: int = DEFAULT_MAX_BODY,
    allowed_sources: Iterable[str] | None = None,
    trusted_proxies: Iterable[str] = (),
    max_workers: int = 8,
) -> GatewayASGIApp:
    """The notification and return endpoints of every gateway the service knows, as an ASGI
    app. Give it an :class:`~gateway_core.AsyncPaymentService` to share its thread pool with
    your own ``async def`` code; given a plain service, the app makes a pool of
    ``max_workers`` threads (closed on lifespan shutdown).

    ``allowed_sources`` (addresses or networks) restricts who may POST notifications;
    ``trusted_proxies`` are the reverse proxies whose ``X-Forwarded-For`` is believed.
    """
    return GatewayASGIApp(
        service,
        max_workers=max_workers,
        prefix=prefix,
        return_page=return_page,
        max_body=max_body,
        allowed_sources=allowed_sources,
        trusted_proxies=trusted_proxies,
    )
