"""FastAPI: the gateway endpoints mounted under ``/payments`` through ``a2wsgi``.

The gateway app is plain WSGI; ``a2wsgi.WSGIMiddleware`` runs it in a thread pool and feeds it
the request body exactly as received. Run it with
``GATEWAY_CONFIG=gateway.toml python fastapi_app.py`` (needs ``uvicorn``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from a2wsgi import WSGIMiddleware
from fastapi import FastAPI, HTTPException
from fastapi.responses import PlainTextResponse

from gateway_core.web import make_wsgi_app

if TYPE_CHECKING:
    from gateway_core import PaymentService


def create_app(service: PaymentService) -> FastAPI:
    """The shop's FastAPI app with the gateway endpoints under ``/payments``."""
    app = FastAPI()

    @app.get("/thanks", response_class=PlainTextResponse)
    def thanks(gateway: str = "", reference: str = "") -> str:
        # The query names the payment; only the ledger says whether it is paid.
        record = service.ledger.get_payment(gateway, reference)
        if record is None:
            raise HTTPException(status_code=404, detail="no such payment")
        return f"Order {record.order_reference}: {record.status.value}\n"

    gateway_app = make_wsgi_app(service, return_page="/thanks")
    app.mount("/payments", WSGIMiddleware(gateway_app))
    return app


if __name__ == "__main__":
    import uvicorn

    from gateway_core import Settings, build_runtime

    with build_runtime(Settings.load()) as runtime:  # the TOML file named by $GATEWAY_CONFIG
        uvicorn.run(create_app(runtime.service), host="127.0.0.1", port=8000)
