"""Prometheus metrics (``gateway_core.metrics``) and JSON log lines, end to end.

The storm test runs a real ``gateway serve --metrics`` process on loopback in front of the
Faspay emulator, scrapes ``/metrics`` over HTTP before and after a storm of first deliveries,
duplicates, forgeries and notifications for unknown bills, and checks that the counters moved
by exactly what the test sent. The others drive the in-process stack (emulator over loopback,
real SQLite file): provider-call latency, retries and outcomes with injected faults, the outbox
backlog gauges with a failing hook, reconcile results, JSON logs, and the library without
``prometheus_client`` installed.
"""

from __future__ import annotations

import concurrent.futures
import io
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from gateway_core import Customer, Money, OutcomeUnknown, PaymentRequest, Settings
from gateway_core._json_logs import use_json_logs
from gateway_core._redact import get_logger, register_secret
from gateway_core._runtime import build_runtime
from gateway_core._service import ServicePolicy
from gateway_core.metrics import (
    Metrics,
    metrics_from_settings,
    metrics_route,
    metrics_wsgi_app,
    switch_metrics,
)
from gateway_faspay_dana.testing import signed_notification

ROOT = Path(__file__).resolve().parents[3]
GATEWAY = (sys.executable, "-m", "gateway_core.cli")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, by (name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples.items() if n == name and wanted <= found)


