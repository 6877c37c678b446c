"""The control API through :class:`EmulatorControl`, the command line and the pytest plugin."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from gateway_faspay_dana.emulator import (
    EmulatorApp,
    EmulatorControl,
    EmulatorError,
    EmulatorServer,
    Merchant,
    example_post_data,
)

REPO = Path(__file__).resolve().parents[3]
MERCHANT = Merchant("99999")
OTHER = Merchant("31835", password="other-pass")


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    srv = EmulatorServer(EmulatorApp([MERCHANT, OTHER], retry_interval=0.05)).start()
    yield srv
    srv.stop()


@pytest.fixture
def control(server: EmulatorServer) -> Iterator[EmulatorControl]:
    with EmulatorControl(server.url) as client:
        yield client


def create(server: EmulatorServer, bill_no: str, merchant: Merchant = MERCHANT) -> str:
    body = example_post_data(merchant, bill_no)
    answer = requests.post(server.url + "/cvr/300011/10", json=body, timeout=5).json()
    assert answer["response_code"] == "00", answer
    return str(answer["trx_id"])


def test_bill_actions_and_records(server: EmulatorServer, control: EmulatorControl) -> None:
    trx_id = create(server, "B-1")
    record = control.bill("B-1")
    assert (record["trx_id"], record["status"], record["create_requests"]) == (trx_id, "0", 1)
    assert control.open("B-1")["status"] == "1"
    assert control.pay("B-1", payment_reff="R-1")["payment_reff"] == "R-1"
    assert control.reverse("B-1")["status"] == "4"
    history = [(h["from"], h["to"]) for h in control.bill("B-1")["history"]]
    assert history == [("", "0"), ("0", "1"), ("1", "2"), ("2", "4")]
    create(server, "B-2")
    assert control.fail("B-2")["status"] == "3"
    create(server, "B-3")
    assert control.expire("B-3")["status"] == "7"
    create(server, "B-4")
    cancelled = control.cancel("B-4", reason="operator")
    assert (cancelled["status"], cancelled["cancel_reason"]) == ("8", "operator")
    assert [b["bill_no"] for b in control.bills()] == ["B-1", "B-2", "B-3", "B-4"]


def test_errors_and_force(server: EmulatorServer, control: EmulatorControl) -> None:
    with pytest.raises(EmulatorError) as unknown:
        control.bill("nope")
    assert unknown.value.http_status == 404
    create(server, "B-x")
    control.expire("B-x")
    with pytest.raises(EmulatorError) as conflict:
        control.pay("B-x")
    assert conflict.value.http_status == 409
    assert control.pay("B-x", force=True)["status"] == "2"  # a late payment after expiry
    with pytest.raises(EmulatorError) as bad:
        control.act("explode", "B-x")
    assert bad.value.http_status == 404


def test_the_same_bill_no_at_two_merchants_needs_merchant_id(
    server: EmulatorServer, control: EmulatorControl
) -> None:
    create(server, "B-same")
    create(server, "B-same", OTHER)
    with pytest.raises(EmulatorError) as ambiguous:
        control.pay("B-same")
    assert ambiguous.value.http_status == 400
    assert control.pay("B-same", merchant_id="31835")["merchant_id"] == "31835"
    assert control.bill("B-same", merchant_id="99999")["status"] == "0"
    assert len(control.bills(merchant_id="31835")) == 1


def test_clock_deliveries_requests_and_reset(
    server: EmulatorServer, control: EmulatorControl
) -> None:
    create(server, "B-c")
    assert len(control.now()) == 19
    assert control.advance_clock(3601) == ["B-c"]
    assert control.wait_for_deliveries(5)
    [delivery] = control.deliveries("B-c")
    assert (delivery["status"], delivery["state"]) == ("7", "skipped")
    assert control.notify("B-c", "2")[0]["status"] == "2"
    log = control.requests_log()
    assert log["counts"] == {"create": 1}
    assert log["requests"][0]["response_code"] == "00"
    control.reset()
    assert control.bills() == []
    assert control.deliveries() == []


def test_merchant_settings(server: EmulatorServer, control: EmulatorControl) -> None:
    changed = control.configure_merchant(
        "99999", notification_url="http://127.0.0.1:1/n", notification_format="xml"
    )
    assert changed["notification_format"] == "xml"
    assert changed["password"] == "p@******"
    info = control.info()
    assert "p@ssw0rd" not in str(info)
    with pytest.raises(EmulatorError):
        control.configure_merchant("99999", notification_format="yaml")
    added = requests.post(
        server.url + "/_emulator/merchants",
        json={"merchant_id": "12345", "password": "x-pass", "channels": ["819", "812"]},
        timeout=5,
    ).json()
    assert (added["user_id"], added["channels"]) == ("bot12345", ["819", "812"])


def test_python_api_mirrors_the_http_one(server: EmulatorServer) -> None:
    app = server.app
    create(server, "B-py")
    assert app.pay("B-py")["status"] == "2"
    assert app.create_requests("B-py") == 1
    assert app.request_counts() == {"create": 1}
    assert app.wait_for_deliveries(1)
    assert app.idle()


def test_public_names_are_sorted_and_exported() -> None:
    import gateway_faspay_dana.emulator as emulator

    assert emulator.__all__ == sorted(emulator.__all__)
    assert all(hasattr(emulator, name) for name in emulator.__all__)


# --- command line -----------------------------------------------------------------------------


def _run_cli(*args: str) -> subprocess.Popen[str]:
    code = "import sys; from gateway_faspay_dana.emulator import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )


def test_cli_serves_until_interrupted() -> None:
    process = _run_cli("--port", "0", "--merchant-id", "31835", "--format", "xml")
    try:
        assert process.stdout is not None
        lines = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "Ctrl-C" in line or not line:
                break
        output = "".join(lines)
        base = next(x.split("=", 1)[1].strip() for x in lines if "FASPAY_BASE_URL=" in x)
        assert "bot31835" in output
        assert "p@******" in output
        assert "p@ssw0rd" not in output
        assert f"{base}/_emulator/" in output
        body = example_post_data(Merchant("31835"), "B-cli")
        answer = requests.post(base + "/cvr/300011/10", json=body, timeout=5).json()
        assert answer["response_code"] == "00"
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_cli_show_password_and_bad_arguments() -> None:
    process = _run_cli("--port", "0", "--show-password")
    try:
        assert process.stdout is not None
        first = [process.stdout.readline() for _ in range(8)]
        assert any("p@ssw0rd" in line for line in first)
        process.terminate()
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    bad = _run_cli("--merchant-id", "abc")
    _, err = bad.communicate(timeout=15)
    assert bad.returncode == 2
    assert "digits" in err


# --- pytest plugin ----------------------------------------------------------------------------

PLUGIN_TEST = """
import json

