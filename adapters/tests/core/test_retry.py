"""Specifications for ProviderClient's retry policy (with MockTransport, a fake clock and sleep)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway_core import (
    HttpRequest,
    HttpResponse,
    MalformedResponse,
    MockTransport,
    NeverSent,
    OutcomeUnknown,
    ProviderClient,
    ProviderRefused,
    ProviderTemporaryError,
    ProviderUnavailable,
    RetryPolicy,
    TLSVerificationError,
    TransportError,
)

URL = "https://api.provider.example/pay?signature=deadbeefcafe"
Outcome = HttpResponse | BaseException | Callable[[], HttpResponse]


class FakeTime:
    """A monotonic clock that only moves when something sleeps or an attempt takes time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Scripted(MockTransport):
    """MockTransport that plays outcomes in order and records the timeout of each attempt.

    An attempt may take ``attempt_seconds`` of fake time, cut short by its timeout.
    """

    def __init__(
        self, outcomes: Iterable[Outcome], fake: FakeTime, attempt_seconds: float = 0.0
    ) -> None:
        self._outcomes = list(outcomes)
        self._fake = fake
        self._attempt_seconds = attempt_seconds
        self.timeouts: list[float | None] = []
        super().__init__(self._next)

    def send(self, request: HttpRequest, *, timeout: float | None = None) -> HttpResponse:
        self.timeouts.append(timeout)
        spent = self._attempt_seconds if timeout is None else min(self._attempt_seconds, timeout)
        self._fake.now += spent
        return super().send(request, timeout=timeout)

    def _next(self, request: HttpRequest) -> HttpResponse:
        outcome = self._outcomes.pop(0) if len(self._outcomes) > 1 else self._outcomes[0]
        if isinstance(outcome, BaseException):
            raise outcome
        if callable(outcome):
            return outcome()
        return outcome


def ok(payload: str = "paid") -> HttpResponse:
    return HttpResponse(200, json.dumps({"status": payload}).encode())


def status(code: int, body: bytes = b"<html>oops</html>", **headers: str) -> HttpResponse:
    return HttpResponse(code, body, {k.replace("_", "-"): v for k, v in headers.items()})


def parse_json(response: HttpResponse) -> dict[str, Any]:
    """A typical plugin parser: business answers in a JSON body."""
    try:
        data = json.loads(response.body)
    except ValueError:
        raise MalformedResponse("not JSON", provider="acme") from None
    if not isinstance(data, dict):
        raise MalformedResponse("not an object", provider="acme")
    if data.get("status") == "refused":
        raise ProviderRefused("refused", provider="acme", provider_code="55")
    if data.get("status") == "busy":
        raise ProviderTemporaryError("busy", provider="acme", provider_code="99")
    return data


def request(*, idempotent: bool) -> HttpRequest:
    return HttpRequest(
        "POST",
        URL,
        body=b"bill_no=B1&signature=deadbeefcafe",
        operation="inquire" if idempotent else "create",
        idempotent=idempotent,
    )


def client(
    outcomes: Iterable[Outcome],
    policy: RetryPolicy | None = None,
    *,
    fake: FakeTime | None = None,
    random: float = 0.5,
    attempt_seconds: float = 0.0,
) -> tuple[ProviderClient, Scripted, FakeTime]:
    fake = fake or FakeTime()
    transport = Scripted(outcomes, fake, attempt_seconds)
    made = ProviderClient(
        transport,
        policy or RetryPolicy(),
        provider="acme",
        sleep=fake.sleep,
        clock=fake.clock,
        random=lambda: random,
    )
    return made, transport, fake


def read_timeout() -> TransportError:
    return TransportError("inquire to api.provider.example: read timeout")


def never_sent() -> NeverSent:
    return NeverSent("create to api.provider.example: connection refused")


MAYBE_RECEIVED: dict[str, Callable[[], Outcome]] = {
    "read timeout": read_timeout,
    "HTTP 500": lambda: status(500),
    "HTTP 503": lambda: status(503),
    "malformed 200": lambda: status(200, b"<html>maintenance</html>"),
    "empty 200": lambda: status(200, b""),
}


