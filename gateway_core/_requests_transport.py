"""The production :class:`~gateway_core.Transport`, built on ``requests``.

One ``requests.Session`` per transport keeps connections pooled (keep-alive), which saves
most of a call's cost with TLS. ``send`` makes exactly one attempt: urllib3's own retries are
switched off so that the only retries are :class:`~gateway_core.ProviderClient`'s, and
redirects are not followed (a 307/308 would re-send a POST body).

``requests`` is imported when the first transport is built, so ``import gateway_core`` does not
pay for it.

TLS verification cannot be switched off. ``verify=True`` is resolved to certifi's CA bundle
*path*, and that path is passed on every call: ``requests`` lets ``REQUESTS_CA_BUNDLE`` and
``CURL_CA_BUNDLE`` replace a per-call ``verify`` of ``True`` or ``None`` (psf/requests#3829),
never an explicit path. The session keeps ``trust_env`` on so that ``HTTPS_PROXY`` /
``NO_PROXY`` still work; the other thing ``trust_env`` brings, credentials from ``~/.netrc``
replacing our ``Authorization`` header, is blocked by passing a do-nothing ``auth``.

Per call, ``requests.Session.request`` prepares the request from scratch (URL parsing, header
merging) and reads the proxy variables by walking the whole environment, about 160 µs
together. The transport prepares a request once per (method, URL, headers), then copies that
prepared request and sets the body; and, like ``httpx.Client``, it reads the proxy environment
once per (method, URL, headers) seen, on first use: a proxy variable changed later is seen by
a new transport. While the session holds a cookie, every request is prepared in full, so the
``Cookie`` header is always current.
"""

from __future__ import annotations

import os
import socket
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from gateway_core._deadline import Exchange, Watchdog, current_exchange
from gateway_core._exceptions import (
    ConfigurationError,
    NeverSent,
    TLSVerificationError,
    TransportError,
)
from gateway_core._redact import protect_third_party_loggers
from gateway_core._transport import HttpRequest, HttpResponse

if TYPE_CHECKING:
    import requests

__all__ = ["RequestsTransport"]

_CHUNK = 16_384

#: How many prepared requests a transport keeps for reuse (provider URLs are few; a URL that
#: embeds a reference makes a new one per call, so the cache is emptied when full).
_PREPARED_CACHE = 64


