"""The real ``gateway`` console script, run as a subprocess against a TOML configuration that
points at a temporary SQLite ledger and a Faspay emulator started by the test.

Every run is checked for the CLI's promises: never a traceback, never the password; user
mistakes are one line on stderr, ``gateway <cmd>: error: ...``, exit code 1.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from gateway_core import Money, PaymentStatus
from gateway_core.ledger import SQLiteLedger, open_ledger
from gateway_faspay_dana.emulator import EmulatorApp, EmulatorServer, Merchant
from gateway_faspay_dana.testing import signed_notification, signed_return_query

HERE = Path(__file__).resolve().parent
GATEWAY_SCRIPT = Path(sys.executable).with_name("gateway")
MERCHANT_ID = "99999"
MERCHANT_NAME = "Test Store"
COMMANDS = (
    "providers",
    "emulator",
    "demo",
    "serve",
    "create",
    "inquire",
    "cancel",
    "status",
    "reconcile",
    "redeliver",
    "prune",
    "verify",
)
CUSTOMER = ("--phone", "081234567890", "--email", "budi@example.com")


WORKERS = Path(__file__).resolve().parent / "workers"
#: The order system every command loads (the CLI delivers hook events only to a listener).
ORDER_SYSTEM = ("--plugin", "jsonl_hooks:OrderSystem")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any GATEWAY_*/FASPAY_* setting that could leak in; the test
    order-system plugin importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "FASPAY_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(WORKERS), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def run_all(
    commands: Sequence[Sequence[str]], *, cwd: Path, env: dict[str, str] | None = None
) -> list[subprocess.CompletedProcess[str]]:
    """Run several ``gateway`` invocations at once (they are independent); results in order."""
    procs = [
        subprocess.Popen(
            [str(GATEWAY_SCRIPT), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env or clean_env(),
            cwd=str(cwd),
        )
        for args in commands
    ]
    results = []
    try:
        for args, proc in zip(commands, procs, strict=True):
            out, err = proc.communicate(timeout=60)
            results.append(subprocess.CompletedProcess([*args], proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    return results


def assert_clean(result: subprocess.CompletedProcess[str], password: str) -> None:
    """No traceback and no secret, whatever the outcome."""
    assert "Traceback" not in result.stderr, result.stderr
    assert password not in result.stdout
    assert password not in result.stderr


def assert_one_line_error(result: subprocess.CompletedProcess[str], command: str) -> str:
    # 1: the command failed; 2: the command line itself was wrong (argparse's convention).
    assert result.returncode in (1, 2), (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"gateway {command}: error: "), lines[0]
    assert result.stdout == ""
    return lines[0]


def write_config(path: Path, *, ledger_url: str, password: str, base_url: str) -> Path:
    path.write_text(
        "\n".join(
            [
                "[ledger]",
                f"url = {json.dumps(ledger_url)}",
                "",
                "[providers.dana]",
                'provider = "faspay_dana"',
                f'merchant_id = "{MERCHANT_ID}"',
                f'merchant_name = "{MERCHANT_NAME}"',
                f"password = {json.dumps(password)}",
                f"base_url = {json.dumps(base_url)}",
                "read_timeout = 2.0",
                "deadline = 6.0",
                "max_retries = 1",
                "",
            ]
        ),
        encoding="utf-8",
    )
    return path


class Cli:
    """``gateway --config <file> ...`` against a temp SQLite ledger and a running emulator."""

    def __init__(self, tmp: Path, emulator: EmulatorServer, password: str) -> None:
        self.tmp = tmp
        self.emulator = emulator
        self.password = password
        self.ledger_path = tmp / "ledger.db"
        self.config = write_config(
            tmp / "gateway.toml",
            ledger_url=f"sqlite:///{self.ledger_path}",
            password=password,
            base_url=emulator.url,
        )

    def args(self, *args: str) -> list[str]:
        return [*ORDER_SYSTEM, "--config", str(self.config), *args]

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        [result] = run_all([self.args(*args)], cwd=self.tmp, env=clean_env(**env))
        assert_clean(result, self.password)
        return result

    def run_many(self, *commands: Sequence[str]) -> list[subprocess.CompletedProcess[str]]:
        results = run_all([self.args(*c) for c in commands], cwd=self.tmp)
        for result in results:
            assert_clean(result, self.password)
        return results

    def json(self, *args: str) -> Any:
        result = self.run(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def create(self, order: str, amount: str = "2000") -> dict[str, Any]:
        data: dict[str, Any] = self.json(
            "create",
            "--order",
            order,
            "--amount",
            amount,
            "--return-url",
            "http://x/r",
            *CUSTOMER,
        )
        return data


@pytest.fixture
def cli(suite: Any, tmp_path: Path) -> Iterator[Cli]:
    merchant = Merchant(MERCHANT_ID, merchant_name=MERCHANT_NAME, password=suite.TEST_PASSWORD)
    server = EmulatorServer(EmulatorApp(merchant, retry_interval=0.05)).start()
    try:
        yield Cli(tmp_path, server, suite.TEST_PASSWORD)
    finally:
        server.stop()


def _history(cli: Cli, reference: str) -> tuple[Any, list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """``gateway status <reference> --json``: the payment, its transitions, its hook events."""
    data = cli.json("status", reference)
    transitions = [(t["from"], t["to"], t["source"]) for t in data["transitions"]]
    events = [(e["kind"], e["delivered"]) for e in data["events"]]
    return data["payment"], transitions, events


def _stored(cli: Cli, reference: str) -> tuple[Any, list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The same, read from the ledger file directly (saves a process where the CLI's status
    output is not what is being tested)."""
    ledger = SQLiteLedger(str(cli.ledger_path))
    try:
        record = ledger.get_payment("dana", reference)
        assert record is not None
        assert record.id is not None
        transitions = [
            (t.from_status.value if t.from_status else None, t.to_status.value, t.source)
            for t in ledger.transitions(record.id)
        ]
        events = [
            (e.kind.value, e.delivered_at is not None) for e in ledger.outbox(payment_id=record.id)
        ]
        return {"status": record.status.value}, transitions, events
    finally:
        ledger.close()


