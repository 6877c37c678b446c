"""The emulation kit (``gateway_core.emulation``) on its own, with no provider plugin.

A tiny fake provider (``TinyProvider``: ``POST /orders`` creates an order that expires after a
minute of emulator time; the control route ``POST /_emulator/orders/<id>/pay`` pays it and
notifies) runs on the kit's server, with the kit's faults, clock, notifier, request log,
control router and fixture factories. Everything goes over real loopback HTTP; the merchant
side is a plain ``http.server`` that answers from a script.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

import pytest
import requests

from gateway_core.emulation.clock import EmulatorClock
from gateway_core.emulation.control import (
    ControlClient,
    ControlRequest,
    ControlRouter,
    EmulatorError,
    add_common_routes,
    read_body,
    send_json,
)
from gateway_core.emulation.faults import (
    NOTIFICATION,
    Fault,
    FaultCatalogue,
    FaultPlan,
    processes,
    shaped_reply,
)
from gateway_core.emulation.http_server import (
    CONNECTION_KEY,
    CONTROL_KEY,
    FAULT_KEY,
    HttpServer,
    SocketController,
)
from gateway_core.emulation.notifier import Message, NotificationPlan, Notifier, RetrySchedule
from gateway_core.emulation.pytest_support import control_fixture, emulator_fixture
from gateway_core.emulation.requestlog import RequestLog


class Merchant:
    """A merchant endpoint on loopback answering notifications with scripted statuses."""

    def __init__(self, statuses: Iterable[int]) -> None:
        self.statuses = list(statuses)
        self.received: list[tuple[dict[str, str], bytes]] = []
        merchant = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                merchant.received.append((dict(self.headers.items()), body))
                status = merchant.statuses.pop(0) if merchant.statuses else 200
                self.send_response(status)
                if status in (301, 302, 303, 307, 308):
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class TinyProvider:
    """A fake provider built from the kit's pieces only."""

    def __init__(self, notification_url: str, schedule: RetrySchedule) -> None:
        self.socket_controller: SocketController | None = None
        self.clock = EmulatorClock(wall_format="%Y-%m-%dT%H:%M:%S")
        self.catalogue = FaultCatalogue({"create"}, filters=("status",))
        self.plan = FaultPlan()
        self.log = RequestLog(clock=self.clock, extra_fields={"order_id": None})
        self.notifier = Notifier(
            schedule=schedule,
            now=self.clock.wall,
            headers={"User-Agent": "tiny-provider"},
            name="tiny",
        )
        self.notification_url = notification_url
        self.orders: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.router = ControlRouter("/_emulator")
        add_common_routes(self.router, self)
        self.router.route("POST", "orders/<order_id>/pay", self._pay)

    # --- what HttpServer needs ----------------------------------------------------------------

    def endpoint_for(self, path: str) -> str | None:
        return "create" if path == "/orders" else None

    def take_fault(self, endpoint: str) -> Fault | None:
        return self.plan.take(endpoint)

    def record_request(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        fault: Fault | None,
        connection: int | None = None,
        detail: str = "",
    ) -> None:
        self.log.record(endpoint, method, path, fault=fault, connection=connection, detail=detail)

    def tick(self) -> list[str]:
        now = self.clock.now()
        with self._lock:
            due = [o for o in self.orders.values() if o["state"] == "open" and o["due"] <= now]
            for order in due:
                order["state"] = "expired"
        return [o["id"] for o in due]

    def close(self) -> None:
        self.notifier.close()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if self.router.matches(path):
            return self.router(environ, start_response)
        if self.endpoint_for(path) is None:
            return send_json(start_response, 404, {"error": "no route"})
        fault = environ.get(FAULT_KEY)
        body = read_body(environ)
        reply: bytes | None = None
        order_id = None
        if processes(fault):
            order_id = f"o{next(self._ids)}"
            with self._lock:
                self.orders[order_id] = {
                    "id": order_id,
                    "state": "open",
                    "due": self.clock.now() + timedelta(seconds=60),
                    "note": json.loads(body or b"{}").get("note", ""),
                }
            reply = json.dumps({"id": order_id}).encode()
        shaped = shaped_reply(fault, reply)
        status, headers, out = shaped or (201, [("Content-Type", "application/json")], reply or b"")
        self.log.record(
            "create",
            "POST",
            path,
            fault=fault,
            connection=environ.get(CONNECTION_KEY),
            http_status=status,
            processed=order_id is not None,
            order_id=order_id,
        )
        if fault is not None and fault.kind == "reset_after_read":
            environ[CONTROL_KEY]["reset"] = True
        start_response(f"{status} X", [*headers, ("Content-Length", str(len(out)))])
        return [out]

    # --- the control API's own route and the common ones (CommonControls) ---------------------

    def _pay(self, request: ControlRequest) -> dict[str, Any]:
        order_id = request.args["order_id"]
        with self._lock:
            order = self.orders.get(order_id)
            if order is None:
                raise EmulatorError(f"no order {order_id}", http_status=404)
            order["state"] = "paid"
        faults = {f.kind: f for f in self.plan.take_notification(status="paid")}
        message = Message(
            json.dumps({"order": order_id, "status": "paid"}).encode(),
            labels={"order_id": order_id, "status": "paid"},
        )
        plan = NotificationPlan(
            url=self.notification_url,
            message=message,
            faults=sorted(faults),
            duplicates=int(faults["duplicate"].param("times")) if "duplicate" in faults else 0,
        )
        return {"deliveries": [d.to_dict() for d in self.notifier.submit(plan)]}

    def advance_clock(self, seconds: float) -> list[str]:
        self.clock.advance(seconds)
        return self.tick()

    def set_clock(self, moment: datetime) -> list[str]:
        self.clock.set(moment)
        return self.tick()

    def add_fault(self, endpoint: str, fault: str, count: int = 1, **params: Any) -> Any:
        try:
            item = self.catalogue.make(endpoint, fault, count, **params)
        except ValueError as exc:
            raise EmulatorError(str(exc)) from None
        if item.kind == "refuse":
            assert self.socket_controller is not None
            self.socket_controller.refuse(float(item.param("seconds")))
        else:
            self.plan.add(item)
        return item.to_dict()

    def faults(self) -> list[dict[str, Any]]:
        return [f.to_dict() for f in self.plan.pending()]

    def clear_faults(self) -> None:
        self.plan.clear()

    def deliveries(self, **labels: Any) -> list[dict[str, Any]]:
        return self.notifier.deliveries(**labels)

    def requests_log(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        return self.log.entries(endpoint)

    def request_counts(self) -> dict[str, int]:
        return self.log.counts()

    def reset(self) -> None:
        self.plan.clear()
        self.notifier.reset()
        self.log.clear()
        self.clock.reset()

    def wait_for_deliveries(self, timeout: float = 10.0) -> bool:
        return self.notifier.wait(timeout)


# --- fixtures: the kit's factories ---------------------------------------------------------------


@pytest.fixture
def merchant_statuses() -> list[int]:
    return [503, 500, 204]


@pytest.fixture
def merchant(merchant_statuses: list[int]) -> Iterator[Merchant]:
    endpoint = Merchant(merchant_statuses)
    yield endpoint
    endpoint.close()


@pytest.fixture
def schedule() -> RetrySchedule:
    return RetrySchedule([0.01, 0.01, 0.01, 0.01])


def _build(request: pytest.FixtureRequest) -> TinyProvider:
    merchant: Merchant = request.getfixturevalue("merchant")
    return TinyProvider(merchant.url, request.getfixturevalue("schedule"))


tiny = emulator_fixture(_build, name="tiny")
tiny_control = control_fixture("tiny", name="tiny_control")


def _create(server: HttpServer, note: str = "x") -> requests.Response:
    return requests.post(f"{server.url}/orders", json={"note": note}, timeout=5)


# --- tests ---------------------------------------------------------------------------------------


def test_a_5xx_fault_answers_once_without_processing_then_the_endpoint_works(
    tiny: HttpServer, tiny_control: ControlClient
) -> None:
    [added] = tiny_control.add_fault("create", "http_5xx", status=502)["added"]
    assert added == {
        "endpoint": "create",
        "fault": "http_5xx",
        "count": 1,
        "status": 502,
        "process": False,
    }
    assert tiny_control.faults() == [added]

    failed = _create(tiny)
    ok = _create(tiny)

    assert failed.status_code == 502
    assert "text/html" in failed.headers["Content-Type"]
    assert ok.status_code == 201
    assert ok.json() == {"id": "o1"}, "the faulted request was not processed"
    log = tiny_control.requests_log("create")
    assert [(e["fault"], e["processed"], e["order_id"]) for e in log["requests"]] == [
        ("http_5xx", False, None),
        (None, True, "o1"),
    ]
    assert log["counts"] == {"create": 2}
    assert tiny_control.faults() == []


def test_socket_faults_reset_the_connection_and_refuse_closes_the_port(
    tiny: HttpServer, tiny_control: ControlClient
) -> None:
    tiny_control.add_fault("create", "reset_before_read")
    with pytest.raises(requests.ConnectionError):
        _create(tiny)
    assert tiny_control.requests_log()["requests"][0]["fault"] == "reset_before_read"

    tiny_control.add_fault("create", "reset_after_read")
    with pytest.raises(requests.ConnectionError):
        _create(tiny)
    assert list(tiny.app.orders) == ["o1"], "reset_after_read processes the request"

    tiny_control.add_fault("*", "refuse", seconds=30)
    assert tiny.refusing
    with pytest.raises(requests.ConnectionError):
        _create(tiny)
    tiny.resume()
    assert not tiny.refusing
    assert _eventually_listening(tiny), "the port listens again after resume()"
    assert _create(tiny).status_code == 201


def _eventually_listening(server: HttpServer) -> bool:
    """True once a connection to ``server`` succeeds (its accept loop binds the port again
    between polls); False after ten seconds."""
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        try:
            socket.create_connection((server.host, server.port), timeout=1.0).close()
        except OSError:
            time.sleep(0.02)
            continue
        return True
    return False


def test_the_clock_expires_an_order_when_advanced_over_http(
    tiny: HttpServer, tiny_control: ControlClient
) -> None:
    order_id = _create(tiny).json()["id"]
    before = tiny_control.now()

    assert tiny_control.advance_clock(30) == []
    assert tiny.app.orders[order_id]["state"] == "open"
    assert tiny_control.advance_clock(31) == [order_id]
    assert tiny.app.orders[order_id]["state"] == "expired"

    after = datetime.strptime(tiny_control.now(), "%Y-%m-%dT%H:%M:%S")
    assert after - datetime.strptime(before, "%Y-%m-%dT%H:%M:%S") >= timedelta(seconds=61)
    tiny_control.reset()
    assert tiny.app.clock.offset == 0.0


def test_the_notifier_retries_until_the_merchant_answers_2xx(
    tiny: HttpServer, tiny_control: ControlClient, merchant: Merchant
) -> None:
    order_id = _create(tiny).json()["id"]
    tiny_control._call("POST", f"orders/{order_id}/pay")
    assert tiny_control.wait_for_deliveries(timeout=10)

    [delivery] = tiny_control.deliveries(order_id=order_id)
    assert delivery["state"] == "delivered"
    assert [a["http_status"] for a in delivery["attempts"]] == [503, 500, 204]
    assert delivery["status"] == "paid", "the message's labels are recorded"
    assert len(merchant.received) == 3
    headers, body = merchant.received[0]
    assert headers["User-Agent"] == "tiny-provider"
    assert json.loads(body) == {"order": order_id, "status": "paid"}
    assert tiny_control.deliveries(order_id="nope") == []


@pytest.mark.parametrize("merchant_statuses", [[302, 200]])
def test_a_schedule_can_give_a_reply_class_no_retry(
    tiny: HttpServer, tiny_control: ControlClient, merchant: Merchant
) -> None:
    tiny.app.notifier.schedule = RetrySchedule(
        [0.01] * 5, retries_for=lambda status: 0 if status in (301, 302, 303) else 5
    )
    order_id = _create(tiny).json()["id"]
    tiny_control._call("POST", f"orders/{order_id}/pay")
    assert tiny_control.wait_for_deliveries(timeout=10)

    [delivery] = tiny_control.deliveries()
    assert delivery["state"] == "failed"
    assert [a["http_status"] for a in delivery["attempts"]] == [302]
    assert len(merchant.received) == 1


@pytest.mark.parametrize("merchant_statuses", [[]])
def test_a_notification_fault_duplicates_the_delivery(
    tiny: HttpServer, tiny_control: ControlClient, merchant: Merchant
) -> None:
    tiny_control.add_fault(NOTIFICATION, "duplicate", times=2, status="paid")
    order_id = _create(tiny).json()["id"]
    tiny_control._call("POST", f"orders/{order_id}/pay")
    assert tiny_control.wait_for_deliveries(timeout=10)

    kinds = [d["kind"] for d in tiny_control.deliveries(order_id=order_id)]
    assert kinds == ["original", "duplicate", "duplicate"]
    assert len(merchant.received) == 3


def test_the_control_router_maps_errors_to_statuses(
    tiny: HttpServer, tiny_control: ControlClient
) -> None:
    with pytest.raises(EmulatorError) as unknown_route:
        tiny_control._call("GET", "no/such/route")
    with pytest.raises(EmulatorError) as unknown_order:
        tiny_control._call("POST", "orders/o99/pay")
    with pytest.raises(EmulatorError) as bad_fault:
        tiny_control.add_fault("create", "no_such_fault")
    with pytest.raises(EmulatorError) as bad_filter:
        tiny_control.add_fault("create", "http_5xx", order_id="o1")

    assert unknown_route.value.http_status == 404
    assert unknown_order.value.http_status == 404
    assert "o99" in str(unknown_order.value)
    assert bad_fault.value.http_status == 400
    assert "unknown fault" in str(bad_fault.value)
    assert bad_filter.value.http_status == 400
    reply = requests.post(f"{tiny.url}/_emulator/faults", data=b"[1]", timeout=5)
    assert reply.status_code == 400
    assert reply.json() == {"error": "each fault is an object"}


def test_retry_schedule_limits_and_jitter() -> None:
    fixed = RetrySchedule.fixed(60, 4)
    assert fixed.max_attempts == 4
    assert fixed.delays == (60.0, 60.0, 60.0)
    midtrans_like = RetrySchedule(
        [120, 600, 1800],
        retries_for=lambda status: {500: 1, 503: 4}.get(status or 0, 5),
        jitter=lambda delay: delay / 2,
        scale=0.001,
    )
    assert midtrans_like.retries_allowed(500) == 1
    assert midtrans_like.retries_allowed(503) == 3, "never more than the schedule has"
    assert midtrans_like.retries_allowed(None) == 3
    assert midtrans_like.delay(2) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="max_attempts"):
        RetrySchedule.fixed(1, 0)