# -- the backoff law ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_number", "low", "high"),
    [(1, 0.25, 0.5), (2, 0.5, 1.0), (3, 1.0, 2.0), (4, 2.0, 4.0), (5, 2.5, 5.0), (9, 2.5, 5.0)],
)
def test_backoff_is_capped_exponential_with_jitter_between_half_and_full(
    retry_number: int, low: float, high: float
) -> None:
    policy = RetryPolicy()
    assert policy.backoff(retry_number, lambda: 0.0) == pytest.approx(low)
    assert policy.backoff(retry_number, lambda: 1.0) == pytest.approx(high)


def test_backoff_rejects_retry_number_zero() -> None:
    with pytest.raises(ValueError, match="retry_number"):
        RetryPolicy().backoff(0, lambda: 0.5)


def test_policy_rejects_negative_retries() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)


@pytest.mark.parametrize(("jitter", "expected"), [(0.0, [0.25, 0.5, 1.0, 2.0, 2.5])])
def test_sleeps_between_retries_follow_the_backoff_law(
    jitter: float, expected: list[float]
) -> None:
    made, transport, fake = client([status(503)], RetryPolicy(max_retries=5), random=jitter)
    with pytest.raises(ProviderUnavailable):
        made.call(request(idempotent=True), parse_json)
    assert fake.sleeps == pytest.approx(expected)
    assert len(transport.requests) == 6


# -- attempt counts -----------------------------------------------------------------------


@pytest.mark.parametrize("max_retries", [0, 1, 2, 4])
def test_an_idempotent_call_makes_one_plus_max_retries_attempts(max_retries: int) -> None:
    made, transport, _ = client([read_timeout()], RetryPolicy(max_retries=max_retries))
    with pytest.raises(ProviderUnavailable):
        made.call(request(idempotent=True), parse_json)
    assert len(transport.requests) == 1 + max_retries
    assert made.attempts_made == 1 + max_retries


def test_success_on_the_first_attempt_makes_one_attempt_and_no_sleep() -> None:
    made, transport, fake = client([ok()])
    assert made.call(request(idempotent=False), parse_json) == {"status": "paid"}
    assert len(transport.requests) == 1
    assert fake.sleeps == []


# -- never sent ---------------------------------------------------------------------------


def test_never_sent_is_retried_even_for_a_non_idempotent_call() -> None:
    made, transport, fake = client([never_sent(), never_sent(), ok()])
    assert made.call(request(idempotent=False), parse_json) == {"status": "paid"}
    assert len(transport.requests) == 3
    assert len(fake.sleeps) == 2


def test_retries_resend_the_identical_request() -> None:
    made, transport, _ = client([never_sent(), ok()])
    sent = request(idempotent=False)
    made.call(sent, parse_json)
    assert transport.requests == [sent, sent]


@pytest.mark.parametrize("idempotent", [False, True])
def test_exhausted_never_sent_raises_never_sent(idempotent: bool) -> None:
    made, transport, _ = client([never_sent()])
    with pytest.raises(NeverSent) as info:
        made.call(request(idempotent=idempotent), parse_json, merchant_reference="B1")
    assert len(transport.requests) == 3
    assert isinstance(info.value.__cause__, NeverSent)
    assert info.value.may_have_been_received is False
    assert info.value.merchant_reference == "B1"


# -- may have been received: non-idempotent stops at once, idempotent retries --------------


@pytest.mark.parametrize("failure", sorted(MAYBE_RECEIVED))
def test_non_idempotent_call_raises_outcome_unknown_after_one_attempt(failure: str) -> None:
    made, transport, fake = client([MAYBE_RECEIVED[failure](), ok()])
    with pytest.raises(OutcomeUnknown) as info:
        made.call(request(idempotent=False), parse_json, merchant_reference="B1")
    assert len(transport.requests) == 1
    assert fake.sleeps == []
    error = info.value
    assert "outcome unknown" in error.message
    assert "not retried" in error.message
    assert "create" in error.message
    assert (error.provider, error.merchant_reference) == ("acme", "B1")
    assert error.may_have_been_received is True


