"""The DANA payment page in a real browser: Debian's Chromium, driven by Playwright.

For two ways of running the merchant side -- the bare ``gateway serve`` recipe (a real
subprocess on a temp SQLite ledger) and the Flask example (``docs/examples/flask_app.py``
served by werkzeug on loopback) -- a payment is created in-process on the same ledger, the
browser opens its redirect URL on the Faspay emulator, presses pay, fail or abandon, follows the
emulator's redirect to the merchant's return endpoint and on to the shop's return page, and the
ledger is checked: paid with exactly one paid event, failed, or still open (in process, as
the provider reports an abandoned page) with no paid event.

Screenshots of the page before and after (``<recipe>-<action>-1-dana-page.png``,
``...-2-return-page.png``) go to ``$GATEWAY_TEST_ARTIFACTS`` or else the test's ``tmp_path``;
their paths are printed. The browser is ``/usr/bin/chromium`` (``.ci/run`` installs Debian's
package; Playwright's own browser download is never used). Without it the tests skip, except
under ``CI=true``, where they fail.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
import wsgiref.simple_server
from collections.abc import Callable, Iterator
from datetime import timedelta
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from gateway_core import (
    Customer,
    EventKind,
    Money,
    PaymentRequest,
    PaymentStatus,
    PluginHost,
    Settings,
)
from gateway_core._runtime import Runtime, build_runtime
from gateway_core._service import ServicePolicy
from gateway_core.ledger import SQLiteLedger
from gateway_core.testing import HookRecorder
from gateway_faspay_dana.emulator import EmulatorApp, EmulatorServer, Merchant

REPO_ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MERCHANT_ID = "99999"
MERCHANT_NAME = "Test Store"
PASSWORD = "browser-test-pw-Kq3"
ACTIONS = {
    # action on the DANA page -> the ledger status afterwards. Abandoning changes nothing at
    # the provider: the return reports the bill still in process (the customer opened the
    # page), which the ledger records; the payment stays open, neither paid nor failed.
    "pay": PaymentStatus.PAID,
    "fail": PaymentStatus.FAILED,
    "abandon": PaymentStatus.IN_PROCESS,
}

pytestmark = pytest.mark.slow


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def _browser_problem() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is absent (apt-get install --no-install-recommends chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]' brings it)"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# -- the browser -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium (Debian's) with a fresh profile, for the whole module."""
    problem = _browser_problem()
    if problem is not None:
        if _in_ci():
            pytest.fail(f"CI=true needs the browser test to run: {problem}", pytrace=False)
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 900, "height": 700},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def artifacts(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """Where this test's screenshots go."""
    configured = os.environ.get("GATEWAY_TEST_ARTIFACTS", "").strip()
    if not configured:
        return tmp_path
    folder = Path(configured) / "browser" / str(request.node.name).replace("/", "_")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# -- the two recipes -----------------------------------------------------------------------------


class _QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


def _settings(ledger_path: Path, emulator_url: str) -> Settings:
    return Settings(
        providers={
            "dana": {
                "provider": "faspay_dana",
                "merchant_id": MERCHANT_ID,
                "merchant_name": MERCHANT_NAME,
                "password": PASSWORD,
                "base_url": emulator_url,
                "read_timeout": 2.0,
                "deadline": 6.0,
                "max_retries": 1,
            }
        },
        ledger_url=f"sqlite:///{ledger_path}",
    )


def _runtime(ledger_path: Path, emulator_url: str, recorder: HookRecorder) -> Runtime:
    return build_runtime(
        _settings(ledger_path, emulator_url),
        host=PluginHost(),
        plugins=[recorder],
        environ={},
        policy=ServicePolicy(reconcile_grace=timedelta(0)),
    )


class Recipe:
    """A running merchant side: the emulator, the shop and a service on the same ledger."""

    def __init__(
        self,
        name: str,
        emulator: EmulatorServer,
        runtime: Runtime,
        ledger_path: Path,
        return_endpoint: str,
    ) -> None:
        self.name = name
        self.emulator = emulator
        self.runtime = runtime
        self.ledger_path = ledger_path
        self.return_endpoint = return_endpoint  # the merchant's /return/dana
        self.redirects: dict[str, str] = {}

    def create(self, order: str) -> str:
        started = self.runtime.service.start_payment(
            "dana",
            PaymentRequest(
                order_reference=order,
                amount=Money("2000", "IDR"),
                customer=Customer("Budi", email="budi@example.com", phone="081234567890"),
                description=f"Order {order}",
                return_url=self.return_endpoint,
            ),
        )
        reference: str = started.payment.merchant_reference
        assert started.payment.status is PaymentStatus.PENDING
        url = str(getattr(started.redirect, "url", ""))
        assert url.startswith(f"{self.emulator.url}/"), started.redirect
        self.redirects[reference] = url
        return reference

    def ledger_state(self, reference: str) -> tuple[PaymentStatus, int]:
        """The payment's status and its number of paid events, read from a fresh connection."""
        ledger = SQLiteLedger(str(self.ledger_path))
        try:
            record = ledger.get_payment("dana", reference)
            assert record is not None
            assert record.id is not None
            paid = [e for e in ledger.outbox(payment_id=record.id) if e.kind is EventKind.PAID]
            return record.status, len(paid)
        finally:
            ledger.close()


def _thanks_app(ledger_path: Path) -> Any:
    """The shop's own return page for the bare recipe: reads the ledger, not the query."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        ledger = SQLiteLedger(str(ledger_path))
        try:
            record = ledger.get_payment(query.get("gateway", ""), query.get("reference", ""))
        finally:
            ledger.close()
        if record is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"unknown payment"]
        body = (
            "<!doctype html><title>Thank you</title><h1>Thank you</h1>"
            f"<p>Order <span id='order'>{escape(record.order_reference)}</span>: "
            f"<span id='status'>{escape(record.status.value)}</span></p>"
        ).encode()
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [body]

    return app


class _Late:
    target: Any = None

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return self.target(environ, start_response)


def _serving(app: Any) -> tuple[str, Callable[[], None]]:
    """``app`` on a loopback port in a thread (werkzeug's threaded server); its URL and stop."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return f"http://127.0.0.1:{server.server_port}", stop


def _emulator(notify: str, return_url: str) -> EmulatorServer:
    merchant = Merchant(
        MERCHANT_ID,
        merchant_name=MERCHANT_NAME,
        password=PASSWORD,
        notification_url=notify,
        return_url=return_url,
    )
    return EmulatorServer(EmulatorApp(merchant, retry_interval=0.05)).start()


def _config(path: Path, ledger_path: Path, emulator_url: str) -> Path:
    provider = _settings(ledger_path, emulator_url).providers["dana"]
    lines = ["[ledger]", f"url = {json.dumps(f'sqlite:///{ledger_path}')}", "", "[providers.dana]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in provider.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def bare_recipe(tmp_path: Path) -> Iterator[Recipe]:
    """The emulator + ``gateway serve`` as a subprocess + a one-view thanks page."""
    pytest.importorskip("werkzeug", reason="werkzeug is not installed (it comes with flask)")
    ledger_path = tmp_path / "ledger.db"
    thanks_url, stop_thanks = _serving(_thanks_app(ledger_path))
    port = _free_port()
    serve_url = f"http://127.0.0.1:{port}"
    emulator = _emulator(f"{serve_url}/notify/dana", f"{serve_url}/return/dana")
    config = _config(tmp_path / "gateway.toml", ledger_path, emulator.url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "FASPAY_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "gateway_core.cli", "--config", str(config)]
    process = subprocess.Popen(
        [*command, "serve", "--port", str(port), "--return-page", f"{thanks_url}/thanks"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    runtime: Runtime | None = None
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
        runtime = _runtime(ledger_path, emulator.url, HookRecorder())
        yield Recipe("bare-serve", emulator, runtime, ledger_path, f"{serve_url}/return/dana")
    finally:
        if runtime is not None:
            runtime.close()
        process.terminate()
        process.communicate(timeout=10)
        emulator.stop()
        stop_thanks()


def _flask_example() -> Any:
    """docs/examples/flask_app.py, imported once per process."""
    name = "gateway_docs_example_flask_app"  # the same module name test_web_frameworks uses
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, REPO_ROOT / "docs" / "examples" / "flask_app.py"
        )
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


@pytest.fixture
def flask_recipe(tmp_path: Path) -> Iterator[Recipe]:
    """The emulator + ``docs/examples/flask_app.py`` served by werkzeug on loopback."""
    pytest.importorskip("flask", reason="flask is not installed (pip install -e '.[test]')")
    ledger_path = tmp_path / "ledger.db"
    late = _Late()
    shop_url, stop_shop = _serving(late)
    emulator = _emulator(f"{shop_url}/payments/notify/dana", f"{shop_url}/payments/return/dana")
    runtime = _runtime(ledger_path, emulator.url, HookRecorder())
    late.target = _flask_example().create_app(runtime.service)
    try:
        yield Recipe("flask", emulator, runtime, ledger_path, f"{shop_url}/payments/return/dana")
    finally:
        stop_shop()
        emulator.stop()
        runtime.close()


@pytest.fixture(params=["bare_recipe", "flask_recipe"])
def recipe(request: pytest.FixtureRequest) -> Recipe:
    value: Recipe = request.getfixturevalue(str(request.param))
    return value


# -- the test ------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", list(ACTIONS))
def test_the_customer_uses_the_dana_page_in_chromium(
    browser: Any, recipe: Recipe, action: str, artifacts: Path
) -> None:
    reference = recipe.create(f"ORDER-{action.upper()}")
    page = browser.new_page()
    try:
        page.goto(recipe.redirects[reference], wait_until="load")
        assert page.locator("#bill-no").inner_text() == reference
        for form in ("dana-pay", "dana-fail", "dana-abandon"):
            assert page.locator(f"form#{form}").count() == 1, form
        before = artifacts / f"{recipe.name}-{action}-1-dana-page.png"
        page.screenshot(path=str(before), full_page=True)

        with page.expect_navigation(wait_until="load"):
            page.click(f"#{action}-button")
        landed = urlsplit(page.url)
        after = artifacts / f"{recipe.name}-{action}-2-return-page.png"
        page.screenshot(path=str(after), full_page=True)
        print(f"screenshots: {before} {after}")
        body = page.inner_text("body")
    finally:
        page.close()

    # The browser went emulator -> merchant's return endpoint (303) -> the shop's thanks page.
    assert landed.path == "/thanks", page.url
    query = {k: v[0] for k, v in parse_qs(landed.query).items()}
    assert query["reference"] == reference
    assert query["gateway"] == "dana"
    expected = ACTIONS[action]
    if action == "pay":
        # The return may be answered before the emulator's notification lands: either way the
        # ledger ends paid, once.
        assert recipe.emulator.app.wait_for_deliveries(10), "emulator deliveries did not finish"
        _wait_until(lambda: recipe.ledger_state(reference)[0] is expected, "the paid status")
    assert recipe.ledger_state(reference) == (expected, 1 if action == "pay" else 0)
    assert query["status"] == expected.value
    assert expected.is_final is (action != "abandon")
    assert f": {expected.value}" in body
    assert before.stat().st_size > 0
    assert after.stat().st_size > 0
