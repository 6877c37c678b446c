"""FastAPI: the gateway's native ASGI endpoints mounted under ``/payments``, and the shop's
own ``async def`` views calling the payment service through its async facade.

``make_asgi_app`` is an ASGI app (no WSGI adapter); ``AsyncPaymentService`` runs each
blocking service call (ledger queries, provider calls over ``requests``, the order-system
hooks) in a bounded thread pool, so the event loop is never blocked. Both share that pool.
Run it with ``GATEWAY_CONFIG=gateway.toml python fastapi_app.py``
(``pip install 'gateway-core[asgi]' fastapi`` brings uvicorn).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from fastapi import FastAPI, HTTPException
from fastapi.responses import PlainTextResponse

from gateway_core import AsyncPaymentService, UnknownPayment, make_asgi_app

if TYPE_CHECKING:
    from gateway_core import PaymentService


def create_app(service: PaymentService) -> FastAPI:
    """The shop's FastAPI app with the gateway endpoints under ``/payments``."""
    payments = AsyncPaymentService(service, max_workers=8)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with payments:  # the thread pool ends with the app
            yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/thanks", response_class=PlainTextResponse)
    async def thanks(gateway: str = "", reference: str = "") -> str:
        # The query names the payment; only the ledger says whether it is paid.
        try:
            record = await payments.payment(gateway, reference)
        except UnknownPayment:
            raise HTTPException(status_code=404, detail="no such payment") from None
        return f"Order {record.order_reference}: {record.status.value}\n"

    app.mount("/payments", make_asgi_app(payments, return_page="/thanks"))
    return app


if __name__ == "__main__":
    import uvicorn

    from gateway_core import Settings, build_runtime

    with build_runtime(Settings.load()) as runtime:  # the TOML file named by $GATEWAY_CONFIG
        uvicorn.run(create_app(runtime.service), host="127.0.0.1", port=8000)