def _counts(cli: Cli) -> dict[str, int]:
    ledger = SQLiteLedger(str(cli.ledger_path))
    try:
        return {k.value: v for k, v in ledger.counts_by_status().items() if v}
    finally:
        ledger.close()


# -- help and providers --------------------------------------------------------------------


def test_help_exits_zero_for_the_command_and_every_subcommand(tmp_path: Path) -> None:
    results = run_all([["--help"], *([c, "--help"] for c in COMMANDS)], cwd=tmp_path)
    top, *subs = results
    assert top.returncode == 0, top.stderr
    assert top.stdout.startswith("usage: gateway")
    for name in COMMANDS:
        assert name in top.stdout
    for name, result in zip(COMMANDS, subs, strict=True):
        assert result.returncode == 0, (name, result.stderr)
        assert result.stdout.startswith(f"usage: gateway {name}"), (name, result.stdout[:80])
        assert result.stderr == ""
        assert "--json" in result.stdout


def test_providers_lists_the_installed_faspay_plugin(tmp_path: Path) -> None:
    as_json, as_text = run_all([["providers", "--json"], ["providers"]], cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    rows = {row["name"]: row for row in json.loads(as_json.stdout)["providers"]}
    dana = rows["faspay_dana"]
    assert set(dana["capabilities"]) >= {"create", "inquire", "cancel", "handle_notification"}
    assert dana["emulator"] is True
    assert dana["return_settles"] is False
    assert "status" in dana["notification_signature_covers"]
    assert as_text.returncode == 0
    assert "faspay_dana" in as_text.stdout
    assert "provider(s) installed" in as_text.stdout


# -- operating the ledger --------------------------------------------------------------------


def test_create_status_and_inquire_after_the_customer_paid(cli: Cli) -> None:
    created = cli.create("O1")
    reference = created["merchant_reference"]
    assert created["status"] == "pending"
    assert created["order_reference"] == "O1"
    assert created["amount"] == "2000.00"
    assert created["currency"] == "IDR"
    assert created["reused"] is False
    assert created["redirect_url"].startswith(f"{cli.emulator.url}/pws/")
    bill = cli.emulator.app.bill(reference)
    assert bill["trx_id"] == created["provider_reference"]
    assert bill["status"] == "0"  # waiting for the customer

    # Double-clicking "pay": the same payable attempt comes back.
    again = cli.create("O1")
    assert again["reused"] is True
    assert again["merchant_reference"] == reference
    assert cli.emulator.app.create_requests(reference) == 1

    summary = cli.json("status")
    assert {k: v for k, v in summary["counts"].items() if v} == {"pending": 1}
    assert summary["undelivered_events"] == 0
    assert [p["merchant_reference"] for p in summary["payments"]] == [reference]
    payment, transitions, events = _history(cli, reference)
    assert payment["status"] == "pending"
    assert transitions == [("unknown", "pending", "create")]
    assert events == [("created", True)]

    cli.emulator.app.pay(reference)  # the emulator has no notification URL: none arrives
    inquired = cli.json("inquire", reference)
    assert inquired["status"] == "paid"
    assert inquired["merchant_reference"] == reference
    payment, transitions, events = _history(cli, reference)
    assert payment["status"] == "paid"
    assert transitions == [("unknown", "pending", "create"), ("pending", "paid", "inquiry")]
    assert events == [("created", True), ("paid", True)]

    text = cli.run("status", "--status", "paid")
    assert text.returncode == 0
    assert "paid=1" in text.stdout
    assert reference in text.stdout


def test_cancel_an_unpaid_payment(cli: Cli) -> None:
    reference = cli.create("O2", "5000")["merchant_reference"]
    cancelled = cli.json("cancel", reference, "--reason", "customer changed mind")
    assert cancelled["status"] == "cancelled"
    bill = cli.emulator.app.bill(reference)
    assert bill["status"] == "8"
    assert bill["cancel_reason"] == "customer changed mind"
    _, transitions, events = _stored(cli, reference)
    assert transitions[-1] == ("pending", "cancelled", "cancel")
    assert events == [("created", True), ("cancelled", True)]


def test_reconcile_settles_payments_whose_notifications_were_dropped(cli: Cli) -> None:
    app = cli.emulator.app
    app.configure_merchant(MERCHANT_ID, notification_url="http://127.0.0.1:9/notify/dana")
    app.add_fault("notification", "drop", count=2)
    paid = cli.create("O3")["merchant_reference"]
    failed = cli.create("O4", "3000")["merchant_reference"]
    app.pay(paid)
    app.fail(failed)
    assert app.wait_for_deliveries(10)
    for reference in (paid, failed):
        deliveries = app.deliveries(reference)
        assert deliveries
        assert not any(d["delivered"] for d in deliveries)
    assert _counts(cli) == {"pending": 2}

    report = cli.json("reconcile", "--grace", "0", "--interval", "0")
    assert report == {
        "examined": 2,
        "changed": 2,
        "unchanged": 0,
        "waiting": 0,
        "errors": 0,
        "reviews": 0,
        "unconfigured": 0,
        "unconfigured_gateways": [],
        "refunds_examined": 0,
        "refunds_settled": 0,
    }
    assert _counts(cli) == {"paid": 1, "failed": 1}
    assert _stored(cli, paid)[1][-1] == ("pending", "paid", "reconcile")
    assert _stored(cli, failed)[1][-1] == ("pending", "failed", "reconcile")
    # Nothing left to settle.
    assert cli.json("reconcile", "--grace", "0", "--interval", "0")["examined"] == 0


def test_redeliver_reports_pending_hook_events(cli: Cli) -> None:
    assert cli.json("redeliver") == {"delivered": 0, "failed": 0, "remaining": 0}
    reference = cli.create("O5")["merchant_reference"]
    cli.emulator.app.pay(reference)
    # An operator's inquiry from a shell without the order system's plugin: it commits
    # "paid", and nobody in that process can take the hook event.
    [bare] = run_all([["--config", str(cli.config), "inquire", reference]], cwd=cli.tmp)
    assert bare.returncode == 0, bare.stderr
    payment, transitions, events = _stored(cli, reference)
    assert payment["status"] == "paid"
    assert transitions[-1] == ("pending", "paid", "inquiry")
    assert events == [("created", True), ("paid", False)]

    assert cli.json("redeliver") == {"delivered": 1, "failed": 0, "remaining": 0}
    assert _stored(cli, reference)[2] == [("created", True), ("paid", True)]
    text = cli.run("redeliver")
    assert text.returncode == 0
    assert "delivered=0" in text.stdout


# -- verify ------------------------------------------------------------------------------------


def test_verify_notification_names_the_failing_check(cli: Cli) -> None:
    created = cli.create("O6")
    reference, trx_id = created["merchant_reference"], created["provider_reference"]
    credentials = (MERCHANT_ID, cli.password)
    amount = Money("2000", "IDR")

    def body(name: str, **fields: Any) -> str:
        values: dict[str, Any] = {
            "bill_no": reference,
            "trx_id": trx_id,
            "status": PaymentStatus.PAID,
            "amount": amount,
        }
        values.update(fields)
        path = cli.tmp / f"{name}.body"
        path.write_bytes(signed_notification(credentials, **values))
        return str(path)

    cases = {
        "valid": (body("valid"), None),
        "valid_xml": (body("valid_xml", fmt="xml"), None),
        "signature": (body("signature", signature="0" * 40), "signature"),
        "merchant": (body("merchant", merchant_id="88888"), "merchant"),
        "amount": (body("amount", amount=Money("9000", "IDR")), "amount"),
        "known_payment": (body("unknown", bill_no="NOPE-1"), "known_payment"),
        "provider_reference": (body("trx", trx_id="9999981999999999"), "provider_reference"),
    }
    names = list(cases)
    results = cli.run_many(
        *(["verify", "notification", cases[n][0], "--json"] for n in names),
        ["verify", "notification", cases["valid"][0]],
        ["verify", "notification", cases["amount"][0]],
    )
    for name, result in zip(names, results, strict=False):
        failing = cases[name][1]
        data = json.loads(result.stdout)
        if failing is None:
            assert result.returncode == 0, (name, result.stdout, result.stderr)
            assert data["valid"] is True
            assert [c["name"] for c in data["checks"]] == [
                "format",
                "signature",
                "known_payment",
                "merchant",
                "amount",
                "provider_reference",
            ]
            assert all(c["ok"] for c in data["checks"])
        else:
            assert result.returncode == 1, (name, result.stdout, result.stderr)
            assert data["valid"] is False
            *passed, last = data["checks"]
            assert all(c["ok"] for c in passed), (name, data)
            assert (last["name"], last["ok"]) == (failing, False), (name, data)
    valid_text, amount_text = results[len(names) :]
    assert valid_text.returncode == 0
    assert valid_text.stdout.startswith("VALID notification for gateway dana")
    assert amount_text.returncode == 1
    assert amount_text.stdout.startswith("INVALID notification for gateway dana")
    assert "[FAIL] amount: notification says 9000.00 IDR, ledger has 2000.00 IDR" in (
        amount_text.stdout
    )
    # Verifying applies nothing: the payment is still pending, with its one transition.
    payment, transitions, _ = _stored(cli, reference)
    assert payment["status"] == "pending"
    assert transitions == [("unknown", "pending", "create")]


def test_verify_return_url(cli: Cli) -> None:
    created = cli.create("O7")
    reference = created["merchant_reference"]
    credentials = (MERCHANT_ID, cli.password)

    def url(**fields: Any) -> str:
        values: dict[str, Any] = {
            "bill_no": reference,
            "status": PaymentStatus.PAID,
            "trx_id": created["provider_reference"],
        }
        values.update(fields)
        return "http://x/r?" + urlencode(signed_return_query(credentials, **values))

    valid, forged, unknown, valid_text = cli.run_many(
        ["verify", "return", url(), "--json"],
        ["verify", "return", url(signature="0" * 40), "--json"],
        ["verify", "return", url(bill_no="NOPE-1"), "--json"],
        ["verify", "return", url()],
    )
    assert valid.returncode == 0, valid.stderr
    assert json.loads(valid.stdout) == {
        "valid": True,
        "checks": [
            {"name": "signature", "ok": True, "detail": ""},
            {"name": "known_payment", "ok": True, "detail": reference},
        ],
    }
    assert forged.returncode == 1
    assert [(c["name"], c["ok"]) for c in json.loads(forged.stdout)["checks"]] == [
        ("signature", False)
    ]
    assert unknown.returncode == 1
    assert [(c["name"], c["ok"]) for c in json.loads(unknown.stdout)["checks"]] == [
        ("signature", True),
        ("known_payment", False),
    ]
    assert valid_text.returncode == 0
    assert valid_text.stdout.startswith("VALID return for gateway dana")


# -- user mistakes ---------------------------------------------------------------------------


def _error_cases() -> list[Any]:
    """(command, argv, text expected in the error line) with an id. ``argv[0]`` picks the
    configuration: ``@config`` a valid one, ``@missing`` a file that does not exist, the
    others a configuration with one bad (secret-bearing) setting."""
    order = ("create", "--order", "E1", "--return-url", "http://x/r", *CUSTOMER)
    return [
        pytest.param("status", ["@missing", "status"], "does not exist", id="missing-config"),
        pytest.param(
            "inquire",
            ["@config", "inquire", "E-1", "--gateway", "nope"],
            "no gateway named 'nope'",
            id="unknown-gateway",
        ),
        pytest.param(
            "create", ["@config", *order, "--amount", "abc"], "bad amount", id="bad-amount"
        ),
        pytest.param(
            "create",
            ["@config", *order, "--amount", "10", "--currency", "XYZ"],
            "bad amount",
            id="bad-currency",
        ),
        pytest.param(
            "create",
            [
                "@config",
                "create",
                "--order",
                "E2",
                "--amount",
                "2000",
                "--return-url",
                "http://x/r",
            ],
            "phone number (msisdn) is required",
            id="create-without-phone",
        ),
        pytest.param("status", ["@config", "status", "NOPE-1"], "no such payment", id="unknown"),
        pytest.param(
            "verify",
            ["@config", "verify", "notification", "/nonexistent/body.json"],
            "cannot read",
            id="verify-missing-file",
        ),
        pytest.param(
            "status", ["@bad-password", "status"], "'password'", id="invalid-password-setting"
        ),
        pytest.param(
            "status", ["@userinfo-base-url", "status"], "base_url", id="secret-in-base-url"
        ),
        pytest.param(
            "status", ["@postgres-down", "status"], "PostgreSQL ledger", id="secret-in-ledger-url"
        ),
        pytest.param(
            "create",
            ["@config", *order, "--amount", "-5"],
            "amount",
            id="negative-amount",
        ),
        pytest.param(
            "create",
            ["@config", *order, "--amount", "100000000000000000"],
            "",
            id="huge-amount",
        ),
        pytest.param(
            "status",
            ["@config", "status", "--limit", "-1"],
            "limit",
            id="status-negative-limit",
        ),
        pytest.param(
            "redeliver",
            ["@config", "redeliver", "--limit", "-1"],
            "limit",
            id="redeliver-negative-limit",
        ),
        pytest.param(
            "status",
            ["@config", "status", "--limit", "100000000000000000000"],
            "",
            id="status-huge-limit",
        ),
        pytest.param(
            "reconcile",
            ["@config", "reconcile", "--grace", "1e20"],
            "grace",
            id="reconcile-huge-grace",
        ),
    ]


ERROR_CASES = _error_cases()


@pytest.fixture(scope="module")
def error_runs(suite: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every error case, run at once (each with its own ledger); results by case id."""
    password = suite.TEST_PASSWORD
    root = tmp_path_factory.mktemp("cli-errors")
    commands = []
    for case in ERROR_CASES:
        _, argv, _ = case.values
        where = root / case.id
        where.mkdir()
        ledger_url = f"sqlite:///{where / 'ledger.db'}"
        base_url = "http://127.0.0.1:9"  # nothing listens: no case may need the provider
        target = argv[0]
        if target == "@missing":
            config = where / "missing.toml"
        elif target == "@bad-password":
            config = write_config(
                where / "gateway.toml",
                ledger_url=ledger_url,
                password=password + "\u0007",
                base_url=base_url,
            )
        elif target == "@userinfo-base-url":
            config = write_config(
                where / "gateway.toml",
                ledger_url=ledger_url,
                password=password,
                base_url=f"http://merchant:{password}@127.0.0.1:9",
            )
        elif target == "@postgres-down":
            config = write_config(
                where / "gateway.toml",
                ledger_url=f"postgresql://postgres:{password}@127.0.0.1:1/test?connect_timeout=2",
                password=password,
                base_url=base_url,
            )
        else:
            config = write_config(
                where / "gateway.toml", ledger_url=ledger_url, password=password, base_url=base_url
            )
            open_ledger(ledger_url).close()  # read-only commands (status, verify) need one
        commands.append(["--config", str(config), *argv[1:]])
    results = run_all(commands, cwd=root)
    return {case.id: result for case, result in zip(ERROR_CASES, results, strict=True)}


@pytest.mark.parametrize(("command", "argv", "expected"), ERROR_CASES)
def test_user_mistakes_are_one_line_errors(
    suite: Any,
    error_runs: dict[str, Any],
    request: pytest.FixtureRequest,
    command: str,
    argv: list[str],
    expected: str,
) -> None:
    case_id = request.node.callspec.id
    result = error_runs[case_id]
    assert_clean(result, suite.TEST_PASSWORD)
    line = assert_one_line_error(result, command)
    assert expected in line


# -- issue 15: each mistake, its exact line, its --json form -----------------------------------

NOTHING = (
    "nothing is configured: pass --config FILE before the command, or set $GATEWAY_CONFIG "
    "(see docs/configuration.md)"
)
TYPO = (
    "gateway 'dana': unknown setting 'merchant_nmae': did you mean 'merchant_name'? "
    "(provider=faspay_dana)"
)
NO_PLUGIN = (
    "--plugin nosuchmod:X: no module named 'nosuchmod' in the working directory or the "
    "installed packages"
)
NO_LEDGER = (
    "no ledger at {ledger}: nothing is recorded there yet (check [ledger] url or "
    "$GATEWAY_LEDGER_URL)"
)
CONFIG_AFTER = "put --config before the command: gateway --config FILE status ..."
#: (id, argv: "{config}" is a valid configuration, "{typo}" one with merchant_nmae, "{empty}"
#: one with a ledger and no gateway; exit code; the exact line, "{ledger}" the ledger's path).
EXACT_CASES = [
    (
        "bad-plugin",
        ["--plugin", "nosuchmod:X", "providers"],
        1,
        f"gateway providers: error: {NO_PLUGIN}",
    ),
    ("status-unconfigured", ["status"], 1, f"gateway status: error: {NOTHING}"),
    (
        "verify-unconfigured",
        ["verify", "return", "http://x/r?bill_no=1"],
        1,
        f"gateway verify: error: {NOTHING}",
    ),
    (
        "verify-no-gateway",
        ["--config", "{empty}", "verify", "return", "http://x/r"],
        1,
        "gateway verify: error: no gateway is configured: add a [providers.NAME] table",
    ),
    (
        "status-no-ledger",
        ["--config", "{config}", "status"],
        1,
        "gateway status: error: " + NO_LEDGER,
    ),
    (
        "verify-no-ledger",
        ["--config", "{config}", "verify", "return", "http://x/r"],
        1,
        "gateway verify: error: " + NO_LEDGER,
    ),
    ("misspelled-key", ["--config", "{typo}", "status"], 1, f"gateway status: error: {TYPO}"),
    (
        "config-after-command",
        ["status", "--config", "{config}"],
        2,
        f"gateway status: error: {CONFIG_AFTER}",
    ),
]


def _exact_runs(root: Path, password: str, json_form: bool) -> dict[str, Any]:
    commands, dirs = [], []
    for case_id, argv, _, _ in EXACT_CASES:
        where = root / case_id
        where.mkdir()
        ledger = where / "ledger.db"
        base = {
            "ledger_url": f"sqlite:///{ledger}",
            "password": password,
            "base_url": "http://127.0.0.1:9",
        }
        config = write_config(where / "gateway.toml", **base)
        typo = where / "typo.toml"
        typo.write_text(config.read_text().replace("merchant_name", "merchant_nmae"))
        empty = where / "empty.toml"
        empty.write_text(f"[ledger]\nurl = {json.dumps(base['ledger_url'])}\n")
        if "{empty}" in argv:
            open_ledger(base["ledger_url"]).close()
        paths = {"{config}": str(config), "{typo}": str(typo), "{empty}": str(empty)}
        args = [paths.get(a, a) for a in argv]
        commands.append([*args, "--json"] if json_form else args)
        dirs.append(where)
    results = {}
    for (case_id, *_), command, where in zip(EXACT_CASES, commands, dirs, strict=True):
        [results[case_id]] = run_all([command], cwd=where)
    return results


@pytest.fixture(scope="module")
def exact_runs(suite: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _exact_runs(tmp_path_factory.mktemp("exact"), suite.TEST_PASSWORD, json_form=False)


@pytest.fixture(scope="module")
def exact_json_runs(suite: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _exact_runs(tmp_path_factory.mktemp("exact-json"), suite.TEST_PASSWORD, json_form=True)


def _expected(case_id: str, line: str, result: Any) -> str:
    ledger = (
        Path(result.args[result.args.index("--config") + 1]).parent / "ledger.db"
        if "--config" in result.args
        else ""
    )
    return line.replace("{ledger}", str(ledger))


@pytest.mark.parametrize(
    ("case_id", "argv", "code", "line"), EXACT_CASES, ids=[c[0] for c in EXACT_CASES]
)
def test_each_mistake_is_its_exact_line(
    suite: Any, exact_runs: dict[str, Any], case_id: str, argv: list[str], code: int, line: str
) -> None:
    result = exact_runs[case_id]
    assert_clean(result, suite.TEST_PASSWORD)
    assert (result.returncode, result.stdout, result.stderr) == (
        code,
        "",
        _expected(case_id, line, result) + "\n",
    )
    # Nothing read-only left a ledger behind (status-no-ledger, verify-*, providers...).
    where = (
        Path(result.args[result.args.index("--config") + 1]).parent
        if "--config" in result.args
        else None
    )
    if case_id != "verify-no-gateway" and where is not None:
        assert not (where / "ledger.db").exists()


@pytest.mark.parametrize(
    ("case_id", "argv", "code", "line"), EXACT_CASES, ids=[c[0] for c in EXACT_CASES]
)
def test_with_json_each_mistake_is_one_json_document(
    suite: Any, exact_json_runs: dict[str, Any], case_id: str, argv: list[str], code: int, line: str
) -> None:
    result = exact_json_runs[case_id]
    assert_clean(result, suite.TEST_PASSWORD)
    assert (result.returncode, result.stderr) == (code, "")
    assert json.loads(result.stdout) == {
        "error": _expected(case_id, line, result),
        "exit_code": code,
    }
    assert result.stdout.count("\n") == 1


def test_json_before_the_command_is_named(tmp_path: Path) -> None:
    [result] = run_all([["--json", "status"]], cwd=tmp_path)
    line = "gateway status: error: put --json after the command: gateway status --json"
    assert (result.returncode, result.stderr) == (2, "")
    assert json.loads(result.stdout) == {"error": line, "exit_code": 2}


def test_read_only_commands_never_create_a_ledger(tmp_path: Path) -> None:
    """Unconfigured, and configured only from the environment (the default ledger)."""
    env = clean_env(
        GATEWAY_PROVIDERS="dana=faspay_dana",
        FASPAY_MERCHANT_ID="99999",
        FASPAY_MERCHANT_NAME="Shop",
        FASPAY_PASSWORD="pw-123456",
    )
    commands = [["status"], ["verify", "return", "http://x/r"], ["providers"], ["status", "--json"]]
    bare = run_all(commands, cwd=tmp_path)
    configured = [run_all([c], cwd=tmp_path, env=env)[0] for c in commands]
    assert [r.returncode for r in bare] == [1, 1, 0, 1]
    assert [r.returncode for r in configured] == [1, 1, 0, 1]
    missing = "no ledger at gateway-ledger.db: nothing is recorded there yet"
    assert configured[0].stderr.startswith(f"gateway status: error: {missing}")
    assert list(tmp_path.iterdir()) == []


def test_plugin_resolves_from_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "shop_hooks.py").write_text(
        "from gateway_core import hookimpl\n\n\nclass OrderSystem:\n"
        "    @hookimpl\n    def gateway_payment_paid(self, event):\n        pass\n"
    )
    env = {k: v for k, v in clean_env().items() if k != "PYTHONPATH"}
    [ok] = run_all([["--plugin", "shop_hooks:OrderSystem", "providers"]], cwd=tmp_path, env=env)
    assert (ok.returncode, ok.stderr) == (0, "")
    # Every installed provider plugin is listed (faspay_dana and midtrans_snap).
    assert ok.stdout.startswith("2 provider(s) installed:")


def test_serve_on_a_port_in_use_is_one_line_and_no_banner(suite: Any, tmp_path: Path) -> None:
    import socket

    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    config = write_config(
        tmp_path / "g.toml",
        ledger_url=ledger_url,
        password=suite.TEST_PASSWORD,
        base_url="http://127.0.0.1:9",
    )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        [plain, as_json] = run_all(
            [
                ["--config", str(config), "serve", "--port", str(port), *extra]
                for extra in ([], ["--json"])
            ],
            cwd=tmp_path,
        )
    line = (
        f"gateway serve: error: cannot listen on 127.0.0.1:{port}: address already in use: "
        "pick another --port, or stop what listens there"
    )
    assert (plain.returncode, plain.stdout, plain.stderr) == (1, "", line + "\n")
    assert json.loads(as_json.stdout) == {"error": line, "exit_code": 1}
    assert as_json.stderr == ""


def test_postgres_errors_are_one_readable_line(error_runs: dict[str, Any]) -> None:
    line = error_runs["secret-in-ledger-url"].stderr
    assert line.startswith("gateway status: error: PostgreSQL ledger migrate failed: connection")
    assert "\\x0a" not in line
    assert "\\n" not in line
    assert line.count("\n") == 1


def test_warnings_reach_stderr_only_with_verbose(suite: Any, tmp_path: Path) -> None:
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    config = write_config(
        tmp_path / "g.toml",
        ledger_url=ledger_url,
        password=suite.TEST_PASSWORD,
        base_url="http://127.0.0.1:9",
    )
    open_ledger(ledger_url).close()
    (tmp_path / "body.json").write_text('{"bill_no": "x"}')
    verify = ["--config", str(config), "verify", "notification", str(tmp_path / "body.json")]
    quiet, verbose = run_all([verify, [*verify, "-v"]], cwd=tmp_path)
    expected = (
        "INVALID notification for gateway dana\n"
        "  [FAIL] format: malformed Faspay notification: bill_total is required\n"
    )
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (1, expected, "")
    assert (verbose.returncode, verbose.stdout) == (1, expected)
    assert (
        verbose.stderr
        == "WARNING gateway_faspay_dana: notification rejected: malformed (bill_total)\n"
    )


def test_a_plugin_object_is_named_by_its_class_not_its_id() -> None:
    from gateway_core import PluginError, PluginHost, hookimpl

    class Bad:
        @hookimpl
        def gateway_no_such_hook(self) -> None:
            pass

    with pytest.raises(PluginError) as info:
        PluginHost(entry_points=False, plugins=[Bad(), Bad()])
    name = f"{Bad.__module__}.{Bad.__qualname__}"
    assert str(info.value).startswith(f"plugin {name!r} implements a hook that does not exist")


def test_payment_record_is_importable_from_gateway_core() -> None:
    import gateway_core
    from gateway_core import PaymentRecord
    from gateway_core.ledger import PaymentRecord as Record

    assert PaymentRecord is Record
    assert "PaymentRecord" in gateway_core.__all__


# -- the emulator command ------------------------------------------------------------------------


def test_emulator_command_starts_prints_its_urls_and_stops(suite: Any, tmp_path: Path) -> None:
    password = suite.TEST_PASSWORD
    proc = subprocess.Popen(
        [str(GATEWAY_SCRIPT), "emulator", "faspay_dana", "--port", "0", "--password", password],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
        cwd=str(tmp_path),
    )
    watchdog = threading.Timer(30, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl-C"):
                break
        banner = "\n".join(lines)
        match = re.search(r"listening on (http://127\.0\.0\.1:(\d+))", banner)
        assert match, banner
        url, port = match.group(1), int(match.group(2))
        assert port > 0
        assert f"FASPAY_BASE_URL={url}" in banner
        assert f"control API:       {url}/_emulator/" in banner
        assert "merchant_id:       99999" in banner
        assert password not in banner
        assert "password:          S3" in banner  # masked, first two characters only
        reply = requests.get(f"{url}/_emulator/", timeout=5)
        assert reply.status_code == 200
        proc.terminate()
        out, err = proc.communicate(timeout=15)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, err
    assert "Faspay DANA emulator stopped." in out
    assert "Traceback" not in err
    assert password not in out + err


def test_refund_on_a_provider_that_cannot_refund_is_one_line_and_changes_nothing(
    cli: Cli,
) -> None:
    reference = cli.create("O-RF", "5000")["merchant_reference"]
    cli.emulator.app.pay(reference)
    assert cli.json("inquire", reference)["status"] == "paid"
    result = cli.run("refund", reference, "--amount", "1000")
    line = assert_one_line_error(result, "refund")
    assert "cannot refund" in line
    _, transitions, _events = _stored(cli, reference)
    assert transitions[-1][1] == "paid"
