"""Pytest fixtures that run the Faspay DANA emulator for an integrator's test suite.

Registered through the ``pytest11`` entry point
(``faspay_dana_emulator = "gateway_faspay_dana.emulator.pytest_plugin"``), or explicitly with
``-p gateway_faspay_dana.emulator.pytest_plugin``.

Fixtures (all function-scoped, fresh state per test, threads and sockets cleaned up):

``faspay_emulator``
    a started :class:`EmulatorServer` (``.url``, ``.app`` for the Python control API) with one
    merchant; notification attempts 0.05 s apart.
``faspay_emulator_merchant`` / ``faspay_emulator_options``
    override points: the :class:`Merchant` and the :class:`EmulatorApp` keyword arguments
    (``language``, ``strict``, ``accept_amount_mismatch``, ``ovo_push_mode``,
    ``ovo_push_window``, ...).
``faspay_emulator_notification_format`` / ``faspay_emulator_channels``
    override points used by the default merchant: the notification format (``"xml"``, what
    Faspay's own SDK parses; override with ``"json"``) and the enabled channels (``("819",)``;
    ``("all",)`` enables every modelled channel).
    Set ``notification_url``/``return_url`` here, or later with
    ``faspay_emulator.app.configure_merchant(merchant_id, notification_url=...)``.
``faspay_emulator_control``
    an :class:`EmulatorControl` client for the running emulator.
``faspay_merchant``
    the credentials as gateway settings: ``merchant_id``, ``merchant_name``, ``user_id``,
    ``password``, ``base_url``.
``faspay_dana_gateway``
    a ``FaspayDanaGateway`` configured against the emulator (skipped when the provider is not
    importable).
``faspay_notification(bill_no, status="2", *, fmt=None, legacy_signature=False, **fields)``
    the signed notification body Faspay would POST for that bill (``bytes``; the merchant's
    format unless ``fmt``); ``fields`` override any field after signing.
``faspay_return_query(bill_no, status="2", **fields)``
    the signed return-URL query (``dict``) for that bill.

Bills the emulator does not know can be built too: pass ``trx_id`` and ``bill_total``.

``faspay_emulator`` and ``faspay_emulator_control`` are built with the emulation kit's fixture
factories (``gateway_core.emulation.pytest_support``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from gateway_core.emulation.pytest_support import control_fixture, emulator_fixture

# Nothing of the emulator is imported until a fixture runs: a pytest run that uses none of
# these fixtures pays only for this module.
if TYPE_CHECKING:
    from gateway_faspay_dana.emulator._app import EmulatorApp
    from gateway_faspay_dana.emulator._model import Merchant
    from gateway_faspay_dana.emulator._server import EmulatorServer


@pytest.fixture
def faspay_emulator_notification_format() -> str:
    """The default merchant's notification format (override with ``"json"``)."""
    return "xml"


@pytest.fixture
def faspay_emulator_channels() -> tuple[str, ...]:
    """The default merchant's enabled channels (``("all",)`` for every modelled one)."""
    return ("819",)


@pytest.fixture
def faspay_emulator_merchant(
    faspay_emulator_notification_format: str, faspay_emulator_channels: tuple[str, ...]
) -> Merchant:
    """The emulated merchant (override this fixture to change it)."""
    from gateway_faspay_dana.emulator._model import SANDBOX_PASSWORD, Merchant

    return Merchant(
        merchant_id="99999",
        merchant_name="Sophia Store",
        password=SANDBOX_PASSWORD,
        notification_format=faspay_emulator_notification_format,  # type: ignore[arg-type]
        channels=tuple(faspay_emulator_channels),
    )


@pytest.fixture
def faspay_emulator_options() -> dict[str, Any]:
    """Keyword arguments for :class:`EmulatorApp` (override to change them)."""
    return {"retry_interval": 0.05, "notification_timeout": 2.0}


def _build_app(request: pytest.FixtureRequest) -> EmulatorApp:
    from gateway_faspay_dana.emulator._app import EmulatorApp

    merchant: Merchant = request.getfixturevalue("faspay_emulator_merchant")
    options: dict[str, Any] = request.getfixturevalue("faspay_emulator_options")
    return EmulatorApp(merchant, **options)


#: A running emulator on a free loopback port (an :class:`EmulatorServer`: ``.url``, ``.app``),
#: stopped after the test.
faspay_emulator = emulator_fixture(
    _build_app,
    name="faspay_emulator",
    server="gateway_faspay_dana.emulator._server:EmulatorServer",
)

#: A control-API client (:class:`EmulatorControl`) for :func:`faspay_emulator`.
faspay_emulator_control = control_fixture(
    "faspay_emulator",
    "gateway_faspay_dana.emulator._control:EmulatorControl",
    name="faspay_emulator_control",
)


