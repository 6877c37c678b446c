"""``gateway demo --provider midtrans_snap``: the Midtrans sandbox (emulator + scripted
customer) runs a payment end to end for each customer action, with notification faults."""

from __future__ import annotations

import io

import pytest

from gateway_core.demo import DemoOptions, run_demo


@pytest.mark.parametrize(
    ("customer", "status"), [("pay", "paid"), ("fail", "failed"), ("abandon", "expired")]
)
def test_the_demo_runs_each_customer_action(customer: str, status: str) -> None:
    out = io.StringIO()
    summary = run_demo(
        DemoOptions(provider="midtrans_snap", customer=customer, notification_timeout=10.0),
        out=out,
    )
    assert summary["ok"], out.getvalue()
    assert f"== OK: payment {status}" in out.getvalue()


def test_the_demo_survives_duplicated_notifications() -> None:
    out = io.StringIO()
    options = DemoOptions(
        provider="midtrans_snap", duplicate_notifications=2, notification_timeout=10.0
    )
    summary = run_demo(options, out=out)
    assert summary["ok"], out.getvalue()
    assert "paid events: 1;" in out.getvalue()
