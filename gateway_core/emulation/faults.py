"""Scripted faults: per endpoint, a FIFO of behaviours for the next N requests/notifications.

An emulator declares its endpoints and, when it needs more, its own fault kinds, in a
:class:`FaultCatalogue`; :class:`FaultPlan` holds the queues. Endpoint faults (``endpoint`` one
of the catalogue's endpoints, or ``"*"`` for any of them):

=========================  ======================================================  ===========
fault                      behaviour                                               processed?
=========================  ======================================================  ===========
``refuse``                 listening socket closed at once for ``seconds``          no
                           (default 1.0), idle keep-alive connections dropped;
                           new connections get ECONNREFUSED (``count`` unused)
``reset_before_read``      request head parsed (to route the fault), body unread,  no
                           then ``SO_LINGER(1,0)`` + close → RST
``close_without_response`` body drained, connection closed with a FIN and zero     no
                           bytes (the stale keep-alive race)
``reset_after_read``       request read and PROCESSED, then RST without a reply    yes
``read_timeout``           processed, reply sent after ``seconds`` (default 5)     yes
``slow_drip``              processed, reply sent ``chunk`` (1) byte(s) every       yes
                           ``interval`` seconds (default 1.0)
``http_5xx``               ``status`` 500..599 (default 503) with an HTML body     ``process``
                                                                                   (False)
``http_429``               429, optional ``retry_after`` header value              ``process``
                                                                                   (False)
``malformed_json``         200, ``application/json``, the real answer truncated    ``process``
                                                                                   (True)
``empty_body``             200 with ``Content-Length: 0``                          ``process``
                                                                                   (True)
``html_200``               200 ``text/html`` page                                  ``process``
                                                                                   (True)
=========================  ======================================================  ===========

The socket faults are carried out by :class:`~gateway_core.emulation.http_server.HttpServer`;
the others by the application with :func:`processes`, :func:`shaped_reply` and :func:`drip`.

Notification faults (``endpoint="notification"``), applied to the next notification(s) that
match the catalogue's filters: ``duplicate`` (``times``=1 extra deliveries after the
original), ``delay`` (``seconds`` before the first attempt), ``reorder`` (after the real one,
deliver an extra notification for ``status``), ``drop`` (no HTTP at all: every attempt is
recorded as failed), ``burst`` (``times``=8 concurrent deliveries, released together).
"""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from html import escape
from http import HTTPStatus
from typing import Any

NOTIFICATION = "notification"
ANY_ENDPOINT = "*"

#: Faults the socket layer (HttpServer) must carry out.
SOCKET_FAULTS = frozenset({"reset_before_read", "close_without_response", "reset_after_read"})

#: fault kind -> {param: (accepted types, default)}
Specs = Mapping[str, Mapping[str, tuple[tuple[type, ...], Any]]]

ENDPOINT_FAULT_SPECS: Specs = {
    "refuse": {"seconds": ((int, float), 1.0)},
    "reset_before_read": {},
    "close_without_response": {},
    "reset_after_read": {},
    "read_timeout": {"seconds": ((int, float), 5.0)},
    "slow_drip": {"interval": ((int, float), 1.0), "chunk": ((int,), 1)},
    "http_5xx": {"status": ((int,), 503), "process": ((bool,), False)},
    "http_429": {"retry_after": ((int, str, type(None)), None), "process": ((bool,), False)},
    "malformed_json": {"process": ((bool,), True)},
    "empty_body": {"process": ((bool,), True)},
    "html_200": {"process": ((bool,), True)},
}

NOTIFICATION_FAULT_SPECS: Specs = {
    "duplicate": {"times": ((int,), 1)},
    "delay": {"seconds": ((int, float), 1.0)},
    "reorder": {"status": ((str,), "")},
    "drop": {},
    "burst": {"times": ((int,), 8)},
}


