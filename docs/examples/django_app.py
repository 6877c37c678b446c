"""Django: a single-file project with the gateway endpoints under ``/payments/``.

The gateway app is dispatched at the WSGI level, in front of Django, rather than through a
Django view: the provider's POST then never passes Django's middleware (CSRF would refuse it,
``APPEND_SLASH`` or ``SECURE_SSL_REDIRECT`` would redirect it, and nothing can read or
re-encode the body before the signature is checked). ``/checkout/<gateway>/<order>/?method=``
starts a payment with the method the customer picked. Run it with
``GATEWAY_CONFIG=gateway.toml python django_app.py`` (needs ``waitress``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import django
from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path

from gateway_core import ConfigurationError, Customer, InvalidRequest, Money, PaymentRequest
from gateway_core.web import make_wsgi_app

if TYPE_CHECKING:
    from gateway_core import PaymentService

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret"),
        ALLOWED_HOSTS=os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(","),
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[
            "django.middleware.security.SecurityMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
        ],
        USE_TZ=True,
    )
    django.setup()

PAYMENTS_PREFIX = "/payments"
SERVICE_KEY = "gateway_core.service"


def thanks(request: HttpRequest) -> HttpResponse:
    """Where the customer lands after paying. The query names the payment; only the ledger
    says whether it is paid."""
    service: PaymentService = request.META[SERVICE_KEY]
    record = service.ledger.get_payment(
        request.GET.get("gateway", ""), request.GET.get("reference", "")
    )
    if record is None:
        raise Http404("no such payment")
    text = f"Order {record.order_reference}: {record.status.value}\n"
    return HttpResponse(text, content_type="text/plain; charset=utf-8")


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


def checkout(request: HttpRequest, gateway: str, order: str) -> HttpResponse:
    """Start (or, on a reload, reuse) the order's payment with the method the customer
    picked (``?method=``, one of the gateway's payment_methods)."""
    service: PaymentService = request.META[SERVICE_KEY]
    method = request.GET.get("method", "")
    shop_url = request.build_absolute_uri("/")
    try:
        started = service.start_payment(gateway, order_request(gateway, order, method, shop_url))
    except (ConfigurationError, InvalidRequest):  # no such gateway or method
        raise Http404("no such payment method") from None
    # The gateway's pay page sends the customer to the provider's page, or shows
    # started.instructions (a virtual-account number, a payment code, a QR code).
    reference = started.payment.merchant_reference
    return HttpResponseRedirect(f"{PAYMENTS_PREFIX}/pay/{gateway}/{reference}")


urlpatterns = [path("thanks/", thanks), path("checkout/<str:gateway>/<str:order>/", checkout)]


class PathPrefixDispatcher:
    """Requests under ``prefix`` go to the gateway app as they are; the rest go to Django
    (with the payment service in ``request.META[SERVICE_KEY]``)."""

    def __init__(
        self, django_app: WSGIApp, gateway_app: WSGIApp, prefix: str, service: PaymentService
    ) -> None:
        self.django_app = django_app
        self.gateway_app = gateway_app
        self.prefix = prefix
        self.service = service

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(self.prefix + "/"):
            return self.gateway_app(environ, start_response)
        environ[SERVICE_KEY] = self.service
        return self.django_app(environ, start_response)


def create_app(service: PaymentService) -> PathPrefixDispatcher:
    """The project's WSGI application: the gateway endpoints under ``/payments/``, Django for
    everything else."""
    gateway_app = make_wsgi_app(service, prefix=PAYMENTS_PREFIX, return_page="/thanks/")
    return PathPrefixDispatcher(get_wsgi_application(), gateway_app, PAYMENTS_PREFIX, service)


if __name__ == "__main__":
    import waitress

    from gateway_core import Settings, build_runtime

    with build_runtime(Settings.load()) as runtime:  # the TOML file named by $GATEWAY_CONFIG
        waitress.serve(create_app(runtime.service), host="127.0.0.1", port=8000)
