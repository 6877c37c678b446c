"""The Faspay emulator's fault catalogue, on the emulation kit's (``gateway_core.emulation.
faults``: the queues and the common kinds); Faspay adds ``business_error`` and
``legacy_signature``. Per endpoint, a FIFO of behaviours for the next N requests/notifications.

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

from typing import Any

from gateway_core.emulation.faults import (
    ENDPOINT_FAULT_SPECS,
    NOTIFICATION,
    NOTIFICATION_FAULT_SPECS,
    SOCKET_FAULTS,
    Fault,
    FaultCatalogue,
    FaultPlan,
)
from gateway_faspay_dana.emulator._codes import ENDPOINTS

__all__ = [
    "CATALOGUE",
    "ENDPOINT_FAULTS",
    "NOTIFICATION",
    "NOTIFICATION_FAULTS",
    "SOCKET_FAULTS",
    "Fault",
    "FaultPlan",
    "make_fault",
]

#: The Faspay emulator's faults: the kit's, plus ``business_error`` for the endpoints and
#: ``legacy_signature`` for notifications; a ``reorder`` defaults to status ``"3"``.
CATALOGUE = FaultCatalogue(
    ENDPOINTS,
    endpoint_specs={
        **ENDPOINT_FAULT_SPECS,
        "business_error": {
            "response_code": ((str,), "96"),
            "response_desc": ((str, type(None)), None),
            "wrapper": ((bool,), False),
        },
    },
    notification_specs={
        **NOTIFICATION_FAULT_SPECS,
        "reorder": {"status": ((str,), "3")},
        "legacy_signature": {},
    },
    filters=("on_status", "bill_no"),
)

ENDPOINT_FAULTS = CATALOGUE.endpoint_faults
NOTIFICATION_FAULTS = CATALOGUE.notification_faults


def make_fault(endpoint: str, kind: str, count: int = 1, **params: Any) -> Fault:
    """Validate and build a fault; ``ValueError`` names what is wrong."""
    return CATALOGUE.make(endpoint, kind, count, **params)
