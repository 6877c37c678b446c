"""Retries, backoff and the overall deadline for every provider call.

A :class:`~gateway_core.Transport` makes one attempt and says how it failed.
:class:`ProviderClient` decides, per attempt, whether trying again is safe, following
stripe-python's policy with one stricter rule for calls that are not idempotent:

=====================================================  ================  ====================
Attempt outcome                                        idempotent        not idempotent
=====================================================  ================  ====================
``NeverSent`` (refused, connect timeout)               retry             retry
``TLSVerificationError``                               raise, no retry   raise, no retry
other ``TransportError`` (read timeout, reset...)      retry             ``OutcomeUnknown``
HTTP status >= 500                                     retry             ``OutcomeUnknown``
HTTP 429 (capped ``Retry-After`` honoured)             retry             ``OutcomeUnknown`` [1]
any other status: ``parse(response)`` decides
``parse`` raised ``MalformedResponse``                 retry             ``OutcomeUnknown``
``parse`` raised ``ProviderTemporaryError``            retry             raise as-is
``parse`` raised another ``ProviderError``             raise, no retry   raise, no retry
anything else raised                                   raise, no retry   raise, no retry
=====================================================  ================  ====================

[1] retried like ``NeverSent`` when ``RetryPolicy.retry_rate_limited_non_idempotent`` says the
provider rejects rate-limited requests before processing them.

When the attempts (``1 + max_retries``) or the deadline run out: ``NeverSent`` if no failed
attempt can have reached the provider, else ``ProviderUnavailable`` chained to the last error.
The deadline covers every attempt and every sleep; each attempt gets the remaining time as its
``timeout``, and a sleep that would end past the deadline is not taken.
"""

from __future__ import annotations

import email.utils
import random as _random
import time
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar, cast
from urllib.parse import urlsplit

import attrs
import tenacity
from tenacity.stop import stop_base

from gateway_core._exceptions import (
    MalformedResponse,
    NeverSent,
    OutcomeUnknown,
    ProviderConfigurationError,
    ProviderError,
    ProviderRefused,
    ProviderTemporaryError,
    ProviderUnavailable,
    TLSVerificationError,
    TransportError,
)
from gateway_core._redact import get_logger
from gateway_core._transport import HttpRequest, HttpResponse, Transport

__all__ = ["CallObserver", "ProviderClient", "RetryPolicy", "call_outcome", "observe_calls"]

T = TypeVar("T")

_log = get_logger("gateway_core.retry")


class CallObserver(Protocol):
    """Told about every logical provider call a :class:`ProviderClient` of this process
    finishes (:class:`gateway_core.metrics.Metrics` is one)."""

    def provider_call(
        self, provider: str, operation: str, outcome: str, seconds: float, retries: int
    ) -> None: ...


#: The observers of this process (weakly held: a dropped one goes away by itself). Empty, a
#: call costs one truth test more.
_OBSERVERS: weakref.WeakSet[CallObserver] = weakref.WeakSet()

#: The ``outcome`` of a call that raised, by exception class (the first match counts).
_OUTCOMES: tuple[tuple[type[Exception], str], ...] = (
    (NeverSent, "never_sent"),
    (OutcomeUnknown, "outcome_unknown"),
    (ProviderUnavailable, "unavailable"),
    (TLSVerificationError, "tls_error"),
    (TransportError, "transport_error"),
    (ProviderRefused, "refused"),
    (ProviderConfigurationError, "configuration_error"),
    (MalformedResponse, "malformed"),
    (ProviderTemporaryError, "temporary_error"),
    (ProviderError, "provider_error"),
)


def call_outcome(exc: BaseException | None) -> str:
    """A finished call's outcome, as metrics label it: ``ok``, or the failure's kind
    (``never_sent``, ``outcome_unknown``, ``unavailable``, ``refused``...; ``error`` for an
    exception that is not the library's)."""
    if exc is None:
        return "ok"
    for kind, label in _OUTCOMES:
        if isinstance(exc, kind):
            return label
    return "error"


def observe_calls(observer: CallObserver, *, on: bool = True) -> None:
    """Tell ``observer`` about every provider call of this process from now on (``on=False``:
    no longer). Process-wide, because provider plugins make their clients themselves."""
    if on:
        _OBSERVERS.add(observer)
    else:
        _OBSERVERS.discard(observer)


