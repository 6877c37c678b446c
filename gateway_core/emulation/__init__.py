"""The emulation kit: what a provider plugin needs to ship a local emulator of its provider.

Provider-neutral pieces (each module documents its part):

* :mod:`.http_server` — :class:`HttpServer`, a threaded HTTP/1.1 server that carries out
  socket-level faults (resets, closes without reply, refused connections);
* :mod:`.faults` — :class:`FaultCatalogue`, :class:`FaultPlan`, :class:`Fault` and the
  helpers that apply the common HTTP faults (5xx, 429, truncated JSON, slow replies);
* :mod:`.clock` — :class:`EmulatorClock`, real time plus a controllable offset;
* :mod:`.notifier` — :class:`Notifier` with a :class:`RetrySchedule`, a success test and
  delivery records; duplicates, reordering, delays, bursts and drops on demand;
* :mod:`.control` — :class:`ControlRouter` (the ``/_emulator/`` JSON API), the shared routes,
  :class:`EmulatorError`, and :class:`ControlClient`;
* :mod:`.requestlog` — :class:`RequestLog`;
* :mod:`.serving` — :func:`serve_endpoint`, one endpoint request answered under its fault;
* :mod:`.pytest_support` — fixture factories (needs pytest).

``import gateway_core`` does not import this package, and importing this package imports none
of its modules until a name is used (PEP 562). See ``docs/writing-plugins.md``, "Shipping an
emulator".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway_core.emulation.clock import EmulatorClock
    from gateway_core.emulation.control import (
        ControlClient,
        ControlRequest,
        ControlRouter,
        EmulatorError,
        add_common_routes,
    )
    from gateway_core.emulation.faults import Fault, FaultCatalogue, FaultPlan
    from gateway_core.emulation.http_server import HttpServer
    from gateway_core.emulation.notifier import (
        Message,
        NotificationPlan,
        Notifier,
        RetrySchedule,
        Verdict,
        accept_2xx,
    )
    from gateway_core.emulation.requestlog import RequestLog
    from gateway_core.emulation.serving import serve_endpoint

_WHERE: dict[str, str] = {
    "ControlClient": "gateway_core.emulation.control",
    "ControlRequest": "gateway_core.emulation.control",
    "ControlRouter": "gateway_core.emulation.control",
    "EmulatorClock": "gateway_core.emulation.clock",
    "EmulatorError": "gateway_core.emulation.control",
    "Fault": "gateway_core.emulation.faults",
    "FaultCatalogue": "gateway_core.emulation.faults",
    "FaultPlan": "gateway_core.emulation.faults",
    "HttpServer": "gateway_core.emulation.http_server",
    "Message": "gateway_core.emulation.notifier",
    "NotificationPlan": "gateway_core.emulation.notifier",
    "Notifier": "gateway_core.emulation.notifier",
    "RequestLog": "gateway_core.emulation.requestlog",
    "RetrySchedule": "gateway_core.emulation.notifier",
    "Verdict": "gateway_core.emulation.notifier",
    "accept_2xx": "gateway_core.emulation.notifier",
    "add_common_routes": "gateway_core.emulation.control",
    "serve_endpoint": "gateway_core.emulation.serving",
}

__all__ = [
    "ControlClient",
    "ControlRequest",
    "ControlRouter",
    "EmulatorClock",
    "EmulatorError",
    "Fault",
    "FaultCatalogue",
    "FaultPlan",
    "HttpServer",
    "Message",
    "NotificationPlan",
    "Notifier",
    "RequestLog",
    "RetrySchedule",
    "Verdict",
    "accept_2xx",
    "add_common_routes",
    "serve_endpoint",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