# --- serve_endpoint, follow-up messages and sequences ----------------------------------------


class ServedTiny:
    """One endpoint (``/thing``) answered through :func:`serve_endpoint`, with a provider
    fault kind of its own (``teapot``, not processed, reshaped by the ``shape`` hook)."""

    def __init__(self) -> None:
        from gateway_core.emulation.faults import ENDPOINT_FAULT_SPECS

        self.socket_controller: SocketController | None = None
        self.catalogue = FaultCatalogue(
            {"thing"}, endpoint_specs={**ENDPOINT_FAULT_SPECS, "teapot": {}}
        )
        self.plan = FaultPlan()
        self.processed: list[str | None] = []
        self.stopping = threading.Event()

    def endpoint_for(self, path: str) -> str | None:
        return "thing" if path == "/thing" else None

    def take_fault(self, endpoint: str) -> Fault | None:
        return self.plan.take(endpoint)

    def record_request(self, endpoint: str, method: str, path: str, **details: Any) -> None:
        pass

    def tick(self) -> None:
        pass

    def close(self) -> None:
        self.stopping.set()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        from gateway_core.emulation.serving import Reply, serve_endpoint

        def handle(fault: Fault | None) -> Reply:
            self.processed.append(fault.kind if fault else None)
            return Reply(200, json.dumps({"n": len(self.processed)}).encode())

        def shape(fault: Fault, real: Reply | None) -> Reply | None:
            return Reply(418, b'{"teapot": true}') if fault.kind == "teapot" else None

        served = serve_endpoint(
            environ,
            start_response,
            "thing",
            self.plan,
            handle,
            stopping=self.stopping,
            unprocessed=("teapot",),
            shape=shape,
        )
        return served.body