@pytest.fixture
def faspay_merchant(
    faspay_emulator: EmulatorServer, faspay_emulator_merchant: Merchant
) -> dict[str, str]:
    """Gateway settings pointing at the emulator."""
    merchant = faspay_emulator.app.merchant(faspay_emulator_merchant.merchant_id)
    assert merchant is not None
    return {
        "merchant_id": merchant.merchant_id,
        "merchant_name": merchant.merchant_name,
        "user_id": merchant.user_id,
        "password": merchant.password,
        "base_url": faspay_emulator.url,
    }


@pytest.fixture
def faspay_dana_gateway(faspay_merchant: dict[str, str]) -> Iterator[Any]:
    """``FaspayDanaGateway`` configured for the emulator (skipped if not available)."""
    try:
        from gateway_faspay_dana import FaspayDanaGateway
    except ImportError as exc:
        pytest.skip(f"gateway_faspay_dana.FaspayDanaGateway is not available: {exc}")
    gateway = FaspayDanaGateway.from_config(dict(faspay_merchant), environ={})
    try:
        yield gateway
    finally:
        gateway.close()


def _context(
    app: EmulatorApp, default: Merchant, bill_no: str, fields: dict[str, Any]
) -> tuple[Merchant, dict[str, str]]:
    from gateway_faspay_dana.emulator._errors import UnknownBill

    merchant_id = str(fields.pop("merchant_id", "") or default.merchant_id)
    merchant = app.merchant(merchant_id) or default
    try:
        record = app.bill(bill_no, merchant_id=merchant.merchant_id)
    except UnknownBill:
        record = {}
    known = {
        "trx_id": str(fields.pop("trx_id", record.get("trx_id", ""))),
        "bill_total": str(fields.pop("bill_total", record.get("bill_total", ""))),
    }
    if not known["trx_id"] or not known["bill_total"]:
        raise LookupError(f"bill {bill_no} is unknown to the emulator: pass trx_id and bill_total")
    known["payment_reff"] = record.get("payment_reff", "")
    known["payment_date"] = record.get("payment_date", "")
    known["bill_ref"] = record.get("bill_reff", "") or bill_no
    known["paid_total"] = str(record.get("payment_total") or known["bill_total"])
    known["bank_user_name"] = record.get("bank_user_name", "") or record.get("cust_name", "")
    known["merchant"] = record.get("merchant", merchant.merchant_name)
    known["channel"] = str(record.get("channel", "") or "819")
    return merchant, known


@pytest.fixture
def faspay_notification(
    faspay_emulator: EmulatorServer, faspay_emulator_merchant: Merchant
) -> Callable[..., bytes]:
    """Build the signed notification body Faspay would send for a bill."""
    app = faspay_emulator.app

    def build(
        bill_no: str,
        status: str = "2",
        *,
        fmt: str | None = None,
        legacy_signature: bool = False,
        **fields: Any,
    ) -> bytes:
        merchant, known = _context(app, faspay_emulator_merchant, bill_no, fields)
        paid = status in ("2", "4")
        values: dict[str, Any] = {
            "payment_reff": (known["payment_reff"] if paid else "") or "null",
            "payment_date": (known["payment_date"] if paid else "") or app.clock.wall(),
            "merchant": known["merchant"],
            "payment_total": known["paid_total"],
            "channel": known["channel"],
        }
        values.update(fields)
        from gateway_faspay_dana.emulator._messages import notification_body

        return notification_body(
            merchant,
            fmt,
            trx_id=known["trx_id"],
            bill_no=bill_no,
            status=str(status),
            bill_total=known["bill_total"],
            legacy_signature=legacy_signature,
            **values,
        )

    return build


@pytest.fixture
def faspay_return_query(
    faspay_emulator: EmulatorServer, faspay_emulator_merchant: Merchant
) -> Callable[..., dict[str, str]]:
    """Build the signed return-URL query Faspay would send for a bill."""
    app = faspay_emulator.app

    def build(bill_no: str, status: str = "2", **fields: Any) -> dict[str, str]:
        merchant, known = _context(app, faspay_emulator_merchant, bill_no, fields)
        paid = str(status) in ("2", "4")
        values: dict[str, Any] = {
            "merchant": known["merchant"],
            "payment_reff": known["payment_reff"] if paid else "",
            "payment_date": known["payment_date"] if paid else "",
        }
        values.update(fields)
        from gateway_faspay_dana.emulator._messages import return_query

        return return_query(
            merchant,
            trx_id=known["trx_id"],
            bill_no=bill_no,
            status=str(status),
            bill_total=known["bill_total"],
            bill_ref=str(values.pop("bill_ref", known["bill_ref"])),
            bank_user_name=str(values.pop("bank_user_name", known["bank_user_name"])),
            **values,
        )

    return build
