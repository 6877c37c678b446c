"""The native ASGI app (``gateway_core.asgi``) served by a real uvicorn over loopback HTTP,
with the Faspay emulator delivering its notifications to it, and the async facade
(``AsyncPaymentService``) under it.

The stack is the root conftest's (emulator, SQLite ledger, service, hook recorder); the
emulator's merchant is re-pointed from the stack's WSGI endpoints to the uvicorn server.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from asgi_support import bound_socket, raw_exchange, uvicorn_serving

from gateway_core import AsyncPaymentService, EventKind, PaymentStatus, make_asgi_app
from gateway_faspay_dana.testing import signed_return_query

pytest.importorskip("uvicorn", reason="uvicorn is not installed (it is in the [test] extra)")

MAX_BODY = 16 * 1024
TIMEOUT = 15


@pytest.fixture
def asgi_stack(suite: Any, sqlite_store: Any) -> Iterator[Any]:
    """The whole stack, the merchant's endpoints being the ASGI app under uvicorn."""
    stack, close = suite.build_stack(sqlite_store)
    sock = bound_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    facade = AsyncPaymentService(stack.service, max_workers=4)
    app = make_asgi_app(facade, return_page=f"{base}/thanks", max_body=MAX_BODY)
    try:
        with uvicorn_serving(app, sock):
            stack.emulator.configure_merchant(
                "99999", notification_url=f"{base}/notify/dana", return_url=f"{base}/return/dana"
            )
            stack.merchant_url = base
            yield stack
    finally:
        facade.close()
        close()


def response_code(response: requests.Response) -> str:
    value = json.loads(response.content)
    return str(value["response_code"])


def return_query(stack: Any, reference: str) -> dict[str, str]:
    record = stack.record(reference)
    return signed_return_query(
        stack.service.gateways["dana"],
        bill_no=record.merchant_reference,
        trx_id=record.provider_reference,
        status="2",
        amount=record.amount,
    )


def test_emulator_notification_pays_the_order_once(asgi_stack: Any) -> None:
    stack = asgi_stack
    bill_no = stack.start("ORDER-ASGI-1").payment.merchant_reference
    stack.emulator.add_fault("notification", "duplicate", times=2, bill_no=bill_no)
    stack.emulator.pay(bill_no)
    stack.wait()
    attempts = [a for d in stack.emulator.deliveries(bill_no) for a in d["attempts"]]
    assert [(a["http_status"], a["response_code"]) for a in attempts] == [(200, "00")] * 3
    assert stack.record(bill_no).status is PaymentStatus.PAID
    assert len(stack.recorder.of_kind(EventKind.PAID)) == 1
    verdicts = [e.verdict for e in stack.ledger.journal("dana") if e.kind == "notification"]
    assert verdicts == ["applied", "duplicate", "duplicate"]


def test_forged_notification_gets_the_faspay_failure_reply(asgi_stack: Any) -> None:
    stack = asgi_stack
    bill_no = stack.start("ORDER-ASGI-2").payment.merchant_reference
    stack.emulator.add_fault("notification", "drop", bill_no=bill_no, on_status="2")
    stack.emulator.pay(bill_no)
    stack.wait()
    genuine = json.loads(stack.emulator.deliveries(bill_no)[-1]["body"])
    forged = json.dumps({**genuine, "signature": "0" * 40}).encode()
    headers = {"Content-Type": "application/json"}
    reply = requests.post(stack.notify_url, data=forged, headers=headers, timeout=TIMEOUT)
    assert 400 <= reply.status_code < 500
    assert reply.headers["content-type"].startswith("application/json")
    assert response_code(reply) != "00"
    assert stack.record(bill_no).status is not PaymentStatus.PAID
    assert stack.recorder.of_kind(EventKind.PAID) == []
    # The genuine body, posted by hand, is applied.
    genuine_body = stack.emulator.deliveries(bill_no)[-1]["body"].encode()
    reply = requests.post(stack.notify_url, data=genuine_body, headers=headers, timeout=TIMEOUT)
    assert (reply.status_code, response_code(reply)) == (200, "00")
    assert stack.record(bill_no).status is PaymentStatus.PAID


def test_declared_oversize_body_gets_413_before_it_is_sent(asgi_stack: Any) -> None:
    # Only the head is sent: the reply comes although the 10 MB body never does.
    head = (
        b"POST /notify/dana HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 10000000\r\n\r\n"
    )
    started = time.monotonic()
    received = raw_exchange(asgi_stack.merchant_url, head)
    assert received.startswith(b"HTTP/1.1 413 "), received[:200]
    assert b'"response_code"' in received
    assert time.monotonic() - started < 5


