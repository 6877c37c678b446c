"""The emulator's HTTP control API (``/_emulator/...``, JSON): the Python API over HTTP.

Routes under ``/_emulator/``: ``GET`` (index); ``GET bills``, ``GET bills/<bill_no>``, ``POST
bills/<bill_no>/<action>`` (open, pay, fail, expire, cancel, reverse, notify); ``GET clock``,
``POST clock/advance``, ``POST clock/set``; ``GET deliveries``; ``GET requests``; ``GET|POST|DELETE
faults``; ``POST reset``; ``POST wait``; ``GET|POST merchants``, ``POST|PATCH merchants/<id>``.
:class:`EmulatorControl` is its client.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs
from wsgiref.types import WSGIEnvironment

from gateway_faspay_dana.emulator import _codes as codes
from gateway_faspay_dana.emulator._channels import CHANNELS
from gateway_faspay_dana.emulator._errors import EmulatorError, UnknownBill
from gateway_faspay_dana.emulator._model import Merchant
from gateway_faspay_dana.emulator._payers import PaymentRefused
from gateway_faspay_dana.emulator._reply import (
    Reply,
    base_url,
    json_reply,
    read_body,
    text_or_none,
)
from gateway_faspay_dana.emulator._store import BillStore

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
    """Routes control requests to the app's public methods (and the store for the clock)."""

    def __init__(self, app: EmulatorApp, store: BillStore) -> None:
        self._app = app
        self._store = store

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
        try:
            raw = read_body(environ)
            body: dict[str, Any] = {}
            if raw.strip():
                loaded = json.loads(raw.decode("utf-8"))
                if not isinstance(loaded, (dict, list)):
                    raise EmulatorError("control API bodies are JSON objects")
                body = loaded if isinstance(loaded, dict) else {"faults": loaded}
            query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
            parts = [p for p in path.split("/") if p][1:]
            return json_reply(200, self._route(method, parts, body, query, environ))
        except PaymentRefused as exc:
            return json_reply(exc.http_status, {"error": str(exc), "reason": exc.reason})
        except EmulatorError as exc:
            return json_reply(exc.http_status, {"error": str(exc)})
        except (ValueError, TypeError, KeyError) as exc:
            return json_reply(400, {"error": f"bad request: {exc}"})

    def _route(
        self,
        method: str,
        parts: list[str],
        body: dict[str, Any],
        query: dict[str, str],
        environ: WSGIEnvironment,
    ) -> Any:
        app = self._app
        params = {**query, **body}
        route = (method, *parts[:1])
        if not parts and method == "GET":
            return self.index(environ)
        if route == ("GET", "bills") and len(parts) == 1:
            return {"bills": app.bills(merchant_id=params.get("merchant_id"))}
        if route == ("GET", "bills") and len(parts) == 2:
            return self._bill(parts[1], params)
        if route == ("POST", "bills") and len(parts) == 3:
            return self._bill_action(parts[1], parts[2], params)
        if parts == ["clock"] and method == "GET":
            return {"now": app.clock.wall(), "offset": app.clock.offset}
        if parts == ["clock", "advance"] and method == "POST":
            expired = app.advance_clock(float(params.get("seconds", 0)))
            return {"now": app.clock.wall(), "offset": app.clock.offset, "expired": expired}
        if parts == ["clock", "set"] and method == "POST":
            expired = self._store.set_clock(app.clock.parse(str(params["now"])))
            return {"now": app.clock.wall(), "offset": app.clock.offset, "expired": expired}
        if parts == ["deliveries"] and method == "GET":
            return {"deliveries": app.deliveries(params.get("bill_no"))}
        if parts == ["requests"] and method == "GET":
            return {
                "counts": app.request_counts(),
                "requests": app.requests_log(params.get("endpoint")),
            }
        if parts == ["faults"]:
            return self._faults(method, body)
        if parts == ["reset"] and method == "POST":
            app.reset()
            return {"reset": True}
        if parts == ["wait"] and method == "POST":
            return {"idle": app.wait_for_deliveries(float(params.get("timeout", 10.0)))}
        payer = self._payer(method, parts, params)
        if payer is not None:
            return payer
        if parts == ["channels"] and method == "GET":
            return {"channels": [c.to_dict() for c in CHANNELS.values()]}
        if parts == ["merchants"] and method == "GET":
            return {"merchants": [m.to_dict() for m in app.merchants.values()]}
        if parts == ["merchants"] and method == "POST":
            return app.add_merchant(Merchant(**_merchant_fields(body))).to_dict()
        if len(parts) == 2 and parts[0] == "merchants" and method in ("POST", "PATCH"):
            return app.configure_merchant(parts[1], **_merchant_fields(body)).to_dict()
        raise EmulatorError(
            f"no control route {method} /_emulator/{'/'.join(parts)}", http_status=404
        )

    def _payer(self, method: str, parts: list[str], params: dict[str, Any]) -> Any:
        """The simulated payers' routes (None when ``parts`` is not one of them)."""
        payers = self._app.payers
        if method == "POST" and parts == ["pay"]:
            return payers.simulate(params)
        if method != "POST" or len(parts) != 3:
            return None
        kind, ref, verb = parts
        text = {k: str(v) for k, v in params.items() if v is not None and v != ""}
        if (kind, verb) == ("va", "transfer"):
            return payers.transfer(
                ref,
                amount=text.get("amount"),
                bank_ref=text.get("bank_ref"),
                bank=text.get("bank", ""),
            )
        if (kind, verb) == ("retail", "pay"):
            return payers.retail_pay(
                ref,
                amount=text.get("amount"),
                store=text.get("store", ""),
                receipt=text.get("receipt"),
            )
        if (kind, verb) == ("qr", "scan"):
            return payers.qr_scan(
                ref, issuer=text.get("issuer", ""), outcome=text.get("outcome", "success")
            )
        if (kind, verb) == ("ovo", "respond"):
            return payers.ovo_respond(ref, text.get("action", ""))
        return None

    def _bill(self, bill_no: str, params: dict[str, Any]) -> Any:
        try:
            return self._app.bill(
                bill_no, merchant_id=params.get("merchant_id"), trx_id=params.get("trx_id")
            )
        except UnknownBill as exc:
            count = self._app.create_requests(bill_no, params.get("merchant_id"))
            raise EmulatorError(f"{exc} (create requests seen: {count})", http_status=404) from None

    def _bill_action(self, bill_no: str, action: str, params: dict[str, Any]) -> Any:
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

    def _faults(self, method: str, body: dict[str, Any]) -> Any:
        if method == "GET":
            return {"faults": self._app.faults()}
        if method == "DELETE":
            self._app.clear_faults()
            return {"faults": []}
        if method != "POST":
            raise EmulatorError("use GET, POST or DELETE", http_status=405)
        specs = body.get("faults", [body])
        if not isinstance(specs, list):
            raise EmulatorError("faults must be a list")
        added = []
        for spec in specs:
            if not isinstance(spec, dict):
                raise EmulatorError("each fault is an object")
            spec = dict(spec)
            endpoint = spec.pop("endpoint", None)
            kind = spec.pop("fault", None)
            count = spec.pop("count", 1)
            if not isinstance(endpoint, str) or not isinstance(kind, str):
                raise EmulatorError("a fault needs 'endpoint' and 'fault'")
            added.append(self._app.add_fault(endpoint, kind, count, **spec))
        return {"added": added, "faults": self._app.faults()}


def _xml_stage(redirect_stage: str) -> str:
    """The XML API's stage segment for the redirect stage in use (§9.1; any is accepted)."""
    return "183xx00010100000" if redirect_stage == codes.SANDBOX_STAGE else "383xx00010100000"


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
