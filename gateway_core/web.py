"""A framework-neutral WSGI application with every configured gateway's endpoints.

Routes (``prefix`` defaults to ``""``)::

    POST {prefix}/notify/<gateway>   the provider's server-to-server notification
    GET  {prefix}/return/<gateway>   the customer's browser coming back from the provider
    GET  {prefix}/health             200 ``ok``, or 503 when the ledger does not answer

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
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from gateway_core._exceptions import ConfigurationError, LedgerError, NotificationRejected
from gateway_core._incidents import IncidentLog
from gateway_core._redact import get_logger

if TYPE_CHECKING:
    from gateway_core._service import PaymentService

log = get_logger(__name__)

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_MAX_BODY = 16 * 1024

#: What the provider reads in the failure reply sent while the ledger is down.
UNAVAILABLE_REASON = "temporarily unavailable"
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
            303: "See Other",
            400: "Bad Request",
            403: "Forbidden",
            404: "Not Found",
            405: "Method Not Allowed",
            411: "Length Required",
            413: "Payload Too Large",
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
        if method not in ("GET", "HEAD"):
            return self._respond(start_response, 405, "text/plain", b"GET only", [("Allow", "GET")])
        return self._return(environ, start_response, gateway_name)

    def _notify(
        self, environ: Environ, start_response: StartResponse, gateway_name: str
    ) -> list[bytes]:
        source = self.client_address(environ)
        headers = {
            key[5:].replace("_", "-").title(): str(value)
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if "CONTENT_TYPE" in environ:
            headers["Content-Type"] = str(environ["CONTENT_TYPE"])
        if self.allowed is not None and not self._in(source, self.allowed):
            log.warning("notification on %s refused: source not allowed", gateway_name)
            return self._refuse(start_response, 403, gateway_name, headers)
        # Only now, for an allowed source, is the body read (and never past the cap).
        body = self._read_body(environ)
        if body is None:
            log.warning("notification on %s refused: no Content-Length", gateway_name)
            return self._refuse(start_response, 411, gateway_name, headers)
        if len(body) > self.max_body:
            log.warning(
                "notification on %s refused: body over %d bytes", gateway_name, self.max_body
            )
            try:
                refused = self.service.refuse_notification(gateway_name, "malformed", body)
            except LedgerError as exc:  # not journalled, still refused
                self.ledger_incidents.failed(exc, f"notification on {gateway_name}")
                return self._refuse(start_response, 413, gateway_name, headers)
            ack = refused.acknowledgement
            return self._respond(start_response, 413, ack.content_type, ack.body)
        try:
            outcome = self.service.handle_notification(gateway_name, body, headers)
        except LedgerError as exc:
            self.ledger_incidents.failed(exc, f"notification on {gateway_name}")
            return self._unavailable(start_response, gateway_name, body, headers)
        self.ledger_incidents.recovered()
        ack = outcome.acknowledgement
        return self._respond(start_response, ack.status_code, ack.content_type, ack.body)

    def _unavailable(
        self,
        start_response: StartResponse,
        gateway_name: str,
        body: bytes,
        headers: Mapping[str, str],
    ) -> list[bytes]:
        """The provider's failure reply (in the notification's own format when it parses),
        with 503: the provider re-sends later. Nothing is recorded: the ledger is down."""
        gw = self.service.gateway(gateway_name)
        try:
            notification = gw.handle_notification(body, headers)
        except NotificationRejected as exc:
            ack = exc.acknowledgement
        else:
            ack = gw.acknowledge(notification, accepted=False, reason=UNAVAILABLE_REASON)
        if ack is None:
            return self._respond(start_response, 503, "text/plain", b"temporarily unavailable")
        return self._respond(start_response, 503, ack.content_type, ack.body)

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
        headers: Mapping[str, str],
    ) -> list[bytes]:
        """The provider-format failure reply, without reading further or touching the ledger."""
        try:
            self.service.gateway(gateway_name).handle_notification(b"", headers)
        except NotificationRejected as exc:
            if exc.acknowledgement is not None:
                ack = exc.acknowledgement
                return self._respond(start_response, status, ack.content_type, ack.body)
        return self._respond(start_response, status, "text/plain", b"refused")

    def _return(
        self, environ: Environ, start_response: StartResponse, gateway_name: str
    ) -> list[bytes]:
        query: Mapping[str, str] = dict(
            parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
        )
        try:
            outcome = self.service.handle_return(gateway_name, query, {})
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
