"""The conformance kit: the behaviour every provider plugin owes the core, as pytest tests.

A plugin proves it honours the contract by subclassing :class:`GatewayConformance` in a
``Test*`` class. The kit knows no provider's wire format: every input comes from the plugin
under test. Required (a ``Test*`` subclass without them is a ``TypeError``):

``provider_transport()``
    a :class:`~gateway_core.Transport` on which the provider answers ``create`` (and
    ``inquire``/``cancel`` when declared): a :class:`~gateway_core.testing.WSGITransport` over
    the provider's emulator, a :class:`~gateway_core.MockTransport` speaking its protocol, or
    a transport to a server on loopback;
``make_gateway(transport)``
    a configured gateway sending through ``transport`` (the kit wraps the provider's transport
    to watch requests and to lose an answer on purpose);
``signed_notification(gateway, *, merchant_reference, status, amount)``
    a notification body as the provider would POST it (headers from
    ``notification_headers(gateway, body)``);
``signed_return(gateway, *, merchant_reference, status)``
    the fields of a signed customer return, sent by each of ``return_methods``.

Declared capabilities decide which checks run: ``inquire`` and ``cancel`` when declared, the
ambiguous create re-sent with its key when ``idempotent_create`` is set, and one check per
kind in ``event_kinds`` (non-status events, built by ``signed_event``). Acknowledgements are
judged by ``provider_accepts(ack)``, the provider's own rule (default: any 2xx, an empty body
allowed). Every failure says what the plugin did wrong.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlsplit

import pytest

from gateway_core._conformance_base import UNPAID, KitTransport, check, fail
from gateway_core._conformance_inbound import InboundChecks
from gateway_core._customer_action import form_page
from gateway_core._exceptions import OutcomeUnknown
from gateway_core._gateway import REQUIRED_CAPABILITIES, Gateway
from gateway_core._models import (
    Capability,
    PaymentInstructions,
    PaymentStatus,
    RedirectInstruction,
    TrustDeclaration,
)

__all__ = ["GatewayConformance", "KitTransport"]

_REQUIRED_HOOKS = ("provider_transport", "make_gateway", "signed_notification", "signed_return")


class GatewayConformance(InboundChecks):
    """The behaviour every provider plugin owes the core. Subclass it in a ``Test*`` class."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("Test"):
            return  # an intermediate base class of the plugin's own
        needed = list(_REQUIRED_HOOKS) + (["signed_event"] if cls.event_kinds else [])
        missing = [n for n in needed if getattr(cls, n) is getattr(GatewayConformance, n)]
        if missing:
            raise TypeError(f"{cls.__qualname__} must implement {', '.join(missing)}")

    # -- declarations -------------------------------------------------------------------------

    def test_declares_name_capabilities_and_trust(self, gateway: Gateway) -> None:
        cls = type(gateway)
        check(
            gateway,
            isinstance(cls.name, str) and cls.name.isidentifier(),
            "name must be an identifier",
        )
        missing = REQUIRED_CAPABILITIES - cls.capabilities
        check(gateway, not missing, f"capabilities lack {sorted(c.value for c in missing)}")
        check(gateway, isinstance(cls.trust, TrustDeclaration), "trust must be a TrustDeclaration")

    def test_capabilities_are_honest(self, gateway: Gateway) -> None:
        cls = type(gateway)
        for capability, method in ((Capability.INQUIRE, "inquire"), (Capability.CANCEL, "cancel")):
            implemented = getattr(cls, method) is not getattr(Gateway, method)
            declared = capability in cls.capabilities
            check(
                gateway,
                implemented == declared,
                f"declares {capability.value}={declared} but "
                f"{'implements' if implemented else 'does not implement'} {method}()",
            )

    def test_default_currency_is_none_or_an_iso_code(self, gateway: Gateway) -> None:
        currency = gateway.default_currency
        check(
            gateway,
            currency is None or (len(currency) == 3 and currency.isalpha()),
            f"default_currency must be None or an ISO 4217 code, not {currency!r}",
        )

    # -- create, redirect, inquire, cancel ----------------------------------------------------

    def test_create_answers_an_unpaid_payment(self, gateway: Gateway) -> None:
        amount = self._money(gateway)
        payment = self._create(gateway, self.merchant_reference, amount)
        check(
            gateway,
            payment.provider == type(gateway).name,
            f"create set provider={payment.provider!r}",
        )
        check(
            gateway,
            payment.merchant_reference == self.merchant_reference,
            f"create answered for reference {payment.merchant_reference!r}, "
            f"not the one requested ({self.merchant_reference!r})",
        )
        check(gateway, payment.status in UNPAID, f"create answered status {payment.status}")
        check(
            gateway, payment.amount == amount, f"create answered {payment.amount}, asked {amount}"
        )
        check(gateway, payment.provider_reference, "create set no provider_reference")

    def test_redirect_is_rebuilt_from_provider_data(self, gateway: Gateway) -> None:
        payment = self._create(gateway, self.merchant_reference, self._money(gateway))
        try:
            first = gateway.redirect(self._stored(payment))
            again = gateway.redirect(self._stored(payment))
        except Exception as exc:
            fail(
                gateway,
                f"redirect() from the stored provider_data raised {type(exc).__name__}: keep "
                "what it needs (a token, form fields) in Payment.provider_data",
            )
            raise
        check(
            gateway,
            first == again,
            "a second press of 'pay' (redirect from the stored provider_data) shows another page",
        )
        if payment.redirect is not None:
            check(
                gateway,
                first == payment.redirect,
                "redirect() from the stored provider_data differs from create's redirect: keep "
                "what it needs (a token, form fields) in Payment.provider_data",
            )
        if isinstance(first, PaymentInstructions):
            check(
                gateway,
                first.number or first.payload or first.url,
                "instructions without a number, payload or link",
            )
            return
        check(gateway, isinstance(first, RedirectInstruction), f"redirect returned {first!r}")
        parts = urlsplit(first.url)
        check(
            gateway,
            parts.scheme in ("http", "https") and parts.netloc,
            "redirect URL is not a web URL",
        )
        if first.is_form:
            check(gateway, first.form_fields, "a POST redirect without form fields")
            check(
                gateway,
                all(
                    isinstance(k, str) and isinstance(v, str) for k, v in first.form_fields.items()
                ),
                "form fields must be strings",
            )
            page = form_page(first).decode()
            for value in first.form_fields.values():
                check(gateway, html.escape(value) in page, "a form field is not on the pay page")
        else:
            check(gateway, not first.form_fields, "a GET redirect carrying form fields")

    @pytest.mark.parametrize("index", range(3), ids=lambda i: f"amount{i}")
    def test_amounts_round_trip(self, gateway: Gateway, index: int) -> None:
        if index >= len(self.amounts):
            pytest.skip("fewer amounts declared")
        amount = self._money(gateway, self.amounts[index])
        reference = f"{self.merchant_reference}-A{index}"
        payment = self._create(gateway, reference, amount)
        check(gateway, payment.amount == amount, f"create answered {payment.amount} for {amount}")
        if gateway.supports(Capability.INQUIRE):
            report = gateway.inquire(self._stored(payment))
            check(
                gateway,
                report.amount is None or report.amount == amount,
                f"inquire reports {report.amount} for a payment of {amount}",
            )
        message = self._parse(gateway, self._notification(gateway, amount=amount))
        check(
            gateway,
            message.amount == amount,
            f"a notification of {amount} parsed as amount={message.amount}: the service "
            "compares it with the ledger, so set Notification.amount (Money.from_units)",
        )

    def test_inquire_reports_the_created_payment(self, gateway: Gateway) -> None:
        if not gateway.supports(Capability.INQUIRE):
            pytest.skip("inquire is not declared")
        payment = self._create(gateway, self.merchant_reference, self._money(gateway))
        report = gateway.inquire(self._stored(payment))
        check(
            gateway,
            report.provider == type(gateway).name,
            f"inquire set provider={report.provider!r}",
        )
        check(
            gateway,
            report.merchant_reference == payment.merchant_reference,
            f"inquire answered for {report.merchant_reference!r}",
        )
        check(
            gateway,
            report.provider_reference in ("", payment.provider_reference),
            "inquire answered another provider_reference",
        )
        check(gateway, report.status in UNPAID, f"inquire of a new payment says {report.status}")

    def test_cancel_cancels_an_unpaid_payment(self, gateway: Gateway) -> None:
        if not gateway.supports(Capability.CANCEL):
            pytest.skip("cancel is not declared")
        payment = self._create(gateway, self.merchant_reference, self._money(gateway))
        report = gateway.cancel(self._stored(payment), "conformance")
        check(gateway, report.status is PaymentStatus.CANCELLED, f"cancel answered {report.status}")
        if gateway.supports(Capability.INQUIRE):
            after = gateway.inquire(self._stored(payment))
            check(
                gateway,
                after.status is PaymentStatus.CANCELLED,
                f"after cancel, inquire says {after.status}",
            )

    def test_lost_create_answer(self, gateway: Gateway, kit_transport: KitTransport) -> None:
        """An ambiguous create: re-sent with the same key when ``idempotent_create`` is
        declared (one payment at the provider), else ``OutcomeUnknown``."""
        amount = self._money(gateway)
        key = "conformance-key-0001"
        kit_transport.lose_next_answer("create")
        if not gateway.idempotent_create:
            with pytest.raises(OutcomeUnknown):
                self._create(gateway, self.merchant_reference, amount)
            return
        try:
            payment = self._create(gateway, self.merchant_reference, amount, key)
        except OutcomeUnknown:
            payment = self._create(gateway, self.merchant_reference, amount, key)
        again = self._create(gateway, self.merchant_reference, amount, key)
        sent = kit_transport.of("create")
        check(gateway, len(sent) >= 3, f"only {len(sent)} create requests reached the provider")
        for request in sent:
            carried = (
                key in request.body.decode("utf-8", "replace") or key in request.headers.values()
            )
            check(gateway, carried, "a create request does not carry request.idempotency_key")
        check(
            gateway,
            again.provider_reference == payment.provider_reference,
            "the same idempotency key made a second payment at the provider "
            f"({payment.provider_reference!r}, then {again.provider_reference!r})",
        )
