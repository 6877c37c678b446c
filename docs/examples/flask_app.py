"""Flask: the gateway endpoints mounted under ``/payments`` next to the shop's own views.

Werkzeug's ``DispatcherMiddleware`` sends every request whose path starts with ``/payments``
to the gateway's WSGI app before Flask sees it, so the provider's body reaches the signature
check byte for byte. Run it with ``GATEWAY_CONFIG=gateway.toml python flask_app.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask, abort, request
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from gateway_core.web import make_wsgi_app

if TYPE_CHECKING:
    from gateway_core import PaymentService


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

    gateway_app = make_wsgi_app(service, return_page="/thanks")
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/payments": gateway_app})
    return app


if __name__ == "__main__":
    from gateway_core import Settings, build_runtime

    with build_runtime(Settings.load()) as runtime:  # the TOML file named by $GATEWAY_CONFIG
        create_app(runtime.service).run(host="127.0.0.1", port=8000)
