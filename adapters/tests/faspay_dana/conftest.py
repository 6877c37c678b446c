"""Fixtures for the Faspay DANA plugin's tests: a configured gateway over a scripted fake
Faspay (a MockTransport), with the clock pinned to the DANA example's date; and
``channel_stack``, the whole stack for channel tests (``channel_stack_support``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar

import pytest
from channel_stack_support import ChannelStack

from gateway_core import HttpRequest, HttpResponse, MockTransport
from gateway_faspay_dana import JAKARTA, FaspayConfig, FaspayDanaGateway

T = TypeVar("T")

#: "Now" in every test: shortly before the DANA example's bill_date (2020-12-19 06:04:29).
NOW = datetime(2020, 12, 19, 6, 0, 0, tzinfo=JAKARTA)
PASSWORD = "p@ssw0rd"


class FakeFaspay:
    """Answers each request with the next scripted answer; records every request."""

    def __init__(self) -> None:
        self._answers: list[HttpResponse] = []
        self.transport = MockTransport(self._handle)

    def answer(
        self, payload: object = None, *, status: int = 200, body: bytes | None = None
    ) -> None:
        raw = body if body is not None else json.dumps(payload).encode()
        self._answers.append(HttpResponse(status, raw, {"Content-Type": "application/json"}))

    def _handle(self, request: HttpRequest) -> HttpResponse:
        if not self._answers:
            raise AssertionError(f"unexpected request: {request.operation}")
        return self._answers.pop(0)

    @property
    def requests(self) -> list[HttpRequest]:
        return self.transport.requests

    def sent(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].body)


class DirectClient:
    """One attempt, no retries: isolates message building from the retry policy."""

    def __init__(self, transport: MockTransport) -> None:
        self.transport = transport

    def call(
        self,
        request: HttpRequest,
        parse: Callable[[HttpResponse], T],
        *,
        merchant_reference: str = "",
    ) -> T:
        return parse(self.transport.send(request))

    def close(self) -> None:
        self.transport.close()


@pytest.fixture
def config() -> FaspayConfig:
    return FaspayConfig(merchant_id="99999", merchant_name="Sophia Store", password=PASSWORD)


@pytest.fixture
def faspay() -> FakeFaspay:
    return FakeFaspay()


@pytest.fixture
def gateway(config: FaspayConfig, faspay: FakeFaspay) -> FaspayDanaGateway:
    return FaspayDanaGateway(config, client=DirectClient(faspay.transport), clock=lambda: NOW)


@pytest.fixture
def make_gateway(faspay: FakeFaspay) -> Callable[..., FaspayDanaGateway]:
    """A gateway for other settings: ``make_gateway(merchant_id="31835", ...)``."""

    def make(**settings: Any) -> FaspayDanaGateway:
        values = {"merchant_id": "99999", "merchant_name": "Sophia Store", "password": PASSWORD}
        values.update(settings)
        return FaspayDanaGateway(
            FaspayConfig(**values), client=DirectClient(faspay.transport), clock=lambda: NOW
        )

    return make


@pytest.fixture
def channel_stack(any_store: Any) -> Iterator[ChannelStack]:
    """The whole stack for channel tests (see ``channel_stack_support``) on each ledger
    backend, the gateway offering ``DEFAULT_METHODS``."""
    stack = ChannelStack(any_store.url)
    try:
        yield stack
    finally:
        stack.close()
