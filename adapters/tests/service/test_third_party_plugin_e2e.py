"""A third-party plugin unlike Faspay (Bayar Kilat, in ``adapters/tests/example_plugin/``) completes
a payment over loopback HTTP through ``gateway serve``.

Its provider server runs on loopback; ``gateway serve`` and ``gateway create`` run as real
processes that find the plugin through its entry point (the example folder on
``PYTHONPATH``), on one SQLite ledger; an order-system plugin writes every hook event to a file.
The create's answer is lost once (the service re-sends it with the same ``Idempotency-Key``), a
second press of "pay" reuses the attempt and its token, the customer pays on the provider's
page, the signed notification gets a 204 and a paid event, the POSTed return lands on the return
page, and a refund event gets a 204 and reaches ``gateway_provider_event``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import requests
from browser_forms import forms_of

REPO_ROOT = Path(__file__).resolve().parents[3]
EXAMPLE_PLUGIN_DIR = Path(__file__).resolve().parents[1] / "example_plugin"
WORKERS = Path(__file__).resolve().parent / "workers"
GATEWAY = "bayar_kilat"
API_KEY = "kilat-e2e-api-key-5Tq"
WEBHOOK_SECRET = "kilat-e2e-webhook-secret-8Hm"
ORDER_SYSTEM = ("--plugin", "jsonl_hooks:OrderSystem")

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@attrs.frozen
class Stack:
    """The provider server, a running ``gateway serve`` and how to run other commands."""

    provider: Any  # bayar_kilat_server.KilatApp
    serve_url: str
    config: Path
    hook_log: Path
    env: dict[str, str]

    def gateway(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "gateway_core.cli", "--config", str(self.config)]
        return subprocess.run(
            [*command, *ORDER_SYSTEM, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def hook_events(self) -> list[dict[str, Any]]:
        if not self.hook_log.exists():
            return []
        return [json.loads(line) for line in self.hook_log.read_text().splitlines()]


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.syspath_prepend(str(EXAMPLE_PLUGIN_DIR))
    from bayar_kilat_server import KilatApp, KilatServer

    port = _free_port()
    serve_url = f"http://127.0.0.1:{port}"
    app = KilatApp(
        account="shop_1",
        api_key=API_KEY,
        webhook_secret=WEBHOOK_SECRET,
        notify_url=f"{serve_url}/notify/{GATEWAY}",
    )
    hook_log = tmp_path / "hooks.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "KILAT_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(EXAMPLE_PLUGIN_DIR), str(WORKERS), str(REPO_ROOT)])
    env["GATEWAY_TEST_HOOK_LOG"] = str(hook_log)
    with KilatServer(app) as provider:
        config = tmp_path / "gateway.toml"
        config.write_text(
            f'[ledger]\nurl = "sqlite:///{tmp_path}/ledger.db"\n\n'
            f'[providers.{GATEWAY}]\nprovider = "bayar_kilat"\naccount = "shop_1"\n'
            f'api_key = "{API_KEY}"\nwebhook_secret = "{WEBHOOK_SECRET}"\n'
            f'base_url = "{provider.url}"\n'
        )
        command = [sys.executable, "-m", "gateway_core.cli", "--config", str(config)]
        process = subprocess.Popen(
            [*command, *ORDER_SYSTEM, "serve", "--port", str(port), "--return-page", "/done"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 15
            while True:
                try:
                    requests.get(f"{serve_url}/health", timeout=1)
                    break
                except requests.ConnectionError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(process.communicate()[1].decode()) from None
                    time.sleep(0.05)
            yield Stack(app, serve_url, config, hook_log, env)
        finally:
            process.terminate()
            process.communicate(timeout=10)
    for name in [m for m in sys.modules if m.startswith("bayar_kilat")]:
        del sys.modules[name]


def _press_pay(stack: Stack) -> dict[str, Any]:
    result = stack.gateway(
        "create",
        "--order",
        "ORDER-77",
        "--amount",
        "2000",
        "--currency",
        "IDR",
        "--return-url",
        f"{stack.serve_url}/return/{GATEWAY}",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_a_third_party_plugin_completes_a_payment_through_gateway_serve(stack: Stack) -> None:
    provider = stack.provider
    # The provider makes the payment but its answer is lost: re-sent with the same key.
    provider.lose_create_answers(1)
    first = _press_pay(stack)
    reference = first["merchant_reference"]
    assert first["status"] == "pending"
    assert first["reused"] is False
    assert first["action"]["method"] == "POST"
    token = first["action"]["fields"]["token"]
    keys = [key for key, _ in provider.create_log]
    # 502: made but the answer lost; 200: the payment the key already made, not a new one.
    assert [status for _, status in provider.create_log] == [502, 200]
    assert len(set(keys)) == 1, "the re-sent create carries the same Idempotency-Key"
    assert len(provider.payment_by_reference(reference)) == 1, "one payment at the provider"

    # A second press of "pay" reuses the attempt: same reference, same token, no new create.
    second = _press_pay(stack)
    assert second["reused"] is True
    assert second["merchant_reference"] == reference
    assert second["action"]["fields"]["token"] == token
    assert len(provider.create_log) == 2

    # The pay page is an auto-submitting POST form carrying the token to the checkout.
    page = requests.get(f"{stack.serve_url}/pay/{GATEWAY}/{reference}", timeout=10)
    assert page.status_code == 200
    action, fields = forms_of(page.text)["pay"]
    assert fields == {"token": token}
    checkout = requests.post(action, data=fields, timeout=10)
    assert checkout.status_code == 200
    pay_path, pay_fields = forms_of(checkout.text)["pay"]

    # The customer pays: the provider posts the signed notification (204) and the return.
    paid = requests.post(provider.base_url + pay_path, data=pay_fields, timeout=10)
    assert paid.status_code == 200
    assert provider.deliveries[-1][:2] == ("payment.paid", 204)
    assert provider.deliveries[-1][2] == b""
    return_url, return_fields = forms_of(paid.text)["back"]
    back = requests.post(return_url, data=return_fields, allow_redirects=False, timeout=10)
    assert back.status_code == 303
    assert back.headers["Location"].startswith("/done?")
    assert "status=paid" in back.headers["Location"]
    assert "order=ORDER-77" in back.headers["Location"]
    kinds = [event["kind"] for event in stack.hook_events()]
    assert kinds.count("paid") == 1

    # A refund is a non-status event: acknowledged with 204 and delivered to its hook once.
    (payment,) = provider.payment_by_reference(reference)
    assert provider.refund(payment["id"], 500) == 204
    refunds = [e for e in stack.hook_events() if e.get("provider_kind") == "refund.succeeded"]
    assert len(refunds) == 1
    assert refunds[0]["kind"] == "provider_event"
    assert refunds[0]["merchant_reference"] == reference
    assert refunds[0]["event_amount"] == "500.00 IDR"
    status = stack.gateway("status", reference, "--json")
    assert status.returncode == 0, status.stderr
    assert '"paid"' in status.stdout


def test_verify_checks_a_header_signed_notification(stack: Stack, tmp_path: Path) -> None:
    from bayar_kilat import notification_headers

    first = _press_pay(stack)
    (payment,) = stack.provider.payment_by_reference(first["merchant_reference"])
    body = stack.provider.event_body("payment.paid", {**payment, "status": "paid"})
    saved = tmp_path / "notification.json"
    saved.write_bytes(body)
    signature = notification_headers(WEBHOOK_SECRET, body)["X-Kilat-Signature"]

    valid = stack.gateway(
        "verify", "notification", str(saved), "--header", f"X-Kilat-Signature:{signature}", "--json"
    )
    assert valid.returncode == 0, valid.stdout + valid.stderr
    checks = {c["name"]: c["ok"] for c in json.loads(valid.stdout)["checks"]}
    assert checks == {
        "format": True,
        "signature": True,
        "known_payment": True,
        "merchant": True,
        "amount": True,
        "provider_reference": True,
    }

    unsigned = stack.gateway("verify", "notification", str(saved), "--json")
    assert unsigned.returncode == 1
    assert json.loads(unsigned.stdout)["checks"] == [
        {"name": "signature", "ok": False, "detail": "X-Kilat-Signature missing or malformed"}
    ]

    bad = stack.gateway("verify", "notification", str(saved), "--header", "no-colon")
    assert bad.returncode == 2
    assert "NAME:VALUE" in bad.stderr
