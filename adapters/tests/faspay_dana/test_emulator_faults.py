"""Every scripted fault on a real socket, seen through a plain ``requests`` client, and the
emulator's ledger telling what Faspay "processed" (F1–F10, F12 of the reliability plan)."""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from gateway_faspay_dana._signature import sign
from gateway_faspay_dana.emulator import (
    EmulatorApp,
    EmulatorControl,
    EmulatorError,
    EmulatorServer,
    Merchant,
    example_post_data,
)

MERCHANT = Merchant("99999")
CREATE = "/cvr/300011/10"


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    srv = EmulatorServer(EmulatorApp(MERCHANT, retry_interval=0.05)).start()
    yield srv
    srv.stop()


@pytest.fixture
def app(server: EmulatorServer) -> EmulatorApp:
    return server.app


def post_create(server: EmulatorServer, bill_no: str, **kwargs: Any) -> requests.Response:
    timeout = kwargs.pop("timeout", 5)
    body = example_post_data(MERCHANT, bill_no)
    return requests.post(server.url + CREATE, json=body, timeout=timeout, **kwargs)


def inquiry_body(bill_no: str, trx_id: str) -> dict[str, str]:
    return {
        "trx_id": trx_id,
        "merchant_id": "99999",
        "bill_no": bill_no,
        "signature": sign("bot99999", "p@ssw0rd", bill_no),
    }


def root_cause(exc: BaseException) -> BaseException:
    seen = exc
    while True:
        nxt = seen.__cause__ or seen.__context__
        if nxt is None:
            return seen
        seen = nxt


# --- connection-level faults ------------------------------------------------------------------


def test_refuse_closes_the_port_then_listens_again(
    server: EmulatorServer, app: EmulatorApp
) -> None:
    with requests.Session() as pooled:
        assert pooled.get(server.url + "/", timeout=5).status_code == 200
        app.add_fault("*", "refuse", seconds=0.6)
        time.sleep(0.15)  # idle keep-alive connections are dropped too
        with pytest.raises(requests.ConnectionError) as caught:
            pooled.post(server.url + CREATE, json=example_post_data(MERCHANT, "B-1"), timeout=5)
        assert isinstance(root_cause(caught.value), ConnectionRefusedError)
        probe = socket.socket()
        try:
            assert probe.connect_ex(("127.0.0.1", server.port)) == errno.ECONNREFUSED
        finally:
            probe.close()
        assert app.bills() == []
        time.sleep(0.7)
        assert post_create(server, "B-1").json()["response_code"] == "00"


def test_reset_before_read_processes_nothing(server: EmulatorServer, app: EmulatorApp) -> None:
    app.add_fault("create", "reset_before_read")
    with pytest.raises(requests.ConnectionError) as caught:
        post_create(server, "B-rst")
    assert isinstance(root_cause(caught.value), ConnectionResetError)
    assert app.bills() == []
    assert app.create_requests("B-rst") == 0
    [entry] = app.requests_log("create")
    assert (entry["fault"], entry["processed"]) == ("reset_before_read", False)


def test_reset_after_read_creates_exactly_one_bill_and_loses_the_reply(
    server: EmulatorServer, app: EmulatorApp
) -> None:
    app.add_fault("create", "reset_after_read")
    with pytest.raises(requests.ConnectionError) as caught:
        post_create(server, "B-lost")
    assert isinstance(root_cause(caught.value), ConnectionResetError)
    record = app.bill("B-lost")
    assert record["status"] == "0"
    assert record["create_requests"] == 1
    assert len(record["trx_ids"]) == 1
    # The same bill_no again (return_existing): the same bill, still exactly one.
    retry = post_create(server, "B-lost").json()
    assert retry["trx_id"] == record["trx_id"]
    after = app.bill("B-lost")
    assert (after["create_requests"], after["trx_ids"]) == (2, [record["trx_id"]])
    assert len(app.bills()) == 1


def test_reset_after_read_on_inquiry_and_cancel(server: EmulatorServer, app: EmulatorApp) -> None:
    trx_id = post_create(server, "B-c").json()["trx_id"]
    app.add_fault("cancel", "reset_after_read")
    body = {**inquiry_body("B-c", trx_id), "payment_cancel": "Out of stock"}
    with pytest.raises(requests.ConnectionError):
        requests.post(server.url + "/cvr/100005/10", json=body, timeout=5)
    assert app.bill("B-c")["status"] == "8"  # processed although the reply was lost
    again = requests.post(server.url + "/cvr/100005/10", json=body, timeout=5).json()
    assert again["response_code"] == "17"


