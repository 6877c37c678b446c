"""The Faspay DANA plugin against every scripted endpoint fault on a real socket.

Each fault of the emulator's catalogue (``emulator/_faults.py``) is put in front of the next
request of a non-idempotent call (``create``) and of idempotent ones (``inquire``,
``channel_inquiry``), with the production stack (``RequestsTransport`` + ``ProviderClient``)
configured tight: read timeout 0.5 s, deadline 3 s, 2 retries. What the plugin does must
match ``ProviderClient``'s classification table (``gateway_core/_retry.py``):

* never sent (refused): retried, for ``create`` too;
* may have been received (reset, lost reply, read timeout, 5xx, 429, unreadable answer):
  ``create`` stops with ``OutcomeUnknown``, idempotent calls are retried;
* Faspay refusals: never retried, except the temporary ones (``66``/``96``) on idempotent calls.

The emulator runs with ``duplicate_bill_no="new_bill"`` (a Faspay without any duplicate
check), so a blind resend of ``create`` would show as a second bill: its own records (request
log, ``create_requests``, bills per ``bill_no``) are the evidence of what reached "Faspay".
"""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import pytest

from gateway_core import (
    Customer,
    GatewayError,
    LineItem,
    Money,
    NeverSent,
    OutcomeUnknown,
    Payment,
    PaymentRequest,
    PaymentStatus,
    ProviderConfigurationError,
    ProviderRefused,
    ProviderTemporaryError,
    ProviderUnavailable,
)
from gateway_faspay_dana import JAKARTA, FaspayDanaGateway
from gateway_faspay_dana.emulator import EmulatorApp, EmulatorServer, Merchant
from gateway_faspay_dana.emulator._faults import ENDPOINT_FAULTS

READ_TIMEOUT = 0.5
DEADLINE = 3.0
MAX_RETRIES = 2
#: Slack on top of the deadline for the last socket read and thread scheduling.
MARGIN = 1.0
#: Shorter than the smallest first backoff (0.5 s · 0.5), so the first retry finds the port open.
REFUSE_WINDOW = 0.2

SUCCEEDS = None

#: Test-only flag in a ``refuse`` case's params: wait until the port really refuses.
PORT_CLOSED = "_wait_until_refused"


# --- set-up -----------------------------------------------------------------------------------


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    app = EmulatorApp(Merchant("99999", merchant_name="Sophia Store"), duplicate_bill_no="new_bill")
    server = EmulatorServer(app).start()
    yield server
    server.stop()


def make_gateway(server: EmulatorServer, **overrides: Any) -> FaspayDanaGateway:
    settings: dict[str, Any] = {
        "merchant_id": "99999",
        "merchant_name": "Sophia Store",
        "password": "p@ssw0rd",
        "base_url": server.url,
        "connect_timeout": READ_TIMEOUT,
        "read_timeout": READ_TIMEOUT,
        "deadline": DEADLINE,
        "max_retries": MAX_RETRIES,
    }
    settings.update(overrides)
    return FaspayDanaGateway.from_config(settings, environ={})


@pytest.fixture
def gateway(emulator: EmulatorServer) -> Iterator[FaspayDanaGateway]:
    """The gateway under test, with an empty connection pool."""
    gw = make_gateway(emulator)
    yield gw
    gw.close()


@pytest.fixture
def existing(emulator: EmulatorServer) -> Payment:
    """A bill created beforehand through another gateway (so the pool under test is empty)."""
    setup = make_gateway(emulator)
    try:
        return setup.create(payment_request("B-existing"))
    finally:
        setup.close()


def payment_request(bill_no: str) -> PaymentRequest:
    return PaymentRequest(
        order_reference="ORDER-" + bill_no,
        amount=Money("2000", "IDR"),
        customer=Customer("John Doe", "john@example.com", "08123456789"),
        description="Order " + bill_no,
        return_url="https://unused.example/return",
        expires_at=datetime.now(JAKARTA) + timedelta(hours=1),
        items=[LineItem("Thing", 2, Money("1000", "IDR"))],
        merchant_reference=bill_no,
    )


