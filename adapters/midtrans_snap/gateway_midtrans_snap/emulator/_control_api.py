"""The emulator's control API (``/_emulator/...``, JSON; emulator-only, never under ``/v2`` or
``/snap``, protocol reference §11.9), on the emulation kit's :class:`ControlRouter`.

Routes under ``/_emulator/``:

* ``GET`` — index (URLs, merchants with masked keys, the clock);
* ``GET sessions``, ``GET transactions`` (``?order_id=``), ``GET transactions/<id>``
  (transaction_id or order_id);
* ``POST orders/<id>/choose`` (``method``): the customer picks a method (pending attempt);
* ``POST orders/<id>/<action>``: ``pay`` (``method``), ``capture``, ``challenge``, ``settle``,
  ``deny``, ``failure``, ``expire``, ``cancel``, ``approve``, ``reject``, ``reverse``,
  ``chargeback``, ``transition`` (``status``, ``fraud_status``), ``notify`` (``status``),
  ``refund`` (``amount``, ``reason``, ``refund_key``, ``direct``: a dashboard refund);
* ``GET return/<id>``: the query the page would append to a return URL;
* ``GET|POST held``: webhooks kept back by a ``hold`` fault / deliver them now;
* ``GET|PATCH settings``; ``GET retry``, ``POST retry`` (``scale``);
* ``GET|POST merchants``, ``PATCH|POST merchants/<merchant_id>``;
* the kit's common routes: ``GET clock``, ``POST clock/advance``, ``POST clock/set``,
  ``GET deliveries``, ``GET requests``, ``GET|POST|DELETE faults``, ``POST reset``,
  ``POST wait``.

A refused Midtrans-side action answers ``{"error", "status_code"}`` with HTTP 409 (412 from the
state machine) or 404.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from wsgiref.types import WSGIEnvironment

from gateway_core.emulation.control import (
    ControlRequest,
    ControlRouter,
    EmulatorError,
    add_common_routes,
    base_url,
)
from gateway_midtrans_snap.emulator import _model as m
from gateway_midtrans_snap.emulator._api import PAGE_PREFIX, SNAP_PREFIX
from gateway_midtrans_snap.emulator._render import ERRORS
from gateway_midtrans_snap.emulator._store import CoreRefusal

if TYPE_CHECKING:
    from gateway_midtrans_snap.emulator._app import MidtransEmulator

_MERCHANT_KEYS = frozenset(
    {
        "merchant_id",
        "server_key",
        "client_key",
        "notification_url",
        "finish_url",
        "unfinish_url",
        "error_url",
        "refund_balance",
    }
)


def _refusal(exc: CoreRefusal) -> tuple[int, Any]:
    status = 404 if exc.code == "404" else 409
    return status, {"error": exc.message or ERRORS.get(exc.code, exc.code), "status_code": exc.code}


class ControlApi:
    """The control routes of a :class:`MidtransEmulator`."""

    def __init__(self, app: MidtransEmulator) -> None:
        self._app = app
        router = ControlRouter("/_emulator")
        router.error(CoreRefusal, _refusal)
        router.route("GET", "", lambda r: self.index(r.environ))
        router.route("GET", "sessions", lambda r: {"sessions": app.sessions()})
        router.route(
            "GET",
            "transactions",
            lambda r: {"transactions": app.transactions(r.params.get("order_id"))},
        )
        router.route("GET", "transactions/<ident>", lambda r: app.transaction(r.args["ident"]))
        router.route("POST", "orders/<ident>/<action>", self._order_action)
        router.route("GET", "return/<ident>", lambda r: app.return_query(r.args["ident"]))
        router.route("GET", "held", lambda r: {"held": app.held()})
        router.route("POST", "held", lambda r: {"deliveries": app.release_held()})
        router.route("GET", "settings", lambda r: app.settings.to_dict())
        router.route("PATCH", "settings", lambda r: app.configure(**r.body))
        router.route("GET", "retry", lambda r: self._retry())
        router.route("POST", "retry", self._set_retry)
        router.route(
            "GET",
            "merchants",
            lambda r: {"merchants": [x.to_dict() for x in app.merchants.values()]},
        )
        router.route(
            "POST",
            "merchants",
            lambda r: app.add_merchant(m.Merchant(**_merchant(r.body))).to_dict(),
        )
        for method in ("POST", "PATCH"):
            router.route(
                method,
                "merchants/<merchant_id>",
                lambda r: app.configure_merchant(
                    r.args["merchant_id"], **_merchant(r.body)
                ).to_dict(),
            )
        add_common_routes(router, app)
        self.router = router

    def index(self, environ: WSGIEnvironment) -> dict[str, Any]:
        """URLs, merchants (keys masked) and the clock."""
        base = base_url(environ, self._app.settings.public_url)
        return {
            "emulator": "midtrans_snap",
            "base_url": base,
            "snap_base_url": base,
            "api_base_url": base,
            "snap_create": f"{base}{SNAP_PREFIX}",
            "payment_page": f"{base}{PAGE_PREFIX}<token>",
            "control_api": f"{base}/_emulator/",
            "merchants": [x.to_dict() for x in self._app.merchants.values()],
            "now": self._app.clock.wall(),
        }

    def _retry(self) -> dict[str, Any]:
        return {"scale": self._app.retry_scale, "delays": self._app.retry_delays()}

    def _set_retry(self, request: ControlRequest) -> dict[str, Any]:
        scale = request.params.get("scale")
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale < 0:
            raise EmulatorError("scale must be a number >= 0")
        self._app.retry_scale = float(scale)
        return self._retry()

    def _order_action(self, request: ControlRequest) -> Any:
        ident, action, params = request.args["ident"], request.args["action"], request.params
        app = self._app
        if action == "choose":
            return app.choose(ident, _text(params.get("method")))
        if action == "notify":
            return {"deliveries": app.notify(ident, _text(params.get("status")))}
        if action == "refund":
            amount = params.get("amount")
            if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int)):
                raise EmulatorError("amount must be an integer")
            return app.refund(
                ident,
                amount,
                reason=str(params.get("reason", "")),
                refund_key=_text(params.get("refund_key")),
                direct=bool(params.get("direct", False)),
            )
        options = {k: v for k, v in params.items() if k in ("method", "status", "fraud_status")}
        return app.act(action, ident, **options)


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _merchant(body: dict[str, Any]) -> dict[str, Any]:
    unknown = set(body) - _MERCHANT_KEYS
    if unknown:
        raise EmulatorError(f"unknown merchant setting(s): {', '.join(sorted(unknown))}")
    return dict(body)