def test_close_without_response_is_a_remote_disconnect(
    server: EmulatorServer, app: EmulatorApp
) -> None:
    app.add_fault("create", "close_without_response")
    with pytest.raises(requests.ConnectionError) as caught:
        post_create(server, "B-fin")
    assert "RemoteDisconnected" in repr(caught.value)
    assert app.bills() == []


def test_read_timeout_processes_then_answers_late(server: EmulatorServer, app: EmulatorApp) -> None:
    app.add_fault("create", "read_timeout", seconds=1.0)
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        post_create(server, "B-slow", timeout=(1, 0.3))
    assert time.monotonic() - started < 0.9
    assert app.bill("B-slow")["status"] == "0"


def test_read_timeout_reply_arrives_if_the_client_waits(
    server: EmulatorServer, app: EmulatorApp
) -> None:
    app.add_fault("inquiry", "read_timeout", seconds=0.3)
    trx_id = post_create(server, "B-wait").json()["trx_id"]
    started = time.monotonic()
    answer = requests.post(
        server.url + "/cvr/100004/10", json=inquiry_body("B-wait", trx_id), timeout=5
    )
    assert time.monotonic() - started >= 0.3
    assert answer.json()["payment_status_code"] == "0"


def test_slow_drip_sends_headers_then_one_byte_at_a_time(
    server: EmulatorServer, app: EmulatorApp
) -> None:
    app.add_fault("create", "slow_drip", interval=0.15)
    with post_create(server, "B-drip", stream=True, timeout=(1, 2)) as response:
        assert response.status_code == 200
        started = time.monotonic()
        first = response.raw.read(1)
        second = response.raw.read(1)
        third = response.raw.read(1)
        assert first + second + third == b'{"r'
        assert time.monotonic() - started >= 0.25
    assert app.bill("B-drip")["status"] == "0"  # processed before the drip


def test_slow_drip_trips_a_short_read_timeout(server: EmulatorServer, app: EmulatorApp) -> None:
    app.add_fault("create", "slow_drip", interval=0.5)
    with pytest.raises((requests.ConnectionError, requests.Timeout)):
        post_create(server, "B-drip2", timeout=(1, 0.2))


# --- HTTP-level faults ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503])
def test_http_5xx_with_html_is_not_processed_by_default(
    server: EmulatorServer, app: EmulatorApp, status: int
) -> None:
    app.add_fault("create", "http_5xx", status=status)
    response = post_create(server, "B-5xx")
    assert response.status_code == status
    assert response.headers["Content-Type"] == "text/html"
    assert response.text.startswith("<html>")
    assert app.bills() == []


def test_http_5xx_after_processing(server: EmulatorServer, app: EmulatorApp) -> None:
    app.add_fault("create", "http_5xx", status=502, process=True)
    assert post_create(server, "B-502").status_code == 502
    assert app.bill("B-502")["create_requests"] == 1


def test_http_429_with_and_without_retry_after(server: EmulatorServer, app: EmulatorApp) -> None:
    app.add_fault("create", "http_429", retry_after=7)
    app.add_fault("create", "http_429")
    first = post_create(server, "B-429")
    assert (first.status_code, first.headers["Retry-After"]) == (429, "7")
    second = post_create(server, "B-429")
    assert second.status_code == 429
    assert "Retry-After" not in second.headers
    assert app.bills() == []
    assert post_create(server, "B-429").status_code == 200


def test_malformed_json_empty_body_and_html_200_are_processed(
    server: EmulatorServer, app: EmulatorApp
) -> None:
    app.add_fault("create", "malformed_json")
    truncated = post_create(server, "B-m1")
    assert truncated.status_code == 200
    assert truncated.headers["Content-Type"] == "application/json"
    with pytest.raises(ValueError):
        truncated.json()
    app.add_fault("create", "empty_body")
    empty = post_create(server, "B-m2")
    assert (empty.status_code, empty.content) == (200, b"")
    app.add_fault("create", "html_200")
    html = post_create(server, "B-m3")
    assert (html.status_code, html.headers["Content-Type"]) == (200, "text/html")
    assert [b["bill_no"] for b in app.bills()] == ["B-m1", "B-m2", "B-m3"]


@pytest.mark.parametrize("code", ["55", "56", "63", "30", "83", "66", "96"])
def test_business_error_is_not_processed(
    server: EmulatorServer, app: EmulatorApp, code: str
) -> None:
    app.add_fault("create", "business_error", response_code=code)
    answer = post_create(server, "B-biz").json()
    assert answer["response_code"] == code
    assert answer["bill_no"] == "B-biz"
    assert "trx_id" not in answer
    assert app.bills() == []