def _non_negative(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _positive(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


@attrs.frozen
class RetryPolicy:
    """How often and how long a :class:`ProviderClient` retries one logical call.

    Defaults follow stripe-python: 2 retries, backoff ``0.5 s · 2^(n-1)`` capped at 5 s with
    jitter in ``[d/2, d]``; plus an overall ``deadline`` (seconds) covering every attempt and
    sleep, and a cap on how long a 429's ``Retry-After`` may make us wait.
    """

    max_retries: int = attrs.field(default=2, validator=_non_negative)
    backoff_base: float = attrs.field(default=0.5, validator=_positive)
    backoff_cap: float = attrs.field(default=5.0, validator=_positive)
    deadline: float = attrs.field(default=30.0, validator=_positive)
    retry_after_cap: float = attrs.field(default=10.0, validator=_non_negative)
    #: Retry a 429 answer to a non-idempotent call, i.e. trust that the provider rejects
    #: rate-limited requests before processing them. Off unless shown true for a provider.
    retry_rate_limited_non_idempotent: bool = False

    def backoff(self, retry_number: int, random: Callable[[], float]) -> float:
        """Seconds to sleep before retry ``retry_number`` (1 for the first retry).

        ``d = min(backoff_cap, backoff_base · 2^(retry_number-1))``; the result is uniform in
        ``[d/2, d]``, drawn from ``random()`` in ``[0, 1)``.
        """
        if retry_number < 1:
            raise ValueError(f"retry_number starts at 1, got {retry_number!r}")
        # Cap the exponent too, so a huge retry number cannot overflow the float.
        exponent = min(retry_number - 1, 64)
        delay = min(self.backoff_cap, self.backoff_base * 2.0**exponent)
        fraction = min(max(random(), 0.0), 1.0)
        return delay * (0.5 + 0.5 * fraction)


class _HttpStatusFailure(ProviderTemporaryError):
    """A 5xx or 429 answer, raised inside the retry loop (and chained as the cause)."""

    def __init__(
        self, message: str, *, provider: str, status_code: int, retry_after: float | None
    ) -> None:
        super().__init__(message, provider=provider)
        self.status_code = status_code
        self.retry_after = retry_after


@attrs.define
class _Call:
    """State of one logical call, shared by the attempt, wait, stop and retry functions."""

    request: HttpRequest
    parse: Callable[[HttpResponse], Any]
    merchant_reference: str
    started: float
    attempts: int = 0
    # Only NeverSent so far (or, when the policy allows it, 429 to a non-idempotent call).
    nothing_received: bool = True
    delays: dict[int, float] = attrs.field(factory=dict)
    #: The first attempt's failure, made outside the retry loop, for the loop to start from.
    first_failure: Exception | None = None


#: Transport errors that end a call at once, whatever the request.
_FINAL = (TLSVerificationError, OutcomeUnknown, ProviderUnavailable)


def _retry_after_seconds(value: str) -> float | None:
    """Parse ``Retry-After``: delta-seconds or an HTTP date. ``None`` if absent or invalid."""
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds or seconds < 0:  # NaN or in the past
        return None
    return seconds


def _describe(exc: BaseException | None) -> str:
    """An error's class, or ``HTTP <status>`` for a status failure: safe to log."""
    if isinstance(exc, _HttpStatusFailure):
        return f"HTTP {exc.status_code}"
    return type(exc).__name__


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


class _StopAtDeadline(stop_base):
    """Stop when the coming sleep would end at or past the call's deadline."""

    def __init__(self, client: ProviderClient) -> None:
        self._client = client

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return self._client._past_deadline(retry_state)


class ProviderClient:
    """Sends a provider request through a :class:`~gateway_core.Transport` under a
    :class:`RetryPolicy`, and turns the answer into a value with ``parse``.

    ``sleep``, ``clock`` (monotonic seconds) and ``random`` (uniform in ``[0, 1)``) are
    injectable so tests can run the whole policy without waiting. One client may be shared by
    threads; :attr:`attempts_made` then describes whichever call finished last.
    """

    @classmethod
    def over_http(
        cls,
        *,
        provider: str,
        connect_timeout: float,
        read_timeout: float,
        max_retries: int,
        deadline: float,
        transport: Transport | None = None,
    ) -> ProviderClient:
        """The usual client of a plugin: ``transport`` (default: a pooled
        :class:`~gateway_core.RequestsTransport` with these timeouts) under a
        :class:`RetryPolicy` of ``max_retries`` and ``deadline`` seconds."""
        if transport is None:
            from gateway_core._requests_transport import RequestsTransport

            transport = RequestsTransport(
                connect_timeout=connect_timeout, read_timeout=read_timeout
            )
        policy = RetryPolicy(max_retries=max_retries, deadline=deadline)
        return cls(transport, policy, provider=provider)

    def __init__(
        self,
        transport: Transport,
        policy: RetryPolicy = RetryPolicy(),
        *,
        provider: str = "",
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self.transport = transport
        self.policy = policy
        self.provider = provider
        self._clock = clock
        self._random = random
        #: Attempts made by the last call that finished (for tests and metrics).
        self.attempts_made = 0
        # The one retry loop. Per-call state travels as the attempt's first argument.
        self._retrying = tenacity.Retrying(
            retry=self._should_retry,
            stop=tenacity.stop_after_attempt(policy.max_retries + 1) | _StopAtDeadline(self),
            wait=self._wait,
            sleep=sleep,
            reraise=True,
            before_sleep=self._log_retry,
        )

    def __repr__(self) -> str:
        return f"ProviderClient(provider={self.provider!r}, policy={self.policy!r})"

    def __enter__(self) -> ProviderClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the transport's pooled connections."""
        self.transport.close()

    def call(
        self,
        request: HttpRequest,
        parse: Callable[[HttpResponse], T],
        *,
        merchant_reference: str = "",
    ) -> T:
        """Send ``request`` (retrying as the policy allows) and return ``parse(response)``.

        ``parse`` receives every answer with a status below 500 other than 429; it raises a
        :class:`~gateway_core.ProviderError` subclass for refusals and
        :class:`~gateway_core.MalformedResponse` for answers it cannot read.
        """
        call = _Call(request, parse, merchant_reference, started=self._clock())
        if not _OBSERVERS:
            return cast(T, self._call(call))
        started, failure = time.perf_counter(), None
        try:
            return cast(T, self._call(call))
        except BaseException as exc:
            failure = exc
            raise
        finally:
            seconds = time.perf_counter() - started
            operation = request.operation or request.method
            outcome = call_outcome(failure)
            retries = max(call.attempts - 1, 0)
            for observer in list(_OBSERVERS):
                try:
                    observer.provider_call(self.provider, operation, outcome, seconds, retries)
                except Exception as exc:  # counting must never fail a provider call
                    _log.debug("call observer failed: %s", type(exc).__name__)

    def _call(self, call: _Call) -> Any:
        """:meth:`call` without its observers."""
        try:
            # The first attempt runs outside the retry machinery, which costs nothing then;
            # only a retryable failure enters the loop, which starts from that failure.
            try:
                return self._attempt(call)
            except Exception as exc:
                if not self._retryable(call, exc):
                    raise
                call.first_failure = exc
            return self._retrying(self._attempt_or_first_failure, call)
        except Exception as exc:
            if not self._retryable(call, exc):
                raise  # final at its first occurrence: surfaced as-is
            # Retryable, so the attempts or the deadline ran out.
            if call.nothing_received and isinstance(exc, TransportError):
                raise self._gave_up(NeverSent, call) from exc
            error = self._gave_up(ProviderUnavailable, call)
            if call.nothing_received:
                # Only 429s the policy declares were rejected before processing, and NeverSent.
                error.may_have_been_received = False
            raise error from exc
        finally:
            self.attempts_made = call.attempts

    # -- one attempt ----------------------------------------------------------------------

    def _attempt_or_first_failure(self, call: _Call) -> Any:
        """Attempt 1 of the retry loop is the one already made: its failure, raised again."""
        failure = call.first_failure
        if failure is not None:
            call.first_failure = None
            raise failure
        return self._attempt(call)

    def _attempt(self, call: _Call) -> Any:
        request = call.request
        call.attempts += 1
        remaining = self.policy.deadline - (self._clock() - call.started)
        if remaining <= 0:
            raise NeverSent(
                f"{self._name(request)}: deadline reached before attempt {call.attempts}",
                provider=self.provider,
                merchant_reference=call.merchant_reference,
            )
        try:
            response = self.transport.send(request, timeout=remaining)
        except TransportError as exc:
            if isinstance(exc, _FINAL) or not exc.may_have_been_received:
                raise
            call.nothing_received = False
            if request.idempotent:
                raise
            raise self._outcome_unknown(call, type(exc).__name__) from exc

        status = response.status_code
        if status == 429:
            failure = _HttpStatusFailure(
                f"{self._name(request)}: provider answered HTTP 429 (rate limited)",
                provider=self.provider,
                status_code=status,
                retry_after=_retry_after_seconds(response.header("Retry-After")),
            )
            if not request.idempotent and self.policy.retry_rate_limited_non_idempotent:
                raise failure  # declared as rejected before processing: like NeverSent
            call.nothing_received = False
            if request.idempotent:
                raise failure
            raise self._outcome_unknown(call, "HTTP 429") from failure
        if status >= 500:
            call.nothing_received = False
            failure = _HttpStatusFailure(
                f"{self._name(request)}: provider answered HTTP {status}",
                provider=self.provider,
                status_code=status,
                retry_after=None,
            )
            if request.idempotent:
                raise failure
            raise self._outcome_unknown(call, f"HTTP {status}") from failure

        call.nothing_received = False
        try:
            return call.parse(response)
        except MalformedResponse as exc:
            if request.idempotent:
                raise
            raise self._outcome_unknown(call, type(exc).__name__) from exc

    # -- tenacity hooks -------------------------------------------------------------------

    @staticmethod
    def _call_of(retry_state: tenacity.RetryCallState) -> _Call:
        return cast(_Call, retry_state.args[0])

    def _retryable(self, call: _Call, exc: BaseException) -> bool:
        idempotent = call.request.idempotent
        if isinstance(exc, _FINAL):
            return False
        if isinstance(exc, TransportError):
            return idempotent or not exc.may_have_been_received
        if isinstance(exc, _HttpStatusFailure) and exc.status_code == 429:
            return idempotent or self.policy.retry_rate_limited_non_idempotent
        if isinstance(exc, MalformedResponse | ProviderTemporaryError):
            return idempotent
        return False

    def _should_retry(self, retry_state: tenacity.RetryCallState) -> bool:
        outcome = retry_state.outcome
        if outcome is None or not outcome.failed:
            return False
        exc = outcome.exception()
        return exc is not None and self._retryable(self._call_of(retry_state), exc)

    def _wait(self, retry_state: tenacity.RetryCallState) -> float:
        call = self._call_of(retry_state)
        number = retry_state.attempt_number  # the failed attempt; the retry is this number
        if number not in call.delays:
            delay = self.policy.backoff(number, self._random)
            exc = retry_state.outcome.exception() if retry_state.outcome else None
            if isinstance(exc, _HttpStatusFailure) and exc.retry_after is not None:
                delay = min(exc.retry_after, self.policy.retry_after_cap)
            call.delays[number] = delay
        return call.delays[number]

    def _past_deadline(self, retry_state: tenacity.RetryCallState) -> bool:
        call = self._call_of(retry_state)
        elapsed = self._clock() - call.started
        return elapsed + self._wait(retry_state) >= self.policy.deadline

    def _log_retry(self, retry_state: tenacity.RetryCallState) -> None:
        call = self._call_of(retry_state)
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        _log.warning(
            "retrying %s after attempt %d failed with %s; sleeping %.3f s",
            call.request.operation or call.request.method,
            retry_state.attempt_number,
            _describe(exc),
            self._wait(retry_state),
        )

    # -- errors ---------------------------------------------------------------------------

    @staticmethod
    def _name(request: HttpRequest) -> str:
        host = _host(request.url)
        operation = request.operation or request.method
        return f"{operation} to {host}" if host else operation

    def _outcome_unknown(self, call: _Call, what: str) -> OutcomeUnknown:
        name = self._name(call.request)
        _log.warning(
            "outcome of %s unknown after %s; not retried (not idempotent)",
            call.request.operation or call.request.method,
            what,
        )
        return OutcomeUnknown(
            f"{name}: outcome unknown after {what}; the request may have been processed and "
            "was not retried because it is not idempotent",
            provider=self.provider,
            merchant_reference=call.merchant_reference,
        )

    def _gave_up(self, kind: type[TransportError], call: _Call) -> TransportError:
        return kind(
            f"{self._name(call.request)}: gave up after {call.attempts} attempt(s) "
            f"within {self._clock() - call.started:.2f} s of a {self.policy.deadline:g} s deadline",
            provider=self.provider,
            merchant_reference=call.merchant_reference,
        )
