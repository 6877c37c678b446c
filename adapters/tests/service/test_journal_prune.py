"""The journal is prunable (issue 9, item 7): ``Ledger.prune_journal`` and
``gateway prune --older-than``, on SQLite and PostgreSQL, delete old journal entries only;
the journal stays append-only for everything else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway_core import LedgerError, Money, PaymentStatus
from gateway_core.ledger import JournalEntry, Ledger, PaymentRecord

NOW = datetime.now(UTC)
REPO_ROOT = Path(__file__).resolve().parents[3]


def _entry(age: timedelta, reference: str) -> JournalEntry:
    return JournalEntry(
        gateway="dana",
        merchant_reference=reference,
        kind="notification",
        verdict="rejected",
        reason="bad_signature",
        body="{}",
        received_at=NOW - age,
    )


def _fill(ledger: Ledger) -> PaymentRecord:
    """Journal entries 90, 31 and 29 days and 1 hour old, and one payment (not journal)."""
    for days, reference in ((90, "old-90"), (31, "old-31"), (29, "new-29")):
        ledger.append_journal(_entry(timedelta(days=days), reference))
    ledger.append_journal(_entry(timedelta(hours=1), "new-1h"))
    return ledger.insert_payment(
        PaymentRecord(
            gateway="dana",
            provider="faspay_dana",
            order_reference="ord-1",
            merchant_reference="ord-1-1",
            status=PaymentStatus.PENDING,
            amount=Money("2000", "IDR"),
            attempt=1,
            created_at=NOW - timedelta(days=400),
            updated_at=NOW - timedelta(days=400),
        )
    )


def _references(ledger: Ledger) -> list[str]:
    return [entry.merchant_reference for entry in ledger.journal()]


def test_prune_journal_deletes_only_entries_older_than_the_cutoff(any_store: Any) -> None:
    with any_store.open() as ledger:
        ledger.migrate()
        payment = _fill(ledger)
        assert ledger.prune_journal(NOW - timedelta(days=30)) == 2
        assert _references(ledger) == ["new-29", "new-1h"]
        assert ledger.get_payment("dana", "ord-1-1") == payment
        assert ledger.prune_journal(NOW - timedelta(days=30)) == 0


def test_journal_entries_still_cannot_be_changed(any_store: Any) -> None:
    """Pruning deletes whole entries; the append-only trigger still refuses any UPDATE."""
    with any_store.open() as ledger:
        ledger.migrate()
        _fill(ledger)
        update = "UPDATE {p}gw_journal SET body = 'forged'"
        with pytest.raises(LedgerError):
            ledger._run("forge", lambda tx: tx.execute(ledger._sql(update)), write=True)
        assert {entry.body for entry in ledger.journal()} == {"{}"}


def test_prune_journal_wants_an_aware_cutoff(any_store: Any) -> None:
    with any_store.open() as ledger, pytest.raises(TypeError):
        ledger.prune_journal(datetime(2020, 1, 1))


def gateway(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "gateway.toml"
    config.write_text(f"[ledger]\nurl = {json.dumps(url)}\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "FASPAY_"))}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run(
        [sys.executable, "-m", "gateway_core.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )


def test_gateway_prune_older_than_deletes_old_journal_entries(
    any_store: Any, tmp_path: Path
) -> None:
    with any_store.open() as ledger:
        ledger.migrate()
        _fill(ledger)
    result = gateway(tmp_path, any_store.url, "prune", "--older-than", "30d", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["deleted"] == 2
    assert datetime.fromisoformat(data["cutoff"]) < NOW - timedelta(days=29)
    text = gateway(tmp_path, any_store.url, "prune", "--older-than", "12h")
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("journal entries deleted: 1 (received before ")
    with any_store.open() as ledger:
        assert _references(ledger) == ["new-1h"]
        assert ledger.get_payment("dana", "ord-1-1") is not None


@pytest.mark.parametrize("value", ["30", "thirty days", "0d", "-1d", "1y", "99999999w"])
def test_gateway_prune_refuses_a_bad_duration_in_one_line(tmp_path: Path, value: str) -> None:
    result = gateway(tmp_path, f"sqlite:///{tmp_path}/l.db", "prune", "--older-than", value)
    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("gateway prune: error: argument --older-than: "), line