def scrape(url: str) -> Samples:
    response = requests.get(url, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    return parse(response.text)


def rendered(metrics: Metrics) -> Samples:
    body, _ = metrics.render()
    return parse(body.decode("utf-8"))


@pytest.fixture
def metered(sqlite_stack: Any) -> Iterator[tuple[Any, Metrics]]:
    """The in-process stack with metrics switched on (as ``gateway serve --metrics`` does)."""
    metrics = switch_metrics(sqlite_stack.service, sqlite_stack.ledger, True)
    assert isinstance(metrics, Metrics)
    try:
        yield sqlite_stack, metrics
    finally:
        metrics.close()


# -- the storm, against a real `gateway serve --metrics` ----------------------------------------


def _request(order: str) -> PaymentRequest:
    return PaymentRequest(
        order_reference=order,
        amount=Money("2000", "IDR"),
        customer=Customer("Budi", email="budi@example.com", phone="081234567890"),
        description=f"Order {order}",
        return_url="http://127.0.0.1:9/return/dana",
    )


@pytest.fixture
def served(tmp_path: Path, suite: Any) -> Iterator[dict[str, Any]]:
    """The Faspay emulator, a configuration with ``[service] metrics = true`` and
    ``log_format = "json"``, and a ``gateway serve`` process on it."""
    from gateway_faspay_dana.emulator import EmulatorApp, EmulatorServer, Merchant

    merchant = Merchant(
        "99999",
        merchant_name="Test Store",
        password=suite.TEST_PASSWORD,
        notification_url="http://127.0.0.1:9/notify/dana",
        return_url="http://127.0.0.1:9/return/dana",
    )
    app = EmulatorApp(merchant, retry_interval=0.05)
    app.add_fault("notification", "drop", count=1000)  # the test delivers them itself
    emulator = EmulatorServer(app).start()
    config = tmp_path / "gateway.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            [ledger]
            url = "sqlite:///{tmp_path / "ledger.db"}"

            [service]
            metrics = true
            log_format = "json"

            [providers.dana]
            provider = "faspay_dana"
            merchant_id = "99999"
            merchant_name = "Test Store"
            password = "{suite.TEST_PASSWORD}"
            base_url = "{emulator.url}"
            """
        ),
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "FASPAY_"))}
    log_path = tmp_path / "serve.log"
    runtime = build_runtime(Settings.load(config, environ=env), environ=env, metrics=False)
    with log_path.open("w", encoding="utf-8") as log_file:
        process = subprocess.Popen(
            [*GATEWAY, "--config", str(config), "serve", "--port", "0", "--threads", "4"],
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
            env=env,
            cwd=ROOT,
        )
    try:
        assert process.stdout is not None
        urls: dict[str, str] = {}
        while "metrics" not in urls:
            line = process.stdout.readline()
            assert line, f"gateway serve exited: {log_path.read_text(encoding='utf-8')}"
            if line.startswith("metrics: GET "):
                urls["metrics"] = line.split()[-1]
            elif line.startswith("dana: notifications POST "):
                urls["notify"] = line.split()[3]
        yield {
            "emulator": app,
            "runtime": runtime,
            "log": log_path,
            **urls,
        }
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a stuck server
            process.kill()
            process.wait()
        runtime.close()
        emulator.stop()


def test_metrics_scraped_before_and_after_a_storm_show_what_was_sent(
    served: dict[str, Any], suite: Any
) -> None:
    runtime, emulator = served["runtime"], served["emulator"]
    service = runtime.service
    gw = service.gateways["dana"]
    first = 12
    records = []
    for n in range(first):
        started = service.start_payment("dana", _request(f"storm-{n}"))
        emulator.pay(started.payment.merchant_reference)
        records.append(started.payment)
    assert emulator.wait_for_deliveries(10)

    def paid_body(record: Any) -> bytes:
        return signed_notification(
            gw,
            bill_no=record.merchant_reference,
            trx_id=record.provider_reference,
            status="2",
            amount=record.amount,
        )

    firsts = [paid_body(r) for r in records]
    duplicates = [firsts[i % first] for i in range(10)]
    forged = [
        signed_notification(
            gw,
            bill_no=r.merchant_reference,
            trx_id=r.provider_reference,
            status="2",
            amount=r.amount,
            signature="0" * 40,
        )
        for r in records[:7]
    ]
    unknown = [
        signed_notification(gw, bill_no=f"NOBILL{n}", trx_id="1", status="2", amount="2000")
        for n in range(3)
    ]

    before = scrape(served["metrics"])

    def post(body: bytes) -> int:
        reply = requests.post(
            served["notify"], data=body, headers={"Content-Type": "application/json"}, timeout=10
        )
        return reply.status_code

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(post, firsts))  # the first deliveries, then the storm of the rest
        list(pool.map(post, duplicates + forged + unknown))
    after = scrape(served["metrics"])

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    inbound = "gateway_inbound_messages_total"
    common = {"gateway": "dana", "provider": "faspay_dana", "kind": "notification"}
    assert delta(inbound, **common, verdict="applied", reason="") == first
    assert delta(inbound, **common, verdict="duplicate", reason="") == 10
    assert delta(inbound, **common, verdict="rejected", reason="bad_signature") == 7
    assert delta(inbound, **common, verdict="rejected", reason="unknown_payment") == 3
    assert delta(inbound) == first + 10 + 7 + 3  # nothing else was counted
    # Each first delivery was confirmed by one inquiry (the signature proves no payment).
    calls = {"provider": "faspay_dana", "operation": "inquire"}
    assert delta("gateway_provider_calls_total", **calls, outcome="ok") == first
    assert delta("gateway_provider_calls_total", **calls) == first
    assert delta("gateway_provider_call_seconds_count", **calls) == first
    # No process has an order-system hook: the created and paid events wait in the outbox.
    assert value(after, "gateway_outbox_backlog", kind="paid") == first
    assert value(after, "gateway_outbox_backlog", kind="created") == first
    assert value(before, "gateway_outbox_backlog", kind="paid") == 0
    assert value(after, "gateway_outbox_oldest_age_seconds", kind="created") >= 0
    assert value(after, "gateway_ledger_up") == 1

    lines = served["log"].read_text(encoding="utf-8").splitlines()
    records_logged = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any("bad_signature" in r["message"] for r in records_logged)
    assert {"ts", "level", "logger", "message"} <= set(records_logged[0])
    assert suite.TEST_PASSWORD not in served["log"].read_text(encoding="utf-8")


# -- provider calls, retries, outbox, reconcile (in process) ------------------------------------


def test_provider_calls_are_timed_and_their_retries_and_outcomes_counted(
    metered: tuple[Any, Metrics],
) -> None:
    stack, metrics = metered
    before = rendered(metrics)
    started = stack.start("calls-1")
    stack.emulator.add_fault("inquiry", "http_5xx")  # once: the inquiry is retried
    stack.service.inquire("dana", started.payment.merchant_reference)
    stack.emulator.add_fault("create", "http_5xx")  # a create is never retried
    with pytest.raises(OutcomeUnknown):
        stack.start("calls-2")
    after = rendered(metrics)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, provider="faspay_dana", **labels) - value(
            before, name, provider="faspay_dana", **labels
        )

    calls = "gateway_provider_calls_total"
    assert delta(calls, operation="create", outcome="ok") == 1
    assert delta(calls, operation="create", outcome="outcome_unknown") == 1
    assert delta(calls, operation="inquire", outcome="ok") == 1
    assert delta("gateway_provider_retries_total", operation="inquire") == 1
    assert delta("gateway_provider_retries_total", operation="create") == 0
    assert delta("gateway_provider_call_seconds_count", operation="create") == 2
    assert delta("gateway_provider_call_seconds_sum", operation="inquire") > 0


def test_outbox_gauges_follow_a_failing_hook_and_its_recovery(
    metered: tuple[Any, Metrics],
) -> None:
    stack, metrics = metered
    stack.recorder.fail_next = 10**6  # the order system is down
    for n in range(3):
        stack.start(f"outbox-{n}")
    down = rendered(metrics)
    assert value(down, "gateway_outbox_backlog", kind="created") == 3
    assert value(down, "gateway_outbox_oldest_age_seconds", kind="created") >= 0
    assert value(down, "gateway_outbox_events_failed_total", kind="created") == 3
    assert value(down, "gateway_outbox_events_delivered_total", kind="created") == 0

    stack.recorder.fail_next = 0  # back: redelivered
    assert stack.service.redeliver(force=True).delivered == 3
    up = rendered(metrics)
    assert value(up, "gateway_outbox_backlog", kind="created") == 0
    assert ("gateway_outbox_oldest_age_seconds", frozenset({("kind", "created")})) not in up
    assert value(up, "gateway_outbox_events_delivered_total", kind="created") == 3
    assert value(up, "gateway_ledger_up") == 1


def test_reconcile_results_are_counted_per_gateway(metered: tuple[Any, Metrics]) -> None:
    stack, metrics = metered
    started = stack.start("reconcile-1")
    stack.service.reconcile(min_interval=0)  # still pending at the provider
    reference = started.payment.merchant_reference
    stack.emulator.add_fault("notification", "drop", bill_no=reference, on_status="2")
    stack.emulator.pay(reference)
    stack.wait()
    stack.service.reconcile(min_interval=0)  # paid at the provider: applied
    samples = rendered(metrics)
    name = "gateway_reconcile_payments_total"
    assert value(samples, name, gateway="dana", result="unchanged") == 1
    assert value(samples, name, gateway="dana", result="changed") == 1
    assert value(samples, name) == 2


def test_returns_are_counted_with_their_verdict(metered: tuple[Any, Metrics]) -> None:
    stack, metrics = metered
    from gateway_faspay_dana.testing import signed_return_query

    record = stack.start("return-1").payment
    query = signed_return_query(
        stack.service.gateways["dana"],
        bill_no=record.merchant_reference,
        trx_id=record.provider_reference,
        status="1",
        amount=record.amount,
    )
    assert requests.get(stack.return_url, params=query, allow_redirects=False, timeout=10).ok
    forged = {**query, "signature": "0" * 40}
    requests.get(stack.return_url, params=forged, allow_redirects=False, timeout=10)
    samples = rendered(metrics)
    common = {"gateway": "dana", "provider": "faspay_dana", "kind": "return"}
    name = "gateway_inbound_messages_total"
    assert value(samples, name, **common, verdict="received") == 1
    assert value(samples, name, **common, verdict="rejected", reason="bad_signature") == 1


def test_the_exposition_app_answers_get_only_and_404_when_metrics_are_off() -> None:
    metrics = Metrics(observe_provider_calls=False)
    metrics.inbound("dana", "faspay_dana", "notification", "applied", "")

    def call(app: Any, method: str) -> tuple[str, bytes]:
        seen: list[str] = []
        body = b"".join(
            app({"REQUEST_METHOD": method, "PATH_INFO": "/metrics"}, lambda s, h: seen.append(s))
        )
        return seen[0], body

    status, body = call(metrics_wsgi_app(metrics), "GET")
    assert status == "200 OK"
    assert b'gateway_inbound_messages_total{gateway="dana"' in body
    assert call(metrics_wsgi_app(metrics), "POST")[0].startswith("405")
    assert call(metrics_wsgi_app(metrics_from_settings({})), "GET")[0].startswith("404")
    status_code, content_type, body = metrics_route(metrics)()  # for the worker's router
    assert (status_code, content_type.split(";")[0]) == (200, "text/plain")
    assert b"gateway_inbound_messages_total" in body
    assert metrics_route(metrics_from_settings({}))()[0] == 404


def test_a_scrape_with_the_ledger_down_says_so_and_still_answers(sqlite_store: Any) -> None:
    metrics = Metrics(observe_provider_calls=False)
    ledger = sqlite_store.open()
    ledger.migrate()
    metrics.watch_outbox(ledger)
    assert value(rendered(metrics), "gateway_ledger_up") == 1
    ledger.close()  # a closed ledger refuses work, as a dead one would
    samples = rendered(metrics)
    assert ("gateway_ledger_up", frozenset()) in samples
    assert value(samples, "gateway_ledger_up") == 0
    assert not [name for name, _ in samples if name.startswith("gateway_outbox_backlog")]


def test_the_ledger_reports_its_outbox_backlog_per_kind(any_store: Any) -> None:
    """``outbox_backlog_by_kind`` / ``outbox_backlog`` on both backends: undelivered events
    only, counted per kind, with the oldest creation time."""
    from datetime import UTC, datetime, timedelta

    from gateway_core import EventKind, PaymentEvent, PaymentStatus
    from gateway_core._refunds import RefundStatus
    from gateway_core.ledger import OutboxEvent, PaymentRecord

    t0 = datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    with any_store.open() as ledger:
        ledger.migrate()
        assert ledger.outbox_backlog_by_kind() == {}
        assert ledger.outbox_backlog() == (0, None)
        events = []
        for n in range(3):
            record = ledger.insert_payment(
                PaymentRecord(
                    gateway="dana",
                    provider="any",
                    order_reference=f"ORDER-{n}",
                    merchant_reference=f"BILL-{n}",
                    status=PaymentStatus.PENDING,
                    amount=Money("2000", "IDR"),
                    created_at=t0,
                )
            )
            assert record.id is not None
            for kind, minutes in ((EventKind.CREATED, n), (EventKind.PAID, 10 + n)):
                event = PaymentEvent(
                    event_id=f"dana:BILL-{n}:{kind.value}",
                    kind=kind,
                    provider="any",
                    order_reference=record.order_reference,
                    merchant_reference=record.merchant_reference,
                    status=PaymentStatus.PENDING,
                    amount=record.amount,
                    occurred_at=t0,
                    gateway_name="dana",
                )
                events.append(
                    OutboxEvent.from_event(event, record.id, now=t0 + timedelta(minutes=minutes))
                )
        ledger.commit_record(gateway="dana", receipt_key="setup", events=events)
        ledger.mark_delivered("dana:BILL-0:created", at=t0)
        backlog = ledger.outbox_backlog_by_kind()
        assert backlog == {
            "created": (2, t0 + timedelta(minutes=1)),
            "paid": (3, t0 + timedelta(minutes=10)),
        }
        assert ledger.outbox_backlog() == (5, t0 + timedelta(minutes=1))

        assert ledger.open_refunds_by_status() == {}
        paid = ledger.insert_payment(
            PaymentRecord(
                gateway="dana",
                provider="any",
                order_reference="ORDER-PAID",
                merchant_reference="BILL-PAID",
                status=PaymentStatus.PAID,
                amount=Money("2000", "IDR"),
                created_at=t0,
            )
        )
        assert paid.id is not None
        for key in ("r1", "r2"):
            ledger.request_refund(
                paid.id, refund_key=key, amount=Money("500", "IDR"), status=RefundStatus.UNKNOWN
            )
        ledger.request_refund(paid.id, refund_key="r3", amount=Money("500", "IDR"))
        opened = ledger.open_refunds_by_status()
        assert set(opened) == {"unknown", "requested"}
        assert opened["unknown"][0] == 2
        assert opened["requested"][0] == 1


# -- configuration and logs ---------------------------------------------------------------------


def test_service_table_takes_the_metrics_and_log_format_keys() -> None:
    from gateway_core import ConfigurationError
    from gateway_core._cli_serve import log_format

    ServicePolicy.from_settings({"metrics": True, "log_format": "json"})  # not refused
    assert metrics_from_settings({}).enabled is False
    made = metrics_from_settings({"metrics": "true"})
    assert made.enabled is True
    made.close()
    with pytest.raises(ConfigurationError, match="metrics"):
        metrics_from_settings({"metrics": "perhaps"})
    args: Any = type("Args", (), {"log_format": "json", "config": None})()
    assert log_format(args) == "json"


def test_json_log_lines_are_redacted_one_object_per_line() -> None:
    secret = "Zq9-very-secret-pw-41"
    register_secret(secret)
    stream = io.StringIO()
    undo = use_json_logs(stream=stream)
    try:
        get_logger("gateway_core.test_metrics").warning(
            "login with %s for budi@example.com\nforged line", secret, extra={"order": secret}
        )
        logging.getLogger("thirdparty.lib").warning("token=%s", secret)  # no filter of its own
    finally:
        undo()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["level"] == "warning"
    assert first["logger"] == "gateway_core.test_metrics"
    assert "[redacted]" in first["message"]
    assert first["order"] == "[redacted]"
    assert second["message"] == "token=[redacted]"
    assert secret not in stream.getvalue()
    assert "budi@example.com" not in stream.getvalue()


def test_without_prometheus_client_metrics_are_a_no_op(tmp_path: Path) -> None:
    """A fresh interpreter where ``import prometheus_client`` fails."""
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["prometheus_client"] = None  # as if the extra were not installed
        import io
        import gateway_core
        from gateway_core import Settings
        from gateway_core._runtime import build_runtime
        from gateway_core.cli import main
        from gateway_core.metrics import Metrics, available, metrics_from_settings

        assert not available()
        assert metrics_from_settings({{"metrics": True}}).enabled is False
        try:
            Metrics()
        except gateway_core.ConfigurationError as exc:
            assert "gateway-core[metrics]" in str(exc)
        else:
            raise AssertionError("Metrics() without prometheus_client")
        settings = Settings(ledger_url="sqlite:///{tmp_path / "l.db"}", service={{"metrics": True}})
        with build_runtime(settings, environ={{}}) as rt:
            assert rt.service.metrics.enabled is False
            rt.service.deliver_events()
        config = "{tmp_path / "g.toml"}"
        open(config, "w").write('[ledger]\\nurl = "sqlite:///{tmp_path / "l.db"}"\\n')
        out = io.StringIO()
        code = main(["--config", config, "serve", "--metrics", "--port", "0", "--json"], out=out)
        assert code == 1, code
        assert "gateway-core[metrics]" in out.getvalue(), out.getvalue()
        assert "prometheus_client" not in [m for m in sys.modules if sys.modules[m]]
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