@pytest.mark.parametrize("failure", sorted(MAYBE_RECEIVED))
def test_idempotent_call_is_retried_after_a_maybe_received_failure(failure: str) -> None:
    made, transport, _ = client([MAYBE_RECEIVED[failure](), ok()])
    assert made.call(request(idempotent=True), parse_json) == {"status": "paid"}
    assert len(transport.requests) == 2


def test_exhausted_idempotent_call_raises_provider_unavailable_chained_to_the_last_error() -> None:
    last = read_timeout()
    made, _, _ = client([status(503), status(502), last])
    with pytest.raises(ProviderUnavailable) as info:
        made.call(request(idempotent=True), parse_json, merchant_reference="B1")
    assert info.value.__cause__ is last
    assert info.value.may_have_been_received is True
    assert "3 attempt" in info.value.message


def test_idempotent_call_mixing_never_sent_and_timeouts_ends_provider_unavailable() -> None:
    made, _, _ = client([never_sent(), read_timeout(), never_sent()])
    with pytest.raises(ProviderUnavailable):
        made.call(request(idempotent=True), parse_json)


def test_outcome_unknown_is_chained_to_what_happened() -> None:
    made, _, _ = client([status(502)])
    with pytest.raises(OutcomeUnknown) as info:
        made.call(request(idempotent=False), parse_json)
    assert isinstance(info.value.__cause__, ProviderTemporaryError)
    assert "502" in str(info.value.__cause__)


# -- answers parse decides on -------------------------------------------------------------


@pytest.mark.parametrize("idempotent", [False, True])
def test_business_refusal_is_never_retried(idempotent: bool) -> None:
    made, transport, _ = client([status(200, b'{"status": "refused"}'), ok()])
    with pytest.raises(ProviderRefused) as info:
        made.call(request(idempotent=idempotent), parse_json)
    assert info.value.provider_code == "55"
    assert len(transport.requests) == 1


def test_provider_temporary_error_is_retried_for_an_idempotent_call() -> None:
    made, transport, _ = client([status(200, b'{"status": "busy"}'), ok()])
    assert made.call(request(idempotent=True), parse_json) == {"status": "paid"}
    assert len(transport.requests) == 2


def test_provider_temporary_error_surfaces_as_is_for_a_non_idempotent_call() -> None:
    made, transport, _ = client([status(200, b'{"status": "busy"}'), ok()])
    with pytest.raises(ProviderTemporaryError) as info:
        made.call(request(idempotent=False), parse_json)
    assert info.value.provider_code == "99"
    assert len(transport.requests) == 1


@pytest.mark.parametrize("code", [200, 302, 400, 401, 404, 409, 422])
def test_any_status_below_500_except_429_goes_to_parse(code: int) -> None:
    seen: list[int] = []

    def parse(response: HttpResponse) -> int:
        seen.append(response.status_code)
        return response.status_code

    made, transport, _ = client([status(code)])
    assert made.call(request(idempotent=True), parse) == code
    assert seen == [code]
    assert len(transport.requests) == 1


def test_an_unexpected_exception_from_parse_is_not_retried() -> None:
    def parse(response: HttpResponse) -> None:
        raise KeyError("bug")

    made, transport, _ = client([ok()])
    with pytest.raises(KeyError):
        made.call(request(idempotent=True), parse)
    assert len(transport.requests) == 1


# -- TLS ----------------------------------------------------------------------------------


@pytest.mark.parametrize("idempotent", [False, True])
def test_tls_verification_error_is_never_retried(idempotent: bool) -> None:
    failure = TLSVerificationError("create to api.provider.example: certificate not trusted")
    made, transport, fake = client([failure, ok()])
    with pytest.raises(TLSVerificationError) as info:
        made.call(request(idempotent=idempotent), parse_json)
    assert info.value is failure
    assert len(transport.requests) == 1
    assert fake.sleeps == []


# -- 429 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_after", "expected_sleep"),
    [("3", 3.0), ("0.25", 0.25), ("120", 10.0), ("", 0.375), ("soon", 0.375)],
)
def test_rate_limited_idempotent_call_waits_retry_after_capped(
    retry_after: str, expected_sleep: float
) -> None:
    limited = status(429, b"", Retry_After=retry_after)
    made, transport, fake = client([limited, ok()])
    assert made.call(request(idempotent=True), parse_json) == {"status": "paid"}
    assert fake.sleeps == pytest.approx([expected_sleep])
    assert len(transport.requests) == 2


