"""The worker's parts in one process: the ``[worker]`` table (unknown keys refused by name),
the per-gateway token bucket, the fleet-wide job leases as the loop uses them (the journal is
pruned by one worker per interval), ``run(once=True)`` writing its deferred marks, and the
health server with an extra route."""

from __future__ import annotations

import io
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from worker_support import seed_backlog, write_config

from gateway_core import ConfigurationError, PaymentService, PluginHost, Settings
from gateway_core._worker import (
    PRUNE_LEASE,
    HealthServer,
    TokenBucket,
    Worker,
    WorkerConfig,
    worker_routes,
)
from gateway_core.cli import main
from gateway_core.ledger import JournalEntry, Ledger
from gateway_core.testing import HookRecorder


@pytest.fixture
def ledger(sqlite_store: Any) -> Iterator[Ledger]:
    with sqlite_store.open() as opened:
        opened.migrate()
        yield opened


def _service(ledger: Ledger, *plugins: object) -> PaymentService:
    host = PluginHost(entry_points=False, plugins=plugins)
    return PaymentService(gateways={}, ledger=ledger, hooks=host.hooks)


# -- configuration -----------------------------------------------------------------------------


def test_the_worker_table_is_read_and_checked() -> None:
    assert WorkerConfig.from_settings({}) == WorkerConfig()
    config = WorkerConfig.from_settings(
        {
            "deliver_batch": 25,
            "event_lease_seconds": 30,
            "reconcile_lease_seconds": 120,
            "inquiry_rate": 1.5,
            "inquiry_rates": {"dana": 0.5},
            "prune_journal_older_than": "30d",
            "health_port": 0,
        },
        gateways=["dana", "other"],
    )
    assert (config.deliver_batch, config.event_lease_seconds) == (25, 30.0)
    assert config.prune_journal_older_than == timedelta(days=30)
    assert (config.rate_for("dana"), config.rate_for("other")) == (0.5, 1.5)
    with pytest.raises(ConfigurationError, match="unknown setting 'delivr_batch'"):
        WorkerConfig.from_settings({"delivr_batch": 5})
    with pytest.raises(ConfigurationError, match="not a configured gateway"):
        WorkerConfig.from_settings({"inquiry_rates": {"nope": 1}}, gateways=["dana"])
    with pytest.raises(ConfigurationError, match="prune_journal_older_than"):
        WorkerConfig.from_settings({"prune_journal_older_than": "thirty days"})
    with pytest.raises(ConfigurationError, match="event_lease_seconds"):
        WorkerConfig.from_settings({"event_lease_seconds": 0})
    with pytest.raises(ConfigurationError, match="'worker' must be a table"):
        Settings.from_mapping({"worker": 3})


def test_gateway_worker_refuses_an_unknown_key_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path / "gateway.toml",
        {"ledger": {"url": f"sqlite:///{tmp_path / 'l.db'}"}, "worker": {"tick_second": 1}},
    )
    assert main(["--config", str(config), "worker", "--once"], out=io.StringIO()) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "gateway worker: error: unknown setting 'tick_second'" in err
    assert "tick_seconds" in err  # the suggestion
    assert not (tmp_path / "l.db").exists()  # refused before anything opened


def test_gateway_worker_once_delivers_the_backlog_and_says_so(
    tmp_path: Path, sqlite_store: Any
) -> None:
    with sqlite_store.open() as ledger:
        ledger.migrate()
        ids = seed_backlog(ledger, 3)
    config = write_config(tmp_path / "gateway.toml", {"ledger": {"url": sqlite_store.url}})
    out = io.StringIO()
    argv = ["--config", str(config), "--plugin", "gateway_core.testing:HookRecorder"]
    code = main([*argv, "worker", "--once", "--json"], out=out)
    assert code == 0, out.getvalue()
    assert '"delivered": 3' in out.getvalue()
    with sqlite_store.open() as ledger:
        assert ledger.outbox(delivered=False) == []
        assert len(ledger.outbox(delivered=True)) == len(ids)


# -- the token bucket ----------------------------------------------------------------------------


