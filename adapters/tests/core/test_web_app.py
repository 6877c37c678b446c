"""The framework-neutral WSGI app (gateway_core.web), served by a real server on loopback.

Every test runs waitress in a thread and talks to it with ``requests``: the Acme Pay example
plugin is the provider, a SQLite file is the ledger, and a second small server plays the Acme
API for the inquiries a customer's return triggers.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs, urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import requests
from plugin_distributions import EXAMPLE_PLUGIN_DIR
from test_web_support import (
    ACK_FAILED,
    ACK_OK,
    GATEWAY,
    JSON,
    ORDER,
    REFERENCE,
    SECRET,
    LedgerState,
    acme_notification,
    acme_runtime,
    insert_pending_payment,
    serve,
    sign,
    signed_headers,
    signed_return,
)

from gateway_core import EventKind, PaymentStatus, Runtime
from gateway_core.ledger import PaymentRecord, open_ledger
from gateway_core.testing import HookRecorder
from gateway_core.web import make_wsgi_app

RETURN_PAGE = "https://shop.example/thanks"
REPO_ROOT = Path(__file__).resolve().parents[3]


class FakeAcmeApi:
    """``GET /payments/<id>`` answers the status Acme has for the payment."""

    def __init__(self) -> None:
        self.statuses = {"ac_1": "open"}
        self.inquiries: list[str] = []

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        payment_id = str(environ.get("PATH_INFO", "")).rsplit("/", 1)[-1]
        self.inquiries.append(payment_id)
        status = self.statuses.get(payment_id)
        if status is None:
            start_response("404 Not Found", [("Content-Type", JSON)])
            return [b"{}"]
        body = json.dumps({"id": payment_id, "reference": REFERENCE, "status": status})
        start_response("200 OK", [("Content-Type", JSON)])
        return [body.encode()]


@pytest.fixture
def acme_api() -> Iterator[tuple[FakeAcmeApi, str]]:
    api = FakeAcmeApi()
    with serve(api) as url:
        yield api, url


@pytest.fixture
def recorder() -> HookRecorder:
    return HookRecorder()


@pytest.fixture
def runtime(
    tmp_path: Path,
    example_plugin_on_path: Path,
    recorder: HookRecorder,
    acme_api: tuple[FakeAcmeApi, str],
) -> Iterator[Runtime]:
    rt = acme_runtime(tmp_path, recorder, base_url=acme_api[1])
    yield rt
    rt.close()


@pytest.fixture
def payment(runtime: Runtime) -> PaymentRecord:
    return insert_pending_payment(runtime.ledger)


@pytest.fixture
def gateway_server(runtime: Runtime) -> Iterator[Callable[..., str]]:
    """``gateway_server(**make_wsgi_app_options)`` serves a gateway app; returns its URL."""
    with ExitStack() as servers:

        def start(**options: Any) -> str:
            options.setdefault("return_page", RETURN_PAGE)
            return servers.enter_context(serve(make_wsgi_app(runtime.service, **options)))

        yield start


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def post_notification(
    http: requests.Session, url: str, body: bytes, headers: dict[str, str] | None = None
) -> requests.Response:
    return http.post(
        f"{url}/notify/{GATEWAY}",
        data=body,
        headers=signed_headers(body) if headers is None else headers,
        timeout=10,
    )


def assert_failure_reply(response: requests.Response, status: int) -> None:
    assert response.status_code == status
    assert response.headers["Content-Type"] == JSON
    assert response.content == ACK_FAILED


def applied_rows(state: LedgerState) -> list[str]:
    return [entry.verdict for entry in state.journal if entry.verdict == "applied"]


# -- routing -----------------------------------------------------------------------------------


def test_health_answers_ok(gateway_server: Callable[..., str], http: requests.Session) -> None:
    url = gateway_server()
    response = http.get(f"{url}/health", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain"
    assert response.text == "ok"


def test_unknown_routes_are_404(gateway_server: Callable[..., str], http: requests.Session) -> None:
    url = gateway_server()
    for response in (
        http.get(f"{url}/notify", timeout=10),
        http.post(f"{url}/refund/{GATEWAY}", timeout=10),
        http.get(f"{url}/return/{GATEWAY}/extra", timeout=10),
        http.get(f"{url}/", timeout=10),
    ):
        assert response.status_code == 404
        assert response.text == "not found"


def test_unknown_gateway_is_404(
    runtime: Runtime,
    payment: PaymentRecord,
    gateway_server: Callable[..., str],
    http: requests.Session,
) -> None:
    url = gateway_server()
    body = acme_notification()
    before = LedgerState.of(runtime.ledger)
    for response in (
        http.post(f"{url}/notify/nope", data=body, headers=signed_headers(body), timeout=10),
        http.get(f"{url}/return/nope", params=signed_return(), timeout=10),
    ):
        assert response.status_code == 404
        assert response.text == "unknown gateway"
    assert LedgerState.of(runtime.ledger) == before


def test_methods_are_checked_with_an_allow_header(
    payment: PaymentRecord, gateway_server: Callable[..., str], http: requests.Session
) -> None:
    url = gateway_server()
    response = http.get(f"{url}/notify/{GATEWAY}", timeout=10)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    response = http.put(f"{url}/return/{GATEWAY}", data=b"", timeout=10)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, POST"


def test_prefix_moves_every_route(
    payment: PaymentRecord, gateway_server: Callable[..., str], http: requests.Session
) -> None:
    url = gateway_server(prefix="/payments/")
    assert http.get(f"{url}/payments/health", timeout=10).text == "ok"
    assert http.get(f"{url}/health", timeout=10).status_code == 404
    body = acme_notification()
    assert post_notification(http, f"{url}/payments", body).content == ACK_OK
    assert post_notification(http, url, body).status_code == 404


# -- notifications -----------------------------------------------------------------------------


def test_signed_notification_is_applied_once_and_acknowledged_as_acme_expects(
    runtime: Runtime,
    payment: PaymentRecord,
    recorder: HookRecorder,
    gateway_server: Callable[..., str],
    http: requests.Session,
) -> None:
    url = gateway_server()
    body = acme_notification()
    for _ in range(2):  # the provider retries; the second delivery changes nothing
        response = post_notification(http, url, body)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == JSON
        assert response.content == ACK_OK
        record = runtime.ledger.get_payment(GATEWAY, REFERENCE)
        assert record is not None
        assert record.status is PaymentStatus.PAID
        assert len(recorder.of_kind(EventKind.PAID)) == 1
    assert [e.verdict for e in runtime.ledger.journal()] == ["applied", "duplicate"]


def test_chunked_body_without_content_length_is_read_whole(
    runtime: Runtime,
    payment: PaymentRecord,
    gateway_server: Callable[..., str],
    http: requests.Session,
) -> None:
    url = gateway_server()
    body = acme_notification()

    def chunks() -> Iterator[bytes]:
        yield body[:7]
        yield body[7:]

    response = http.post(
        f"{url}/notify/{GATEWAY}", data=chunks(), headers=signed_headers(body), timeout=10
    )
    assert response.content == ACK_OK
    record = runtime.ledger.get_payment(GATEWAY, REFERENCE)
    assert record is not None
    assert record.status is PaymentStatus.PAID


def test_forged_signature_gets_the_failure_reply_and_changes_nothing(
    runtime: Runtime,
    payment: PaymentRecord,
    recorder: HookRecorder,
    gateway_server: Callable[..., str],
    http: requests.Session,
) -> None:
    url = gateway_server()
    body = acme_notification()
    before = LedgerState.of(runtime.ledger)
    forged = [
        signed_headers(body, secret="not-the-secret"),
        {"Content-Type": JSON},  # no signature at all
        signed_headers(acme_notification("open")),  # a signature of another body
    ]
    for headers in forged:
        assert_failure_reply(post_notification(http, url, body, headers), 400)
    after = LedgerState.of(runtime.ledger)
    assert (after.payment, after.transitions, after.events) == (
        before.payment,
        before.transitions,
        before.events,
    )
    assert [(e.verdict, e.reason) for e in after.journal] == [("rejected", "bad_signature")] * 3
    assert recorder.events == []


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[]", b'{"reference": "ord-1-1", "status": "paid"}', b""],
    ids=["not-json", "not-an-object", "missing-fields", "empty"],
)
def test_malformed_notification_gets_the_failure_reply_and_changes_nothing(
    runtime: Runtime,
    payment: PaymentRecord,
    recorder: HookRecorder,
    gateway_server: Callable[..., str],
    http: requests.Session,
    body: bytes,
) -> None:
    url = gateway_server()
    before = LedgerState.of(runtime.ledger)
    assert_failure_reply(post_notification(http, url, body), 400)  # correctly signed
    after = LedgerState.of(runtime.ledger)
    assert after.payment == before.payment
    assert (after.transitions, after.events) == (before.transitions, before.events)
    assert [(e.verdict, e.reason) for e in after.journal] == [("rejected", "malformed")]
    assert recorder.events == []


def test_body_over_max_body_is_413_with_the_failure_reply(
    runtime: Runtime,
    payment: PaymentRecord,
    recorder: HookRecorder,
    gateway_server: Callable[..., str],
    http: requests.Session,
) -> None:
    url = gateway_server(max_body=1024)
    before = LedgerState.of(runtime.ledger)
    body = acme_notification(size=4096)  # correctly signed over all of it
    assert_failure_reply(post_notification(http, url, body), 413)
    after = LedgerState.of(runtime.ledger)
    assert after.payment == before.payment
    assert (after.transitions, after.events) == (before.transitions, before.events)
    assert applied_rows(after) == []
    assert recorder.events == []


def test_body_of_exactly_max_body_is_accepted(
    runtime: Runtime,
    payment: PaymentRecord,
    gateway_server: Callable[..., str],
    http: requests.Session,
) -> None:
    url = gateway_server(max_body=1024)
    response = post_notification(http, url, acme_notification(size=1024))
    assert response.status_code == 200
    assert response.content == ACK_OK


def test_body_one_byte_over_max_body_is_refused(
    runtime: Runtime,
    payment: PaymentRecord,
    gateway_server: Callable[..., str],
    http: requests.Session,
) -> None:
    url = gateway_server(max_body=1024)
    before = LedgerState.of(runtime.ledger)
    response = post_notification(http, url, acme_notification(size=1025))
    assert response.status_code == 413
    assert LedgerState.of(runtime.ledger).payment == before.payment


# -- who may notify ----------------------------------------------------------------------------


def test_allow_list_refuses_other_sources_with_403_and_only_journals_it(
    runtime: Runtime,
    payment: PaymentRecord,
    recorder: HookRecorder,
    gateway_server: Callable[..., str],
    http: requests.Session,
) -> None:
    url = gateway_server(allowed_sources=["10.0.0.0/8"])
    before = LedgerState.of(runtime.ledger)
    assert_failure_reply(post_notification(http, url, acme_notification()), 403)
    assert LedgerState.of(runtime.ledger).refused_since(before)  # the refusal is journalled
    assert recorder.events == []


def test_allow_list_accepts_an_allowed_peer(
    runtime: Runtime,
    payment: PaymentRecord,
    gateway_server: Callable[..., str],
    http: requests.Session,
) -> None:
    url = gateway_server(allowed_sources=["127.0.0.1"])
    assert post_notification(http, url, acme_notification()).content == ACK_OK


def test_forwarded_for_from_a_trusted_proxy_is_believed(
    runtime: Runtime,
    payment: PaymentRecord,
    recorder: HookRecorder,
    gateway_server: Callable[..., str],
    http: requests.Session,
) -> None:
    url = gateway_server(trusted_proxies=["127.0.0.1/32"], allowed_sources=["203.0.113.0/24"])
    body = acme_notification()
    headers = {**signed_headers(body), "X-Forwarded-For": "203.0.113.9"}
    response = post_notification(http, url, body, headers)
    assert response.status_code == 200
    assert response.content == ACK_OK
    record = runtime.ledger.get_payment(GATEWAY, REFERENCE)
    assert record is not None
    assert record.status is PaymentStatus.PAID
    assert len(recorder.of_kind(EventKind.PAID)) == 1


def test_a_client_cannot_smuggle_an_allowed_address_through_the_proxy(
    runtime: Runtime,
    payment: PaymentRecord,
    gateway_server: Callable[..., str],
    http: requests.Session,
) -> None:
    # The client sent "X-Forwarded-For: 203.0.113.9"; the proxy appended the client's real
    # address. The right-most address not itself a trusted proxy is the client.
    url = gateway_server(trusted_proxies=["127.0.0.1/32"], allowed_sources=["203.0.113.0/24"])
    body = acme_notification()
    before = LedgerState.of(runtime.ledger)
    headers = {**signed_headers(body), "X-Forwarded-For": "203.0.113.9, 198.51.100.7"}
    assert_failure_reply(post_notification(http, url, body, headers), 403)
    assert LedgerState.of(runtime.ledger).refused_since(before)


def test_forwarded_for_from_an_untrusted_peer_is_ignored(
    runtime: Runtime,
    payment: PaymentRecord,
    gateway_server: Callable[..., str],
    http: requests.Session,
) -> None:
    url = gateway_server(trusted_proxies=["192.0.2.0/24"], allowed_sources=["203.0.113.0/24"])
    body = acme_notification()
    before = LedgerState.of(runtime.ledger)
    headers = {**signed_headers(body), "X-Forwarded-For": "203.0.113.9"}
    assert_failure_reply(post_notification(http, url, body, headers), 403)
    assert LedgerState.of(runtime.ledger).refused_since(before)


def test_waitress_strips_forwarded_for_unless_told_not_to(
    runtime: Runtime, payment: PaymentRecord, http: requests.Session
) -> None:
    """Why docs/frameworks.md says to pass ``clear_untrusted_proxy_headers=False``: with its
    defaults waitress removes X-Forwarded-For before the app sees it."""
    app = make_wsgi_app(
        runtime.service, trusted_proxies=["127.0.0.1/32"], allowed_sources=["203.0.113.0/24"]
    )
    body = acme_notification()
    headers = {**signed_headers(body), "X-Forwarded-For": "203.0.113.9"}
    with serve(app, clear_untrusted_proxy_headers=True) as url:
        assert_failure_reply(post_notification(http, url, body, headers), 403)
    with serve(app) as url:
        assert post_notification(http, url, body, headers).content == ACK_OK


class _DualStackServer(ThreadingMixIn, WSGIServer):
    """Listens on [::] for IPv6 and IPv4 alike (IPv4 peers show as ::ffff:a.b.c.d)."""

    address_family = socket.AF_INET6
    daemon_threads = True

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_allow_list_matches_ipv4_peers_of_a_dual_stack_server(
    runtime: Runtime, payment: PaymentRecord, http: requests.Session
) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    app = make_wsgi_app(runtime.service, allowed_sources=["127.0.0.1/32"])
    try:
        server = make_server(
            "::", 0, app, server_class=_DualStackServer, handler_class=_QuietHandler
        )
    except OSError as exc:
        pytest.skip(f"cannot listen on [::]: {exc}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        assert post_notification(http, url, acme_notification()).status_code == 200
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_gateway_serve_believes_forwarded_for_from_its_trusted_proxy(
    tmp_path: Path, http: requests.Session
) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[ledger]\nurl = "sqlite:///{tmp_path}/serve.db"\n\n'
        f'[providers.{GATEWAY}]\nprovider = "acme_pay"\naccount = "shop_1"\n'
        f'api_secret = "{SECRET}"\nbase_url = "http://127.0.0.1:9"\n'
    )
    with open_ledger(f"sqlite:///{tmp_path}/serve.db") as ledger:
        insert_pending_payment(ledger)
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(EXAMPLE_PLUGIN_DIR), str(REPO_ROOT)])}
    command = [sys.executable, "-m", "gateway_core.cli", "--config", str(config), "serve"]
    command += ["--port", str(port), "--trusted-proxy", "127.0.0.1/32"]
    command += ["--allow", "203.0.113.0/24"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                http.get(f"{url}/health", timeout=1)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(process.communicate()[1].decode()) from None
                time.sleep(0.05)
        body = acme_notification()
        headers = {**signed_headers(body), "X-Forwarded-For": "203.0.113.9"}
        response = post_notification(http, url, body, headers)
        assert response.status_code == 200
        assert response.content == ACK_OK
    finally:
        process.terminate()
        process.communicate(timeout=10)


# -- returns -----------------------------------------------------------------------------------


def test_return_with_a_bad_signature_is_a_400_page(
    runtime: Runtime,
    payment: PaymentRecord,
    acme_api: tuple[FakeAcmeApi, str],
    gateway_server: Callable[..., str],
    http: requests.Session,
) -> None:
    url = gateway_server()
    before = LedgerState.of(runtime.ledger).payment
    for query in (
        {**signed_return(), "sig": sign(b"ord-1-1:open")},
        {**signed_return(), "status": "failed"},
        {"reference": REFERENCE, "status": "paid"},
        {},
    ):
        response = http.get(
            f"{url}/return/{GATEWAY}", params=query, allow_redirects=False, timeout=10
        )
        assert response.status_code == 400
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert response.text == "This link is not valid."
    assert LedgerState.of(runtime.ledger).payment == before
    assert acme_api[0].inquiries == []


def _location(response: requests.Response) -> tuple[str, dict[str, list[str]]]:
    parts = urlsplit(response.headers["Location"])
    return f"{parts.scheme}://{parts.netloc}{parts.path}", parse_qs(parts.query)


def test_return_with_a_good_signature_confirms_by_inquiry_and_redirects_303(
    runtime: Runtime,
    payment: PaymentRecord,
    recorder: HookRecorder,
    acme_api: tuple[FakeAcmeApi, str],
    gateway_server: Callable[..., str],
    http: requests.Session,
) -> None:
    api, _ = acme_api
    api.statuses["ac_1"] = "paid"
    url = gateway_server()
    response = http.get(
        f"{url}/return/{GATEWAY}", params=signed_return(), allow_redirects=False, timeout=10
    )
    assert response.status_code == 303
    page, params = _location(response)
    assert page == RETURN_PAGE
    assert params == {
        "gateway": [GATEWAY],
        "reference": [REFERENCE],
        "status": ["paid"],
        "order": [ORDER],
    }
    assert api.inquiries == ["ac_1"]
    record = runtime.ledger.get_payment(GATEWAY, REFERENCE)
    assert record is not None
    assert record.status is PaymentStatus.PAID
    assert [t.source for t in runtime.ledger.transitions(payment.id or 0)][-1] == "return"
    assert len(recorder.of_kind(EventKind.PAID)) == 1


def test_return_never_changes_the_status_by_itself(
    runtime: Runtime,
    payment: PaymentRecord,
    recorder: HookRecorder,
    acme_api: tuple[FakeAcmeApi, str],
    gateway_server: Callable[..., str],
    http: requests.Session,
) -> None:
    url = gateway_server(return_page="/thanks?lang=en")
    response = http.get(  # the customer claims "paid"; Acme still says "open"
        f"{url}/return/{GATEWAY}", params=signed_return("paid"), allow_redirects=False, timeout=10
    )
    assert response.status_code == 303
    location = urlsplit(response.headers["Location"])
    assert location.path == "/thanks"
    assert parse_qs(location.query) == {
        "lang": ["en"],
        "gateway": [GATEWAY],
        "reference": [REFERENCE],
        "status": ["pending"],
        "order": [ORDER],
    }
    record = runtime.ledger.get_payment(GATEWAY, REFERENCE)
    assert record is not None
    assert record.status is PaymentStatus.PENDING
    assert recorder.of_kind(EventKind.PAID) == []


def test_return_for_a_payment_the_ledger_does_not_know(
    runtime: Runtime,
    payment: PaymentRecord,
    gateway_server: Callable[..., str],
    http: requests.Session,
) -> None:
    url = gateway_server()
    query = signed_return(reference="ord-9-1")
    response = http.get(f"{url}/return/{GATEWAY}", params=query, allow_redirects=False, timeout=10)
    assert response.status_code == 303
    _, params = _location(response)
    assert params == {"gateway": [GATEWAY], "reference": ["ord-9-1"], "status": ["unknown"]}
