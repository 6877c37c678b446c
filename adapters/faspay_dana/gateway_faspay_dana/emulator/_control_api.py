"""The emulator's HTTP control API (``/_emulator/...``, JSON): the Python API over HTTP.

Routes under ``/_emulator/``: ``GET`` (index); ``GET bills``, ``GET bills/<bill_no>``, ``POST
bills/<bill_no>/<action>`` (open, pay, fail, expire, cancel, reverse, notify); the simulated
payers (``POST pay``, ``va/<n>/transfer``, ``retail/<code>/pay``, ``qr/<trx_id>/scan``,
``ovo/<trx_id>/respond``); ``GET channels``; ``GET|POST merchants``, ``POST|PATCH
merchants/<id>``; and the emulation kit's common routes (``gateway_core.emulation.control``):
``GET clock``, ``POST clock/advance``, ``POST clock/set``; ``GET deliveries``; ``GET requests``;
``GET|POST|DELETE faults``; ``POST reset``; ``POST wait``. :class:`EmulatorControl` is its
client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from wsgiref.types import WSGIEnvironment

from gateway_core.emulation.control import ControlRequest, ControlRouter, add_common_routes
from gateway_faspay_dana.emulator import _codes as codes
from gateway_faspay_dana.emulator._channels import CHANNELS
from gateway_faspay_dana.emulator._errors import EmulatorError, UnknownBill
from gateway_faspay_dana.emulator._model import Merchant
from gateway_faspay_dana.emulator._payers import PaymentRefused
from gateway_faspay_dana.emulator._reply import Reply, base_url, json_reply, text_or_none

if TYPE_CHECKING:
    from gateway_faspay_dana.emulator._app import EmulatorApp

_MERCHANT_KEYS = frozenset(
    {
        "merchant_id",
        "merchant_name",
        "user_id",
        "password",
        "notification_url",
        "notification_format",
        "return_url",
        "channels",
    }
)


class ControlApi:
    """Routes control requests to the app's public methods (a kit :class:`ControlRouter`)."""

    def __init__(self, app: EmulatorApp) -> None:
        self._app = app
        router = ControlRouter("/_emulator")
        router.error(
            PaymentRefused, lambda exc: (exc.http_status, {"error": str(exc), "reason": exc.reason})
        )
        router.route("GET", "", lambda r: self.index(r.environ))
        router.route(
            "GET", "bills", lambda r: {"bills": app.bills(merchant_id=r.params.get("merchant_id"))}
        )
        router.route("GET", "bills/<bill_no>", lambda r: self._bill(r.args["bill_no"], r.params))
        router.route("POST", "bills/<bill_no>/<action>", self._bill_action)
        add_common_routes(router, app)
        router.route("POST", "pay", lambda r: app.payers.simulate(r.params))
        router.route("POST", "va/<ref>/transfer", self._transfer)
        router.route("POST", "retail/<ref>/pay", self._retail_pay)
        router.route("POST", "qr/<ref>/scan", self._qr_scan)
        router.route(
            "POST",
            "ovo/<ref>/respond",
            lambda r: app.payers.ovo_respond(r.args["ref"], _text(r).get("action", "")),
        )
        router.route(
            "GET", "channels", lambda r: {"channels": [c.to_dict() for c in CHANNELS.values()]}
        )
        router.route(
            "GET",
            "merchants",
            lambda r: {"merchants": [m.to_dict() for m in app.merchants.values()]},
        )
        router.route(
            "POST",
            "merchants",
            lambda r: app.add_merchant(Merchant(**_merchant_fields(r.body))).to_dict(),
        )
        for method in ("POST", "PATCH"):
            router.route(
                method,
                "merchants/<merchant_id>",
                lambda r: app.configure_merchant(
                    r.args["merchant_id"], **_merchant_fields(r.body)
                ).to_dict(),
            )
        self.router = router

    def index(self, environ: WSGIEnvironment) -> dict[str, Any]:
        """What ``GET /`` and ``GET /_emulator/`` answer: URLs, merchants, the clock."""
        base = base_url(environ, self._app.public_url)
        return {
            "emulator": "faspay_dana",
            "base_url": base,
            "control_api": f"{base}/_emulator/",
            "endpoints": {name: base + path for path, name in codes.API_PATHS.items()},
            "xml_endpoints": {
                name: f"{base}/pws/{function}/{_xml_stage(self._app.stage)}"
                for function, name in (
                    ("100001", "channel_inquiry"),
                    ("300011", "create"),
                    ("100004", "inquiry"),
                    ("100005", "cancel"),
                )
            },
            "ovo_direct": base + codes.OVO_DIRECT_PATH,
            "merchants": [m.to_dict() for m in self._app.merchants.values()],
            "now": self._app.clock.wall(),
        }

    def handle(self, method: str, path: str, environ: WSGIEnvironment) -> Reply:
        """Answer one control request (errors as ``{"error": ...}`` with their status)."""
        status, value = self.router.handle(method, path, environ)
        return json_reply(status, value)

    def _transfer(self, request: ControlRequest) -> Any:
        text = _text(request)
        return self._app.payers.transfer(
            request.args["ref"],
            amount=text.get("amount"),
            bank_ref=text.get("bank_ref"),
            bank=text.get("bank", ""),
        )

    def _retail_pay(self, request: ControlRequest) -> Any:
        text = _text(request)
        return self._app.payers.retail_pay(
            request.args["ref"],
            amount=text.get("amount"),
            store=text.get("store", ""),
            receipt=text.get("receipt"),
        )

    def _qr_scan(self, request: ControlRequest) -> Any:
        text = _text(request)
        return self._app.payers.qr_scan(
            request.args["ref"],
            issuer=text.get("issuer", ""),
            outcome=text.get("outcome", "success"),
        )

    def _bill(self, bill_no: str, params: dict[str, Any]) -> Any:
        try:
            return self._app.bill(
                bill_no, merchant_id=params.get("merchant_id"), trx_id=params.get("trx_id")
            )
        except UnknownBill as exc:
            count = self._app.create_requests(bill_no, params.get("merchant_id"))
            raise EmulatorError(f"{exc} (create requests seen: {count})", http_status=404) from None

    def _bill_action(self, request: ControlRequest) -> Any:
        bill_no, action, params = request.args["bill_no"], request.args["action"], request.params
        selectors = {
            "merchant_id": text_or_none(params.get("merchant_id")),
            "trx_id": text_or_none(params.get("trx_id")),
        }
        if action == "notify":
            status = text_or_none(params.get("status"))
            return {"deliveries": self._app.notify(bill_no, status=status, **selectors)}
        return self._app.act(
            action,
            bill_no,
            force=bool(params.get("force", False)),
            payment_reff=text_or_none(params.get("payment_reff")),
            bank_user_name=text_or_none(params.get("bank_user_name")),
            reason=str(params.get("reason", "")),
            **selectors,
        )


def _xml_stage(redirect_stage: str) -> str:
    """The XML API's stage segment for the redirect stage in use (§9.1; any is accepted)."""
    return "183xx00010100000" if redirect_stage == codes.SANDBOX_STAGE else "383xx00010100000"


def _text(request: ControlRequest) -> dict[str, str]:
    """The request's non-empty parameters as text."""
    return {k: str(v) for k, v in request.params.items() if v is not None and v != ""}


def _merchant_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(body) - _MERCHANT_KEYS
    if unknown:
        raise EmulatorError(f"unknown merchant setting(s): {', '.join(sorted(unknown))}")
    fields = dict(body)
    if "merchant_id" in fields:
        fields["merchant_id"] = str(fields["merchant_id"])
    if "channels" in fields:
        fields["channels"] = tuple(str(c) for c in fields["channels"])
    return fields
