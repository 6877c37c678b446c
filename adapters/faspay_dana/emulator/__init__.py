"""A local, stateful emulator of Faspay's Debit API for DANA (payment channel 819).

It plays Faspay over real HTTP on loopback for integration tests, the demo and users' own test
suites: the four JSON endpoints (channel inquiry, post data, inquiry, cancel), the browser
redirect to a fake DANA page, signed notifications with Faspay's retry policy, the signed
return URL, a controllable clock, and scripted faults down to the socket (resets, refusal,
slow replies). It depends only on the wire protocol and ``adapters.faspay_dana._signature``.

Quick start::

    from adapters.faspay_dana.emulator import EmulatorApp, EmulatorServer, Merchant

    app = EmulatorApp(Merchant("99999", notification_url="http://127.0.0.1:8000/notify"))
    with EmulatorServer(app) as server:
        ...  # point the gateway's base URL at server.url

Command line: ``gateway emulator faspay_dana --port 8765`` (see :func:`main`). Assumptions
about undocumented Faspay behaviour are listed in ``_app`` and ``_notifier``; the fault
catalogue is in ``_faults``; the pytest fixtures in :mod:`.pytest_plugin`.
"""

from __future__ import annotations

from adapters.faspay_dana.emulator._app import EmulatorApp
from adapters.faspay_dana.emulator._cli import main
from adapters.faspay_dana.emulator._clock import EmulatorClock
from adapters.faspay_dana.emulator._control import EmulatorControl
from adapters.faspay_dana.emulator._errors import EmulatorError, TransitionNotAllowed, UnknownBill
from adapters.faspay_dana.emulator._faults import ENDPOINT_FAULTS, NOTIFICATION_FAULTS
from adapters.faspay_dana.emulator._messages import (
    example_post_data,
    notification_body,
    notification_fields,
    parse_acknowledgement,
    return_query,
)
from adapters.faspay_dana.emulator._model import SANDBOX_PASSWORD, Merchant
from adapters.faspay_dana.emulator._server import EmulatorServer

# Plain sorted() order, like gateway_core.__all__ (ruff would group constants first).
__all__ = [  # noqa: RUF022
    "ENDPOINT_FAULTS",
    "EmulatorApp",
    "EmulatorClock",
    "EmulatorControl",
    "EmulatorError",
    "EmulatorServer",
    "Merchant",
    "NOTIFICATION_FAULTS",
    "SANDBOX_PASSWORD",
    "TransitionNotAllowed",
    "UnknownBill",
    "example_post_data",
    "main",
    "notification_body",
    "notification_fields",
    "parse_acknowledgement",
    "return_query",
]