def inject(server: EmulatorServer, endpoint: str, kind: str, params: dict[str, Any]) -> None:
    """Script ``kind`` for the next request of ``endpoint`` (``refuse`` is server-wide)."""
    params = dict(params)
    wait = params.pop(PORT_CLOSED, False)
    if kind == "refuse":
        server.app.add_fault("*", "refuse", **params)
        if wait:
            wait_until_refused(server)
    else:
        server.app.add_fault(endpoint, kind, count=1, **params)


def wait_until_refused(server: EmulatorServer) -> None:
    """Probe the port until a connection is refused (see ``REFUSE_BUG``)."""
    give_up = time.monotonic() + 1.0
    while time.monotonic() < give_up:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", server.port)) == errno.ECONNREFUSED:
                assert server.refusing, "the refuse window ended before the test could use it"
                return
        time.sleep(0.005)
    raise AssertionError("the emulator's port never refused a connection")


def requests_to(app: EmulatorApp, endpoint: str) -> int:
    return app.request_counts().get(endpoint, 0)


def bills_for(app: EmulatorApp, bill_no: str) -> int:
    return sum(1 for bill in app.bills() if bill["bill_no"] == bill_no)


def timed(call: Callable[[], Any]) -> tuple[Any, BaseException | None, float]:
    started = time.monotonic()
    try:
        result, error = call(), None
    except GatewayError as exc:
        result, error = None, exc
    return result, error, time.monotonic() - started


def attempts(gateway: FaspayDanaGateway) -> int:
    client: Any = gateway._client  # the default ProviderClient
    return int(client.attempts_made)


def check_outcome(error: BaseException | None, expected: type[Exception] | None) -> None:
    if expected is SUCCEEDS:
        assert error is None, f"expected success, got {error!r}"
    else:
        assert type(error) is expected, f"expected {expected.__name__}, got {error!r}"


# --- the matrix -------------------------------------------------------------------------------

#: (fault, params, what create ends with, create requests Faspay received, bills it made)
CREATE_CASES = [
    # Right after the fault is scripted, see test_create_right_after_refuse_is_never_sent.
    pytest.param(
        "refuse",
        {"seconds": REFUSE_WINDOW, PORT_CLOSED: True},
        SUCCEEDS,
        1,
        1,
        id="refuse-port-closed",
    ),
    pytest.param("reset_before_read", {}, OutcomeUnknown, 1, 0, id="reset_before_read"),
    pytest.param("close_without_response", {}, OutcomeUnknown, 1, 0, id="close_without_response"),
    pytest.param("reset_after_read", {}, OutcomeUnknown, 1, 1, id="reset_after_read"),
    pytest.param("read_timeout", {"seconds": 1.5}, OutcomeUnknown, 1, 1, id="read_timeout"),
    pytest.param(
        "slow_drip", {"interval": 0.2}, OutcomeUnknown, 1, 1, id="slow_drip-under-read-timeout"
    ),
    pytest.param(
        "slow_drip", {"interval": 1.0}, OutcomeUnknown, 1, 1, id="slow_drip-over-read-timeout"
    ),
    pytest.param("http_5xx", {"status": 500}, OutcomeUnknown, 1, 0, id="http_500"),
    pytest.param("http_5xx", {"status": 503}, OutcomeUnknown, 1, 0, id="http_503"),
    pytest.param(
        "http_5xx", {"status": 502, "process": True}, OutcomeUnknown, 1, 1, id="http_502-processed"
    ),
    pytest.param("http_429", {"retry_after": "0"}, OutcomeUnknown, 1, 0, id="http_429"),
    pytest.param("http_429", {}, OutcomeUnknown, 1, 0, id="http_429-no-retry-after"),
    pytest.param("malformed_json", {}, OutcomeUnknown, 1, 1, id="malformed_json"),
    pytest.param("empty_body", {}, OutcomeUnknown, 1, 1, id="empty_body"),
    pytest.param("html_200", {}, OutcomeUnknown, 1, 1, id="html_200"),
    *(
        pytest.param(
            "business_error", {"response_code": code}, error, 1, 0, id=f"business_error-{code}"
        )
        for code, error in [
            ("55", ProviderConfigurationError),
            ("56", ProviderConfigurationError),
            ("63", ProviderConfigurationError),
            ("30", ProviderRefused),
            ("83", ProviderRefused),
            ("66", ProviderTemporaryError),
            ("96", ProviderTemporaryError),
        ]
    ),
    pytest.param(
        "business_error",
        {"response_code": "96", "wrapper": True},
        ProviderTemporaryError,
        1,
        0,
        id="business_error-96-wrapper",
    ),
    pytest.param(
        "business_error",
        {"response_code": "55", "wrapper": True},
        ProviderConfigurationError,
        1,
        0,
        id="business_error-55-wrapper",
    ),
]

