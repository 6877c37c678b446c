"""``gateway demo``: the whole story on embedded defaults, and its fault options."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from gateway_core.demo import DemoOptions, run_demo


def _run(**options: object) -> tuple[dict[str, object], str]:
    out = io.StringIO()
    summary = run_demo(DemoOptions(notification_timeout=10.0, **options), out=out)  # type: ignore[arg-type]
    return summary, out.getvalue()


def test_a_paid_payment_ends_paid_with_exactly_one_paid_event() -> None:
    summary, story = _run()
    assert summary["ok"] is True
    assert summary["status"] == "paid"
    assert summary["paid_events"] == 1
    assert summary["transitions"] == ["pending", "paid"]
    assert "== OK: payment paid, 1 paid event(s) ==" in story


def test_dropped_notifications_are_settled_by_reconcile() -> None:
    summary, story = _run(drop_notifications=True)
    assert summary["ok"] is True
    assert summary["status"] == "paid"
    assert summary["paid_events"] == 1
    assert "running reconcile" in story
    assert "pending -> paid  (reconcile)" in story


def test_five_duplicate_notifications_still_give_one_paid_event() -> None:
    summary, _story = _run(duplicate_notifications=5)
    assert summary["ok"] is True
    assert summary["paid_events"] == 1
    assert summary["notification_attempts"] == 6


@pytest.mark.parametrize(("customer", "status"), [("fail", "failed"), ("abandon", "expired")])
def test_a_customer_who_fails_or_abandons(customer: str, status: str) -> None:
    summary, _story = _run(customer=customer)
    assert summary["ok"] is True
    assert summary["status"] == status
    assert summary["paid_events"] == 0


def test_the_command_prints_the_story_and_exits_zero() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway_core.cli", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Ledger final state" in result.stdout
    assert "== OK: payment paid, 1 paid event(s) ==" in result.stdout
    assert "Traceback" not in result.stderr


def test_json_output_for_scripts() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway_core.cli", "demo", "--json", "--drop-notifications"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["status"] == "paid"
    assert data["paid_events"] == 1
