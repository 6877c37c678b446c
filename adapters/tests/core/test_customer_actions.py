"""What the customer is shown to pay, and what a provider must remember between calls:
``provider_data`` stored by the ledger and handed back, POST forms and instructions served by
the pay page and printed by ``gateway create``, and idempotent creates re-sent with their
key. Rules tested with :class:`gateway_core.testing.FakeGateway` subclasses and a real
SQLite ledger (issue 10, items 3-6).
"""

from __future__ import annotations

import wsgiref.util
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest

from gateway_core import (
    Customer,
    InstructionKind,
    Money,
    OutcomeUnknown,
    Payment,
    PaymentInstructions,
    PaymentRequest,
    PaymentService,
    PaymentStatus,
    PluginHost,
    RedirectInstruction,
    RedirectMethod,
)
from gateway_core._customer_action import action_data, action_text
from gateway_core._redact import register_secret
from gateway_core.ledger import SQLiteLedger
from gateway_core.testing import FakeGateway
from gateway_core.web import make_wsgi_app

S = PaymentStatus
HOSTILE = '"><script>alert(1)</script>'


class FormGateway(FakeGateway):
    """A provider whose create answers a one-time form token the redirect needs later: the
    POST form can only be rebuilt from what create returned (``provider_data``)."""

    name: ClassVar[str] = "fake_form"

    def create(self, request: PaymentRequest) -> Payment:
        payment = super().create(request)
        data = {"token": f"tok-{payment.provider_reference}", "note": HOSTILE}
        return attrs.evolve(payment, redirect=None, provider_data=data)

    def redirect(self, payment: Payment) -> RedirectInstruction:
        data = payment.provider_data
        return RedirectInstruction(
            url="https://fake.invalid/checkout",
            method=RedirectMethod.POST,
            form_fields={"token": data["token"], "note": data["note"]},
        )


class VirtualAccountGateway(FakeGateway):
    """A provider that gives a virtual-account number instead of a page."""

    name: ClassVar[str] = "fake_va"

    def create(self, request: PaymentRequest) -> Payment:
        payment = super().create(request)
        return attrs.evolve(payment, redirect=None, provider_data={"va": "8808123456"})

    def redirect(self, payment: Payment) -> PaymentInstructions:
        return PaymentInstructions(
            kind=InstructionKind.VIRTUAL_ACCOUNT,
            bank="BCA",
            number=payment.provider_data["va"],
            amount=payment.amount,
            text="Transfer <exactly> this amount",
        )


class IdempotentGateway(FakeGateway):
    """A provider whose create takes an idempotency key: a key it has seen answers with the
    bill it made then. ``lose`` answers are lost after the bill was made."""

    name: ClassVar[str] = "fake_idem"
    idempotent_create: ClassVar[bool] = True

    def __init__(self, *, lose: int = 1) -> None:
        super().__init__()
        self.lose = lose
        self.keys: list[str] = []
        self.by_key: dict[str, Payment] = {}

    def create(self, request: PaymentRequest) -> Payment:
        self.keys.append(request.idempotency_key)
        payment = self.by_key.get(request.idempotency_key)
        if payment is None:
            payment = super().create(request)
            self.by_key[request.idempotency_key] = payment
        if self.lose:
            self.lose -= 1
            raise OutcomeUnknown("answer lost after the bill was made", provider=self.name)
        return payment

    def bill_count(self) -> int:
        return len(self.by_key)


class World:
    def __init__(self, tmp_path: Path, **gateways: FakeGateway) -> None:
        host = PluginHost(entry_points=False, plugins=[])
        self.ledger = SQLiteLedger(str(tmp_path / "ledger.db"))
        self.ledger.migrate()
        self.gateways = gateways
        self.service = PaymentService(
            gateways=gateways, ledger=self.ledger, hooks=host.hooks, sleep=lambda _: None
        )

    def request(self, order: str, amount: str = "10.00") -> PaymentRequest:
        return PaymentRequest(
            order_reference=order,
            amount=Money(amount, "USD"),
            customer=Customer("Ana"),
            description=order,
            return_url="https://shop.invalid/return",
        )

    def start(self, gateway: str, order: str, amount: str = "10.00") -> Any:
        return self.service.start_payment(gateway, self.request(order, amount))

    def get(self, path: str) -> tuple[str, dict[str, str], bytes]:
        app = make_wsgi_app(self.service, prefix="/gw")
        environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": "GET"}
        wsgiref.util.setup_testing_defaults(environ)
        captured: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            captured["status"], captured["headers"] = status, dict(headers)

        body = b"".join(app(environ, start_response))
        return captured["status"], captured["headers"], body


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    built = World(
        tmp_path,
        form=FormGateway(),
        va=VirtualAccountGateway(),
        plain=FakeGateway(),
        idem=IdempotentGateway(),
    )
    try:
        yield built
    finally:
        built.ledger.close()