def _keep_request(request: Any) -> Any:
    """An ``auth`` that changes nothing; it stops ``requests`` reading ``~/.netrc``."""
    return request


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and everything it wraps: ``__cause__``/``__context__``, ``reason``, ``args``."""
    seen: list[BaseException] = []
    stack: list[BaseException] = [exc]
    while stack and len(seen) < 32:
        current = stack.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        nested: list[object] = [
            current.__cause__,
            current.__context__,
            getattr(current, "reason", None),
            *current.args,
        ]
        stack.extend(n for n in nested if isinstance(n, BaseException))
    return seen


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"


class RequestsTransport:
    """Sends requests through one pooled ``requests.Session``.

    ``connect_timeout`` and ``read_timeout`` bound each socket operation; the ``timeout`` given
    to :meth:`send` (the caller's remaining deadline) bounds the whole attempt by the wall
    clock: connect, TLS, sending, headers and body, even when they trickle in a byte at a time
    (see ``_requests_deadline``). Bodies over ``max_response_bytes`` are refused.
    ``verify`` is ``True`` (certifi's bundle) or the path of a CA file or directory;
    ``False`` raises :class:`~gateway_core.ConfigurationError`.
    """

    def __init__(
        self,
        *,
        connect_timeout: float = 3.05,
        read_timeout: float = 20.0,
        verify: bool | str = True,
        max_response_bytes: int = 1_048_576,
        pool_maxsize: int = 10,
        user_agent: str = "gateway-core/0.1",
    ) -> None:
        for key, number in (
            ("connect_timeout", connect_timeout),
            ("read_timeout", read_timeout),
            ("max_response_bytes", max_response_bytes),
            ("pool_maxsize", pool_maxsize),
        ):
            if not number > 0:
                raise ConfigurationError(f"{key} must be positive", key=key)
        self.connect_timeout = float(connect_timeout)
        self.read_timeout = float(read_timeout)
        self.max_response_bytes = max_response_bytes
        self.verify = self._resolve_verify(verify)

        import http.client

        import requests

        protect_third_party_loggers()
        import urllib3.exceptions
        from urllib3.util.retry import Retry

        from gateway_core._requests_deadline import DeadlineAdapter

        self._requests = requests
        # What reading the body can raise once the headers arrived: all "may have been
        # received" failures.
        self._broken_reply: tuple[type[Exception], ...] = (
            urllib3.exceptions.HTTPError,
            requests.exceptions.RequestException,
            http.client.HTTPException,
            OSError,
        )
        self._watchdog = Watchdog()
        adapter = DeadlineAdapter(
            pool_connections=4,
            pool_maxsize=pool_maxsize,
            # One attempt, always: no silent resend of a POST on a stale pooled connection.
            max_retries=Retry(total=0, connect=0, read=False, redirect=0, status=0),
        )
        session = requests.Session()
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers["User-Agent"] = user_agent
        self._session = session
        # (method, url, headers, has body) -> (prepared request, proxies): see the docstring.
        self._prepared: dict[
            tuple[str, str, tuple[tuple[str, str], ...], bool],
            tuple[requests.PreparedRequest, dict[str, str]],
        ] = {}

    @staticmethod
    def _resolve_verify(verify: bool | str) -> str:
        if verify is False:
            raise ConfigurationError(
                "TLS certificate verification cannot be turned off", key="verify"
            )
        if verify is True:
            import certifi

            return str(certifi.where())
        if not isinstance(verify, str) or not verify:
            raise ConfigurationError("verify must be True or the path of a CA bundle", key="verify")
        if not os.path.exists(verify):
            raise ConfigurationError(f"CA bundle {verify!r} does not exist", key="verify")
        return verify

    def __repr__(self) -> str:
        return (
            f"RequestsTransport(connect_timeout={self.connect_timeout}, "
            f"read_timeout={self.read_timeout}, verify={self.verify!r})"
        )

    def close(self) -> None:
        """Close every pooled connection."""
        self._session.close()
        self._watchdog.stop()

    def send(self, request: HttpRequest, *, timeout: float | None = None) -> HttpResponse:
        """Make one attempt; see :class:`~gateway_core.Transport` for the failure classes."""
        started = time.monotonic()
        budget = self.read_timeout if timeout is None else min(self.read_timeout, timeout)
        if budget <= 0:
            raise NeverSent(f"{self._what(request)}: no time left for the attempt")
        deadline = started + (timeout if timeout is not None else float("inf"))
        exchange = Exchange(deadline)
        if timeout is not None:
            self._watchdog.watch(exchange)
        try:
            return self._exchange(request, exchange, budget)
        finally:
            exchange.finish()

    def _exchange(self, request: HttpRequest, exchange: Exchange, budget: float) -> HttpResponse:
        exceptions = self._requests.exceptions
        token = current_exchange.set(exchange)
        try:
            prepared, proxies = self._prepare(request)
            response = self._session.send(
                prepared,
                timeout=(min(self.connect_timeout, budget), budget),
                verify=self.verify,
                cert=None,
                proxies=proxies,
                stream=True,
                allow_redirects=False,
            )
        except exceptions.RequestException as exc:
            raise self._classify(request, exc, exchange) from exc
        finally:
            current_exchange.reset(token)
        try:
            body = self._read_body(request, response, exchange.deadline)
        except TransportError:
            response.close()
            raise
        except self._broken_reply as exc:
            response.close()
            raise self._late(request, exchange) or TransportError(
                f"{self._what(request)}: reply broken off ({type(exc).__name__})"
            ) from exc
        if exchange.finish():  # the watchdog may have cut a reply that ends at EOF short
            raise self._late(request, exchange) or TransportError(self._what(request))
        return HttpResponse(
            status_code=response.status_code, body=body, headers=dict(response.headers)
        )

    def _prepare(self, request: HttpRequest) -> tuple[requests.PreparedRequest, dict[str, str]]:
        """The prepared request and the proxies to send it through; what
        ``Session.request`` would build, reused across calls where it cannot differ."""
        session = self._session
        body = request.body or None
        headers = dict(request.headers)
        if session.cookies or not isinstance(body, bytes | None):
            return self._prepare_in_full(request.method, request.url, body, headers)
        key = (request.method, request.url, tuple(headers.items()), body is not None)
        cached = self._prepared.get(key)
        if cached is None:
            cached = self._prepare_in_full(request.method, request.url, body, headers)
            if len(self._prepared) >= _PREPARED_CACHE:
                self._prepared.clear()
            self._prepared[key] = cached
        template, proxies = cached
        prepared = template.copy()  # the template itself is never sent, so never changed
        if body is not None:
            prepared.body = body
            prepared.headers["Content-Length"] = str(len(body))
        return prepared, dict(proxies)

    def _prepare_in_full(
        self, method: str, url: str, body: object, headers: dict[str, str]
    ) -> tuple[requests.PreparedRequest, dict[str, str]]:
        session = self._session
        prepared = session.prepare_request(
            self._requests.Request(method, url, data=body, headers=headers, auth=_keep_request)
        )
        settings = session.merge_environment_settings(prepared.url, {}, True, self.verify, None)
        return prepared, dict(settings["proxies"])

    def _read_body(
        self, request: HttpRequest, response: requests.Response, deadline: float
    ) -> bytes:
        limit = self.max_response_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise TransportError(
                f"{self._what(request)}: reply of {declared} bytes exceeds the {limit}-byte limit"
            )
        raw = response.raw
        chunks: list[bytes] = []
        size = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TransportError(
                    f"{self._what(request)}: reply not complete within the deadline"
                )
            self._tighten_read_timeout(raw, min(self.read_timeout, remaining))
            chunk = raw.read1(_CHUNK, decode_content=True)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise TransportError(f"{self._what(request)}: reply exceeds the {limit}-byte limit")
            chunks.append(chunk)
        response.close()  # fully read: the connection goes back to the pool
        return b"".join(chunks)

    @staticmethod
    def _tighten_read_timeout(raw: Any, seconds: float) -> None:
        """Bound the next socket read by what is left of the deadline.

        urllib3 sets the socket timeout once per request; a slow-drip reply could otherwise run
        one whole read timeout past the deadline. urllib3 resets it when the connection is
        reused, so this lasts for this reply only.
        """
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        if isinstance(sock, socket.socket):
            sock.settimeout(max(seconds, 0.001))

    # -- failures -------------------------------------------------------------------------

    @staticmethod
    def _what(request: HttpRequest) -> str:
        operation = request.operation or request.method
        return f"{operation} to {_host(request.url)}"

    def _late(self, request: HttpRequest, exchange: Exchange) -> TransportError | None:
        """The error for an exchange the watchdog ended, by whether a byte was sent."""
        if not exchange.expired:
            return None
        if exchange.sent:
            return TransportError(f"{self._what(request)}: no complete reply within the deadline")
        return NeverSent(f"{self._what(request)}: deadline reached before sending")

    def _unsent(self, request: HttpRequest, exchange: Exchange, exc: Exception) -> NeverSent | None:
        """A failure on a connection that provably wrote no request byte (a TLS handshake that
        timed out or was reset), which urllib3 reports like a read timeout."""
        if not exchange.connected or exchange.sent:
            return None
        return NeverSent(f"{self._what(request)}: failed before sending ({type(exc).__name__})")

    def _classify(self, request: HttpRequest, exc: Exception, exchange: Exchange) -> Exception:
        """Map a ``requests`` failure to our tree, by what the provider may have seen."""
        import ssl

        import urllib3.exceptions

        exceptions = self._requests.exceptions
        what = self._what(request)
        causes = _causes(exc)
        if any(isinstance(c, ssl.SSLCertVerificationError | ssl.CertificateError) for c in causes):
            return TLSVerificationError(f"{what}: TLS certificate not trusted")
        if isinstance(
            exc,
            exceptions.InvalidURL
            | exceptions.MissingSchema
            | exceptions.InvalidSchema
            | exceptions.InvalidHeader,
        ):
            return ConfigurationError(f"{what}: invalid request ({type(exc).__name__})")
        known = self._late(request, exchange) or self._unsent(request, exchange, exc)
        if known is not None:
            return known
        if isinstance(exc, exceptions.ConnectTimeout):
            return NeverSent(f"{what}: connect timeout")
        if any(
            isinstance(c, urllib3.exceptions.NewConnectionError | ConnectionRefusedError)
            for c in causes
        ):
            return NeverSent(f"{what}: connection failed before sending")
        if isinstance(exc, exceptions.SSLError):
            # Not a certificate problem: a TLS failure that may come after the request was
            # written (an unclean close while we wait for the reply), so it may have arrived.
            return TransportError(f"{what}: TLS connection failed (SSLError)")
        if isinstance(exc, exceptions.ReadTimeout):
            return TransportError(f"{what}: read timeout")
        return TransportError(f"{what}: connection broken ({type(exc).__name__})")