def test_chunked_oversize_body_gets_413_after_the_cap(asgi_stack: Any) -> None:
    chunk = b"x" * 4096
    body = b"".join(b"1000\r\n" + chunk + b"\r\n" for _ in range(6))  # 24 KiB, no end chunk
    head = (
        b"POST /notify/dana HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    received = raw_exchange(asgi_stack.merchant_url, head, body)
    assert received.startswith(b"HTTP/1.1 413 "), received[:200]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_return_redirects_303_to_the_return_page(asgi_stack: Any, method: str) -> None:
    stack = asgi_stack
    bill_no = stack.start(f"ORDER-ASGI-R{method}").payment.merchant_reference
    stack.emulator.pay(bill_no)
    stack.wait()
    query = return_query(stack, bill_no)
    if method == "GET":
        reply = requests.get(stack.return_url, params=query, allow_redirects=False, timeout=TIMEOUT)
    else:
        reply = requests.post(
            stack.return_url, params=query, data=b"", allow_redirects=False, timeout=TIMEOUT
        )
    assert reply.status_code == 303
    location = urlsplit(reply.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{stack.merchant_url}/thanks"
    assert parse_qs(location.query) == {
        "gateway": ["dana"],
        "reference": [bill_no],
        "status": ["paid"],
        "order": [f"ORDER-ASGI-R{method}"],
    }


def test_health_and_routes(asgi_stack: Any) -> None:
    base = asgi_stack.merchant_url
    reply = requests.get(f"{base}/health", timeout=TIMEOUT)
    assert (reply.status_code, reply.text) == (200, "ok")
    assert requests.get(f"{base}/nothing", timeout=TIMEOUT).status_code == 404
    assert requests.get(f"{base}/notify/dana", timeout=TIMEOUT).status_code == 405
    assert requests.post(f"{base}/notify/nope", data=b"{}", timeout=TIMEOUT).status_code == 404


def test_event_loop_serves_other_requests_while_an_inquiry_is_slow(asgi_stack: Any) -> None:
    stack = asgi_stack
    bill_no = stack.start("ORDER-ASGI-SLOW").payment.merchant_reference
    # Paid at the provider, the notification lost: the return confirms by inquiry.
    stack.emulator.add_fault("notification", "drop", bill_no=bill_no, on_status="2")
    stack.emulator.pay(bill_no)
    stack.wait()
    query = return_query(stack, bill_no)
    stack.emulator.add_fault("inquiry", "read_timeout", seconds=1.5)
    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        slow = pool.submit(
            requests.get, stack.return_url, params=query, allow_redirects=False, timeout=TIMEOUT
        )
        time.sleep(0.3)  # the return is now waiting on the emulator's late reply
        assert not slow.done()
        health = requests.get(f"{stack.merchant_url}/health", timeout=TIMEOUT)
        missing = requests.get(f"{stack.merchant_url}/nothing", timeout=TIMEOUT)
        answered = time.monotonic() - started
        assert (health.status_code, missing.status_code) == (200, 404)
        assert not slow.done(), "the trivial requests were answered while the return waited"
        reply = slow.result()
    assert answered < 1.2
    assert time.monotonic() - started >= 1.5
    assert reply.status_code == 303
    assert parse_qs(urlsplit(reply.headers["location"]).query)["status"] == ["paid"]
    assert stack.record(bill_no).status is PaymentStatus.PAID


# -- the async facade ---------------------------------------------------------------------------


def test_facade_runs_calls_in_its_bounded_pool_and_closes(asgi_stack: Any) -> None:
    stack = asgi_stack
    bill_no = stack.start("ORDER-ASGI-F").payment.merchant_reference
    seen: list[str] = []
    service = stack.service

    def blocking() -> str:
        seen.append(threading.current_thread().name)
        time.sleep(0.2)
        return "done"

    async def main() -> None:
        async with AsyncPaymentService(service, max_workers=2) as facade:
            record = await facade.payment("dana", bill_no)
            assert record.status is PaymentStatus.PENDING
            assert (await facade.inquire("dana", bill_no)).merchant_reference == bill_no
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            task = asyncio.create_task(ticker())
            began = time.monotonic()
            results = await asyncio.gather(*(facade.run(blocking) for _ in range(4)))
            took = time.monotonic() - began
            task.cancel()
            assert results == ["done"] * 4
            assert took >= 0.4  # two at a time
            assert ticks > 10  # the loop kept running meanwhile
            report = await facade.deliver_events()
            assert report is not None
        with pytest.raises(RuntimeError, match="closed"):
            await facade.payment("dana", bill_no)

    asyncio.run(main())
    assert seen
    assert all(name.startswith("gateway-async") for name in seen)