def test_business_error_in_the_response_error_wrapper(
    server: EmulatorServer, app: EmulatorApp
) -> None:
    app.add_fault("create", "business_error", response_code="40", wrapper=True)
    answer = post_create(server, "B-wrap").json()
    assert answer["response_error"]["response_code"] == "40"


# --- scheduling -------------------------------------------------------------------------------


def test_count_endpoint_and_wildcard(server: EmulatorServer, app: EmulatorApp) -> None:
    app.add_fault("create", "http_5xx", count=2)
    assert [post_create(server, "B-n").status_code for _ in range(3)] == [503, 503, 200]
    trx_id = app.bill("B-n")["trx_id"]
    app.add_fault("*", "http_5xx", status=500)
    url = server.url + "/cvr/100004/10"
    assert requests.post(url, json=inquiry_body("B-n", trx_id), timeout=5).status_code == 500
    assert requests.post(url, json=inquiry_body("B-n", trx_id), timeout=5).status_code == 200


def test_redirect_faults(server: EmulatorServer, app: EmulatorApp) -> None:
    redirect = post_create(server, "B-r").json()["redirect_url"]
    app.add_fault("redirect", "http_5xx", status=502)
    assert requests.get(redirect, timeout=5).status_code == 502
    assert app.bill("B-r")["status"] == "0"
    app.add_fault("redirect", "reset_before_read")
    with pytest.raises(requests.ConnectionError):
        requests.get(redirect, timeout=5)
    assert requests.get(redirect, timeout=5).status_code == 200
    assert app.bill("B-r")["status"] == "1"


def test_faults_over_the_control_api(server: EmulatorServer, app: EmulatorApp) -> None:
    with EmulatorControl(server.url) as control:
        control.add_fault("create", "reset_after_read")
        control.add_fault("inquiry", "business_error", count=3, response_code="66")
        assert [f["fault"] for f in control.faults()] == ["reset_after_read", "business_error"]
        with pytest.raises(requests.ConnectionError):
            post_create(server, "B-ctl")
        assert control.bill("B-ctl")["create_requests"] == 1
        assert control.faults()[0]["count"] == 3
        control.clear_faults()
        assert control.faults() == []
        with pytest.raises(EmulatorError) as caught:
            control.add_fault("create", "explode")
        assert caught.value.http_status == 400
        with pytest.raises(EmulatorError):
            control.add_fault("create", "http_5xx", status=200)
        log = control.requests_log("create")
        assert log["counts"]["create"] == 1
        assert log["requests"][0]["fault"] == "reset_after_read"


def test_refuse_through_the_control_api(server: EmulatorServer) -> None:
    with EmulatorControl(server.url) as control:
        control.add_fault("*", "refuse", seconds=0.4)
        with pytest.raises(requests.ConnectionError):
            control.faults()
        time.sleep(0.5)
        assert control.faults() == []


# --- connections ------------------------------------------------------------------------------


def test_keep_alive_reuses_one_connection(server: EmulatorServer) -> None:
    with requests.Session() as http:
        for number in range(20):
            assert post_create(server, f"B-{number}").status_code == 200  # new connections
        before = server.accept_count
        for number in range(20):
            response = http.post(
                server.url + CREATE, json=example_post_data(MERCHANT, f"K-{number}"), timeout=5
            )
            assert response.json()["response_code"] == "00"
    assert server.accept_count == before + 1


def test_idle_keep_alive_connections_are_closed_after_the_timeout() -> None:
    """F4: the server's idle timeout is shorter than the client's pool idle time."""
    app = EmulatorApp(MERCHANT)
    with EmulatorServer(app, keepalive_timeout=0.2) as server, requests.Session() as http:
        assert http.get(server.url + "/", timeout=5).status_code == 200
        time.sleep(0.4)
        assert server.open_connections == 0
        assert http.get(server.url + "/", timeout=5).status_code == 200
        assert server.accept_count == 2


def test_stop_releases_the_port_and_threads() -> None:
    app = EmulatorApp(MERCHANT)
    server = EmulatorServer(app).start()
    port = server.port
    with requests.Session() as http:
        http.get(server.url + "/", timeout=5)
        server.stop()
    probe = socket.socket()
    try:
        assert probe.connect_ex(("127.0.0.1", port)) == errno.ECONNREFUSED
    finally:
        probe.close()
    assert server.open_connections == 0
