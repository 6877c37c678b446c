"""A local, stateful emulator of Faspay's Debit API: DANA (channel 819) and every other channel
family (virtual accounts, retail payment codes, QRIS, redirect e-wallets, OVO).

It plays Faspay over real HTTP on loopback for integration tests, the demo and users' own test
suites: the four JSON endpoints (channel inquiry, post data, inquiry, cancel) and their XML
twins, the browser redirect to each channel's page, simulated payers (bank transfer, counter
payment, QR scan, OVO app), signed notifications with Faspay's retry policy, the signed
return URL, a controllable clock, and scripted faults down to the socket (resets, refusal,
slow replies). It depends only on the wire protocol and ``gateway_faspay_dana._signature``.

Quick start::

    from gateway_faspay_dana.emulator import EmulatorApp, EmulatorServer, Merchant

    app = EmulatorApp(Merchant("99999", notification_url="http://127.0.0.1:8000/notify"))
    with EmulatorServer(app) as server:
        ...  # point the gateway's base URL at server.url

Command line: ``gateway emulator faspay_dana --port 8765`` (see :func:`main`). Assumptions
about undocumented Faspay behaviour are listed in ``_app`` and ``_notifier``; the fault
catalogue is in ``_faults``; the pytest fixtures in :mod:`.pytest_plugin`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway_faspay_dana.emulator._app import EmulatorApp
    from gateway_faspay_dana.emulator._channels import CHANNELS
    from gateway_faspay_dana.emulator._cli import main
    from gateway_faspay_dana.emulator._clock import EmulatorClock
    from gateway_faspay_dana.emulator._control import EmulatorControl
    from gateway_faspay_dana.emulator._errors import (
        EmulatorError,
        TransitionNotAllowed,
        UnknownBill,
    )
    from gateway_faspay_dana.emulator._faults import ENDPOINT_FAULTS, NOTIFICATION_FAULTS
    from gateway_faspay_dana.emulator._messages import (
        example_post_data,
        notification_body,
        notification_fields,
        parse_acknowledgement,
        return_query,
    )
    from gateway_faspay_dana.emulator._model import SANDBOX_PASSWORD, Merchant
    from gateway_faspay_dana.emulator._payers import PaymentRefused
    from gateway_faspay_dana.emulator._server import EmulatorServer

#: Where each public name lives; imported on first use (PEP 562), so importing this package
#: (or its pytest plugin) costs nothing until the emulator is used.
_WHERE: dict[str, str] = {
    "CHANNELS": "gateway_faspay_dana.emulator._channels",
    "ENDPOINT_FAULTS": "gateway_faspay_dana.emulator._faults",
    "EmulatorApp": "gateway_faspay_dana.emulator._app",
    "EmulatorClock": "gateway_faspay_dana.emulator._clock",
    "EmulatorControl": "gateway_faspay_dana.emulator._control",
    "EmulatorError": "gateway_faspay_dana.emulator._errors",
    "EmulatorServer": "gateway_faspay_dana.emulator._server",
    "Merchant": "gateway_faspay_dana.emulator._model",
    "NOTIFICATION_FAULTS": "gateway_faspay_dana.emulator._faults",
    "PaymentRefused": "gateway_faspay_dana.emulator._payers",
    "SANDBOX_PASSWORD": "gateway_faspay_dana.emulator._model",
    "TransitionNotAllowed": "gateway_faspay_dana.emulator._errors",
    "UnknownBill": "gateway_faspay_dana.emulator._errors",
    "example_post_data": "gateway_faspay_dana.emulator._messages",
    "main": "gateway_faspay_dana.emulator._cli",
    "notification_body": "gateway_faspay_dana.emulator._messages",
    "notification_fields": "gateway_faspay_dana.emulator._messages",
    "parse_acknowledgement": "gateway_faspay_dana.emulator._messages",
    "return_query": "gateway_faspay_dana.emulator._messages",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


# Plain sorted() order, like gateway_core.__all__ (ruff would group constants first).
__all__ = [  # noqa: RUF022
    "CHANNELS",
    "ENDPOINT_FAULTS",
    "EmulatorApp",
    "EmulatorClock",
    "EmulatorControl",
    "EmulatorError",
    "EmulatorServer",
    "Merchant",
    "NOTIFICATION_FAULTS",
    "PaymentRefused",
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