#: (fault, params, what the idempotent call ends with, requests Faspay received)
IDEMPOTENT_CASES = [
    # Passes despite REFUSE_BUG: the reset the first attempt meets is retried all the same.
    pytest.param("refuse", {"seconds": REFUSE_WINDOW}, SUCCEEDS, 1, id="refuse"),
    pytest.param(
        "refuse",
        {"seconds": REFUSE_WINDOW, PORT_CLOSED: True},
        SUCCEEDS,
        1,
        id="refuse-port-closed",
    ),
    pytest.param("reset_before_read", {}, SUCCEEDS, 2, id="reset_before_read"),
    pytest.param("close_without_response", {}, SUCCEEDS, 2, id="close_without_response"),
    pytest.param("reset_after_read", {}, SUCCEEDS, 2, id="reset_after_read"),
    pytest.param("read_timeout", {"seconds": 1.5}, SUCCEEDS, 2, id="read_timeout"),
    # Every byte comes within the read timeout: only the deadline ends the first attempt, and
    # no time is left for a retry.
    pytest.param(
        "slow_drip",
        {"interval": 0.2},
        ProviderUnavailable,
        1,
        id="slow_drip-under-read-timeout",
    ),
    pytest.param("slow_drip", {"interval": 1.0}, SUCCEEDS, 2, id="slow_drip-over-read-timeout"),
    pytest.param("http_5xx", {"status": 500}, SUCCEEDS, 2, id="http_500"),
    pytest.param("http_5xx", {"status": 503}, SUCCEEDS, 2, id="http_503"),
    pytest.param("http_429", {"retry_after": "0"}, SUCCEEDS, 2, id="http_429"),
    pytest.param("malformed_json", {}, SUCCEEDS, 2, id="malformed_json"),
    pytest.param("empty_body", {}, SUCCEEDS, 2, id="empty_body"),
    pytest.param("html_200", {}, SUCCEEDS, 2, id="html_200"),
    *(
        pytest.param(
            "business_error", {"response_code": code}, error, n, id=f"business_error-{code}"
        )
        for code, error, n in [
            ("55", ProviderConfigurationError, 1),
            ("56", ProviderConfigurationError, 1),
            ("63", ProviderConfigurationError, 1),
            ("30", ProviderRefused, 1),
            ("83", ProviderRefused, 1),
            ("66", SUCCEEDS, 2),
            ("96", SUCCEEDS, 2),
        ]
    ),
    pytest.param(
        "business_error",
        {"response_code": "96", "wrapper": True},
        SUCCEEDS,
        2,
        id="business_error-96-wrapper",
    ),
    pytest.param(
        "business_error",
        {"response_code": "55", "wrapper": True},
        ProviderConfigurationError,
        1,
        id="business_error-55-wrapper",
    ),
]