# -- provider_data and the second press of "pay" ----------------------------------------------


def test_second_press_of_pay_returns_the_same_post_form_rebuilt_from_provider_data(
    world: World,
) -> None:
    first = world.start("form", "O-1")
    second = world.start("form", "O-1")
    assert second.reused
    assert second.payment.merchant_reference == first.payment.merchant_reference
    assert second.redirect == first.redirect
    assert second.redirect.method is RedirectMethod.POST
    assert second.redirect.form_fields["token"] == f"tok-{first.payment.provider_reference}"


def test_provider_data_is_stored_with_the_attempt_and_kept_out_of_repr(world: World) -> None:
    record = world.start("form", "O-2").payment
    stored = world.service.payment("form", record.merchant_reference)
    assert stored.provider_data["token"] == f"tok-{record.provider_reference}"
    assert "tok-" not in repr(stored)
    assert "tok-" not in repr(world.service.as_payment(stored))


def test_inquire_and_cancel_receive_the_stored_provider_data(world: World) -> None:
    seen: list[Any] = []
    gateway = world.gateways["form"]
    original = gateway.cancel

    def cancel(payment: Payment, reason: str = "") -> Any:
        seen.append(dict(payment.provider_data))
        return original(payment, reason)

    gateway.cancel = cancel  # type: ignore[method-assign]
    record = world.start("form", "O-3").payment
    world.service.cancel("form", record.merchant_reference)
    assert seen
    assert seen[0]["token"] == f"tok-{record.provider_reference}"


def test_provider_data_that_json_cannot_carry_is_refused_at_the_edge() -> None:
    with pytest.raises(TypeError, match="JSON"):
        Payment(
            provider="p",
            merchant_reference="r",
            status=S.PENDING,
            amount=Money("1", "USD"),
            provider_data={"when": datetime.now(UTC)},
        )


# -- instructions ------------------------------------------------------------------------------


def test_a_provider_can_answer_instructions_instead_of_a_redirect(world: World) -> None:
    started = world.start("va", "O-4")
    assert started.instructions is not None
    assert (started.instructions.bank, started.instructions.number) == ("BCA", "8808123456")
    again = world.start("va", "O-4")
    assert again.reused
    assert again.redirect == started.redirect


# -- the pay page ------------------------------------------------------------------------------


def test_pay_page_serves_an_auto_submitting_form_with_escaped_values(world: World) -> None:
    record = world.start("form", "O-5").payment
    status, headers, body = world.get(f"/gw/pay/form/{record.merchant_reference}")
    page = body.decode()
    assert status.startswith("200")
    assert headers["Content-Type"].startswith("text/html")
    assert headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert '<form id="pay" method="post" action="https://fake.invalid/checkout">' in page
    assert f'name="token" value="tok-{record.provider_reference}"' in page
    assert HOSTILE not in page
    assert "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<noscript>" in page
    assert '<button type="submit">' in page
    assert ".submit()" in page


def test_pay_page_redirects_a_get_redirect_with_302(world: World) -> None:
    record = world.start("plain", "O-6").payment
    status, headers, _ = world.get(f"/gw/pay/plain/{record.merchant_reference}")
    assert status.startswith("302")
    assert headers["Location"] == f"https://fake.invalid/pay/{record.merchant_reference}"
    assert headers["Cache-Control"] == "no-store"


def test_pay_page_shows_instructions_escaped(world: World) -> None:
    record = world.start("va", "O-7").payment
    status, _, body = world.get(f"/gw/pay/va/{record.merchant_reference}")
    assert status.startswith("200")
    assert "8808123456" in body.decode()
    assert "BCA" in body.decode()
    assert "Transfer &lt;exactly&gt; this amount" in body.decode()