def test_retry_after_as_an_http_date_is_honoured() -> None:
    limited = status(429, b"", Retry_After="Wed, 21 Oct 2015 07:28:00 GMT")  # in the past
    made, _, fake = client([limited, ok()])
    made.call(request(idempotent=True), parse_json)
    assert fake.sleeps == pytest.approx([0.375])  # a past date falls back to the backoff


def test_rate_limited_non_idempotent_call_is_outcome_unknown_by_default() -> None:
    made, transport, _ = client([status(429, b"", Retry_After="1"), ok()])
    with pytest.raises(OutcomeUnknown, match="429"):
        made.call(request(idempotent=False), parse_json)
    assert len(transport.requests) == 1


def test_rate_limited_non_idempotent_call_is_retried_when_the_policy_says_so() -> None:
    policy = RetryPolicy(retry_rate_limited_non_idempotent=True)
    made, transport, fake = client([status(429, b"", Retry_After="2"), ok()], policy)
    assert made.call(request(idempotent=False), parse_json) == {"status": "paid"}
    assert fake.sleeps == [2.0]
    assert len(transport.requests) == 2


def test_exhausted_rate_limited_non_idempotent_call_says_it_was_not_received() -> None:
    policy = RetryPolicy(retry_rate_limited_non_idempotent=True)
    made, transport, _ = client([status(429)], policy)
    with pytest.raises(ProviderUnavailable) as info:
        made.call(request(idempotent=False), parse_json)
    assert info.value.may_have_been_received is False
    assert len(transport.requests) == 3


def test_retry_after_cannot_exceed_the_overall_deadline() -> None:
    policy = RetryPolicy(deadline=5.0, retry_after_cap=10.0)
    made, transport, fake = client([status(429, b"", Retry_After="8"), ok()], policy)
    with pytest.raises(ProviderUnavailable):
        made.call(request(idempotent=True), parse_json)
    assert fake.sleeps == []
    assert len(transport.requests) == 1


# -- the overall deadline -----------------------------------------------------------------


def test_each_attempt_gets_the_remaining_deadline_as_its_timeout() -> None:
    policy = RetryPolicy(max_retries=10, deadline=20.0)
    made, transport, fake = client([read_timeout()], policy, random=0.0, attempt_seconds=8.0)
    with pytest.raises(ProviderUnavailable):
        made.call(request(idempotent=True), parse_json)
    # 8 s attempt, 0.25 s sleep, 8 s attempt, 0.5 s sleep, then 3.25 s left for the third.
    assert transport.timeouts == pytest.approx([20.0, 11.75, 3.25])
    assert fake.sleeps == pytest.approx([0.25, 0.5])
    assert fake.now - 1000.0 <= 20.0


def test_the_deadline_stops_retrying_before_max_retries() -> None:
    policy = RetryPolicy(max_retries=10, deadline=10.0)
    made, transport, fake = client([never_sent()], policy, random=1.0, attempt_seconds=1.0)
    with pytest.raises(NeverSent):
        made.call(request(idempotent=False), parse_json)
    # Attempts end at 1, 2.5, 4.5 and 7.5 s (after sleeps of 0.5, 1 and 2 s); the next
    # sleep, 4 s, would end past 10 s.
    assert len(transport.requests) == 4
    assert fake.sleeps == pytest.approx([0.5, 1.0, 2.0])
    assert fake.now - 1000.0 <= 10.0


def test_a_sleep_that_would_cross_the_deadline_is_not_taken() -> None:
    policy = RetryPolicy(deadline=1.0)
    made, transport, fake = client([read_timeout()], policy, random=1.0, attempt_seconds=0.6)
    with pytest.raises(ProviderUnavailable):
        made.call(request(idempotent=True), parse_json)
    assert fake.sleeps == []
    assert len(transport.requests) == 1


# -- logging ------------------------------------------------------------------------------


