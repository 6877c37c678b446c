"""The framework-neutral part of the gateway endpoints, shared by the WSGI app
(:mod:`gateway_core.web`) and the ASGI app (:mod:`gateway_core.asgi`).

:class:`EndpointCore` routes a request, decides who may post notifications, and turns the
payment service's answers (or its ``LedgerError``) into :class:`Reply` values. Reading the
body and writing the reply are left to the server-specific front ends. The methods that call
the service (:meth:`EndpointCore.health`, ``pay``, ``refuse``, ``notify``, ``return_``) block
(ledger queries, provider inquiries over ``requests``): the WSGI app calls them in its worker
thread, the ASGI app in the bounded thread pool of :class:`~gateway_core.AsyncPaymentService`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import attrs

from gateway_core._customer_action import pay_page
from gateway_core._exceptions import ConfigurationError, LedgerError, NotificationRejected
from gateway_core._inbound import InboundRequest, Reason
from gateway_core._incidents import IncidentLog
from gateway_core._redact import get_logger

if TYPE_CHECKING:
    from gateway_core._service import PaymentService

#: Both front ends log as ``gateway_core.web`` (operators filter on that name).
log = get_logger("gateway_core.web")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_MAX_BODY = 16 * 1024

REASON_PHRASES = {
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
}


@attrs.frozen
class Reply:
    """One HTTP reply: status, content type, body and extra headers."""

    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def status_line(self) -> str:
        return f"{self.status} {REASON_PHRASES.get(self.status, 'Error')}"

    def header_list(self) -> list[tuple[str, str]]:
        return [
            ("Content-Type", self.content_type),
            ("Content-Length", str(len(self.body))),
            *self.headers,
        ]


def text(status: int, body: bytes, *headers: tuple[str, str]) -> Reply:
    return Reply(status, "text/plain", body, tuple(headers))


NOT_FOUND = text(404, b"not found")
UNKNOWN_GATEWAY = text(404, b"unknown gateway")
POST_ONLY = text(405, b"POST only", ("Allow", "POST"))
GET_ONLY = text(405, b"GET only", ("Allow", "GET"))
GET_OR_POST = text(405, b"GET or POST only", ("Allow", "GET, POST"))
INVALID_LINK = Reply(400, "text/plain; charset=utf-8", b"This link is not valid.")
RETURN_UNAVAILABLE = Reply(
    503,
    "text/plain; charset=utf-8",
    b"We cannot show your payment's status right now. Your payment is not "
    b"affected: please reload this page in a minute.",
    (("Retry-After", "60"),),
)


@attrs.frozen
class Route:
    """Where a request goes: ``kind`` is ``health``, ``pay``, ``notify`` or ``return``; or a
    ready ``reply`` (404, 405)."""

    kind: str = ""
    gateway: str = ""
    reference: str = ""
    reply: Reply | None = None


def networks(values: Iterable[str]) -> tuple[Network, ...]:
    found = []
    for value in values:
        try:
            found.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ConfigurationError(f"not an IP address or network: {value!r}") from None
    return tuple(found)


def in_networks(address: str, nets: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # an IPv4 peer of a dual-stack server ("::ffff:127.0.0.1")
    return any(ip in net for net in nets)


class EndpointCore:
    """The decisions of the endpoints, whatever the server interface."""

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
        self.allowed = networks(allowed_sources) if allowed_sources is not None else None
        self.proxies = networks(trusted_proxies)
        self.ledger_incidents = IncidentLog(log, "ledger")

    # -- decisions without the service -------------------------------------------------------

    def client_of(self, peer: str, forwarded_for: str) -> str:
        """The peer address; ``X-Forwarded-For`` counts only when the peer is a trusted proxy
        (the right-most address not itself a trusted proxy)."""
        if not self.proxies or not in_networks(peer, self.proxies):
            return peer
        forwarded = [a.strip() for a in forwarded_for.split(",") if a.strip()]
        for address in reversed(forwarded):
            if not in_networks(address, self.proxies):
                return address
        return peer

    def source_allowed(self, gateway_name: str, source: str) -> bool:
        if self.allowed is None or in_networks(source, self.allowed):
            return True
        log.warning("notification on %s refused: source not allowed", gateway_name)
        return False

    def route(self, method: str, path: str) -> Route:
        if self.prefix:
            if not path.startswith(self.prefix + "/"):
                return Route(reply=NOT_FOUND)
            path = path[len(self.prefix) :]
        parts = [p for p in path.split("/") if p]
        if parts == ["health"]:
            return Route("health")
        if parts == ["done"]:
            return Route("done") if method in ("GET", "HEAD") else Route(reply=GET_ONLY)
        if len(parts) == 3 and parts[0] == "pay" and parts[1] in self.service.gateways:
            if method not in ("GET", "HEAD"):
                return Route(reply=GET_ONLY)
            return Route("pay", parts[1], parts[2])
        if len(parts) != 2 or parts[0] not in ("notify", "return"):
            return Route(reply=NOT_FOUND)
        action, gateway_name = parts
        if gateway_name not in self.service.gateways:
            return Route(reply=UNKNOWN_GATEWAY)
        if action == "notify":
            if method != "POST":
                return Route(reply=POST_ONLY)
            return Route("notify", gateway_name)
        if method not in ("GET", "HEAD", "POST"):
            return Route(reply=GET_OR_POST)
        return Route("return", gateway_name)

    # -- decisions through the service (blocking) ------------------------------------------

    def health(self) -> Reply:
        try:
            self.service.ledger.ping(self.health_timeout)
        except LedgerError as exc:
            self.ledger_incidents.failed(exc, "health")
            return text(503, b"ledger unavailable")
        self.ledger_incidents.recovered()
        return text(200, b"ok")

    def done(self, query: Mapping[str, str]) -> Reply:
        """The built-in return page (``gateway serve`` without ``--return-page``): the
        payment's status as the ledger has it. The query only names the payment; its
        ``status`` is what the browser was told and is never shown as fact."""
        gateway_name, reference = query.get("gateway", ""), query.get("reference", "")
        if gateway_name not in self.service.gateways:
            return NOT_FOUND
        try:
            record = self.service.ledger.get_payment(gateway_name, reference)
        except LedgerError as exc:
            self.ledger_incidents.failed(exc, f"return page on {gateway_name}")
            return RETURN_UNAVAILABLE
        if record is None:
            return NOT_FOUND
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Payment</title></head>"
            f"<body><h1>Order {escape(record.order_reference)}</h1>"
            f"<p id='status'>Payment {escape(record.merchant_reference)}: "
            f"{escape(record.status.value)}</p></body></html>"
        )
        return Reply(
            200,
            "text/html; charset=utf-8",
            page.encode("utf-8"),
            (("Cache-Control", "no-store"), ("Referrer-Policy", "no-referrer")),
        )

    def pay(self, gateway_name: str, merchant_reference: str) -> Reply:
        page = pay_page(self.service, gateway_name, merchant_reference)
        return Reply(page.status, page.content_type, page.body, tuple(page.headers))

    def refuse(
        self, status: int, gateway_name: str, reason: Reason, request: InboundRequest
    ) -> Reply:
        """The provider-format failure reply with ``status``, through the service (which
        journals the refusal); when the ledger is down too, the reply alone."""
        if reason is Reason.LENGTH_REQUIRED:
            log.warning("notification on %s refused: no Content-Length", gateway_name)
        elif reason is Reason.TOO_LARGE:
            log.warning(
                "notification on %s refused: body over %d bytes", gateway_name, self.max_body
            )
        try:
            refused = self.service.refuse_notification(gateway_name, reason, request)
        except LedgerError as exc:  # not journalled, still refused
            self.ledger_incidents.failed(exc, f"notification on {gateway_name}")
            refused = self.service.refuse_notification(gateway_name, reason, request, journal=False)
        ack = refused.acknowledgement
        return Reply(status, ack.content_type, ack.body)

    def notify(self, gateway_name: str, request: InboundRequest) -> Reply:
        """A notification whose body was read (at most one byte over the cap)."""
        if len(request.body) > self.max_body:
            return self.refuse(413, gateway_name, Reason.TOO_LARGE, request)
        try:
            outcome = self.service.receive_notification(gateway_name, request)
        except LedgerError as exc:
            # Nothing was replied yet: the failure reply, with 503 so the provider re-sends.
            self.ledger_incidents.failed(exc, f"notification on {gateway_name}")
            return self.refuse(503, gateway_name, Reason.LEDGER_UNAVAILABLE, request)
        self.ledger_incidents.recovered()
        ack = outcome.acknowledgement
        return Reply(ack.status_code, ack.content_type, ack.body)

    def return_(self, gateway_name: str, request: InboundRequest) -> Reply:
        try:
            outcome = self.service.receive_return(gateway_name, request)
        except NotificationRejected as exc:
            log.warning("return on %s rejected: %s", gateway_name, exc.reason)
            return INVALID_LINK
        except LedgerError as exc:
            self.ledger_incidents.failed(exc, f"return on {gateway_name}")
            return RETURN_UNAVAILABLE
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
        return text(303, b"See Other", ("Location", location))
