"""Provider drivers for the shared notification-scenario tests (``test_scenarios_*.py``,
``test_processes_concurrency.py``, ``test_crash_recovery.py``): what differs between two
providers, so that each scenario's body is written once and run for every provider.

A driver knows, for its provider:

* how to start its emulator and build a whole stack on a ledger store (gateway settings, the
  payment service with a recording order system, the merchant's WSGI endpoints on loopback);
* how the customer pays (the provider notifies), how a payment is paid with every notification
  lost, and the exact body the provider built for a status;
* how to build a genuine, correctly signed notification for a status, forge one, read the
  merchant's acknowledgement as accepted or not, and make the customer's return query;
* what the provider's own records say (for the invariants), and how it reacts to scripted
  faults (a create answered after processing, notifications dropped, duplicated, reordered).

Two drivers: :class:`FaspayDriver` (``faspay_dana``: the Faspay emulator, a notification whose
signature covers its status, so a verified one is applied as it stands) and
:class:`MidtransDriver` (``midtrans_snap``: the Midtrans emulator; the signature does not cover
``transaction_status``, so the payment service confirms every notification by Get Status before
applying it). Where that difference changes the expected outcome, a scenario asks
``driver.status_signed``.

The interface and the stack are in ``provider_driver_base``, each driver in its own module
(``provider_driver_faspay``, ``provider_driver_midtrans``); this module names them all.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from provider_driver_base import (
    Driver,
    MerchantSite,
    ProviderStack,
    flip,
    root_conftest,
)
from provider_driver_faspay import FaspayDriver, faspay_response_code
from provider_driver_midtrans import MIDTRANS_MERCHANT_ID, MIDTRANS_SERVER_KEY, MidtransDriver

__all__ = [
    "DRIVERS",
    "MIDTRANS_MERCHANT_ID",
    "MIDTRANS_SERVER_KEY",
    "PROVIDERS",
    "Driver",
    "FaspayDriver",
    "MerchantSite",
    "MidtransDriver",
    "ProviderStack",
    "driver_for",
    "faspay_response_code",
    "flip",
    "matrix",
    "open_provider_stack",
    "root_conftest",
]

PROVIDERS = ("faspay_dana", "midtrans_snap")

DRIVERS: dict[str, Callable[[], Driver]] = {
    "faspay_dana": FaspayDriver,
    "midtrans_snap": MidtransDriver,
}


def driver_for(name: str) -> Driver:
    return DRIVERS[name]()


# -- fixtures' plumbing ---------------------------------------------------------------------------


@contextlib.contextmanager
def open_provider_stack(
    config: pytest.Config, provider: str, backend: str, directory: Path, **options: Any
) -> Iterator[ProviderStack]:
    """A whole stack of ``provider`` on ``backend`` (``sqlite`` or ``postgres``), for a
    fixture of any scope; PostgreSQL is skipped (or fails under CI) when unreachable."""
    conf = root_conftest(config)
    schema = ""
    if backend == "sqlite":
        store = conf.Store("sqlite", str(directory / f"ledger-{uuid.uuid4().hex[:6]}.db"))
    else:
        conf.require_postgres()
        schema = f"gw_test_{uuid.uuid4().hex[:16]}"
        store = conf.Store("postgres", conf.POSTGRES_URL, schema)
    driver = driver_for(provider)
    if isinstance(driver, FaspayDriver):
        driver.password = conf.TEST_PASSWORD
    try:
        with driver.stack(store, **options) as built:
            yield built
    finally:
        if schema:
            conf.drop_schema(schema)


def matrix(*, midtrans_postgres: bool = False) -> list[Any]:
    """``(provider, backend)`` parameters: Faspay on both backends, Midtrans on SQLite (and on
    PostgreSQL too when ``midtrans_postgres``: one representative module per scenario family
    runs it, to keep the suite's time in bounds)."""
    postgres = pytest.mark.postgres
    params = [
        pytest.param(("faspay_dana", "sqlite"), id="faspay_dana-sqlite"),
        pytest.param(("faspay_dana", "postgres"), id="faspay_dana-postgres", marks=postgres),
        pytest.param(("midtrans_snap", "sqlite"), id="midtrans_snap-sqlite"),
    ]
    if midtrans_postgres:
        params.append(
            pytest.param(("midtrans_snap", "postgres"), id="midtrans_snap-postgres", marks=postgres)
        )
    return params