#: A few faults on the other idempotent call, channel inquiry.
CHANNEL_CASES = [
    pytest.param("refuse", {"seconds": REFUSE_WINDOW}, SUCCEEDS, 1, id="refuse"),
    pytest.param(
        "refuse",
        {"seconds": REFUSE_WINDOW, PORT_CLOSED: True},
        SUCCEEDS,
        1,
        id="refuse-port-closed",
    ),
    pytest.param("reset_after_read", {}, SUCCEEDS, 2, id="reset_after_read"),
    pytest.param("read_timeout", {"seconds": 1.5}, SUCCEEDS, 2, id="read_timeout"),
    pytest.param("http_5xx", {"status": 502}, SUCCEEDS, 2, id="http_502"),
    pytest.param("malformed_json", {}, SUCCEEDS, 2, id="malformed_json"),
    pytest.param("business_error", {"response_code": "96"}, SUCCEEDS, 2, id="business_error-96"),
    pytest.param(
        "business_error",
        {"response_code": "55"},
        ProviderConfigurationError,
        1,
        id="business_error-55",
    ),
]


def _kinds(cases: list[Any]) -> set[str]:
    return {case.values[0] for case in cases}


def test_the_matrix_covers_every_endpoint_fault() -> None:
    assert _kinds(CREATE_CASES) == ENDPOINT_FAULTS
    assert _kinds(IDEMPOTENT_CASES) == ENDPOINT_FAULTS


@pytest.mark.parametrize(("kind", "params", "expected", "received", "bills"), CREATE_CASES)
def test_create_under_fault(
    emulator: EmulatorServer,
    gateway: FaspayDanaGateway,
    kind: str,
    params: dict[str, Any],
    expected: type[Exception] | None,
    received: int,
    bills: int,
) -> None:
    app = emulator.app
    bill_no = f"B-{kind}"
    inject(emulator, "create", kind, params)

    payment, error, elapsed = timed(lambda: gateway.create(payment_request(bill_no)))

    check_outcome(error, expected)
    assert elapsed < DEADLINE + MARGIN
    # What reached "Faspay": never more than the one request, never a second bill.
    assert requests_to(app, "create") == received
    assert bills_for(app, bill_no) == bills
    assert app.create_requests(bill_no) == bills
    [entry] = app.requests_log("create")
    assert entry["fault"] == (None if kind == "refuse" else kind)
    assert entry["processed"] is bool(bills)
    if kind == "refuse":
        # Refused attempts carry no request; the one after the window is the only one sent.
        assert 2 <= attempts(gateway) <= 1 + MAX_RETRIES
        assert payment.status is PaymentStatus.PENDING
        assert payment.provider_reference == app.bill(bill_no)["trx_id"]
    else:
        assert attempts(gateway) == 1  # a non-idempotent call is never retried past the request
    if isinstance(error, OutcomeUnknown):
        assert error.may_have_been_received
        assert error.merchant_reference == bill_no
    if kind == "slow_drip" and params["interval"] < READ_TIMEOUT:
        assert elapsed >= DEADLINE - 0.1  # only the deadline could end it
    if isinstance(error, ProviderTemporaryError | ProviderRefused | ProviderConfigurationError):
        assert error.provider_code == params["response_code"]


