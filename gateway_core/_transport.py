"""The transport seam: one method, ``send(request) -> response``.

A :class:`Transport` makes exactly one attempt and classifies its own failures:
:class:`~gateway_core.NeverSent` when the request provably never left (connection refused,
connect timeout), :class:`~gateway_core.TLSVerificationError` for an untrusted certificate,
and a plain :class:`~gateway_core.TransportError` (``may_have_been_received = True``) when the
request may have reached the provider (read timeout, reset after sending, truncated reply).
Retries, backoff and the overall deadline live one level up, in
:class:`gateway_core.ProviderClient`, so every transport gets the same policy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Protocol, runtime_checkable

import attrs

from gateway_core._redact import mask_url


@attrs.frozen
class HttpRequest:
    """One outbound HTTP request. ``operation`` names it in logs (``create``, ``inquire``).

    ``idempotent`` declares whether repeating the request after it may have reached the
    provider is safe; only then is it retried after a read timeout, a reset or a 5xx.
    """

    method: str
    url: str = attrs.field(repr=mask_url)
    body: bytes = attrs.field(default=b"", repr=False)
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    operation: str = ""
    idempotent: bool = False


@attrs.frozen
class HttpResponse:
    """One HTTP response, body fully read."""

    status_code: int
    body: bytes = attrs.field(default=b"", repr=False)
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)

    def header(self, name: str, default: str = "") -> str:
        """Case-insensitive header lookup."""
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return default


@runtime_checkable
class Transport(Protocol):
    """Sends one request and returns the response, or raises a TransportError."""

    def send(self, request: HttpRequest, *, timeout: float | None = None) -> HttpResponse:
        """Make one attempt. ``timeout`` caps the whole attempt in seconds (the caller's
        remaining deadline); the transport's own connect/read timeouts still apply."""
        ...

    def close(self) -> None:
        """Release pooled connections."""
        ...


Handler = Callable[[HttpRequest], HttpResponse]


class MockTransport:
    """A transport that calls ``handler(request)`` instead of the network: for unit tests of
    message building only. Every request is kept in :attr:`requests`.

    The handler may raise a :class:`~gateway_core.TransportError` to simulate a failure.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._lock = threading.Lock()
        self.requests: list[HttpRequest] = []

    def send(self, request: HttpRequest, *, timeout: float | None = None) -> HttpResponse:
        with self._lock:
            self.requests.append(request)
        return self._handler(request)

    def close(self) -> None:
        return None