def test_serve_endpoint_applies_the_common_faults_and_the_providers_own() -> None:
    app = ServedTiny()
    with HttpServer(app) as server:
        url = f"{server.url}/thing"
        for kind in ("http_5xx", "malformed_json", "teapot", "reset_after_read"):
            app.plan.add(app.catalogue.make("thing", kind))
        assert requests.get(url, timeout=5).status_code == 503
        truncated = requests.get(url, timeout=5)
        assert truncated.status_code == 200
        assert truncated.text == json.dumps({"n": 1})[:4], "processed, then cut in half"
        teapot = requests.get(url, timeout=5)
        assert (teapot.status_code, teapot.json()) == (418, {"teapot": True})
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=5)
        assert requests.get(url, timeout=5).json() == {"n": 3}
    # the handler ran for malformed_json and reset_after_read (and saw them), not for the others
    assert app.processed == ["malformed_json", "reset_after_read", None]


class SlowFirstMerchant:
    """Records each notification body when its reply is done; the body ``A`` is answered
    slowly, first with 503."""

    def __init__(self) -> None:
        self.done: list[bytes] = []
        self.seen_a = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = 200
                if body == b"A":
                    outer.seen_a += 1
                    if outer.seen_a == 1:
                        time.sleep(0.3)  # the merchant is slow, not the test's assertion
                        status = 503
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                outer.done.append(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_sequence_keeps_first_attempts_in_order_and_retries_hold_nothing_back() -> None:
    shop = SlowFirstMerchant()
    notifier = Notifier(schedule=RetrySchedule([0.2]), now=lambda: "now")
    try:
        for body in (b"A", b"B"):
            notifier.submit(
                NotificationPlan(url=shop.url, message=Message(body), sequence="order-1")
            )
        assert notifier.wait(10)
    finally:
        notifier.close()
        shop.close()
    assert shop.done == [b"A", b"B", b"A"]


def test_followups_are_delivered_in_order_after_the_main_message() -> None:
    shop = SlowFirstMerchant()
    notifier = Notifier(schedule=RetrySchedule([0.01]), now=lambda: "now")
    try:
        records = notifier.submit(
            NotificationPlan(
                url=shop.url,
                message=Message(b"M", labels={"event": "refund"}),
                followups=[Message(b"F1"), Message(b"F2")],
                duplicates=1,
            )
        )
        assert notifier.wait(10)
    finally:
        notifier.close()
        shop.close()
    assert [r.kind for r in records] == ["original", "followup", "followup", "duplicate"]
    assert shop.done == [b"M", b"F1", b"F2", b"M"]
