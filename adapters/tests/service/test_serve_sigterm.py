"""``gateway serve`` stopped with SIGTERM (what systemd, Docker and Kubernetes send) stops
like Ctrl-C: it exits 0 and writes what it had deferred (the journal line of a duplicate
notification, delivery marks), instead of dying by the signal and losing them.

The serve process is a real ``gateway`` subprocess on a SQLite ledger; the notification is
the emulator's signed body for a bill the emulator paid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from multinode_support import start_serve
from worker_support import write_config

from gateway_core import Customer, Money, PaymentRequest, PluginHost, Settings
from gateway_core._runtime import build_runtime
from gateway_core.ledger import SQLiteLedger


def test_sigterm_writes_the_deferred_journal_and_exits_0(
    faspay_emulator: Any, faspay_merchant: dict[str, str], faspay_notification: Any, tmp_path: Path
) -> None:
    database = tmp_path / "ledger.db"
    dana = {"provider": "faspay_dana", **faspay_merchant}
    settings = {"ledger": {"url": f"sqlite:///{database}"}, "providers": {"dana": dana}}
    checkout = build_runtime(Settings.from_mapping(settings), host=PluginHost(), environ={})
    try:
        started = checkout.service.start_payment(
            "dana",
            PaymentRequest(
                order_reference="ORDER-TERM",
                amount=Money("2000", "IDR"),
                customer=Customer("Budi", email="budi@example.com", phone="081234567890"),
                description="Order",
                return_url="https://shop.example/payments/return/dana",
            ),
        )
    finally:
        checkout.close()
    bill = started.payment.merchant_reference
    faspay_emulator.app.pay(bill)
    config = write_config(
        tmp_path / "gateway.toml", {"ledger": settings["ledger"], "providers.dana": dana}
    )
    web = start_serve("web", config, tmp_path, tmp_path / "hooks.jsonl").wait_ready()
    try:
        body = faspay_notification(bill)
        for _ in range(2):  # the second is a duplicate: its journal line is deferred
            reply = requests.post(f"{web.url}/notify/dana", data=body, timeout=30)
            assert reply.status_code == 200, reply.text
        code = web.stop()
    finally:
        web.kill()
    with SQLiteLedger(str(database)) as ledger:
        verdicts = [entry.verdict for entry in ledger.journal("dana", bill)]
    assert verdicts.count("duplicate") == 1, verdicts
    assert code == 0, web.stderr()
