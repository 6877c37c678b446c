"""The multi-node proof: two ``gateway serve`` and two ``gateway worker`` processes (the
``gateway`` console script, one TOML file) on one PostgreSQL schema, the Faspay emulator
(``gateway emulator faspay_dana``) notifying through a loopback round-robin proxy (the load
balancer) in front of the two web processes, and the RabbitMQ relay publishing every event to
the test's own exchange, read by a consumer thread that applies each event once (the
documented consumer example: dedupe by message id).

The storm: a few hundred payments created by the checkout (this test process), then paid at
the emulator with every notification duplicated (some as concurrent bursts, which the proxy
spreads over both web processes) and some notifications lost altogether (``drop``: only the
workers' reconciliation can settle those); in the middle one web process and one worker are
SIGKILLed. At the end every payment the emulator paid is paid in the ledger, with one paid
transition; exactly one paid event per order reached the broker consumer and the in-process
hook after dedupe by id (raw counts printed: the at-least-once window); the outbox is drained
(ledger and the surviving web process's ``gateway_outbox_backlog``); the surviving web
process's ``/metrics`` counted exactly the notifications the proxy handed it.

The second test kills a worker while it holds event leases: the other worker delivers them
once the lease ends, and the consumer's dedupe leaves exactly one effect per event.

Every wait is a ceiling on how long a broken run may hang, never an assertion about speed;
the figures (throughput, p99 latency, drain time) are printed (``pytest -s``).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from multinode_support import (
    BROKER_URL,
    EventConsumer,
    GatewayProcess,
    LedgerProbe,
    RoundRobinProxy,
    percentile,
    require_broker,
    scrape,
    start_emulator,
    start_serve,
    start_worker,
    total,
)
from worker_support import deliveries, seed_backlog, wait_until, write_config

from gateway_core import Customer, Money, PaymentRequest, PluginHost, Settings
from gateway_core._runtime import build_runtime
from gateway_core.ledger import Ledger

pytestmark = pytest.mark.postgres

PAYMENTS = 300  # paid at the emulator (the test's length is mostly the 60 s inline lease)
PAY_RATE = 150.0  # payments a second at the emulator during the storm
DROP_EVERY = 8  # every 8th payment's notifications are all lost
BURST_EVERY = 5  # every 5th (not dropped) comes as 3 concurrent copies; the rest twice
PASSWORD = "multinode-pw-7Kq2"
INBOUND = "gateway_inbound_messages_total"


@pytest.fixture
def schema(suite: Any) -> Iterator[str]:
    suite.require_postgres()
    require_broker()
    name = f"gw_multinode_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        suite.drop_schema(name)


def _ledger_url(suite: Any, schema: str) -> str:
    return str(suite.Store("postgres", suite.POSTGRES_URL, schema).url)


def _dana(emulator_url: str) -> dict[str, Any]:
    return {
        "provider": "faspay_dana",
        "merchant_id": "99999",
        "merchant_name": "Sophia Store",
        "password": PASSWORD,
        "base_url": emulator_url,
        "read_timeout": 5.0,
        "deadline": 10.0,
    }


def _config(path: Path, ledger_url: str, emulator_url: str, exchange: str) -> Path:
    """The one file every ``gateway`` process of the deployment reads."""
    return write_config(
        path,
        {
            "ledger": {"url": ledger_url},
            "service": {
                "metrics": True,
                "reconcile_grace_seconds": 2,
                # A killed web process's events go to a worker after 5 s, not 60.
                "inline_lease_seconds": 5,
            },
            "providers.dana": _dana(emulator_url),
            "worker": {
                "tick_seconds": 0.1,
                "deliver_batch": 50,
                "event_lease_seconds": 5,
                "reconcile_interval_seconds": 1,
                "reconcile_batch": 50,
                "reconcile_lease_seconds": 4,
                "inquiry_rate": 15.0,
                "inquiry_burst": 15,
                "refunds": False,
            },
            "plugins.rabbitmq_relay": {"url": BROKER_URL, "exchange": exchange, "declare": True},
        },
    )


def _create(runtime: Any, count: int, run: str) -> list[str]:
    """The checkout: ``count`` payments started on gateway ``dana``; their bill numbers."""

    def one(n: int) -> str:
        request = PaymentRequest(
            order_reference=f"MN-{run}-{n}",
            amount=Money("2000", "IDR"),
            customer=Customer("Budi", email="budi@example.com", phone="081234567890"),
            description=f"Order {n}",
            return_url="https://shop.example/payments/return/dana",
        )
        started = runtime.service.start_payment("dana", request)
        return str(started.payment.merchant_reference)

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(count)))


def _faults(bills: list[str]) -> tuple[list[dict[str, Any]], set[str]]:
    faults: list[dict[str, Any]] = []
    dropped = set()
    for n, bill in enumerate(bills):
        base = {"endpoint": "notification", "bill_no": bill}
        if n % DROP_EVERY == DROP_EVERY - 1:
            faults.append({**base, "fault": "drop"})
            dropped.add(bill)
        elif n % BURST_EVERY == 0:
            faults.append({**base, "fault": "burst", "times": 3})
        else:
            faults.append({**base, "fault": "duplicate", "times": 1})
    return faults, dropped


@pytest.mark.slow
def test_two_web_processes_and_two_workers_settle_a_storm_through_kills(
    suite: Any, schema: str, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    consumer = EventConsumer(tmp_path / "orders.db")
    proxy = RoundRobinProxy().start()
    processes: list[GatewayProcess] = []
    probe = LedgerProbe(suite.POSTGRES_URL, schema)
    logs = {name: tmp_path / f"{name}.hooks.jsonl" for name in ("web1", "web2", "wk1", "wk2")}
    try:
        emulator = start_emulator(tmp_path, PASSWORD, f"{proxy.url}/notify/dana")
        processes.append(emulator)
        ledger_url = _ledger_url(suite, schema)
        config = _config(tmp_path / "gateway.toml", ledger_url, emulator.url, consumer.exchange)
        # The checkout (this process) starts payments with the same ledger and gateway, and
        # no hook (no relay table, no order-system plugin): their "created" events are the
        # workers' to deliver.
        checkout = build_runtime(
            Settings.from_mapping(
                {"ledger": {"url": ledger_url}, "providers": {"dana": _dana(emulator.url)}}
            ),
            host=PluginHost(),  # the provider; the relay stays off without its table
            environ={},
            metrics=False,
        )
        web1 = start_serve("web1", config, tmp_path, logs["web1"])
        processes.append(web1)
        web1.wait_ready()  # the first one migrates the schema; the others find it done
        web2 = start_serve("web2", config, tmp_path, logs["web2"])
        wk1 = start_worker("wk1", config, tmp_path, logs["wk1"])
        wk2 = start_worker("wk2", config, tmp_path, logs["wk2"])
        processes += [web2, wk1, wk2]
        for process in (web2, wk1, wk2):
            process.wait_ready()
        proxy.backends = [("127.0.0.1", int(web.url.rsplit(":", 1)[1])) for web in (web1, web2)]

        started = time.monotonic()
        bills = _create(checkout, PAYMENTS, run)
        create_seconds = time.monotonic() - started
        faults, dropped = _faults(bills)
        control = f"{emulator.url}/_emulator"
        requests.post(f"{control}/faults", json={"faults": faults}, timeout=30).raise_for_status()
        before = scrape(web2.url)

        # The storm: pay every bill at the emulator, at a steady pace; halfway, SIGKILL a web
        # process and a worker (whatever they hold: requests, leases, deferred marks).
        session = requests.Session()
        storm_start = time.monotonic()
        killed_at = 0.0
        for n, bill in enumerate(bills):
            due = storm_start + n / PAY_RATE
            time.sleep(max(0.0, due - time.monotonic()))
            session.post(f"{control}/bills/{bill}/pay", json={}, timeout=30).raise_for_status()
            if n == len(bills) // 2:
                web1.sigkill()
                wk1.sigkill()
                killed_at = time.monotonic()
        storm_end = time.monotonic()

        paid_at_emulator = {
            b["bill_no"]
            for b in session.get(f"{control}/bills", timeout=30).json()["bills"]
            if str(b["status"]) == "2"
        }
        assert paid_at_emulator == set(bills)

        def settled() -> bool:
            statuses = probe.statuses()
            return all(statuses.get(bill) == "paid" for bill in paid_at_emulator)

        wait_until(settled, 120, "every bill the emulator paid is paid in the ledger")
        settled_at = time.monotonic()

        # (seconds after the storm, undelivered in the ledger, web2's gateway_outbox_backlog)
        backlog: list[tuple[float, int, int]] = []

        def drained() -> bool:
            time.sleep(0.2)  # a few scrapes a second
            gauge = round(total(scrape(web2.url), "gateway_outbox_backlog"))  # also writes
            # the survivor's deferred delivery marks
            backlog.append((time.monotonic() - storm_end, probe.undelivered(), gauge))
            return backlog[-1][1] == 0

        wait_until(drained, 150, "the outbox drained")
        drained_at = time.monotonic()
        paid_ids = {f"dana:{bill}:paid" for bill in bills}
        wait_until(
            lambda: paid_ids <= set(consumer.message_ids()), 60, "every paid event at the broker"
        )
        wait_until(
            lambda: requests.post(f"{control}/wait", json={"timeout": 5}, timeout=10).json()[
                "idle"
            ],
            60,
            "the emulator's notification jobs finished",
        )
        emulator_deliveries = session.get(f"{control}/deliveries", timeout=30).json()
        after = scrape(web2.url)
        for process in (web2, wk2):
            assert process.stop() == 0, process.stderr()
        time.sleep(0.5)  # the last publishes' messages reach the consumer
    finally:
        for process in processes:
            process.kill()
        proxy.stop()
        consumer.close()
        if "checkout" in locals():
            checkout.close()
    try:
        probe_paid = probe.paid_transitions()
        sources = probe.paid_sources()
    finally:
        probe.close()

    # Every payment the emulator paid is paid in the ledger, by exactly one transition.
    assert set(probe_paid) == set(bills)
    assert [ref for ref, n in probe_paid.items() if n != 1] == []

    # Exactly one paid event per order reached the consumer, after dedupe by message id.
    raw = consumer.message_ids()
    raw_paid = [m for m in raw if m.endswith(":paid")]
    effects = consumer.effects()
    paid_effects = Counter(order for order, kind, _ in effects if kind == "paid")
    assert set(raw_paid) == paid_ids
    assert sorted(paid_effects) == sorted(f"MN-{run}-{n}" for n in range(PAYMENTS))
    assert set(paid_effects.values()) == {1}
    assert len(effects) == len(set(raw))  # one effect per message id, whatever the copies

    # ... and the in-process hook (the worker_hooks plugin in all four processes).
    hooked = [d for d in deliveries(*logs.values()) if d["kind"] == "paid"]
    hooked_ids = Counter(d["event_id"] for d in hooked)
    assert set(hooked_ids) == paid_ids
    per_order = Counter(d["order_reference"] for d in hooked)
    assert len(per_order) == PAYMENTS

    # The survivor's /metrics counted exactly the notifications the proxy handed it.
    def delta(**labels: str) -> int:
        return round(total(after, INBOUND, **labels) - total(before, INBOUND, **labels))

    survivor = delta(kind="notification")
    assert survivor == proxy.replied(1)
    assert delta(kind="notification", verdict="applied") >= 1
    assert total(after, "gateway_ledger_up") == 1  # the ledger read worked: absent is zero
    assert round(total(after, "gateway_outbox_backlog")) == 0

    attempts = [a for d in emulator_deliveries["deliveries"] for a in d["attempts"]]
    answered = [a for a in attempts if a["http_status"] is not None]
    elapsed = [float(a["elapsed"]) for a in answered]
    handled = proxy.replied(0) + proxy.replied(1)
    storm = storm_end - storm_start
    print(
        f"\nmulti-node: {PAYMENTS} payments created in {create_seconds:.1f} s by the checkout; "
        f"storm {storm:.1f} s ({PAY_RATE:g} payments/s), web1 and wk1 SIGKILLed at "
        f"{killed_at - storm_start:.1f} s"
    )
    print(
        f"notifications answered: {handled} ({proxy.replied(0)} by web1, {proxy.replied(1)} by "
        f"web2), {proxy.throughput():.0f}/s from the first to the last; "
        f"{len(attempts)} attempts, {len(attempts) - len(answered)} unanswered "
        f"({len(dropped)} bills dropped, 4 attempts each, and those cut by the kill)"
    )
    print(
        f"latency p50/p99/max: proxy {percentile(proxy.latencies(), 0.5) * 1000:.0f}/"
        f"{percentile(proxy.latencies(), 0.99) * 1000:.0f}/"
        f"{max(proxy.latencies()) * 1000:.0f} ms, emulator "
        f"{percentile(elapsed, 0.5) * 1000:.0f}/{percentile(elapsed, 0.99) * 1000:.0f} ms"
    )
    print(
        f"web2 /metrics delta: {survivor} notifications = "
        f"applied {delta(kind='notification', verdict='applied')} + duplicate "
        f"{delta(kind='notification', verdict='duplicate')} + rejected "
        f"{delta(kind='notification', verdict='rejected')} (proxy: {proxy.replied(1)})"
    )
    print(f"answered per second of the storm and after: {proxy.per_second(storm_start)}")
    failures = Counter(
        str(a["error"]).split(":")[0]
        for a in attempts
        if a["error"] and "dropped" not in a["error"]
    )
    print(f"failed attempts (not dropped) by error: {dict(failures)}")
    print(f"paid transitions by source: {dict(sorted(sources.items()))}")
    print(
        f"backlog (undelivered events) when all were paid: {backlog[0][1]} in the ledger, "
        f"{backlog[0][2]} in web2's gateway_outbox_backlog, {settled_at - storm_end:.1f} s "
        f"after the storm (what the killed web process held)"
    )
    print(
        f"all paid in the ledger {settled_at - storm_end:.1f} s after the storm; outbox drained "
        f"{drained_at - storm_end:.1f} s after the storm ({drained_at - killed_at:.1f} s after "
        f"the kill; a killed web process's events wait for their inline lease, 5 s here)"
    )
    print(
        f"broker: {len(raw)} deliveries, {len(set(raw))} distinct ids, paid {len(raw_paid)} raw "
        f"for {len(set(raw_paid))} orders; hook: {len(hooked)} paid deliveries for "
        f"{len(hooked_ids)} events"
    )


def test_a_worker_killed_holding_leases_leaves_one_effect_per_event(
    suite: Any, schema: str, tmp_path: Path
) -> None:
    consumer = EventConsumer(tmp_path / "orders.db")
    store = suite.Store("postgres", suite.POSTGRES_URL, schema)
    config = write_config(
        tmp_path / "gateway.toml",
        {
            "ledger": {"url": store.url},
            "worker": {
                "tick_seconds": 0.05,
                "deliver_batch": 5,
                "event_lease_seconds": 3,
                "reconcile": False,
                "refunds": False,
            },
            "plugins.rabbitmq_relay": {"url": BROKER_URL, "exchange": consumer.exchange},
        },
    )
    log_a, log_b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a = b = None
    ledger: Ledger = store.open()
    try:
        ledger.migrate()
        ids = seed_backlog(ledger, 20, prefix="LEASE")
        a = start_worker("wk-a", config, tmp_path, log_a, delay=0.3).wait_ready()
        wait_until(lambda: len(deliveries(log_a)) >= 3, 30, "worker A delivering")
        a.sigkill()
        killed = datetime.now(UTC)
        leased = {e.event_id for e in ledger.outbox(delivered=False) if e.next_attempt_at > killed}
        assert leased, "worker A died holding no lease"
        b = start_worker("wk-b", config, tmp_path, log_b).wait_ready()
        wait_until(lambda: not ledger.outbox(delivered=False), 30, "worker B drained the outbox")
        wait_until(lambda: set(ids) <= set(consumer.message_ids()), 30, "all at the broker")
        assert b.stop() == 0, b.stderr()
        time.sleep(0.3)
    finally:
        for process in (a, b):
            if process is not None:
                process.kill()
        ledger.close()
        consumer.close()
    raw = Counter(consumer.message_ids())
    effects = consumer.effects()
    by_b = Counter(d["event_id"] for d in deliveries(log_b))
    by_a = {d["event_id"] for d in deliveries(log_a)}
    assert set(raw) == set(ids)
    assert sorted(event_id for _, _, event_id in effects) == sorted(ids)  # one effect each
    assert set(by_b.values()) == {1}  # B delivered nothing twice
    assert leased <= set(by_b)  # what A held went to B after the lease
    twice = {event_id for event_id, n in raw.items() if n > 1}
    assert twice <= leased | by_a  # copies only of what A had in hand: the window
    print(
        f"\nworker killed holding {len(leased)} leases: broker got {sum(raw.values())} messages "
        f"for {len(raw)} events ({len(twice)} published twice), consumer applied {len(effects)}"
    )