@dataclasses.dataclass
class Fault:
    """One scripted fault with its remaining ``count`` (``filters``: notification faults)."""

    endpoint: str
    kind: str
    count: int
    params: dict[str, Any]
    filters: dict[str, str] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the control API."""
        return {
            "endpoint": self.endpoint,
            "fault": self.kind,
            "count": self.count,
            **self.params,
            **self.filters,
        }

    def param(self, name: str) -> Any:
        """A parameter value (defaults already applied)."""
        return self.params[name]


class FaultCatalogue:
    """The endpoints and fault kinds one emulator accepts; :meth:`make` validates a fault.

    ``filters`` name the subject keys a notification fault may be restricted to (for example a
    status and an order reference); :meth:`FaultPlan.take_notification` matches them.
    """

    def __init__(
        self,
        endpoints: Iterable[str],
        *,
        endpoint_specs: Specs = ENDPOINT_FAULT_SPECS,
        notification_specs: Specs = NOTIFICATION_FAULT_SPECS,
        filters: Iterable[str] = (),
    ) -> None:
        self.endpoints = frozenset(endpoints)
        self.endpoint_specs = endpoint_specs
        self.notification_specs = notification_specs
        self.filters = tuple(filters)

    @property
    def endpoint_faults(self) -> frozenset[str]:
        """Every endpoint fault kind."""
        return frozenset(self.endpoint_specs)

    @property
    def notification_faults(self) -> frozenset[str]:
        """Every notification fault kind."""
        return frozenset(self.notification_specs)

    def make(self, endpoint: str, kind: str, count: int = 1, **params: Any) -> Fault:
        """Validate and build a fault; ``ValueError`` names what is wrong."""
        if endpoint == NOTIFICATION:
            specs = self.notification_specs
        elif endpoint in self.endpoints or endpoint == ANY_ENDPOINT:
            specs = self.endpoint_specs
        else:
            known = ", ".join(sorted([*self.endpoints, ANY_ENDPOINT, NOTIFICATION]))
            raise ValueError(f"unknown endpoint {endpoint!r} (one of {known})")
        if kind not in specs:
            raise ValueError(f"unknown fault {kind!r} for {endpoint} (one of {', '.join(specs)})")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError("count must be a positive integer")
        filters: dict[str, Any] = {}
        if endpoint == NOTIFICATION:
            filters = {name: params.pop(name) for name in self.filters if name in params}
        spec = specs[kind]
        unknown = set(params) - set(spec)
        if unknown:
            hint = ""
            if unknown & set(self.filters):
                hint = f" ({'/'.join(self.filters)} filter notification faults only)"
            names = ", ".join(sorted(unknown))
            raise ValueError(f"unknown parameter(s) for {kind}: {names}{hint}")
        values: dict[str, Any] = {}
        for name, (types, default) in spec.items():
            value = params.get(name, default)
            if isinstance(value, bool) and bool not in types:
                raise ValueError(f"{kind}.{name} has the wrong type")
            if not isinstance(value, types):
                raise ValueError(f"{kind}.{name} has the wrong type")
            values[name] = value
        check_ranges(kind, values)
        kept = {name: str(value) for name, value in filters.items() if value is not None}
        return Fault(endpoint=endpoint, kind=kind, count=count, params=values, filters=kept)


def check_ranges(kind: str, values: Mapping[str, Any]) -> None:
    """The range checks of the common parameters (``ValueError`` when one is out of range)."""
    for name in ("seconds", "interval"):
        if name in values and values[name] < 0:
            raise ValueError(f"{kind}.{name} must be >= 0")
    if kind == "http_5xx" and not 500 <= values["status"] <= 599:
        raise ValueError("http_5xx.status must be a 5xx code")
    if "times" in values and values["times"] < 1:
        raise ValueError(f"{kind}.times must be >= 1")
    if kind == "slow_drip" and values["chunk"] < 1:
        raise ValueError("slow_drip.chunk must be >= 1")


class FaultPlan:
    """Thread-safe per-endpoint queues of :class:`Fault`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, deque[Fault]] = {}

    def add(self, fault: Fault) -> None:
        """Queue ``fault`` after the others of its endpoint."""
        with self._lock:
            self._queues.setdefault(fault.endpoint, deque()).append(fault)

    def clear(self) -> None:
        """Drop every pending fault."""
        with self._lock:
            self._queues.clear()

    def pending(self) -> list[Fault]:
        """Snapshot of the pending faults."""
        with self._lock:
            return [dataclasses.replace(f) for q in self._queues.values() for f in q]

    def take(self, endpoint: str) -> Fault | None:
        """Consume one use of the next fault for ``endpoint`` (its own queue, then ``"*"``)."""
        with self._lock:
            for key in (endpoint, ANY_ENDPOINT):
                queue = self._queues.get(key)
                if queue:
                    return self._consume(queue)
        return None

    def take_notification(self, **subject: str) -> list[Fault]:
        """Consume the first matching fault of each kind for one notification about
        ``subject`` (a fault's filters must all equal the subject's values)."""
        taken: list[Fault] = []
        with self._lock:
            queue = self._queues.get(NOTIFICATION)
            if not queue:
                return taken
            kinds: set[str] = set()
            for fault in list(queue):
                if fault.kind in kinds:
                    continue
                if any(subject.get(k) != v for k, v in fault.filters.items()):
                    continue
                kinds.add(fault.kind)
                taken.append(dataclasses.replace(fault, count=1))
                fault.count -= 1
                if fault.count <= 0:
                    queue.remove(fault)
        return taken

    @staticmethod
    def _consume(queue: deque[Fault]) -> Fault:
        head = queue[0]
        head.count -= 1
        if head.count <= 0:
            queue.popleft()
        return dataclasses.replace(head, count=1)