@pytest.mark.parametrize(("kind", "params", "expected", "received"), IDEMPOTENT_CASES)
def test_inquire_under_fault(
    emulator: EmulatorServer,
    gateway: FaspayDanaGateway,
    existing: Payment,
    kind: str,
    params: dict[str, Any],
    expected: type[Exception] | None,
    received: int,
) -> None:
    app = emulator.app
    before = requests_to(app, "inquiry")
    inject(emulator, "inquiry", kind, params)

    report, error, elapsed = timed(lambda: gateway.inquire(existing))

    check_outcome(error, expected)
    assert elapsed < DEADLINE + MARGIN
    assert requests_to(app, "inquiry") - before == received
    if kind == "refuse":
        assert 2 <= attempts(gateway) <= 1 + MAX_RETRIES
    else:
        assert attempts(gateway) == received
    if expected is SUCCEEDS:
        assert report.status is PaymentStatus.PENDING
        assert report.provider_reference == existing.provider_reference
        log = app.requests_log("inquiry")[-received:]
        assert log[-1]["fault"] is None  # the retry met the healthy server
    if isinstance(error, ProviderUnavailable):
        assert elapsed >= DEADLINE - 0.1  # the first attempt used the whole deadline
        assert error.may_have_been_received
    # Inquiry never touches the bill, and nothing created another one.
    assert bills_for(app, existing.merchant_reference) == 1


@pytest.mark.parametrize(("kind", "params", "expected", "received"), CHANNEL_CASES)
def test_channel_inquiry_under_fault(
    emulator: EmulatorServer,
    gateway: FaspayDanaGateway,
    kind: str,
    params: dict[str, Any],
    expected: type[Exception] | None,
    received: int,
) -> None:
    app = emulator.app
    inject(emulator, "channel_inquiry", kind, params)

    channels, error, elapsed = timed(gateway.channel_inquiry)

    check_outcome(error, expected)
    assert elapsed < DEADLINE + MARGIN
    assert requests_to(app, "channel_inquiry") == received
    if expected is SUCCEEDS:
        assert [(c.code, c.name) for c in channels] == [("819", "DANA")]


# --- beyond one faulty request ------------------------------------------------------------------


def test_create_right_after_refuse_is_never_sent(emulator: EmulatorServer) -> None:
    # The window in which the emulator still accepts is a matter of thread timing, so try a
    # few times: one create that meets it is enough to show the bug.
    app = emulator.app
    for number in range(5):
        bill_no = f"B-refuse-{number}"
        gateway = make_gateway(emulator)  # an empty pool: a new connection is needed
        try:
            time.sleep(0.01)  # let the accept thread go back to waiting in select()
            inject(emulator, "create", "refuse", {"seconds": REFUSE_WINDOW})
            payment, error, _ = timed(partial(gateway.create, payment_request(bill_no)))
            tries = attempts(gateway)
        finally:
            gateway.close()
        check_outcome(error, SUCCEEDS)
        assert 2 <= tries <= 1 + MAX_RETRIES
        assert payment.provider_reference == app.bill(bill_no)["trx_id"]
        assert app.create_requests(bill_no) == bills_for(app, bill_no) == 1


def test_create_refused_for_longer_than_the_retries_is_never_sent(
    emulator: EmulatorServer, gateway: FaspayDanaGateway
) -> None:
    # The 3 attempts and their backoff (at most 0.5 + 1.0 s) fit in the 2 s refusal.
    inject(emulator, "create", "refuse", {"seconds": 2.0, PORT_CLOSED: True})
    _, error, elapsed = timed(lambda: gateway.create(payment_request("B-refused")))
    assert type(error) is NeverSent
    assert not error.may_have_been_received
    assert attempts(gateway) == 1 + MAX_RETRIES
    assert elapsed < DEADLINE + MARGIN
    assert requests_to(emulator.app, "create") == 0
    assert emulator.app.bills() == []


def test_inquire_gives_up_when_every_attempt_fails(
    emulator: EmulatorServer, gateway: FaspayDanaGateway, existing: Payment
) -> None:
    app = emulator.app
    before = requests_to(app, "inquiry")
    app.add_fault("inquiry", "http_5xx", count=1 + MAX_RETRIES, status=503)
    _, error, elapsed = timed(lambda: gateway.inquire(existing))
    assert type(error) is ProviderUnavailable
    assert error.may_have_been_received
    assert requests_to(app, "inquiry") - before == 1 + MAX_RETRIES
    assert elapsed < DEADLINE + MARGIN


