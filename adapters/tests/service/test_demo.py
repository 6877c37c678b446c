"""``gateway demo``: the whole story on embedded defaults, and its fault options."""

from __future__ import annotations

import io
import json
import re
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


# -- the story's order and counts are the truth, in every run -----------------------------------

_VOLATILE = [
    (re.compile(r"http://127\.0\.0\.1:\d+"), "http://HOST"),
    (re.compile(r"SQLite at \S+"), "SQLite at LEDGER"),
    (re.compile(r"DEMO-\d+"), "DEMO-N"),
    (re.compile(r"provider transaction \d+"), "provider transaction N"),
]


def _normalised(story: str) -> list[str]:
    lines = []
    for line in story.splitlines():
        for pattern, replacement in _VOLATILE:
            line = pattern.sub(replacement, line)
        lines.append(line)
    return lines


def _steps(story: str) -> dict[str, list[str]]:
    """The story's numbered steps: heading -> the lines under it."""
    steps: dict[str, list[str]] = {}
    current: list[str] = []
    for line in _normalised(story):
        if re.match(r"\d+\. ", line):
            current = steps.setdefault(line, [])
        else:
            current.append(line)
    return steps


def _notification_steps_without_arrivals(story: str) -> list[list[str]]:
    return [
        lines
        for heading, lines in _steps(story).items()
        if heading.split(". ", 1)[1].startswith("Notifications") and " 0 reached" in heading
    ]


def test_fifty_paid_runs_tell_the_same_story_in_causal_order() -> None:
    """50 full demo runs in-process (each ~0.2 s): every line, in the same order."""
    stories = [_normalised(_run()[1]) for _ in range(50)]
    first = stories[0]
    different = [i for i, story in enumerate(stories) if story != first]
    assert not different, (different, first, stories[different[0]] if different else None)
    text = "\n".join(first)
    # The paid event is told after the customer pressed pay and the notification arrived.
    pressed = text.index("pressed 'pay'")
    notified = text.index("Notifications for the customer's action")
    paid = text.index("order system: paid event")
    returned = text.index("The browser returns to the merchant")
    assert pressed < notified < paid < returned
    assert text.index("order system: created event") < text.index("3. The customer opens")
    assert text.count("order system: paid event") == 1
    assert "   ledger: pending -> paid  (notification)" in first
    assert "   ledger: no change from the return" in first


@pytest.mark.parametrize(
    "options",
    [
        {"customer": "abandon"},
        {"customer": "fail"},
        {"drop_notifications": True},
        {"duplicate_notifications": 2},
        {"customer": "abandon", "drop_notifications": True},
    ],
    ids=["abandon", "fail", "drop", "duplicate", "abandon-drop"],
)
def test_other_runs_tell_the_same_story_every_time(options: dict[str, object]) -> None:
    runs = [_run(**options) for _ in range(5 if not options.get("drop_notifications") else 2)]
    stories = [_normalised(story) for _summary, story in runs]
    assert all(story == stories[0] for story in stories), stories
    for summary, story in runs:
        assert summary["ok"] is True, story
        # A change credited to a notification needs a notification that reached the merchant,
        # in the same step.
        for lines in _notification_steps_without_arrivals(story):
            assert not any(line.endswith("(notification)") for line in lines), story
        if summary["notifications_reached"] == 0:
            assert "notification" not in summary["sources"], story  # type: ignore[operator]


def test_abandon_counts_the_expiry_notification_it_credits() -> None:
    summary, story = _run(customer="abandon")
    assert summary["sources"] == ["create", "return", "notification"]
    assert summary["notification_attempts"] == summary["notifications_reached"] == 1
    steps = _steps(story)
    expiry = next(lines for heading, lines in steps.items() if "settled what was open" in heading)
    assert "   ledger: in_process -> expired  (notification)" in expiry
    assert "   order system: expired event for order DEMO-N" in expiry
    assert (
        "1 delivery attempt(s), 1 reached the merchant; ledger changes made by a notification: 1"
        in story
    )


def test_abandon_without_notifications_credits_reconcile_not_a_notification() -> None:
    summary, story = _run(customer="abandon", drop_notifications=True)
    assert summary["status"] == "expired"
    assert summary["notifications_reached"] == 0
    assert summary["sources"] == ["create", "reconcile"]
    assert "(notification)" not in story
    assert "ledger changes made by a notification: 0" in story


@pytest.mark.parametrize(
    ("method", "shown"),
    [
        ("bca_va", ["| virtual account", "| bank / issuer: BCA", "| number: "]),
        ("qris_shopeepay", ["| qr", "| QR payload: 000201"]),
        ("indomaret", ["| payment code", "| bank / issuer: Indomaret"]),
        ("ovo", ["| push", "08******7890"]),
    ],
)
def test_a_channel_without_a_page_prints_what_the_customer_sees_and_is_paid_once(
    method: str, shown: list[str]
) -> None:
    """``gateway demo --channel X``: the shop shows instructions (no redirect, no return URL),
    the emulator's simulated payer pays, one notification is applied, one paid event."""
    summary, story = _run(method=method)
    assert summary["ok"] is True
    assert summary["status"] == "paid"
    assert summary["paid_events"] == 1
    assert summary["sources"] == ["create", "notification"]
    assert "the shop shows these instructions" in story
    for line in shown:
        assert line in story
    assert "081234567890" not in story  # the customer's phone is shown masked only
    assert "The customer never came back to the shop" in story


@pytest.mark.parametrize(("customer", "status"), [("fail", "failed"), ("abandon", "expired")])
def test_a_virtual_account_not_paid_ends_failed_or_expired(customer: str, status: str) -> None:
    summary, _story = _run(method="bca_va", customer=customer)
    assert summary["ok"] is True
    assert summary["status"] == status
    assert summary["paid_events"] == 0


def test_a_method_the_provider_does_not_offer_is_a_clear_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway_core.cli", "demo", "--channel", "no_such_channel"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "offers no method 'no_such_channel'" in result.stderr
    assert "bca_va" in result.stderr
    assert "Traceback" not in result.stderr


# -- the second provider: Midtrans Snap ---------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "status", "paid_events"),
    [
        ({}, "paid", 1),
        ({"duplicate_notifications": 3}, "paid", 1),
        ({"customer": "fail"}, "failed", 0),
        ({"customer": "abandon"}, "expired", 0),
    ],
    ids=["pay", "duplicate", "fail", "abandon"],
)
def test_midtrans_demo_runs_end_to_end(
    options: dict[str, object], status: str, paid_events: int
) -> None:
    """``gateway demo --provider midtrans_snap``: the same story on the Midtrans emulator (its
    sandbox ships with the plugin): the customer on the Snap page, the webhooks, the return."""
    summary, story = _run(provider="midtrans_snap", **options)
    assert summary["ok"] is True, story
    assert summary["provider"] == "midtrans_snap"
    assert summary["status"] == status
    assert summary["paid_events"] == paid_events
    assert "a midtrans_snap payment, end to end" in story
    assert "opened the Snap page: HTTP 200" in story
    # (--drop-notifications is left out here: Midtrans' retries, scaled by the sandbox, last
    # about 40 s, so the run waits out its notification timeout twice: ~20 s.)


def test_midtrans_demo_command_exits_zero() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway_core.cli", "demo", "--provider", "midtrans_snap", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["provider"], data["status"], data["paid_events"]) == ("midtrans_snap", "paid", 1)
    assert "SB-Mid-server-" not in result.stdout + result.stderr  # the generated key never shows
    assert "Traceback" not in result.stderr
