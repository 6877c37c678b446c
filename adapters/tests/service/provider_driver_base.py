"""The provider-neutral part of the provider drivers (see :mod:`provider_drivers`): the
stack a scenario runs on (:class:`ProviderStack`), the merchant's endpoints on loopback
(:class:`MerchantSite`) and the :class:`Driver` interface each provider implements."""

from __future__ import annotations

import contextlib
import socketserver
import threading
import wsgiref.simple_server
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest
import requests

from gateway_core import Customer, Money, PaymentRequest, PaymentStatus, PluginHost, Settings
from gateway_core._runtime import Runtime, build_runtime
from gateway_core._service import ServicePolicy, StartedPayment
from gateway_core.ledger import Ledger, PaymentRecord
from gateway_core.testing import HookRecorder
from gateway_core.web import make_wsgi_app

S = PaymentStatus


def root_conftest(config: pytest.Config) -> ModuleType:
    """``adapters/tests/conftest.py`` as pytest loaded it (its ``build_stack``, ``Store``...).

    Test folders have no ``__init__.py``, so ``import conftest`` would find whichever conftest
    was imported last; the plugin manager knows the right one."""
    wanted = Path(__file__).resolve().parent.parent / "conftest.py"
    for plugin in config.pluginmanager.get_plugins():
        filename = getattr(plugin, "__file__", None)
        if isinstance(plugin, ModuleType) and filename and Path(filename).resolve() == wanted:
            return plugin
    raise RuntimeError(f"{wanted} is not loaded")  # pragma: no cover


@attrs.define
class ProviderStack:
    """The provider's emulator, the merchant endpoints and the service, wired together over
    loopback; ``driver`` knows the provider."""

    driver: Driver
    emulator: Any  # the emulator's Python API (EmulatorApp / MidtransEmulator)
    emulator_url: str
    merchant_url: str
    runtime: Runtime
    recorder: HookRecorder
    store: Any
    gateway_name: str
    settings: dict[str, Any]

    @property
    def provider(self) -> str:
        return self.driver.name

    @property
    def service(self) -> Any:
        return self.runtime.service

    @property
    def ledger(self) -> Ledger:
        return self.runtime.ledger

    @property
    def gateway(self) -> Any:
        return self.service.gateways[self.gateway_name]

    @property
    def notify_url(self) -> str:
        return f"{self.merchant_url}/notify/{self.gateway_name}"

    @property
    def return_url(self) -> str:
        return f"{self.merchant_url}/return/{self.gateway_name}"

    def request(self, order: str, amount: str = "2000", **fields: Any) -> PaymentRequest:
        values: dict[str, Any] = {
            "order_reference": order,
            "amount": Money(amount, "IDR"),
            "customer": Customer("Budi", email="budi@example.com", phone="081234567890"),
            "description": f"Order {order}",
            "return_url": self.return_url,
        }
        values.update(fields)
        return PaymentRequest(**values)

    def start(self, order: str, amount: str = "2000", **fields: Any) -> StartedPayment:
        started: StartedPayment = self.service.start_payment(
            self.gateway_name, self.request(order, amount, **fields)
        )
        return started

    def record(self, reference: str) -> Any:
        return self.service.payment(self.gateway_name, reference)

    def wait(self, timeout: float = 10.0) -> None:
        assert self.emulator.wait_for_deliveries(timeout), "emulator deliveries did not finish"


class _QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


class _ThreadingServer(socketserver.ThreadingMixIn, wsgiref.simple_server.WSGIServer):
    daemon_threads = True
    request_queue_size = 64


class _Late:
    target: Any = None

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return self.target(environ, start_response)


class MerchantSite:
    """The merchant's WSGI endpoints on a loopback port (the app is set once the service
    exists, because the emulator must know the URL before the service is built)."""

    def __init__(self) -> None:
        self._late = _Late()
        self.server = wsgiref.simple_server.make_server(
            "127.0.0.1", 0, self._late, server_class=_ThreadingServer, handler_class=_QuietHandler
        )
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread: threading.Thread | None = None

    def serve(self, service: Any) -> None:
        self._late.target = make_wsgi_app(service, return_page=f"{self.url}/thanks")
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
        self.server.server_close()