import requests

from gateway_faspay_dana._signature import matches
from gateway_faspay_dana.emulator import example_post_data, Merchant


def test_fixtures(faspay_emulator, faspay_merchant, faspay_notification, faspay_return_query,
                  faspay_emulator_control):
    assert faspay_merchant == {
        "merchant_id": "99999", "merchant_name": "Sophia Store", "user_id": "bot99999",
        "password": "p@ssw0rd", "base_url": faspay_emulator.url,
    }
    body = example_post_data(Merchant("99999"), "B-plugin")
    answer = requests.post(faspay_emulator.url + "/cvr/300011/10", json=body, timeout=5).json()
    faspay_emulator_control.pay("B-plugin")
    assert faspay_notification("B-plugin").startswith(b"<?xml")  # XML by default
    message = json.loads(faspay_notification("B-plugin", fmt="json"))
    assert message["trx_id"] == answer["trx_id"]
    assert message["payment_reff"] == faspay_emulator.app.bill("B-plugin")["payment_reff"]
    assert matches(message["signature"], "bot99999", "p@ssw0rd", "B-plugin", "2")
    xml = faspay_notification("B-plugin", "3", fmt="xml", payment_total="1")
    assert b"<payment_total>1</payment_total>" in xml
    legacy = json.loads(faspay_notification("B-plugin", fmt="json", legacy_signature=True))
    assert matches(legacy["signature"], "bot99999", "p@ssw0rd", "B-plugin")
    query = faspay_return_query("B-plugin", "2")
    assert query["bill_total"] == "200000"
    assert matches(query["signature"], "bot99999", "p@ssw0rd", "B-plugin", "2")
    forged = faspay_return_query("ghost", trx_id="9999981900000099", bill_total="100")
    assert forged["bill_no"] == "ghost"


def test_fresh_state(faspay_emulator):
    assert faspay_emulator.app.bills() == []


def test_gateway(faspay_dana_gateway):
    assert faspay_dana_gateway.merchant_id == "99999"
"""


def test_pytest_plugin_fixtures(tmp_path: Path) -> None:
    (tmp_path / "test_uses_plugin.py").write_text(textwrap.dedent(PLUGIN_TEST))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "gateway_faspay_dana.emulator.pytest_plugin",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rs",
            "-W",
            "error::pytest.PytestUnraisableExceptionWarning",
            "-W",
            "error::pytest.PytestUnhandledThreadExceptionWarning",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout or "2 passed, 1 skipped" in result.stdout
