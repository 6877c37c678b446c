"""Specifications for RequestsTransport + ProviderClient against a real loopback server.

The server is a small threaded socket server (``http.server`` cannot reset a connection
mid-exchange). Each request consumes the next scripted action; with nothing scripted it answers
200. Sleeps between retries are faked; everything else (sockets, timeouts, clock) is real.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway_core import (
    ConfigurationError,
    HttpRequest,
    HttpResponse,
    MalformedResponse,
    NeverSent,
    OutcomeUnknown,
    ProviderClient,
    ProviderUnavailable,
    RequestsTransport,
    RetryPolicy,
    TLSVerificationError,
    TransportError,
)

OK_BODY = b'{"status": "ok"}'
SECRET_QUERY = "signature=0123456789abcdef0123456789abcdef"


# -- the loopback server ------------------------------------------------------------------


class LoopbackServer:
    """Scripted HTTP/1.1 keep-alive server on 127.0.0.1:0.

    Actions (tuples), consumed one per request (``rst_on_accept``: one per connection):

    * ``("respond", status, body, headers)`` answer and keep the connection open;
    * ``("raw", data)`` write ``data`` and close;
    * ``("rst_on_accept",)`` reset the next connection before reading anything;
    * ``("rst_after_read",)`` read the whole request, then reset;
    * ``("stall", seconds)`` read the request, say nothing for ``seconds``, close;
    * ``("drip", interval, length)`` promise ``length`` bytes, send one per ``interval``;
    * ``("late_head", delay, seconds)`` send the head after ``delay``, then stall ``seconds``;
    * ``("trickle_head", interval)`` send an endless header one byte per ``interval`` (6 s cap).
    """

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._tls = tls
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self.script: deque[tuple[Any, ...]] = deque()
        self.accepts = 0
        self.bodies: list[bytes] = []
        self.heads: list[bytes] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def url(self, path: str = "/pay") -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}?{SECRET_QUERY}"

    def then(self, *actions: tuple[Any, ...]) -> None:
        self.script.extend(actions)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._listener.close()
        for thread in self._threads:
            thread.join(2)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.accepts += 1
                reset = bool(self.script) and self.script[0][0] == "rst_on_accept"
                if reset:
                    self.script.popleft()
            if reset:
                _reset(conn)
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self._tls is not None:
                conn.settimeout(2)
                try:
                    conn = self._tls.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):
                    return  # the client refused our certificate
            conn.settimeout(0.1)
            buffer = b""
            while not self._stop.is_set():
                request = self._read_request(conn, buffer)
                if request is None:
                    return
                head, body, buffer = request
                with self._lock:
                    self.heads.append(head)
                    self.bodies.append(body)
                    action = self.script.popleft() if self.script else ("respond", 200, OK_BODY, {})
                if not self._act(conn, action):
                    return
        except OSError:
            return
        finally:
            conn.close()

    def _read_request(
        self, conn: socket.socket, buffer: bytes
    ) -> tuple[bytes, bytes, bytes] | None:
        while b"\r\n\r\n" not in buffer:
            chunk = self._recv(conn)
            if not chunk:
                return None
            buffer += chunk
        head, _, rest = buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            chunk = self._recv(conn)
            if not chunk:
                return None
            rest += chunk
        return head, rest[:length], rest[length:]

    def _recv(self, conn: socket.socket) -> bytes:
        while not self._stop.is_set():
            try:
                return conn.recv(65536)
            except TimeoutError:
                continue
        return b""

    def _act(self, conn: socket.socket, action: tuple[Any, ...]) -> bool:
        """Perform one action; False closes the connection."""
        kind = action[0]
        if kind == "respond":
            _, code, body, headers = action
            lines = [f"HTTP/1.1 {code} X", f"Content-Length: {len(body)}"]
            lines += [f"{k}: {v}" for k, v in headers.items()]
            conn.sendall("\r\n".join(lines).encode() + b"\r\n\r\n" + body)
            return True
        if kind == "raw":
            conn.sendall(action[1])
            return False
        if kind == "rst_after_read":
            _reset(conn)
            return False
        if kind == "stall":
            self._stop.wait(action[1])
            return False
        if kind == "drip":
            _, interval, length = action
            conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n".encode())
            for _ in range(length):
                if self._stop.wait(interval):
                    break
                conn.sendall(b"x")
            return False
        if kind == "late_head":
            _, delay, seconds = action
            if not self._stop.wait(delay):
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
                self._stop.wait(seconds)
            return False
        if kind == "trickle_head":
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            for _ in range(int(6 / action[1])):
                if self._stop.wait(action[1]):
                    break
                conn.sendall(b"a")
            return False
        raise AssertionError(f"unknown action {action!r}")


def _reset(conn: socket.socket) -> None:
    """Close with RST instead of FIN."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    running = LoopbackServer()
    yield running
    running.close()


