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

Mount it in Flask, Django or FastAPI: see ``docs/frameworks.md``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from gateway_core._customer_action import pay_page
from gateway_core._exceptions import ConfigurationError, LedgerError, NotificationRejected
from gateway_core._inbound import InboundRequest, Reason
from gateway_core._incidents import IncidentLog
from gateway_core._redact import get_logger

if TYPE_CHECKING:
    from gateway_core._service import PaymentService

log = get_logger(__name__)

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_MAX_BODY = 16 * 1024

#: What a server may buffer beyond ``max_body`` before the app sees the request: room for
#: chunked framing and one byte over, so the app still answers "too large" in the provider's
#: format; anything larger the server refuses by itself (see :func:`server_body_limit`).
SERVER_BODY_MARGIN = 64 * 1024


def server_body_limit(max_body: int = DEFAULT_MAX_BODY) -> int:
    """The request body size a server in front of the app should refuse by itself
    (waitress' ``max_request_body_size``), so nothing near its 1 GiB default is ever read."""
    return max_body + 1 + SERVER_BODY_MARGIN


def _networks(values: Iterable[str]) -> tuple[Network, ...]:
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ConfigurationError(f"not an IP address or network: {value!r}") from None
    return tuple(networks)


class GatewayWSGIApp:
    """The WSGI application. Build it with :func:`make_wsgi_app`."""

    #: The bound (seconds) of the ledger check behind ``/health``.
    health_timeout: float = 2.0

    def __init__(
        self,
        service: PaymentService,
        *,
        prefix: str = "",
        return_page: str = "/",
        max_body: int = DEFAULT_MAX_BODY,
        allowed_sources: Iterable[str] | None = None,
        trusted_proxies: Iterable[str] = (),
    ) -> None:
        self.service = service
        self.prefix = prefix.rstrip("/")
        self.return_page = return_page
        self.max_body = max_body
        self.allowed = _networks(allowed_sources) if allowed_sources is not None else None
        self.proxies = _networks(trusted_proxies)
        self.ledger_incidents = IncidentLog(log, "ledger")

    # -- helpers ----------------------------------------------------------------------------

    def client_address(self, environ: Environ) -> str:
        """The peer address; ``X-Forwarded-For`` counts only when the peer is a trusted proxy
        (the right-most address not itself a trusted proxy)."""
        peer = str(environ.get("REMOTE_ADDR", ""))
        if not self.proxies or not self._in(peer, self.proxies):
            return peer
        forwarded = [
            a.strip() for a in str(environ.get("HTTP_X_FORWARDED_FOR", "")).split(",") if a.strip()
        ]
        for address in reversed(forwarded):
            if not self._in(address, self.proxies):
                return address
        return peer

    @staticmethod
    def _in(address: str, networks: tuple[Network, ...]) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # an IPv4 peer of a dual-stack server ("::ffff:127.0.0.1")
        return any(ip in net for net in networks)

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
    def _respond(
        start_response: StartResponse,
        status: int,
        content_type: str,
        body: bytes,
        headers: Iterable[tuple[str, str]] = (),
    ) -> list[bytes]:
        reason = {
            200: "OK",
            302: "Found",
            303: "See Other",
            400: "Bad Request",
            403: "Forbidden",
            404: "Not Found",
            405: "Method Not Allowed",
            411: "Length Required",
            413: "Payload Too Large",
            502: "Bad Gateway",
            503: "Service Unavailable",
        }.get(status, "Error")
        start_response(
            f"{status} {reason}",
            [("Content-Type", content_type), ("Content-Length", str(len(body))), *headers],
        )
        return [body]

    # -- WSGI ---------------------------------------------------------------------------------

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        if self.prefix:
            if not path.startswith(self.prefix + "/"):
                return self._respond(start_response, 404, "text/plain", b"not found")
            path = path[len(self.prefix) :]
        parts = [p for p in path.split("/") if p]
        if parts == ["health"]:
            return self._health(start_response)
        if len(parts) == 3 and parts[0] == "pay" and parts[1] in self.service.gateways:
            if method not in ("GET", "HEAD"):
                return self._respond(
                    start_response, 405, "text/plain", b"GET only", [("Allow", "GET")]
                )
            page = pay_page(self.service, parts[1], parts[2])
            return self._respond(
                start_response, page.status, page.content_type, page.body, page.headers
            )
        if len(parts) != 2 or parts[0] not in ("notify", "return"):
            return self._respond(start_response, 404, "text/plain", b"not found")
        action, gateway_name = parts
        if gateway_name not in self.service.gateways:
            return self._respond(start_response, 404, "text/plain", b"unknown gateway")
        if action == "notify":
            if method != "POST":
                return self._respond(
                    start_response, 405, "text/plain", b"POST only", [("Allow", "POST")]
                )
            return self._notify(environ, start_response, gateway_name)
        if method not in ("GET", "HEAD", "POST"):
            return self._respond(
                start_response, 405, "text/plain", b"GET or POST only", [("Allow", "GET, POST")]
            )
        return self._return(environ, start_response, gateway_name, method)

    def _notify(
        self, environ: Environ, start_response: StartResponse, gateway_name: str
    ) -> list[bytes]:
        source = self.client_address(environ)
        headers = self._headers(environ)
        query = dict(parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True))
        if self.allowed is not None and not self._in(source, self.allowed):
            log.warning("notification on %s refused: source not allowed", gateway_name)
            request = InboundRequest("POST", headers, query)
            return self._refuse(
                start_response, 403, gateway_name, Reason.SOURCE_NOT_ALLOWED, request
            )
        # Only now, for an allowed source, is the body read (and never past the cap).
        body = self._read_body(environ)
        if body is None:
            log.warning("notification on %s refused: no Content-Length", gateway_name)
            request = InboundRequest("POST", headers, query)
            return self._refuse(start_response, 411, gateway_name, Reason.LENGTH_REQUIRED, request)
        request = InboundRequest("POST", headers, query, {}, body)
        if len(body) > self.max_body:
            log.warning(
                "notification on %s refused: body over %d bytes", gateway_name, self.max_body
            )
            return self._refuse(start_response, 413, gateway_name, Reason.TOO_LARGE, request)
        try:
            outcome = self.service.receive_notification(gateway_name, request)
        except LedgerError as exc:
            # Nothing was replied yet: the failure reply, with 503 so the provider re-sends.
            self.ledger_incidents.failed(exc, f"notification on {gateway_name}")
            return self._refuse(
                start_response, 503, gateway_name, Reason.LEDGER_UNAVAILABLE, request
            )
        self.ledger_incidents.recovered()
        ack = outcome.acknowledgement
        return self._respond(start_response, ack.status_code, ack.content_type, ack.body)

    @staticmethod
    def _headers(environ: Environ) -> dict[str, str]:
        headers = {
            key[5:].replace("_", "-").lower(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if "CONTENT_TYPE" in environ:
            headers["content-type"] = str(environ["CONTENT_TYPE"])
        return headers

    def _health(self, start_response: StartResponse) -> list[bytes]:
        try:
            self.service.ledger.ping(self.health_timeout)
        except LedgerError as exc:
            self.ledger_incidents.failed(exc, "health")
            return self._respond(start_response, 503, "text/plain", b"ledger unavailable")
        self.ledger_incidents.recovered()
        return self._respond(start_response, 200, "text/plain", b"ok")

    def _refuse(
        self,
        start_response: StartResponse,
        status: int,
        gateway_name: str,
        reason: Reason,
        request: InboundRequest,
    ) -> list[bytes]:
        """The provider-format failure reply with ``status``, through the service (which
        journals the refusal); when the ledger is down too, the reply alone."""
        try:
            refused = self.service.refuse_notification(gateway_name, reason, request)
        except LedgerError as exc:  # not journalled, still refused
            self.ledger_incidents.failed(exc, f"notification on {gateway_name}")
            refused = self.service.refuse_notification(gateway_name, reason, request, journal=False)
        ack = refused.acknowledgement
        return self._respond(start_response, status, ack.content_type, ack.body)

    def _return(
        self, environ: Environ, start_response: StartResponse, gateway_name: str, method: str
    ) -> list[bytes]:
        query = dict(parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True))
        headers = self._headers(environ)
        if method == "POST":
            body = self._read_body(environ)
            if body is None or len(body) > self.max_body:
                return self._respond(
                    start_response, 400, "text/plain; charset=utf-8", b"This link is not valid."
                )
            request = InboundRequest.post(body, headers, query=query)
        else:
            request = InboundRequest.get(query, headers)
        try:
            outcome = self.service.receive_return(gateway_name, request)
        except NotificationRejected as exc:
            log.warning("return on %s rejected: %s", gateway_name, exc.reason)
            return self._respond(
                start_response, 400, "text/plain; charset=utf-8", b"This link is not valid."
            )
        except LedgerError as exc:
            self.ledger_incidents.failed(exc, f"return on {gateway_name}")
            return self._respond(
                start_response,
                503,
                "text/plain; charset=utf-8",
                b"We cannot show your payment's status right now. Your payment is not "
                b"affected: please reload this page in a minute.",
                [("Retry-After", "60")],
            )
        self.ledger_incidents.recovered()
        record = outcome.payment
        params = {
            "gateway": gateway_name,
            "reference": outcome.claimed.merchant_reference,
            "status": record.status.value if record else "unknown",
        }
        if record is not None:
            params["order"] = record.order_reference
        separator = "&" if "?" in self.return_page else "?"
        location = f"{self.return_page}{separator}{urlencode(params)}"
        return self._respond(
            start_response, 303, "text/plain", b"See Other", [("Location", location)]
        )


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
