"""FastAPI: the gateway's native ASGI endpoints mounted under ``/payments``, and the shop's
own ``async def`` views calling the payment service through its async facade.

``make_asgi_app`` is an ASGI app (no WSGI adapter); ``AsyncPaymentService`` runs each
blocking service call (ledger queries, provider calls over ``requests``, the order-system
hooks) in a bounded thread pool, so the event loop is never blocked. Both share that pool.
``/checkout/{gateway}/{order}?method=bca_va`` starts a payment with the method the customer
picked.
Run it with ``GATEWAY_CONFIG=gateway.toml python fastapi_app.py``
(``pip install 'gateway-core[asgi]' fastapi`` brings uvicorn).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import PlainTextResponse, RedirectResponse

from gateway_core import (
    AsyncPaymentService,
    ConfigurationError,
    Customer,
    InvalidRequest,
    Money,
    PaymentRequest,
    UnknownPayment,
    make_asgi_app,
)

if TYPE_CHECKING:
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

    @app.get("/checkout/{gateway}/{order}")
    async def checkout(
        request: Request, gateway: str, order: str, method: str = ""
    ) -> RedirectResponse:
        # ``method``: one of the gateway's payment_methods. A reload reuses the pending
        # attempt: no second bill.
        payment = order_request(gateway, order, method, str(request.base_url))
        try:
            started = await payments.start_payment(gateway, payment)
        except (ConfigurationError, InvalidRequest):  # no such gateway or method
            raise HTTPException(status_code=404, detail="no such payment method") from None
        # The gateway's pay page sends the customer to the provider's page, or shows
        # started.instructions (a virtual-account number, a payment code, a QR code).
        reference = started.payment.merchant_reference
        return RedirectResponse(f"/payments/pay/{gateway}/{reference}", status_code=303)

    app.mount("/payments", make_asgi_app(payments, return_page="/thanks"))
    return app


if __name__ == "__main__":
    import uvicorn

    from gateway_core import Settings, build_runtime

    with build_runtime(Settings.load()) as runtime:  # the TOML file named by $GATEWAY_CONFIG
        uvicorn.run(create_app(runtime.service), host="127.0.0.1", port=8000)