# -- helpers ------------------------------------------------------------------------------


def parse(response: HttpResponse) -> dict[str, Any]:
    try:
        data = json.loads(response.body)
    except ValueError:
        raise MalformedResponse("not JSON") from None
    if not isinstance(data, dict):
        raise MalformedResponse("not an object")
    return data


def post(url: str, *, idempotent: bool) -> HttpRequest:
    return HttpRequest(
        "POST",
        url,
        body=b'{"bill_no": "B1"}',
        headers={"Content-Type": "application/json"},
        operation="inquire" if idempotent else "create",
        idempotent=idempotent,
    )


def make_client(
    *, read_timeout: float = 2.0, deadline: float = 10.0, max_retries: int = 2, **options: Any
) -> tuple[ProviderClient, list[float]]:
    sleeps: list[float] = []
    transport = RequestsTransport(connect_timeout=1.0, read_timeout=read_timeout, **options)
    made = ProviderClient(
        transport,
        RetryPolicy(max_retries=max_retries, deadline=deadline),
        provider="acme",
        sleep=sleeps.append,
    )
    return made, sleeps


@pytest.fixture
def client() -> Iterator[ProviderClient]:
    made, _ = make_client()
    yield made
    made.close()


def free_port() -> int:
    """A port nothing listens on: bind, read the port, close."""
    probe = socket.create_server(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()
    return port


# -- connection refused -------------------------------------------------------------------


def test_connection_refused_is_never_sent_and_retried_for_a_non_idempotent_call() -> None:
    made, sleeps = make_client()
    with made, pytest.raises(NeverSent) as info:
        made.call(post(f"http://127.0.0.1:{free_port()}/pay", idempotent=False), parse)
    assert made.attempts_made == 3
    assert len(sleeps) == 2
    assert info.value.may_have_been_received is False


def test_a_refused_attempt_then_a_listening_server_succeeds(server: LoopbackServer) -> None:
    """The transport itself classifies refusal; the next attempt goes through."""
    transport = RequestsTransport(connect_timeout=1.0, read_timeout=2.0)
    with pytest.raises(NeverSent):
        transport.send(post(f"http://127.0.0.1:{free_port()}/pay", idempotent=False))
    response = transport.send(post(server.url(), idempotent=False))
    transport.close()
    assert response.status_code == 200
    assert response.body == OK_BODY


# -- resets -------------------------------------------------------------------------------


def test_reset_before_the_request_is_read_is_outcome_unknown_for_a_non_idempotent_call(
    server: LoopbackServer, client: ProviderClient
) -> None:
    """Usually the RST arrives after the request was written: requests cannot tell whether it
    was read, so the call is OutcomeUnknown after one attempt. On a loaded machine the RST can
    beat the connection's set-up (urllib3 reports a failed new connection): then it provably
    never left, and the retry is right. Either way the server never reads two requests."""
    server.then(("rst_on_accept",))
    try:
        result = client.call(post(server.url(), idempotent=False), parse)
    except OutcomeUnknown:
        assert client.attempts_made == 1
        assert server.accepts == 1
    else:
        assert result == {"status": "ok"}
        assert client.attempts_made == 2
    assert len(server.bodies) <= 1


def test_reset_before_the_request_is_read_is_retried_for_an_idempotent_call(
    server: LoopbackServer, client: ProviderClient
) -> None:
    server.then(("rst_on_accept",))
    assert client.call(post(server.url(), idempotent=True), parse) == {"status": "ok"}
    assert client.attempts_made == 2
    assert server.accepts == 2


def test_reset_after_the_request_was_read_is_outcome_unknown_with_exactly_one_request(
    server: LoopbackServer, client: ProviderClient
) -> None:
    server.then(("rst_after_read",))
    with pytest.raises(OutcomeUnknown) as info:
        client.call(post(server.url(), idempotent=False), parse, merchant_reference="B1")
    assert server.bodies == [b'{"bill_no": "B1"}']
    assert client.attempts_made == 1
    assert info.value.merchant_reference == "B1"


def test_reset_after_the_request_was_read_is_retried_for_an_idempotent_call(
    server: LoopbackServer, client: ProviderClient
) -> None:
    server.then(("rst_after_read",))
    assert client.call(post(server.url(), idempotent=True), parse) == {"status": "ok"}
    assert len(server.bodies) == 2


def test_incomplete_body_is_outcome_unknown_for_a_non_idempotent_call(
    server: LoopbackServer, client: ProviderClient
) -> None:
    server.then(("raw", b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"status"'))
    with pytest.raises(OutcomeUnknown):
        client.call(post(server.url(), idempotent=False), parse)
    assert len(server.bodies) == 1


# -- timeouts and the deadline ------------------------------------------------------------


def test_read_stall_longer_than_the_read_timeout_is_outcome_unknown(
    server: LoopbackServer,
) -> None:
    server.then(("stall", 3.0))
    made, _ = make_client(read_timeout=0.3)
    started = time.monotonic()
    with made, pytest.raises(OutcomeUnknown) as info:
        made.call(post(server.url(), idempotent=False), parse)
    assert time.monotonic() - started < 1.5
    assert len(server.bodies) == 1
    assert isinstance(info.value.__cause__, TransportError)
    assert "read timeout" in info.value.__cause__.message


def test_slow_drip_reply_is_cut_off_by_the_overall_deadline(server: LoopbackServer) -> None:
    """Each byte arrives well inside the read timeout; only the deadline can stop it."""
    server.then(("drip", 0.2, 100))
    made, _ = make_client(read_timeout=1.0, deadline=1.5)
    started = time.monotonic()
    with made, pytest.raises(OutcomeUnknown):
        made.call(post(server.url(), idempotent=False), parse)
    elapsed = time.monotonic() - started
    assert 1.2 < elapsed < 1.5 + 0.4
    assert len(server.bodies) == 1


def test_slow_drip_for_an_idempotent_call_gives_up_within_the_deadline(
    server: LoopbackServer,
) -> None:
    server.then(("drip", 0.2, 100))
    made, sleeps = make_client(read_timeout=1.0, deadline=1.5)
    started = time.monotonic()
    with made, pytest.raises(ProviderUnavailable):
        made.call(post(server.url(), idempotent=True), parse)
    assert time.monotonic() - started < 1.5 + 0.4
    assert sleeps == []


def test_a_body_stall_after_a_late_head_ends_at_the_deadline_not_a_read_timeout_later(
    server: LoopbackServer,
) -> None:
    """The socket timeout shrinks to what is left of the deadline while the body is read."""
    server.then(("late_head", 0.4, 3.0))
    made, _ = make_client(read_timeout=2.0, deadline=0.8)
    started = time.monotonic()
    with made, pytest.raises(OutcomeUnknown):
        made.call(post(server.url(), idempotent=False), parse)
    assert time.monotonic() - started < 0.8 + 0.25


def test_a_header_trickle_ends_at_the_deadline_as_outcome_unknown(server: LoopbackServer) -> None:
    """Issue 9 item 5: each header byte comes well inside the read timeout; the deadline
    still ends the call, and a create that may have arrived is not sent again."""
    server.then(("trickle_head", 0.2))
    made, _ = make_client(read_timeout=20.0, deadline=1.5)
    started = time.monotonic()
    with made, pytest.raises(OutcomeUnknown):
        made.call(post(server.url(), idempotent=False), parse)
    assert 1.5 * 0.9 <= time.monotonic() - started <= 1.5 * 1.1
    assert len(server.bodies) == 1


def test_send_bounds_a_header_trickle_by_its_timeout_and_the_pool_recovers(
    server: LoopbackServer,
) -> None:
    server.then(("trickle_head", 0.2))
    transport = RequestsTransport(connect_timeout=1.0, read_timeout=20.0)
    started = time.monotonic()
    with pytest.raises(TransportError) as info:
        transport.send(post(server.url(), idempotent=True), timeout=1.0)
    assert time.monotonic() - started <= 1.0 * 1.1
    assert info.value.may_have_been_received is True
    assert "within the deadline" in info.value.message
    assert transport.send(post(server.url(), idempotent=True), timeout=1.0).body == OK_BODY
    transport.close()


# -- pooling, limits, redirects, headers --------------------------------------------------


def test_sequential_calls_reuse_one_pooled_connection(
    server: LoopbackServer, client: ProviderClient
) -> None:
    for _ in range(20):
        assert client.call(post(server.url(), idempotent=False), parse) == {"status": "ok"}
    assert len(server.bodies) == 20
    assert server.accepts == 1


def test_a_reply_larger_than_max_response_bytes_is_refused(server: LoopbackServer) -> None:
    server.then(("respond", 200, b"x" * 2000, {}))
    transport = RequestsTransport(read_timeout=2.0, max_response_bytes=1000)
    with pytest.raises(TransportError, match="1000-byte limit") as info:
        transport.send(post(server.url(), idempotent=False))
    transport.close()
    assert info.value.may_have_been_received is True


def test_a_reply_without_length_is_also_held_to_max_response_bytes(
    server: LoopbackServer,
) -> None:
    server.then(("raw", b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"x" * 5000))
    transport = RequestsTransport(read_timeout=2.0, max_response_bytes=1000)
    with pytest.raises(TransportError, match="1000-byte limit"):
        transport.send(post(server.url(), idempotent=False))
    transport.close()


def test_a_gzip_reply_is_decoded(server: LoopbackServer, client: ProviderClient) -> None:
    server.then(("respond", 200, gzip.compress(OK_BODY), {"Content-Encoding": "gzip"}))
    assert client.call(post(server.url(), idempotent=True), parse) == {"status": "ok"}


def test_redirects_are_not_followed(server: LoopbackServer, client: ProviderClient) -> None:
    server.then(("respond", 307, b"", {"Location": server.url("/elsewhere")}))
    seen = client.call(post(server.url(), idempotent=False), lambda r: r.status_code)
    assert seen == 307
    assert len(server.bodies) == 1


def test_method_body_headers_and_user_agent_reach_the_server(
    server: LoopbackServer,
) -> None:
    transport = RequestsTransport(user_agent="shop/1.0")
    transport.send(post(server.url(), idempotent=False))
    transport.close()
    [head] = server.heads
    assert head.startswith(b"POST /pay?signature=")
    assert b"User-Agent: shop/1.0" in head
    assert b"Content-Type: application/json" in head
    assert server.bodies == [b'{"bill_no": "B1"}']


def test_errors_name_operation_and_host_but_not_the_query(server: LoopbackServer) -> None:
    server.then(("rst_after_read",))
    transport = RequestsTransport()
    with pytest.raises(TransportError) as info:
        transport.send(post(server.url(), idempotent=False))
    transport.close()
    text = str(info.value)
    assert "create to 127.0.0.1" in text
    assert "signature" not in text
    assert "bill_no" not in text


# -- configuration ------------------------------------------------------------------------


def test_verify_false_is_refused() -> None:
    with pytest.raises(ConfigurationError) as info:
        RequestsTransport(verify=False)
    assert info.value.key == "verify"


def test_verify_path_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        RequestsTransport(verify=str(tmp_path / "missing.pem"))


def test_verify_true_resolves_to_an_explicit_ca_bundle_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import certifi

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "other.pem"))
    assert RequestsTransport().verify == certifi.where()


def test_importing_gateway_core_does_not_import_requests() -> None:
    code = "import sys, gateway_core; print('requests' in sys.modules, 'urllib3' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert out.stdout.split() == ["False", "False"]


# -- TLS ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return str(cert), str(key)


@pytest.fixture
def tls_server(certificate: tuple[str, str]) -> Iterator[LoopbackServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    running = LoopbackServer(tls=context)
    yield running
    running.close()


def test_tls_with_the_servers_ca_file_succeeds(
    tls_server: LoopbackServer, certificate: tuple[str, str]
) -> None:
    made, _ = make_client(verify=certificate[0])
    with made:
        assert made.call(post(tls_server.url(), idempotent=False), parse) == {"status": "ok"}


@pytest.mark.parametrize("idempotent", [False, True])
def test_untrusted_certificate_raises_tls_verification_error_without_retry(
    tls_server: LoopbackServer, idempotent: bool
) -> None:
    made, sleeps = make_client()
    with made, pytest.raises(TLSVerificationError) as info:
        made.call(post(tls_server.url(), idempotent=idempotent), parse)
    assert made.attempts_made == 1
    assert sleeps == []
    assert tls_server.accepts == 1
    assert tls_server.bodies == []
    assert "signature" not in str(info.value)


def test_requests_ca_bundle_in_the_environment_does_not_override_verify(
    tls_server: LoopbackServer, certificate: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certificate[0])
    monkeypatch.setenv("CURL_CA_BUNDLE", certificate[0])
    made, _ = make_client()
    with made, pytest.raises(TLSVerificationError):
        made.call(post(tls_server.url(), idempotent=True), parse)
    assert made.attempts_made == 1
    assert tls_server.bodies == []


def test_the_environment_bundle_would_have_been_trusted(
    tls_server: LoopbackServer, certificate: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Control for the test above: plain requests with verify=True does use the variable."""
    import requests

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certificate[0])
    with requests.Session() as session:
        reply = session.post(tls_server.url(), data=b"{}", verify=True, timeout=2)
    assert reply.status_code == 200
    assert os.environ["REQUESTS_CA_BUNDLE"] == certificate[0]