def test_inquire_honours_retry_after(
    emulator: EmulatorServer, gateway: FaspayDanaGateway, existing: Payment
) -> None:
    # A first backoff is at most 0.5 s: waiting a whole second is Retry-After's doing.
    app = emulator.app
    before = requests_to(app, "inquiry")
    app.add_fault("inquiry", "http_429", retry_after=1)
    report, error, elapsed = timed(lambda: gateway.inquire(existing))
    assert error is None
    assert report.status is PaymentStatus.PENDING
    assert requests_to(app, "inquiry") - before == 2
    assert 1.0 <= elapsed < DEADLINE


def test_create_outcome_unknown_is_settled_by_inquiry(
    emulator: EmulatorServer, gateway: FaspayDanaGateway
) -> None:
    # The reply to create was lost after Faspay made the bill: the caller is told the outcome
    # is unknown, and the bill is there (exactly one) for an inquiry to find.
    app = emulator.app
    app.add_fault("create", "reset_after_read")
    with pytest.raises(OutcomeUnknown):
        gateway.create(payment_request("B-settle"))
    [record] = [b for b in app.bills() if b["bill_no"] == "B-settle"]
    probe = Payment(
        provider="faspay_dana",
        merchant_reference="B-settle",
        status=PaymentStatus.PENDING,
        amount=Money("2000", "IDR"),
        provider_reference=record["trx_id"],
    )
    assert gateway.inquire(probe).status is PaymentStatus.PENDING
    assert app.create_requests("B-settle") == 1


# --- pooled connections (F4) --------------------------------------------------------------------


def test_create_on_a_pooled_connection_closed_without_response(
    emulator: EmulatorServer, gateway: FaspayDanaGateway
) -> None:
    """F4: the server closes the kept-alive connection as the next create arrives on it."""
    app = emulator.app
    gateway.create(payment_request("B-F4-1"))
    accepted = emulator.accept_count
    app.add_fault("create", "close_without_response")

    _, error, elapsed = timed(lambda: gateway.create(payment_request("B-F4-2")))

    # The request was written on the pooled connection, so the client cannot tell it was not
    # processed: surfaced, not resent.
    assert type(error) is OutcomeUnknown
    assert elapsed < DEADLINE + MARGIN
    assert emulator.accept_count == accepted  # it did travel on the pooled connection
    first, second = app.requests_log("create")
    assert (second["fault"], second["processed"]) == ("close_without_response", False)
    assert first["connection"] == second["connection"]
    assert attempts(gateway) == 1
    assert bills_for(app, "B-F4-2") == 0
    assert app.create_requests("B-F4-2") == 0
    # The pool recovers: the next create opens a new connection and makes one bill.
    gateway.create(payment_request("B-F4-3"))
    assert bills_for(app, "B-F4-3") == 1
    assert emulator.accept_count == accepted + 1


def test_create_after_the_server_closed_an_idle_pooled_connection() -> None:
    """F4, the usual way round: the server's keep-alive timeout ran out while the connection
    sat in the pool. The closed connection is noticed before sending; the create goes out on a
    new one and succeeds, once."""
    app = EmulatorApp(Merchant("99999", merchant_name="Sophia Store"), duplicate_bill_no="new_bill")
    with EmulatorServer(app, keepalive_timeout=0.2) as server:
        gateway = make_gateway(server)
        try:
            gateway.create(payment_request("B-idle-1"))
            give_up = time.monotonic() + 5
            while server.open_connections and time.monotonic() < give_up:
                time.sleep(0.02)
            assert server.open_connections == 0
            accepted = server.accept_count
            payment = gateway.create(payment_request("B-idle-2"))
        finally:
            gateway.close()
        assert payment.status is PaymentStatus.PENDING
        assert server.accept_count == accepted + 1
        assert attempts(gateway) == 1
        assert app.request_counts()["create"] == 2
        assert bills_for(app, "B-idle-2") == 1