# --- applying endpoint faults in the application ---------------------------------------------


def processes(fault: Fault | None, unprocessed: Iterable[str] = ()) -> bool:
    """Whether the application handles the request under ``fault`` (``unprocessed``: the
    emulator's own kinds that skip it)."""
    if fault is None:
        return True
    if fault.kind in ("reset_before_read", "close_without_response", *unprocessed):
        return False
    if "process" in fault.params:
        return bool(fault.params["process"])
    return True


def status_line(status: int) -> str:
    """``"404 Not Found"`` (``"599 Unknown"`` for codes without a phrase)."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def error_html(status: int, reason: str) -> bytes:
    """The HTML body of an injected 5xx/429 or a ``html_200`` fault (a proxy's error page)."""
    return (
        f"<html><head><title>{status} {escape(reason)}</title></head><body>"
        f"<center><h1>{status} {escape(reason)}</h1></center><hr><center>nginx</center>"
        "</body></html>\n"
    ).encode()


#: (HTTP status, headers, body) of a reply.
Shaped = tuple[int, list[tuple[str, str]], bytes]


def shaped_reply(
    fault: Fault | None, body: bytes | None, *, fallback: bytes = b"{}"
) -> Shaped | None:
    """The reply a common fault puts in place of the real one (``body``, None when the request
    was not processed; ``fallback`` is truncated for ``malformed_json`` then), or None."""
    if fault is None:
        return None
    kind = fault.kind
    if kind == "http_5xx":
        status = int(fault.param("status"))
        html = error_html(status, status_line(status)[4:])
        return status, [("Content-Type", "text/html")], html
    if kind == "http_429":
        retry_after = fault.param("retry_after")
        headers = [("Content-Type", "text/html")]
        if retry_after is not None:
            headers.append(("Retry-After", str(retry_after)))
        return 429, headers, error_html(429, "Too Many Requests")
    if kind == "malformed_json":
        text = body if body is not None else fallback
        return 200, [("Content-Type", "application/json")], text[: max(1, len(text) // 2)]
    if kind == "empty_body":
        return 200, [("Content-Type", "application/json")], b""
    if kind == "html_200":
        return 200, [("Content-Type", "text/html")], error_html(200, "OK")
    if kind in ("reset_before_read", "close_without_response"):
        return 500, [("Content-Type", "text/plain")], b""
    return None


def drip(body: bytes, interval: float, chunk: int, stopping: threading.Event) -> Iterator[bytes]:
    """``body`` in ``chunk``-byte pieces ``interval`` seconds apart (``slow_drip``); stops
    early when ``stopping`` is set."""
    for offset in range(0, len(body), chunk):
        if offset and stopping.wait(interval):
            return
        yield body[offset : offset + chunk]