def test_pay_page_is_404_for_an_unknown_or_final_payment(world: World) -> None:
    assert world.get("/gw/pay/form/NOPE-1")[0].startswith("404")
    assert world.get("/gw/pay/nogateway/NOPE-1")[0].startswith("404")
    record = world.start("plain", "O-8").payment
    world.gateways["plain"].settle(record.merchant_reference, S.PAID)
    world.service.inquire("plain", record.merchant_reference)
    assert world.get(f"/gw/pay/plain/{record.merchant_reference}")[0].startswith("404")


# -- gateway create's printing ----------------------------------------------------------------


def test_gateway_create_prints_a_post_forms_method_url_and_fields_but_no_secret() -> None:
    register_secret("Sup3rSecretValue")
    form = RedirectInstruction(
        url="https://pay.invalid/checkout",
        method=RedirectMethod.POST,
        form_fields={"token": "tok-1", "leak": "x-Sup3rSecretValue"},
    )
    text = action_text(form)
    assert "POST https://pay.invalid/checkout" in text
    assert "token=tok-1" in text
    assert "Sup3rSecretValue" not in text
    data = action_data(form)
    assert (data["method"], data["url"], data["fields"]["token"]) == (
        "POST",
        "https://pay.invalid/checkout",
        "tok-1",
    )
    assert "Sup3rSecretValue" not in str(data)


def test_gateway_create_prints_instructions_when_there_is_no_page() -> None:
    va = PaymentInstructions(kind=InstructionKind.VIRTUAL_ACCOUNT, bank="BCA", number="88081")
    assert "virtual_account" in action_text(va)
    assert "88081" in action_text(va)
    assert action_data(va)["number"] == "88081"
    assert (
        action_text(RedirectInstruction(url="https://x.invalid/p"))
        == "send the customer to: https://x.invalid/p"
    )


# -- idempotent creates --------------------------------------------------------------------------


def test_a_lost_idempotent_create_is_resent_with_the_same_key_and_settles_the_attempt(
    world: World,
) -> None:
    gateway = world.gateways["idem"]
    assert isinstance(gateway, IdempotentGateway)
    started = world.start("idem", "O-9")
    assert len(gateway.keys) == 2
    assert gateway.keys[0] == gateway.keys[1] != ""
    assert gateway.bill_count() == 1
    assert started.payment.status is S.PENDING
    assert started.payment.idempotency_key == gateway.keys[0]
    attempts = world.ledger.payments_for_order("idem", "O-9")
    assert [a.attempt for a in attempts] == [1]
    assert attempts[0].provider_reference == gateway.by_key[gateway.keys[0]].provider_reference


def test_a_later_start_payment_resends_the_unknown_attempt_instead_of_minting_one(
    world: World,
) -> None:
    gateway = IdempotentGateway(lose=2)  # both sends of the first call are lost
    world.gateways["idem"] = gateway
    with pytest.raises(OutcomeUnknown):
        world.start("idem", "O-10")
    [unknown] = world.ledger.payments_for_order("idem", "O-10")
    assert unknown.status is S.UNKNOWN
    assert unknown.idempotency_key
    started = world.start("idem", "O-10")
    assert set(gateway.keys) == {unknown.idempotency_key}
    assert len(gateway.keys) == 3
    assert gateway.bill_count() == 1
    assert started.payment.merchant_reference == unknown.merchant_reference
    assert started.payment.status is S.PENDING
    assert [a.attempt for a in world.ledger.payments_for_order("idem", "O-10")] == [1]


def test_a_provider_without_idempotent_create_gets_no_key(world: World) -> None:
    keys: list[str] = []
    gateway = world.gateways["plain"]
    original = gateway.create

    def create(request: PaymentRequest) -> Payment:
        keys.append(request.idempotency_key)
        return original(request)

    gateway.create = create  # type: ignore[method-assign]
    assert world.start("plain", "O-11").payment.idempotency_key == ""
    assert keys == [""]


# -- money on the wire ---------------------------------------------------------------------------


def test_money_gives_the_iso_exponent_and_converts_to_a_plugins_own_units() -> None:
    rupiah = Money("2000", "IDR")
    assert rupiah.exponent == 2
    assert rupiah.minor_units == 200000  # the ISO minor unit, as before
    assert rupiah.to_units(0) == 2000  # whole rupiah, as several providers count
    assert Money.from_units(2000, "IDR", 0) == rupiah
    with pytest.raises(ValueError, match="cannot be expressed"):
        Money("10.50", "IDR").to_units(0)
