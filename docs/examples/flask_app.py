"""Flask: the gateway endpoints mounted under ``/payments`` next to the shop's own views.

Werkzeug's ``DispatcherMiddleware`` sends every request whose path starts with ``/payments``
to the gateway's WSGI app before Flask sees it, so the provider's body reaches the signature
check byte for byte. ``/checkout/<gateway>/<order>?method=bca_va`` starts a payment with the
method the customer picked. Run it with ``GATEWAY_CONFIG=gateway.toml python flask_app.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask, abort, redirect, request
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from gateway_core import ConfigurationError, Customer, InvalidRequest, Money, PaymentRequest
from gateway_core.web import make_wsgi_app

if TYPE_CHECKING:
    from werkzeug.wrappers import Response

    from gateway_core import PaymentService


def order_request(gateway: str, order: str, method: str, shop_url: str) -> PaymentRequest:
    """The shop's order as a payment request (a stand-in: a real shop reads its database)."""
    return PaymentRequest(
        order_reference=order,
        amount=Money("150000", "IDR"),
        customer=Customer("Budi", email="budi@example.com", phone="081234567890"),
        description=f"Order {order}",
        return_url=f"{shop_url}payments/return/{gateway}",
        method=method,  # e.g. "bca_va" or "qris_shopeepay"; empty: the gateway's default
    )


def create_app(service: PaymentService) -> Flask:
    """The shop's Flask app with the gateway endpoints under ``/payments``."""
    app = Flask(__name__)

    @app.get("/thanks")
    def thanks() -> tuple[str, dict[str, str]]:
        # The query names the payment; only the ledger says whether it is paid.
        record = service.ledger.get_payment(
            request.args.get("gateway", ""), request.args.get("reference", "")
        )
        if record is None:
            abort(404)
        text = f"Order {record.order_reference}: {record.status.value}\n"
        return text, {"Content-Type": "text/plain; charset=utf-8"}

    @app.get("/checkout/<gateway>/<order>")
    def checkout(gateway: str, order: str) -> Response:
        method = request.args.get("method", "")  # one of the gateway's payment_methods
        try:  # a reload reuses the pending attempt: no second bill
            started = service.start_payment(
                gateway, order_request(gateway, order, method, request.host_url)
            )
        except (ConfigurationError, InvalidRequest):  # no such gateway or method
            abort(404)
        # The gateway's pay page sends the customer to the provider's page, or shows
        # started.instructions (a virtual-account number, a payment code, a QR code).
        return redirect(f"/payments/pay/{gateway}/{started.payment.merchant_reference}", 303)

    gateway_app = make_wsgi_app(service, return_page="/thanks")
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/payments": gateway_app})
    return app


if __name__ == "__main__":
    from gateway_core import Settings, build_runtime

    with build_runtime(Settings.load()) as runtime:  # the TOML file named by $GATEWAY_CONFIG
        create_app(runtime.service).run(host="127.0.0.1", port=8000)
