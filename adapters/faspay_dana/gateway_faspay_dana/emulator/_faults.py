"""Scripted faults: per endpoint, a FIFO of behaviours for the next N requests/notifications.

Endpoint faults (``endpoint`` one of ``channel_inquiry``, ``create``, ``inquiry``, ``cancel``
— each for its JSON and XML route —, ``redirect``, ``complete``, ``ovo_direct`` or ``"*"`` for
any of them):

=========================  ======================================================  ===========
fault                      behaviour                                               processed?
=========================  ======================================================  ===========
``refuse``                 listening socket closed at once for ``seconds``          no
                           (default 1.0), idle keep-alive connections dropped;
                           new connections get ECONNREFUSED (``count`` unused)
``reset_before_read``      request head parsed (to route the fault), body unread,  no
                           then ``SO_LINGER(1,0)`` + close → RST
``close_without_response`` body drained, connection closed with a FIN and zero     no
                           bytes (the stale keep-alive race, F4)
``reset_after_read``       request read and PROCESSED, then RST without a reply    yes
``read_timeout``           processed, reply sent after ``seconds`` (default 5)     yes
``slow_drip``              processed, reply sent ``chunk`` (1) byte(s) every       yes
                           ``interval`` seconds (default 1.0)
``http_5xx``               ``status`` 500/502/503 (default 503) with an HTML body  ``process``
                                                                                   (False)
``http_429``               429, optional ``retry_after`` header value              ``process``
                                                                                   (False)
``malformed_json``         200, ``application/json``, the real answer truncated    ``process``
                                                                                   (True)
``empty_body``             200 with ``Content-Length: 0``                          ``process``
                                                                                   (True)
``html_200``               200 ``text/html`` page                                  ``process``
                                                                                   (True)
``business_error``         200 with ``response_code`` (default ``96``), optional   no
                           ``response_desc`` and ``wrapper`` (``response_error``)
=========================  ======================================================  ===========

Notification faults (``endpoint="notification"``; each applies to the next ``count``
notifications, optionally only those with ``on_status`` and/or ``bill_no``; one fault of each
kind combines with faults of other kinds on the same notification):

``duplicate`` (``times``=1 extra deliveries, sent one after another once the original is done),
``delay`` (``seconds`` before the first attempt), ``reorder`` (after the real one, deliver an
extra notification with ``status``, default ``"3"``, signed for that status; the bill does not
change), ``drop`` (no HTTP at all: every attempt is recorded as failed, merchant unreachable),
``burst`` (``times``=8 concurrent deliveries in total, released together by a barrier),
``legacy_signature`` (signed without the status, like the D6 XML sample).
"""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from typing import Any

from gateway_faspay_dana.emulator._codes import ENDPOINTS

NOTIFICATION = "notification"

#: Faults the socket layer (EmulatorServer) must carry out.
SOCKET_FAULTS = frozenset({"reset_before_read", "close_without_response", "reset_after_read"})

#: kind -> {param: (types, default)}
_ENDPOINT_SPECS: dict[str, dict[str, tuple[tuple[type, ...], Any]]] = {
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
    "business_error": {
        "response_code": ((str,), "96"),
        "response_desc": ((str, type(None)), None),
        "wrapper": ((bool,), False),
    },
}

_NOTIFICATION_SPECS: dict[str, dict[str, tuple[tuple[type, ...], Any]]] = {
    "duplicate": {"times": ((int,), 1)},
    "delay": {"seconds": ((int, float), 1.0)},
    "reorder": {"status": ((str,), "3")},
    "drop": {},
    "burst": {"times": ((int,), 8)},
    "legacy_signature": {},
}

_FILTERS = ("on_status", "bill_no")

ENDPOINT_FAULTS = frozenset(_ENDPOINT_SPECS)
NOTIFICATION_FAULTS = frozenset(_NOTIFICATION_SPECS)


@dataclasses.dataclass
class Fault:
    """One scripted fault with its remaining ``count``."""

    endpoint: str
    kind: str
    count: int
    params: dict[str, Any]
    on_status: str | None = None
    bill_no: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the control API."""
        data: dict[str, Any] = {
            "endpoint": self.endpoint,
            "fault": self.kind,
            "count": self.count,
            **self.params,
        }
        if self.on_status is not None:
            data["on_status"] = self.on_status
        if self.bill_no is not None:
            data["bill_no"] = self.bill_no
        return data

    def param(self, name: str) -> Any:
        """A parameter value (defaults already applied)."""
        return self.params[name]


def make_fault(endpoint: str, kind: str, count: int = 1, **params: Any) -> Fault:
    """Validate and build a fault; ``ValueError`` names what is wrong."""
    if endpoint == NOTIFICATION:
        specs = _NOTIFICATION_SPECS
    elif endpoint in ENDPOINTS or endpoint == "*":
        specs = _ENDPOINT_SPECS
    else:
        known = ", ".join(sorted([*ENDPOINTS, "*", NOTIFICATION]))
        raise ValueError(f"unknown endpoint {endpoint!r} (one of {known})")
    if kind not in specs:
        raise ValueError(f"unknown fault {kind!r} for {endpoint} (one of {', '.join(specs)})")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError("count must be a positive integer")
    filters = {name: params.pop(name) for name in _FILTERS if name in params}
    if filters and endpoint != NOTIFICATION:
        raise ValueError("on_status/bill_no filters apply to notification faults only")
    spec = specs[kind]
    unknown = set(params) - set(spec)
    if unknown:
        raise ValueError(f"unknown parameter(s) for {kind}: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for name, (types, default) in spec.items():
        value = params.get(name, default)
        if isinstance(value, bool) and bool not in types:
            raise ValueError(f"{kind}.{name} has the wrong type")
        if not isinstance(value, types):
            raise ValueError(f"{kind}.{name} has the wrong type")
        values[name] = value
    _check_ranges(kind, values)
    for name in _FILTERS:
        if name in filters and filters[name] is not None:
            filters[name] = str(filters[name])
    return Fault(
        endpoint=endpoint,
        kind=kind,
        count=count,
        params=values,
        on_status=filters.get("on_status"),
        bill_no=filters.get("bill_no"),
    )


def _check_ranges(kind: str, values: dict[str, Any]) -> None:
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
            for key in (endpoint, "*"):
                queue = self._queues.get(key)
                if queue:
                    return self._consume(queue)
        return None

    def take_notification(self, status: str, bill_no: str) -> list[Fault]:
        """Consume the first matching fault of each kind for one notification."""
        taken: list[Fault] = []
        with self._lock:
            queue = self._queues.get(NOTIFICATION)
            if not queue:
                return taken
            kinds: set[str] = set()
            for fault in list(queue):
                if fault.kind in kinds:
                    continue
                if fault.on_status is not None and fault.on_status != status:
                    continue
                if fault.bill_no is not None and fault.bill_no != bill_no:
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