def test_the_token_bucket_allows_its_burst_then_its_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(2.0, 5, clock=lambda: now[0])
    assert bucket.available() == 5
    bucket.spend(5)
    assert bucket.available() == 0
    now[0] = 1.0
    assert bucket.available() == 2
    now[0] = 100.0
    assert bucket.available() == 5  # never more than the burst
    bucket.spend(8)  # overspent: the debt is paid back before the next work
    now[0] = 101.0
    assert bucket.available() == 0
    now[0] = 102.5
    assert bucket.available() == 2
    assert TokenBucket(0, 5).available() == 0  # a rate of 0: no inquiries at all


# -- the loop ------------------------------------------------------------------------------------


def test_one_worker_of_the_fleet_prunes_the_journal_per_interval(ledger: Ledger) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=40)
    for n in range(3):
        ledger.append_journal(
            JournalEntry(
                id=None,
                gateway="stub",
                merchant_reference=f"R-{n}",
                kind="notification",
                verdict="rejected",
                reason="bad_signature",
                body="{}",
                received_at=long_ago,
            )
        )
    config = WorkerConfig(prune_journal_older_than=timedelta(days=30), reconcile=False)
    first = Worker(_service(ledger), config, holder="worker-a")
    second = Worker(_service(ledger), config, holder="worker-b")
    first.run(once=True)
    second.run(once=True)
    assert first.totals["journal_pruned"] == 3
    assert "journal_pruned" not in second.totals  # within the interval: not its turn
    assert ledger.journal() == []
    # The lease is the fleet's: worker-a itself does not prune again within the interval.
    assert not ledger.acquire_lease(PRUNE_LEASE, "worker-a", now=datetime.now(UTC), seconds=1)


def test_run_once_delivers_and_records_the_deliveries(ledger: Ledger) -> None:
    ids = seed_backlog(ledger, 4)
    recorder = HookRecorder()
    worker = Worker(_service(ledger, recorder), WorkerConfig(reconcile=False, refunds=False))
    worker.run(once=True)
    assert sorted(e.event_id for e in recorder.events) == sorted(ids)
    assert worker.totals["delivered"] == 4
    assert ledger.outbox(delivered=False) == []


# -- the health endpoint -------------------------------------------------------------------------


def _get(url: str, method: str = "GET") -> tuple[int, bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_the_health_server_answers_and_takes_extra_routes(ledger: Ledger) -> None:
    worker = Worker(_service(ledger), WorkerConfig())
    routes = {
        **worker_routes(worker, ledger),
        "/metrics": lambda: (200, "text/plain; version=0.0.4", b"up 1\n"),
    }
    server = HealthServer("127.0.0.1", 0, routes).start()
    try:
        assert _get(f"{server.url}/healthz") == (200, b"ok\n")
        assert _get(f"{server.url}/readyz") == (200, b"ready\n")
        assert _get(f"{server.url}/metrics") == (200, b"up 1\n")
        assert _get(f"{server.url}/healthz", "HEAD") == (200, b"")
        assert _get(f"{server.url}/other")[0] == 404
        worker.stop()
        assert _get(f"{server.url}/readyz") == (503, b"stopping\n")
        ledger.close()
        assert _get(f"{server.url}/healthz")[0] == 200  # liveness is the loop's, not the db's
    finally:
        server.close()


def test_liveness_fails_when_no_pass_finished_recently(ledger: Ledger) -> None:
    now = [1000.0]
    config = WorkerConfig(reconcile=False, refunds=False, health_stale_seconds=60)
    worker = Worker(_service(ledger), config, monotonic=lambda: now[0])
    healthz = worker_routes(worker, ledger)["/healthz"]
    assert healthz()[0] == 200  # the first pass is under way
    worker.run_pass()
    now[0] += 59
    assert healthz()[0] == 200
    now[0] += 2  # a pass stuck for longer than health_stale_seconds
    assert healthz()[:2] == (503, "text/plain; charset=utf-8")
    worker.run_pass()
    assert healthz()[0] == 200