class Driver:
    """What a scenario needs to know about one provider (see the module docstring)."""

    name: str = ""
    gateway_name: str = ""
    #: The notification's signature covers its status: a verified notification is applied as
    #: it stands (else the payment service confirms it by inquiry before applying it).
    status_signed: bool = True
    #: How many webhooks the customer's payment produces (Midtrans: ``pending`` when the
    #: method is chosen, then ``settlement``).
    deliveries_per_payment: int = 1
    #: How many attempts a notification that is never acknowledged gets.
    attempts_when_unreachable: int = 1

    # -- building ----------------------------------------------------------------------------

    def provider_settings(self, emulator_url: str) -> dict[str, Any]:
        raise NotImplementedError

    def start_emulator(self, merchant_url: str, **options: Any) -> tuple[Any, Any]:
        """The emulator app and its running server, notifying ``merchant_url``."""
        raise NotImplementedError

    @contextlib.contextmanager
    def stack(
        self,
        store: Any,
        *,
        policy: ServicePolicy | None = None,
        emulator_options: dict[str, Any] | None = None,
        max_retries: int = 2,
    ) -> Iterator[ProviderStack]:
        """A whole stack on ``store``: emulator, service, merchant endpoints."""
        site = MerchantSite()
        app, server = self.start_emulator(site.url, **(emulator_options or {}))
        runtime = None
        try:
            settings = {
                **self.provider_settings(server.url),
                "read_timeout": 2.0,
                "deadline": 6.0,
                "max_retries": max_retries,
            }
            recorder = HookRecorder()
            runtime = build_runtime(
                Settings(providers={self.gateway_name: settings}, ledger_url=store.url),
                host=PluginHost(),
                plugins=[recorder],
                environ={},
                policy=policy or ServicePolicy(reconcile_grace=timedelta(0)),
            )
            site.serve(runtime.service)
            yield ProviderStack(
                self,
                app,
                server.url,
                site.url,
                runtime,
                recorder,
                store,
                self.gateway_name,
                settings,
            )
        finally:
            server.stop()
            site.close()
            if runtime is not None:
                runtime.close()

    @property
    def secret(self) -> str:
        """The credential that must never show in output."""
        raise NotImplementedError

    def silent_emulator(self) -> tuple[Any, Any]:
        """The emulator and its running server, its notifications recorded but never sent
        (a test delivers them itself)."""
        raise NotImplementedError

    def ack_ok(self, status_code: int, body: str) -> bool:
        """A service acknowledgement (status and body) tells the provider "received"."""
        raise NotImplementedError

    # -- the provider's side -----------------------------------------------------------------

    def pay(self, stack: ProviderStack, reference: str) -> None:
        """The customer pays; the provider notifies (the test waits)."""
        raise NotImplementedError

    def pay_without_notifying(self, stack: ProviderStack, reference: str) -> None:
        """The customer pays at the provider, but every delivery of the paid notification is
        lost (the merchant endpoint is unreachable): the test delivers it itself."""
        raise NotImplementedError

    def cancel(self, stack: ProviderStack, reference: str) -> None:
        """The provider cancels the unpaid payment (and notifies)."""
        raise NotImplementedError

    def reverse(self, stack: ProviderStack, reference: str) -> None:
        """The provider reverses the paid payment (and notifies)."""
        raise NotImplementedError

    def notify(self, stack: ProviderStack, reference: str, status: S | None = None) -> None:
        """The provider (re)sends the payment's notification, for its own status or a scripted
        one (its records unchanged)."""
        raise NotImplementedError

    def fault(self, stack: ProviderStack, kind: str, reference: str | None, **params: Any) -> None:
        """Script a notification fault (``duplicate``, ``burst``, ``drop``, ``reorder`` with
        ``status`` a core status) for ``reference`` (or every payment)."""
        raise NotImplementedError

    def create_fault(self, stack: ProviderStack, kind: str) -> None:
        """Script a fault on the provider's create endpoint, for every try of one create."""
        raise NotImplementedError

    def create_tries(self, stack: ProviderStack) -> int:
        """How many times one ``start_payment`` sends its create when every answer is lost (an
        idempotent create is re-sent at once with the same key, ``IDEMPOTENT_CREATE_TRIES``
        sends in all; another never)."""
        if type(stack.gateway).idempotent_create:
            from gateway_core._service import IDEMPOTENT_CREATE_TRIES

            return IDEMPOTENT_CREATE_TRIES
        return 1

    def deliveries(
        self, stack: ProviderStack, reference: str, status: S | None = None
    ) -> list[dict[str, Any]]:
        """The emulator's delivery records for ``reference`` (of the notifications reporting
        ``status`` only, when given), each with ``core_status`` added."""
        raise NotImplementedError

    def provider_body(self, stack: ProviderStack, reference: str, status: S = S.PAID) -> bytes:
        """The exact body the emulator built (and, with a ``drop`` fault, never delivered) for
        the last ``status`` notification of ``reference``."""
        found = self.deliveries(stack, reference, status)
        assert found, f"the emulator made no {status.value} notification for {reference}"
        body: str = found[-1]["body"]
        return body.encode("utf-8")

    def provider_status(self, stack: ProviderStack, reference: str) -> S | None:
        """The payment's status in the provider's own records (None: no such payment)."""
        raise NotImplementedError

    def inquiries(self, stack: ProviderStack) -> int:
        """How many status inquiries the provider has received."""
        raise NotImplementedError

    def creates(self, stack: ProviderStack, reference: str) -> int:
        """How many create requests the provider received for ``reference``."""
        raise NotImplementedError

    def bills(self, stack: ProviderStack) -> list[str]:
        """The references the provider holds a payment (or session) for."""
        raise NotImplementedError

    def advance_clock(self, stack: ProviderStack, seconds: float) -> None:
        stack.emulator.advance_clock(seconds)

    def open_page(self, stack: ProviderStack, reference: str) -> None:
        """The customer is on the payment page (paying, not yet done)."""
        raise NotImplementedError

    # -- messages ----------------------------------------------------------------------------

    def notification_for(
        self, stack: ProviderStack, record: PaymentRecord, status: S = S.PAID, **changes: Any
    ) -> bytes:
        """A correctly signed notification for ``record`` reporting ``status``; ``changes``
        tamper with it after signing: ``amount`` (a Money), ``merchant_id``,
        ``provider_reference``."""
        raise NotImplementedError

    def unknown_notification(self, stack: ProviderStack) -> bytes:
        """A correctly signed paid notification for a payment this ledger never created."""
        raise NotImplementedError

    def signature_of(self, body: bytes) -> str:
        raise NotImplementedError

    def with_signature(self, body: bytes, value: Any) -> bytes:
        """``body`` with its signature replaced by ``value`` (``...`` removes it)."""
        raise NotImplementedError

    def forge(self, body: bytes) -> bytes:
        """``body`` with its signature's last digit changed."""
        signature = self.signature_of(body)
        return self.with_signature(body, flip(signature))

    def relabelled(self, stack: ProviderStack, record: PaymentRecord) -> bytes:
        """A paid notification carrying the signature of a failed one."""
        raise NotImplementedError

    def accepted(self, response: requests.Response) -> bool:
        """The merchant's acknowledgement says "received" (the provider stops retrying)."""
        raise NotImplementedError

    def attempt_accepted(self, attempt: dict[str, Any]) -> bool:
        """A delivery attempt (as the emulator recorded it) was acknowledged."""
        raise NotImplementedError

    def refusal_status(self, reason: str) -> int:
        """The HTTP status the merchant answers a refused notification with."""
        raise NotImplementedError

    def return_query_for(
        self, stack: ProviderStack, record: PaymentRecord, claims_paid: bool = True
    ) -> dict[str, str]:
        """The customer's (signed) return query for ``record``."""
        raise NotImplementedError

    def forge_return(self, query: dict[str, str]) -> dict[str, str]:
        """The return query with its signature broken."""
        raise NotImplementedError

    def retarget_return(self, query: dict[str, str]) -> dict[str, str]:
        """The return query naming another payment under the same signature."""
        raise NotImplementedError


def flip(signature: str) -> str:
    last = signature[-1]
    return signature[:-1] + ("0" if last != "0" else "1")
