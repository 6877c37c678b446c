"""Pytest fixtures that run the Midtrans Snap emulator for a test suite.

Registered through the ``pytest11`` entry point
(``midtrans_snap_emulator = "gateway_midtrans_snap.emulator.pytest_plugin"``), or explicitly with
``-p gateway_midtrans_snap.emulator.pytest_plugin``. Built with the emulation kit's fixture
factories; nothing of the emulator is imported until a fixture runs.

Fixtures (function-scoped: fresh state per test, threads and sockets cleaned up):

``midtrans_emulator``
    a started :class:`MidtransServer` (``.url`` = Snap and Core base URL, ``.app`` = the
    :class:`MidtransEmulator` Python API) with one merchant; webhook retry delays scaled by
    ``1e-4`` without random shift (2 min → 12 ms ... 210 min → 1.26 s).
``midtrans_emulator_merchant`` / ``midtrans_emulator_options``
    override points: the :class:`Merchant` (server key, notification/finish URLs) and the
    :class:`MidtransEmulator` keyword arguments (``retry_scale``, ``retry_jitter``, settings).
``midtrans_control``
    a :class:`MidtransControl` client of the running emulator.
``midtrans_merchant``
    gateway settings pointing at the emulator: ``server_key``, ``merchant_id``,
    ``environment`` (sandbox), ``base_url``, ``snap_base_url``, ``api_base_url``.
``midtrans_snap_gateway``
    a ``MidtransSnapGateway`` configured against the emulator.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from gateway_core.emulation.pytest_support import control_fixture, emulator_fixture

if TYPE_CHECKING:
    from gateway_midtrans_snap.emulator._app import MidtransEmulator, MidtransServer
    from gateway_midtrans_snap.emulator._model import Merchant


@pytest.fixture
def midtrans_emulator_merchant() -> Merchant:
    """The emulated merchant (override to change keys or URLs)."""
    from gateway_midtrans_snap.emulator._model import Merchant

    return Merchant()


@pytest.fixture
def midtrans_emulator_options() -> dict[str, Any]:
    """Keyword arguments for :class:`MidtransEmulator` (override to change them)."""
    return {"retry_scale": 1e-4, "retry_jitter": False, "notification_timeout": 5.0}


def _build_app(request: pytest.FixtureRequest) -> MidtransEmulator:
    from gateway_midtrans_snap.emulator._app import MidtransEmulator

    merchant: Merchant = request.getfixturevalue("midtrans_emulator_merchant")
    options: dict[str, Any] = request.getfixturevalue("midtrans_emulator_options")
    return MidtransEmulator(merchant, **options)


#: A running emulator on a free loopback port, stopped after the test.
midtrans_emulator = emulator_fixture(
    _build_app,
    name="midtrans_emulator",
    server="gateway_midtrans_snap.emulator._app:MidtransServer",
)

#: A control-API client for :func:`midtrans_emulator`.
midtrans_control = control_fixture(
    "midtrans_emulator",
    "gateway_midtrans_snap.emulator._control:MidtransControl",
    name="midtrans_control",
)


@pytest.fixture
def midtrans_merchant(
    midtrans_emulator: MidtransServer, midtrans_emulator_merchant: Merchant
) -> dict[str, str]:
    """Gateway settings pointing at the emulator (both APIs on its URL)."""
    merchant = midtrans_emulator.app.merchant(midtrans_emulator_merchant.merchant_id)
    return {
        "server_key": merchant.server_key,
        "merchant_id": merchant.merchant_id,
        "environment": "sandbox",
        "base_url": midtrans_emulator.url,
        "snap_base_url": midtrans_emulator.url,
        "api_base_url": midtrans_emulator.url,
    }


@pytest.fixture
def midtrans_snap_gateway(midtrans_merchant: dict[str, str]) -> Iterator[Any]:
    """``MidtransSnapGateway`` configured for the emulator."""
    from gateway_midtrans_snap import MidtransSnapGateway

    gateway = MidtransSnapGateway.from_config(dict(midtrans_merchant), environ={})
    try:
        yield gateway
    finally:
        close = getattr(gateway, "close", None)
        if callable(close):
            close()