def test_each_retry_is_logged_with_operation_attempt_delay_and_error_class_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    made, _, _ = client([status(503), ok()], random=0.0)
    with caplog.at_level(logging.WARNING, logger="gateway_core.retry"):
        made.call(request(idempotent=True), parse_json)
    [record] = [r for r in caplog.records if r.name == "gateway_core.retry"]
    text = record.getMessage()
    assert "inquire" in text
    assert "attempt 1" in text
    assert "0.250 s" in text
    assert "HTTP 503" in text
    assert "api.provider.example" not in text
    assert "deadbeefcafe" not in caplog.text
    assert "bill_no" not in caplog.text


def test_error_messages_carry_no_url_query_or_body() -> None:
    made, _, _ = client([status(500)])
    with pytest.raises(OutcomeUnknown) as info:
        made.call(request(idempotent=False), parse_json, merchant_reference="B1")
    text = str(info.value)
    assert "api.provider.example" in text
    assert "deadbeefcafe" not in text
    assert "bill_no" not in text


def test_close_closes_the_transport() -> None:
    closed: list[bool] = []

    class Closing(MockTransport):
        def close(self) -> None:
            closed.append(True)

    with ProviderClient(Closing(lambda r: ok())) as made:
        made.call(request(idempotent=True), parse_json)
    assert closed == [True]


def test_concurrent_calls_on_one_client_keep_their_own_retry_state() -> None:
    failed_once: set[bytes] = set()
    lock = threading.Lock()

    def flaky(sent: HttpRequest) -> HttpResponse:
        with lock:
            first = sent.body not in failed_once
            failed_once.add(sent.body)
        if first:
            raise never_sent()
        return HttpResponse(200, json.dumps({"status": sent.body.decode()}).encode())

    transport = MockTransport(flaky)
    made = ProviderClient(transport, sleep=lambda seconds: None)

    def run(worker: int) -> list[str]:
        results = []
        for n in range(20):
            sent = HttpRequest("POST", URL, body=f"{worker}-{n}".encode(), operation="create")
            results.append(made.call(sent, parse_json)["status"])
        return results

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, range(8)))
    assert results == [[f"{w}-{n}" for n in range(20)] for w in range(8)]
    assert len(transport.requests) == 8 * 20 * 2


# -- properties ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    max_retries=st.integers(0, 5),
    retry_number=st.integers(1, 40),
    base=st.floats(0.01, 2.0),
    cap=st.floats(0.01, 10.0),
    jitter=st.floats(0.0, 1.0, exclude_max=True),
)
def test_property_backoff_stays_within_half_and_full_capped_delay(
    max_retries: int, retry_number: int, base: float, cap: float, jitter: float
) -> None:
    policy = RetryPolicy(max_retries=max_retries, backoff_base=base, backoff_cap=cap)
    delay = min(cap, base * 2 ** (retry_number - 1))
    slept = policy.backoff(retry_number, lambda: jitter)
    assert delay / 2 <= slept <= delay
    assert slept <= cap


@settings(max_examples=150, deadline=None)
@given(
    max_retries=st.integers(0, 5),
    deadline=st.floats(0.5, 30.0),
    attempt_seconds=st.floats(0.0, 12.0),
    jitter=st.floats(0.0, 1.0, exclude_max=True),
    idempotent=st.booleans(),
)
def test_property_attempts_and_sleeps_stay_within_retries_and_deadline(
    max_retries: int, deadline: float, attempt_seconds: float, jitter: float, idempotent: bool
) -> None:
    policy = RetryPolicy(max_retries=max_retries, deadline=deadline)
    failure = never_sent() if not idempotent else read_timeout()
    made, transport, fake = client(
        [failure], policy, random=jitter, attempt_seconds=attempt_seconds
    )
    with pytest.raises((NeverSent, ProviderUnavailable)):
        made.call(request(idempotent=idempotent), parse_json)
    assert 1 <= len(transport.requests) <= 1 + max_retries
    assert sum(fake.sleeps) <= deadline
    assert fake.now - 1000.0 <= deadline + 1e-9
    assert all(t is not None and t > 0 for t in transport.timeouts)
