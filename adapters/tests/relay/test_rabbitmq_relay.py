"""The RabbitMQ relay (``adapters/rabbitmq_relay``) against the machine's real RabbitMQ: each
test declares its own exchange and queues (uuid names) and deletes them; the broker's own
configuration is never touched. Outages go through a loopback TCP proxy the test stops and
restarts (the broker itself keeps running).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from relay_support import PASSWORD, Broker, TcpProxy, broker, broker_url

from gateway_core import (
    ConfigurationError,
    Customer,
    EventKind,
    Money,
    PaymentRequest,
    PaymentStatus,
    PluginHost,
    Settings,
    build_runtime,
)
from gateway_core._runtime import Runtime
from gateway_core.testing import FakeGateway, HookRecorder
from gateway_rabbitmq_relay import SCHEMA, RabbitRelay, RelayConfig, RelayError

ROOT = Path(__file__).resolve().parents[3]
SENTINEL = "S3NT1NEL-amqp-Qw7Zr2"  # a password that must never be printed


@pytest.fixture
def rabbit() -> Iterator[Broker]:
    with broker() as made:
        yield made


def make_runtime(
    tmp_path: Path,
    relay: Mapping[str, Any] | None,
    *,
    recorder: HookRecorder | None = None,
    environ: Mapping[str, str] | None = None,
) -> Runtime:
    host = PluginHost()  # the installed plugins: the relay is found by its entry point
    host.registry.add(FakeGateway)
    settings = Settings(
        providers={"shop": {"provider": "fake"}},
        ledger_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        plugins={} if relay is None else {"rabbitmq_relay": dict(relay)},
    )
    return build_runtime(
        settings, host=host, plugins=[recorder] if recorder else [], environ=environ or {}
    )


def relay_settings(url: str, exchange: str, **more: Any) -> dict[str, Any]:
    return {"url": url, "exchange": exchange, "declare": True, "reconnect_delay": 0, **more}


def pay(runtime: Runtime, order: str) -> str:
    """Start a payment for ``order`` and pay it by a notification; its merchant reference."""
    started = runtime.service.start_payment(
        "shop",
        PaymentRequest(
            order_reference=order,
            amount=Money("12.50", "USD"),
            customer=Customer("Ana"),
            description=order,
            return_url="https://shop.invalid/return",
        ),
    )
    reference = started.payment.merchant_reference
    gateway = runtime.gateways["shop"]
    assert isinstance(gateway, FakeGateway)
    gateway.settle(reference, PaymentStatus.PAID)
    body, headers = gateway.notification(reference, PaymentStatus.PAID)
    runtime.service.handle_notification("shop", body, headers)
    runtime.service.handle_notification("shop", body, headers)  # a duplicate: no new event
    return reference


def outbox(runtime: Runtime, *, delivered: bool) -> list[Any]:
    runtime.ledger.flush()  # inline deliveries' marks go with the next write
    return runtime.ledger.outbox(delivered=delivered)


def test_unconfigured_the_relay_implements_no_hook_and_claims_nothing(tmp_path: Path) -> None:
    host = PluginHost()
    assert "rabbitmq_relay" in host.plugin_names()  # installed and loaded...
    assert not any(host.hooks.handles(kind) for kind in EventKind)  # ...but idle
    with make_runtime(tmp_path, None) as runtime:
        assert "rabbitmq_relay.publisher" not in runtime.host.plugin_names()
        pay(runtime, "ORDER-IDLE")
        report = runtime.service.redeliver(force=True)
        assert (report.delivered, report.failed) == (0, 0)
        waiting = outbox(runtime, delivered=False)
        assert {e.kind for e in waiting} == {EventKind.CREATED, EventKind.PAID}
        assert all(e.attempts == 0 and not e.last_error for e in waiting)  # never claimed


def test_the_environment_alone_enables_it_and_a_table_nobody_reads_is_an_error(
    tmp_path: Path,
) -> None:
    with make_runtime(tmp_path, None, environ={"GATEWAY_RABBITMQ_URL": broker_url()}) as runtime:
        assert "rabbitmq_relay.publisher" in runtime.host.plugin_names()
        assert all(runtime.host.hooks.handles(kind) for kind in EventKind)
    host = PluginHost()
    settings = Settings(plugins={"rabbitmq_rely": {"url": broker_url()}})
    with pytest.raises(ConfigurationError, match=r"no installed plugin reads \[plugins.rabbitmq_r"):
        build_runtime(settings, host=host, environ={})


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"exchange": "x"}, r"'url' \(or \$GATEWAY_RABBITMQ_URL\) is required"),
        ({"url": f"http://guest:{SENTINEL}@h/"}, "must be an amqp:// or amqps:// URL"),
        ({"url": f"amqp://guest:{SENTINEL}@h/", "routing_key": "{order}"}, "may use only"),
        ({"url": f"amqp://guest:{SENTINEL}@h/", "exchnage": "x"}, "did you mean 'exchange'"),
        ({"url": f"amqp://guest:{SENTINEL}@h/", "heartbeat": "often"}, "must be an integer"),
    ],
)
def test_configuration_errors_name_the_key_and_never_the_password(
    tmp_path: Path, table: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        make_runtime(tmp_path, table)
    assert SENTINEL not in str(caught.value)
    assert SENTINEL not in repr(Settings(plugins={"rabbitmq_relay": table}))


def test_a_paid_payment_publishes_exactly_the_events_the_hooks_see(
    tmp_path: Path, rabbit: Broker
) -> None:
    exchange = rabbit.exchange()
    queue = rabbit.queue(exchange)
    only_paid = rabbit.queue(exchange, "shop.paid")
    recorder = HookRecorder()
    table = relay_settings(broker_url(), exchange, routing_key="{gateway}.{kind}")
    with make_runtime(tmp_path, table, recorder=recorder) as runtime:
        reference = pay(runtime, "ORDER-1")
        assert outbox(runtime, delivered=False) == []
    seen = recorder.events
    assert [e.kind for e in seen] == [EventKind.CREATED, EventKind.PAID]
    messages = rabbit.drain(queue)
    assert [p.message_id for _, p, _ in messages] == [e.event_id for e in seen]
    assert [m.routing_key for m, _, _ in messages] == ["shop.created", "shop.paid"]
    for (_, properties, body), event in zip(messages, seen, strict=True):
        assert properties.delivery_mode == 2  # persistent
        assert properties.content_type == "application/json"
        assert properties.type == SCHEMA
        document = json.loads(body)
        assert document == {
            "schema": SCHEMA,
            "event_id": event.event_id,
            "kind": event.kind.value,
            "gateway": "shop",
            "provider": "fake",
            "order_reference": "ORDER-1",
            "merchant_reference": reference,
            "provider_reference": event.provider_reference,
            "status": event.status.value,
            "previous_status": event.previous_status and event.previous_status.value,
            "amount": {"amount": "12.50", "currency": "USD"},
            "occurred_at": event.occurred_at.isoformat(),
            "reason": "",
            "provider_kind": "",
            "event_amount": None,
            "refund_key": "",
        }
    assert json.loads(messages[1][2])["status"] == "paid"
    assert [p.message_id for _, p, _ in rabbit.drain(only_paid)] == [seen[1].event_id]


def _consumer_example() -> Any:
    path = ROOT / "docs" / "examples" / "rabbitmq_consumer.py"
    spec = importlib.util.spec_from_file_location("rabbitmq_consumer_example", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_consumer_example_applies_each_event_once(tmp_path: Path, rabbit: Broker) -> None:
    example = _consumer_example()
    exchange = rabbit.exchange()
    queue = f"test.relay.consumer.{exchange.rsplit('.', 1)[1]}"
    rabbit.adopt_queue(queue)
    database = str(tmp_path / "orders.db")
    assert example.consume(broker_url(), exchange, queue, database, idle_timeout=0.2) == 0
    recorder = HookRecorder()
    with make_runtime(tmp_path, relay_settings(broker_url(), exchange), recorder=recorder) as rt:
        pay(rt, "ORDER-A")
        pay(rt, "ORDER-B")
        relay = rt.host.pm.get_plugin("rabbitmq_relay.publisher")
        assert isinstance(relay, RabbitRelay)
        for event in recorder.events:  # every event published a second time: redeliveries
            relay.publish(event)
    applied = example.consume(broker_url(), exchange, queue, database, idle_timeout=0.5)
    assert applied == 4  # created and paid, for two orders; the four duplicates skipped
    with sqlite3.connect(database) as db:
        rows = sorted(db.execute("SELECT order_reference, kind, amount FROM order_events"))
        ids = {row[0] for row in db.execute("SELECT message_id FROM applied_events")}
    assert rows == [
        ("ORDER-A", "created", "12.50"),
        ("ORDER-A", "paid", "12.50"),
        ("ORDER-B", "created", "12.50"),
        ("ORDER-B", "paid", "12.50"),
    ]
    assert ids == {e.event_id for e in recorder.events}
    assert rabbit.drain(queue) == []  # every message, duplicates too, acknowledged


def test_events_wait_in_the_outbox_while_the_broker_is_unreachable_and_go_out_when_it_is_back(
    tmp_path: Path, rabbit: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    exchange = rabbit.exchange()
    queue = rabbit.queue(exchange)
    proxy = TcpProxy().start()
    recorder = HookRecorder()
    caplog.set_level(logging.DEBUG)
    try:
        table = relay_settings(proxy.url, exchange, connect_timeout=2)
        with make_runtime(tmp_path, table, recorder=recorder) as runtime:
            pay(runtime, "ORDER-BEFORE")
            assert outbox(runtime, delivered=False) == []
            proxy.stop()  # the broker is unreachable: the port refuses, the connection is cut
            for n in range(3):
                pay(runtime, f"ORDER-DOWN-{n}")
            report = runtime.service.redeliver(force=True)  # still down: each attempt fails
            assert report.delivered == 0
            assert report.failed == 6
            waiting = outbox(runtime, delivered=False)
            assert len(waiting) == 6
            for event in waiting:
                assert event.attempts >= 2
                assert "not published" in event.last_error
                assert f"RabbitMQ at 127.0.0.1:{proxy.port}" in event.last_error
            proxy.start()  # back, on the same port
            report = runtime.service.redeliver(force=True)
            assert (report.delivered, report.failed) == (6, 0)
            assert outbox(runtime, delivered=False) == []
            delivered = outbox(runtime, delivered=True)
    finally:
        proxy.stop()
    published = [p.message_id for _, p, _ in rabbit.drain(queue)]
    assert sorted(published) == sorted(e.event_id for e in delivered)  # every event once
    assert len(published) == len(set(published)) == 8
    assert sum(e.kind is EventKind.PAID for e in recorder.events) >= 4  # hooks ran too
    assert PASSWORD not in caplog.text


def test_a_connection_cut_while_idle_is_replaced_without_losing_the_event(
    tmp_path: Path, rabbit: Broker
) -> None:
    exchange = rabbit.exchange()
    queue = rabbit.queue(exchange)
    proxy = TcpProxy().start()
    try:
        with make_runtime(tmp_path, relay_settings(proxy.url, exchange)) as runtime:
            pay(runtime, "ORDER-1")
            proxy.cut()  # as the broker does to a connection idle past its heartbeat
            pay(runtime, "ORDER-2")
            assert outbox(runtime, delivered=False) == []
            assert proxy.accepted == 2
    finally:
        proxy.stop()
    assert len(rabbit.drain(queue)) == 4


def test_a_broker_that_never_answers_costs_a_bounded_attempt(tmp_path: Path) -> None:
    silent = socket.socket()  # accepts connections (the kernel's backlog) and says nothing
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        url = broker_url(silent.getsockname()[1])
        table = relay_settings(url, "gateway.events", connect_timeout=0.3)
        with make_runtime(tmp_path, table) as runtime:
            pay(runtime, "ORDER-SILENT")
            waiting = outbox(runtime, delivered=False)
            assert {e.kind for e in waiting} == {EventKind.CREATED, EventKind.PAID}
            assert all("not published" in e.last_error for e in waiting)
    finally:
        silent.close()


def test_an_unroutable_event_stays_in_the_outbox_until_a_queue_is_bound(
    tmp_path: Path, rabbit: Broker
) -> None:
    exchange = rabbit.exchange()  # no queue bound yet
    with make_runtime(tmp_path, relay_settings(broker_url(), exchange)) as runtime:
        pay(runtime, "ORDER-LOST")
        waiting = outbox(runtime, delivered=False)
        assert {e.kind for e in waiting} == {EventKind.CREATED, EventKind.PAID}
        assert all("unroutable" in e.last_error for e in waiting)
        queue = rabbit.queue(exchange)
        assert runtime.service.redeliver(force=True).delivered == 2
        assert outbox(runtime, delivered=False) == []
    assert len(rabbit.drain(queue)) == 2


def test_a_nacked_event_stays_in_the_outbox(tmp_path: Path, rabbit: Broker) -> None:
    exchange = rabbit.exchange()
    # A queue that is full from the start and refuses publishes: the broker nacks them.
    rabbit.queue(exchange, **{"x-max-length": 0, "x-overflow": "reject-publish"})
    with make_runtime(tmp_path, relay_settings(broker_url(), exchange)) as runtime:
        pay(runtime, "ORDER-NACK")
        waiting = outbox(runtime, delivered=False)
        assert {e.kind for e in waiting} == {EventKind.CREATED, EventKind.PAID}
        assert all("negative publisher confirm" in e.last_error for e in waiting)


def test_a_refused_login_keeps_the_event_and_never_shows_the_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from relay_support import require_broker

    require_broker()
    caplog.set_level(logging.DEBUG)
    url = broker_url().replace(f":{PASSWORD}@", f":{SENTINEL}@")
    with make_runtime(tmp_path, relay_settings(url, "gateway.events")) as runtime:
        relay = runtime.host.pm.get_plugin("rabbitmq_relay.publisher")
        pay(runtime, "ORDER-AUTH")
        waiting = outbox(runtime, delivered=False)
        assert len(waiting) == 2
        assert all("not published" in e.last_error for e in waiting)
        shown = [repr(relay), repr(relay.config), *(e.last_error for e in waiting), caplog.text]
    assert not [text for text in shown if SENTINEL in text]
    with pytest.raises(RelayError) as caught:
        RabbitRelay(RelayConfig(url=url, reconnect_delay=0)).publish(waiting[0].to_event())
    assert SENTINEL not in str(caught.value)


def test_gateway_redeliver_publishes_the_backlog_with_the_relay_configured_in_the_file(
    tmp_path: Path, rabbit: Broker
) -> None:
    exchange = rabbit.exchange()
    queue = rabbit.queue(exchange)
    with make_runtime(tmp_path, None) as runtime:  # relay not configured: events wait
        pay(runtime, "ORDER-CLI")
        waiting = [e.event_id for e in outbox(runtime, delivered=False)]
    assert len(waiting) == 2
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[ledger]\nurl = "sqlite:///{tmp_path / "ledger.db"}"\n\n'
        f'[plugins.rabbitmq_relay]\nexchange = "{exchange}"\n',
        encoding="utf-8",
    )
    env = {**os.environ, "GATEWAY_RABBITMQ_URL": broker_url()}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "gateway"), "--config", str(config), "redeliver"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "delivered=2" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr
    assert sorted(p.message_id for _, p, _ in rabbit.drain(queue)) == sorted(waiting)
