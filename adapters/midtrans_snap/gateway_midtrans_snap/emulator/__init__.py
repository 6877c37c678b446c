"""A local, stateful emulator of Midtrans Snap and the Core API (protocol reference §11).

Built on the core's emulation kit (``gateway_core.emulation``): one server serves the Snap API
(``/snap/v1/transactions``), the payment page (``/snap/v3/redirection/<token>``), the Core API
(``/v2/<id>/status|cancel|expire|approve|deny|refund|refund/online/direct``) and the control API
(``/_emulator/``). Webhooks follow Midtrans' retry policy (scalable), with duplicates,
reordering, holds, delays and drops on demand; refunds keep a ledger with ``refund_key``
idempotency. Point both ``snap_base_url`` and ``api_base_url`` (or ``base_url``) at the server's
``url``.

::

    from gateway_midtrans_snap.emulator import Merchant, MidtransEmulator, MidtransServer

    with MidtransServer(MidtransEmulator(Merchant(notification_url=...))) as server:
        ...  # server.url, server.app

``gateway emulator midtrans_snap`` runs it from the command line; the pytest fixtures are in
:mod:`.pytest_plugin`. Names are imported lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway_midtrans_snap.emulator._app import MidtransEmulator, MidtransServer
    from gateway_midtrans_snap.emulator._cli import main
    from gateway_midtrans_snap.emulator._control import MidtransControl
    from gateway_midtrans_snap.emulator._model import Merchant, signature
    from gateway_midtrans_snap.emulator._settings import Settings

_WHERE = {
    "Merchant": "gateway_midtrans_snap.emulator._model",
    "MidtransControl": "gateway_midtrans_snap.emulator._control",
    "MidtransEmulator": "gateway_midtrans_snap.emulator._app",
    "MidtransServer": "gateway_midtrans_snap.emulator._app",
    "Settings": "gateway_midtrans_snap.emulator._settings",
    "main": "gateway_midtrans_snap.emulator._cli",
    "signature": "gateway_midtrans_snap.emulator._model",
}

__all__ = [
    "Merchant",
    "MidtransControl",
    "MidtransEmulator",
    "MidtransServer",
    "Settings",
    "main",
    "signature",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
