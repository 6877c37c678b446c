"""Answering one endpoint request under a scripted fault: the step every emulator repeats.

:func:`serve_endpoint` takes the fault the server handed over (``environ[FAULT_KEY]``; under
another WSGI server it consumes one from the :class:`~.faults.FaultPlan`), decides whether the
request is processed at all (:func:`~.faults.processes`), runs the emulator's handler (given
the fault, for kinds that change how it processes), puts the
fault's reply in place of the real one (:func:`~.faults.shaped_reply`, then the emulator's own
``shape`` hook), and carries out what the application must do itself: ``reset_after_read``
(asks :class:`~.http_server.HttpServer` to reset the connection), ``read_timeout`` (waits) and
``slow_drip`` (streams). It returns a :class:`Served`: what the handler answered, what the
client gets and the WSGI body, so the emulator can log the request its own way.

::

    served = serve_endpoint(environ, start_response, endpoint, plan, handler,
                            stopping=self.stopping)
    self.log.record(endpoint, method, path, fault=served.fault,
                    http_status=served.sent.status, processed=served.processed)
    return served.body
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable
from wsgiref.types import StartResponse, WSGIEnvironment

from gateway_core.emulation.faults import (
    SOCKET_FAULTS,
    Fault,
    FaultPlan,
    drip,
    processes,
    shaped_reply,
    status_line,
)
from gateway_core.emulation.http_server import CONTROL_KEY, FAULT_KEY


@dataclasses.dataclass
class Reply:
    """One HTTP answer: status, body and headers (``Content-Type`` among them)."""

    status: int
    body: bytes
    headers: list[tuple[str, str]] = dataclasses.field(
        default_factory=lambda: [("Content-Type", "application/json")]
    )

    @property
    def content_type(self) -> str:
        """The ``Content-Type`` header's value ('' when absent)."""
        for name, value in self.headers:
            if name.lower() == "content-type":
                return value
        return ""


@dataclasses.dataclass
class Served:
    """The outcome of :func:`serve_endpoint`."""

    fault: Fault | None
    processed: bool
    #: What the handler answered (None when the fault kept it from running).
    real: Reply | None
    #: What the client is sent (an empty 500 for socket faults outside ``HttpServer``).
    sent: Reply
    #: The WSGI body to return.
    body: Iterable[bytes]


def send_reply(start_response: StartResponse, reply: Reply) -> list[bytes]:
    """Start ``reply`` (with its ``Content-Length``) and return its body."""
    headers = [h for h in reply.headers if h[0].lower() != "content-length"]
    start_response(status_line(reply.status), [*headers, ("Content-Length", str(len(reply.body)))])
    return [reply.body]


def serve_endpoint(
    environ: WSGIEnvironment,
    start_response: StartResponse,
    endpoint: str,
    plan: FaultPlan,
    handler: Callable[[Fault | None], Reply],
    *,
    stopping: threading.Event,
    unprocessed: Iterable[str] = (),
    shape: Callable[[Fault, Reply | None], Reply | None] | None = None,
    fallback: bytes = b"{}",
) -> Served:
    """Answer one request to ``endpoint`` under its fault (see the module docstring).

    ``unprocessed`` names the emulator's own fault kinds after which the handler does not run;
    ``shape(fault, real)`` may return the reply of such a kind (None: the real one stands);
    ``fallback`` is what ``malformed_json`` truncates when nothing was processed.
    """
    socket_mode = FAULT_KEY in environ
    fault: Fault | None = environ[FAULT_KEY] if socket_mode else plan.take(endpoint)
    unprocessed = tuple(unprocessed)
    process = processes(fault, unprocessed)
    real = handler(fault) if process else None
    sent = real
    if fault is not None:
        shaped = shaped_reply(fault, real.body if real is not None else None, fallback=fallback)
        if shaped is not None:
            sent = Reply(shaped[0], shaped[2], shaped[1])
        elif shape is not None:
            sent = shape(fault, real) or real
    if sent is None:
        sent = Reply(500, b"", [("Content-Type", "text/plain")])
    kind = fault.kind if fault is not None else None
    if kind in SOCKET_FAULTS:
        control = environ.get(CONTROL_KEY)
        if socket_mode and isinstance(control, dict) and kind == "reset_after_read":
            control["reset"] = True
            start_response("200 OK", [("Content-Length", "0")])
            return Served(fault, process, real, sent, [])
        empty = Reply(500, b"", [("Content-Type", "text/plain")])
        return Served(fault, process, real, empty, send_reply(start_response, empty))
    if fault is not None and kind == "read_timeout":
        stopping.wait(float(fault.param("seconds")))
    if fault is not None and kind == "slow_drip":
        headers = [h for h in sent.headers if h[0].lower() != "content-length"]
        start_response(
            status_line(sent.status), [*headers, ("Content-Length", str(len(sent.body)))]
        )
        body = drip(sent.body, float(fault.param("interval")), int(fault.param("chunk")), stopping)
        return Served(fault, process, real, sent, body)
    return Served(fault, process, real, sent, send_reply(start_response, sent))
