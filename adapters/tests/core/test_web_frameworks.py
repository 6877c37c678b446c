"""The examples in docs/examples/ (Flask, Django, FastAPI) work as docs/frameworks.md says.

Each example's ``create_app(service)`` gets a real payment service (the Acme Pay example
plugin, a SQLite ledger, a hook recorder as the order system); requests go through the
framework: Flask's test client, FastAPI's ``TestClient`` and a real uvicorn server (the
native ASGI app and the async facade), and for Django a real waitress server, because the
example dispatches in front of Django at the WSGI level, where Django's own test client does
not reach. Each example's checkout also runs against the Faspay emulator (served on loopback,
configured from a ``gateway.toml``): a virtual account and a QRIS payment, end to end.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import attrs
import pytest
import requests
from asgi_support import uvicorn_serving
from test_web_support import (
    ACK_FAILED,
    ACK_OK,
    GATEWAY,
    JSON,
    ORDER,
    REFERENCE,
    LedgerState,
    acme_notification,
    acme_runtime,
    insert_pending_payment,
    serve,
    sign,
    signed_headers,
    signed_return,
)

from gateway_core import EventKind, PaymentStatus, Runtime
from gateway_core.testing import HookRecorder

REPO_ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = REPO_ROOT / "docs" / "examples"
GUIDE = REPO_ROOT / "docs" / "frameworks.md"

#: example module -> (modules it needs, where the return page is)
FRAMEWORKS = {
    "flask_app": (("flask",), "/thanks"),
    "django_app": (("django",), "/thanks/"),
    "fastapi_app": (("fastapi", "httpx"), "/thanks"),
}
#: the shops the behaviour tests run against: each example, FastAPI's also under uvicorn
SHOPS = [*FRAMEWORKS, "fastapi_app@uvicorn"]
NOTIFY = f"/payments/notify/{GATEWAY}"


def load_example(name: str) -> ModuleType:
    """Import docs/examples/<name>.py once per process (Django's settings are global)."""
    module_name = f"gateway_docs_example_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]
            raise
    return sys.modules[module_name]


@attrs.frozen
class Reply:
    status: int
    content_type: str
    body: bytes
    location: str


class Shop(Protocol):
    """One framework's app, driven through that framework's way of taking requests."""

    return_page: str

    def post(self, target: str, body: bytes, headers: dict[str, str]) -> Reply: ...

    def get(self, target: str) -> Reply: ...


@attrs.define
class FlaskShop:
    client: Any
    return_page: str

    def _reply(self, response: Any) -> Reply:
        headers = response.headers
        return Reply(
            response.status_code,
            headers.get("Content-Type", ""),
            response.data,
            headers.get("Location", ""),
        )

    def post(self, target: str, body: bytes, headers: dict[str, str]) -> Reply:
        return self._reply(self.client.post(target, data=body, headers=headers))

    def get(self, target: str) -> Reply:
        return self._reply(self.client.get(target))


@attrs.define
class HttpShop:
    """A client for a real server (Django) or an httpx-style test client (FastAPI)."""

    client: Any
    base: str
    return_page: str
    body_argument: str = "content"
    redirect_argument: dict[str, bool] = attrs.field(factory=dict)

    def _reply(self, response: Any) -> Reply:
        headers = response.headers
        return Reply(
            response.status_code,
            headers.get("Content-Type", ""),
            response.content,
            headers.get("Location", ""),
        )

    def post(self, target: str, body: bytes, headers: dict[str, str]) -> Reply:
        kwargs: dict[str, Any] = {self.body_argument: body, "headers": headers}
        return self._reply(self.client.post(self.base + target, **kwargs, **self.redirect_argument))

    def get(self, target: str) -> Reply:
        return self._reply(self.client.get(self.base + target, **self.redirect_argument))


@pytest.fixture
def recorder() -> HookRecorder:
    return HookRecorder()


@pytest.fixture
def runtime(
    tmp_path: Path, example_plugin_on_path: Path, recorder: HookRecorder
) -> Iterator[Runtime]:
    rt = acme_runtime(tmp_path, recorder)
    insert_pending_payment(rt.ledger)
    yield rt
    rt.close()


@pytest.fixture(params=SHOPS)
def shop(request: pytest.FixtureRequest, runtime: Runtime) -> Iterator[Shop]:
    name, _, server = str(request.param).partition("@")
    needs, return_page = FRAMEWORKS[name]
    for module in (*needs, *([server] if server else [])):
        pytest.importorskip(
            module, reason=f"{module} is not installed (pip install -e '.[test]' brings it)"
        )
    app = load_example(name).create_app(runtime.service)
    if name == "flask_app":
        yield FlaskShop(app.test_client(), return_page)
    elif server == "uvicorn":
        with uvicorn_serving(app) as base, requests.Session() as session:
            yield HttpShop(
                session,
                base,
                return_page,
                body_argument="data",
                redirect_argument={"allow_redirects": False},
            )
    elif name == "fastapi_app":
        with warnings.catch_warnings():  # Starlette now prefers the httpx2 fork
            warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
            from fastapi.testclient import TestClient

        with TestClient(app) as client:
            yield HttpShop(client, "", return_page, redirect_argument={"follow_redirects": False})
    else:
        with serve(app) as base, requests.Session() as session:
            yield HttpShop(
                session,
                base,
                return_page,
                body_argument="data",
                redirect_argument={"allow_redirects": False},
            )


def paid_events(recorder: HookRecorder) -> int:
    return len(recorder.of_kind(EventKind.PAID))


def status_of(runtime: Runtime) -> PaymentStatus:
    record = runtime.ledger.get_payment(GATEWAY, REFERENCE)
    assert record is not None
    return record.status


def test_signed_notification_pays_the_order_once(
    shop: Shop, runtime: Runtime, recorder: HookRecorder
) -> None:
    body = acme_notification()
    for _ in range(2):  # Acme retries until acknowledged; the repeat changes nothing
        reply = shop.post(NOTIFY, body, signed_headers(body))
        assert (reply.status, reply.content_type, reply.body) == (200, JSON, ACK_OK)
        assert status_of(runtime) is PaymentStatus.PAID
        assert paid_events(recorder) == 1
    assert [entry.verdict for entry in runtime.ledger.journal()] == ["applied", "duplicate"]


def test_forged_notification_gets_the_failure_reply_and_changes_nothing(
    shop: Shop, runtime: Runtime, recorder: HookRecorder
) -> None:
    body = acme_notification()
    before = LedgerState.of(runtime.ledger)
    reply = shop.post(NOTIFY, body, signed_headers(body, secret="forged"))
    assert (reply.status, reply.content_type, reply.body) == (400, JSON, ACK_FAILED)
    after = LedgerState.of(runtime.ledger)
    assert after.payment == before.payment
    assert (after.transitions, after.events) == (before.transitions, before.events)
    assert status_of(runtime) is PaymentStatus.PENDING
    assert recorder.events == []


def test_body_reaches_the_signature_check_byte_for_byte(shop: Shop, runtime: Runtime) -> None:
    # Whitespace, key order and a form-like content type must survive the framework.
    body = b'{ "status":"paid",\r\n "currency":"USD", "amount_minor":1000,\t"reference":"ord-1-1"}'
    headers = {"Acme-Signature": sign(body), "Content-Type": "application/x-www-form-urlencoded"}
    reply = shop.post(NOTIFY, body, headers)
    assert (reply.status, reply.body) == (200, ACK_OK)
    assert status_of(runtime) is PaymentStatus.PAID


def test_return_redirects_303_to_the_shops_thanks_page(shop: Shop, runtime: Runtime) -> None:
    body = acme_notification()
    assert shop.post(NOTIFY, body, signed_headers(body)).status == 200
    reply = shop.get(f"/payments/return/{GATEWAY}?{urlencode(signed_return())}")
    assert reply.status == 303
    location = urlsplit(reply.location)
    assert location.path == shop.return_page
    assert parse_qs(location.query) == {
        "gateway": [GATEWAY],
        "reference": [REFERENCE],
        "status": ["paid"],
        "order": [ORDER],
    }
    page = shop.get(reply.location)  # the framework's own view, after the redirect
    assert page.status == 200
    assert page.body == b"Order ord-1: paid\n"


def test_return_with_a_bad_signature_is_a_400_page(shop: Shop, runtime: Runtime) -> None:
    query = {**signed_return(), "status": "failed"}
    reply = shop.get(f"/payments/return/{GATEWAY}?{urlencode(query)}")
    assert reply.status == 400
    assert reply.body == b"This link is not valid."
    assert reply.location == ""


def test_thanks_page_reads_the_ledger_not_the_query(shop: Shop, runtime: Runtime) -> None:
    query = urlencode({"gateway": GATEWAY, "reference": REFERENCE, "status": "paid"})
    page = shop.get(f"{shop.return_page}?{query}")
    assert page.status == 200
    assert page.body == b"Order ord-1: pending\n"
    assert shop.get(f"{shop.return_page}?gateway=acme&reference=nope").status == 404


def test_mount_sends_payments_to_the_gateway_and_the_rest_to_the_framework(
    shop: Shop, runtime: Runtime
) -> None:
    health = shop.get("/payments/health")
    assert (health.status, health.body) == (200, b"ok")
    assert shop.get("/payments/nothing-here").status == 404
    assert shop.get("/health").status == 404  # only under /payments


def test_django_dispatch_keeps_provider_posts_away_from_django_middleware(
    runtime: Runtime,
) -> None:
    pytest.importorskip("django", reason="django is not installed (it is in the [test] extra)")
    app = load_example("django_app").create_app(runtime.service)
    body = acme_notification()
    with serve(app) as base, requests.Session() as session:
        # A POST that reaches Django meets its CSRF middleware ...
        assert session.post(f"{base}/thanks/", data=body, timeout=10).status_code == 403
        # ... the provider's POST under /payments/ never does.
        response = session.post(f"{base}{NOTIFY}", data=body, headers=signed_headers(body))
        assert (response.status_code, response.content) == (200, ACK_OK)


def test_fastapi_example_mounts_the_native_asgi_app_on_the_async_facade(
    runtime: Runtime,
) -> None:
    pytest.importorskip("fastapi", reason="fastapi is not installed (it is in the [test] extra)")
    from gateway_core import AsyncPaymentService
    from gateway_core.asgi import GatewayASGIApp

    app = load_example("fastapi_app").create_app(runtime.service)
    mounted = [route.app for route in app.routes if getattr(route, "path", "") == "/payments"]
    assert len(mounted) == 1
    assert isinstance(mounted[0], GatewayASGIApp)  # no WSGI adapter in between
    assert isinstance(mounted[0].async_service, AsyncPaymentService)
    assert mounted[0].async_service.service is runtime.service


# -- the guide quotes the examples verbatim ------------------------------------------------------


def _quoted_parts(path: Path) -> list[tuple[str, str]]:
    """Every top-level statement of an example but its docstring, imports, type-checking
    imports and ``__main__`` block: the code the guide must show exactly as it runs."""
    source = path.read_text()
    parts = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the module docstring
        if isinstance(node, ast.If) and ast.unparse(node.test) in (
            "TYPE_CHECKING",
            "__name__ == '__main__'",
        ):
            continue
        segment = ast.get_source_segment(source, node)
        assert segment is not None
        name = getattr(node, "name", "") or segment.splitlines()[0]
        parts.append((name, segment))
    return parts


@pytest.mark.parametrize("name", list(FRAMEWORKS))
def test_guide_quotes_each_example_verbatim(name: str) -> None:
    guide = GUIDE.read_text()
    path = EXAMPLES / f"{name}.py"
    assert f"docs/examples/{name}.py" in guide
    parts = _quoted_parts(path)
    assert "create_app" in [part for part, _ in parts]
    for part, segment in parts:
        assert segment in guide, f"{part!r} of {path.name} differs from docs/frameworks.md"


def test_each_quoted_example_runs_when_copied_as_printed(tmp_path: Path) -> None:
    """Issue 15: the quotes once left out ``from __future__ import annotations`` and raised
    NameError when pasted; each quoted block, alone in a file, must import and define its
    ``create_app``."""
    import subprocess
    import sys

    guide = (Path(__file__).resolve().parents[3] / "docs" / "frameworks.md").read_text()
    marker = "<!-- tested-by: adapters/tests/core/test_web_frameworks.py::"
    blocks = re.findall(re.escape(marker) + r"[^\n]*\n```python\n(.*?)```", guide, re.S)
    assert len(blocks) == 3
    for index, block in enumerate(blocks):
        path = tmp_path / f"pasted_{index}.py"
        path.write_text(block + "\nassert callable(create_app)\n", encoding="utf-8")
        result = subprocess.run(
            [sys.executable, str(path)], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr[-2000:]


# -- a checkout with a payment method, against the Faspay emulator --------------------------------

FASPAY = "faspay"
#: The examples' configuration for the emulated merchant (``GATEWAY_CONFIG``).
FASPAY_CONFIG = """\
[ledger]
url = "sqlite:///{ledger}"

[providers.faspay]
provider = "faspay_dana"
merchant_id = "99999"
merchant_name = "Sophia Store"
base_url = "{emulator}"
channels = "dana,bca_va,qris_shopeepay"
# password: from $FASPAY_PASSWORD
"""


@attrs.frozen
class EmulatedShop:
    """An example app served on loopback, its gateway ``faspay`` talking to the emulator."""

    base: str
    checkout: str  # the checkout path, ``{order}`` to fill in
    thanks: str  # the shop's return page
    runtime: Runtime
    recorder: HookRecorder
    emulator: Any  # EmulatorControl: the emulator's control API over HTTP

    def payment(self, order: str) -> Any:
        (record,) = self.runtime.ledger.payments_for_order(FASPAY, order)
        return record


@pytest.fixture(params=list(FRAMEWORKS))
def emulated_shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EmulatedShop]:
    name = str(request.param)
    needs, return_page = FRAMEWORKS[name]
    for module in (*needs, *(("uvicorn",) if name == "fastapi_app" else ())):
        pytest.importorskip(module, reason=f"{module} is not installed (pip install -e '.[test]')")
    from gateway_core import Settings, build_runtime
    from gateway_faspay_dana.emulator import EmulatorApp, EmulatorServer, Merchant
    from gateway_faspay_dana.emulator._control import EmulatorControl
    from gateway_faspay_dana.emulator._model import SANDBOX_PASSWORD

    merchant = Merchant("99999", merchant_name="Sophia Store", channels=("819", "702", "711"))
    server = EmulatorServer(EmulatorApp(merchant, retry_interval=0.05)).start()
    config = tmp_path / "gateway.toml"
    config.write_text(FASPAY_CONFIG.format(ledger=tmp_path / "ledger.db", emulator=server.url))
    environ = {"FASPAY_PASSWORD": SANDBOX_PASSWORD}
    recorder = HookRecorder()
    runtime = build_runtime(Settings.load(config, environ={}), plugins=[recorder], environ=environ)
    app = load_example(name).create_app(runtime.service)
    serving = uvicorn_serving(app) if name == "fastapi_app" else serve(app)
    checkout = "/checkout/faspay/{order}" + ("/" if return_page.endswith("/") else "")
    try:
        with serving as base, EmulatorControl(server.url) as control:
            control.configure_merchant(
                "99999",
                notification_url=f"{base}/payments/notify/{FASPAY}",
                return_url=f"{base}/payments/return/{FASPAY}",
            )
            yield EmulatedShop(base, checkout, return_page, runtime, recorder, control)
    finally:
        server.stop()
        runtime.close()


def test_checkout_takes_a_method_and_shows_its_instructions(emulated_shop: EmulatedShop) -> None:
    """Issue 12: through the example's checkout the customer picks a BCA virtual account,
    then QRIS; the gateway's pay page shows the instructions; the emulator's simulated payer
    pays (a transfer, a scan); its notification settles each order once; the thanks page
    reads paid from the ledger. A method the gateway does not offer makes no payment."""
    shop = emulated_shop
    methods = shop.runtime.service.gateway(FASPAY).payment_methods
    assert methods == ("dana", "bca_va", "qris_shopeepay")
    with requests.Session() as browser:

        def checkout(order: str, method: str) -> tuple[Any, str]:
            target = shop.base + shop.checkout.format(order=order)
            answer = browser.get(target, params={"method": method}, allow_redirects=False)
            assert answer.status_code in (302, 303), answer.text
            record = shop.payment(order)
            assert record.method == method
            pay_page = urlsplit(answer.headers["Location"]).path
            assert pay_page == f"/payments/pay/{FASPAY}/{record.merchant_reference}"
            page = browser.get(shop.base + pay_page, allow_redirects=False)
            assert page.status_code == 200
            assert page.headers["Content-Type"].startswith("text/html")
            return record, page.text

        def settled(order: str) -> str:
            assert shop.emulator.wait_for_deliveries(10.0)
            query = {"gateway": FASPAY, "reference": shop.payment(order).merchant_reference}
            return browser.get(shop.base + shop.thanks, params=query).text

        # A BCA virtual account: the page shows the bank and the number to transfer to.
        va, page = checkout("va-1", "bca_va")
        assert "BCA" in page
        assert f"<dd>{va.provider_reference}</dd>" in page  # the VA number (its trx_id)
        assert checkout("va-1", "bca_va")[0] == va  # a reload: the same attempt, no new bill
        assert settled("va-1") == "Order va-1: pending\n"
        shop.emulator.transfer(va.provider_reference)
        assert settled("va-1") == "Order va-1: paid\n"

        # QRIS: the page shows the QR payload any QRIS app scans.
        qr, page = checkout("qr-1", "qris_shopeepay")
        assert re.search(r"<dt>Code</dt><dd>000201[^<]*6304[0-9A-F]{4}</dd>", page)
        shop.emulator.qr_scan(qr.provider_reference)
        assert settled("qr-1") == "Order qr-1: paid\n"

        # No method: the gateway's default (DANA), whose pay page redirects to the wallet.
        started = browser.get(shop.base + shop.checkout.format(order="d-1"), allow_redirects=False)
        onward = browser.get(urljoin(shop.base, started.headers["Location"]), allow_redirects=False)
        assert onward.status_code == 302
        assert onward.headers["Location"].startswith(shop.emulator.base_url)
        assert shop.payment("d-1").method == ""

        # A method this gateway does not offer: no payment is made.
        refused = browser.get(
            shop.base + shop.checkout.format(order="x-1"), params={"method": "ovo"}
        )
        assert refused.status_code == 404
        assert shop.runtime.ledger.payments_for_order(FASPAY, "x-1") == []
    assert paid_events(shop.recorder) == 2


# -- the same checkout code on Midtrans Snap, by configuration only --------------------------------

SNAP = "snap"
#: The same examples, configured for a Midtrans Snap gateway (the server key from the
#: environment): nothing in the example code changes.
MIDTRANS_CONFIG = """\
[ledger]
url = "sqlite:///{ledger}"

[providers.snap]
provider = "midtrans_snap"
environment = "sandbox"
base_url = "{emulator}"
enabled_payments = ["gopay", "bca_va"]
# server_key: from $MIDTRANS_SERVER_KEY
"""


@pytest.mark.parametrize("name", list(FRAMEWORKS))
def test_the_same_checkout_runs_on_midtrans_by_configuration(name: str, tmp_path: Path) -> None:
    """Swapped per configuration: each example's checkout, unchanged, on a ``midtrans_snap``
    gateway against the Midtrans emulator. The customer picks GoPay, the pay page sends the
    browser to the Snap page, the customer pays there and comes back through the example's
    return endpoint; the notification and the return settle the order once; the thanks page
    reads paid from the ledger. A method the gateway does not offer makes no payment."""
    needs, thanks = FRAMEWORKS[name]
    for module in (*needs, *(("uvicorn",) if name == "fastapi_app" else ())):
        pytest.importorskip(module, reason=f"{module} is not installed (pip install -e '.[test]')")
    from gateway_core import Settings, build_runtime
    from gateway_core.sandbox import page_forms
    from gateway_midtrans_snap.emulator import Merchant, MidtransEmulator, MidtransServer

    key = "SB-Mid-server-Frameworks-Swap-01"
    emulator = MidtransEmulator(Merchant(server_key=key), retry_scale=1e-4, retry_jitter=False)
    server = MidtransServer(emulator).start()
    config = tmp_path / "gateway.toml"
    config.write_text(MIDTRANS_CONFIG.format(ledger=tmp_path / "ledger.db", emulator=server.url))
    recorder = HookRecorder()
    runtime = build_runtime(
        Settings.load(config, environ={}), plugins=[recorder], environ={"MIDTRANS_SERVER_KEY": key}
    )
    app = load_example(name).create_app(runtime.service)
    serving = uvicorn_serving(app) if name == "fastapi_app" else serve(app)
    checkout = "/checkout/snap/{order}" + ("/" if thanks.endswith("/") else "")
    try:
        with serving as base, requests.Session() as browser:
            emulator.configure_merchant(
                emulator.merchant().merchant_id, notification_url=f"{base}/payments/notify/{SNAP}"
            )
            answer = browser.get(
                base + checkout.format(order="m-1"),
                params={"method": "gopay"},
                allow_redirects=False,
            )
            assert answer.status_code in (302, 303), answer.text
            (record,) = runtime.ledger.payments_for_order(SNAP, "m-1")
            assert (record.provider, record.method) == ("midtrans_snap", "gopay")
            pay_page = browser.get(urljoin(base, answer.headers["Location"]), allow_redirects=False)
            assert pay_page.status_code == 302
            snap_page = pay_page.headers["Location"]
            assert snap_page.startswith(f"{server.url}/snap/v3/redirection/")
            page = browser.get(snap_page)
            assert page.status_code == 200
            action, fields = page_forms(page.text)["snap-pay"]
            paid = browser.post(urljoin(page.url, action), data=fields, allow_redirects=False)
            back = paid.headers["Location"]  # Snap's finish redirect: the example's return URL
            assert back.startswith(f"{base}/payments/return/{SNAP}?")
            returned = browser.get(back, allow_redirects=False)
            assert returned.status_code == 303
            assert urlsplit(returned.headers["Location"]).path == thanks
            assert emulator.wait_for_deliveries(10.0)
            query = {"gateway": SNAP, "reference": record.merchant_reference}
            assert browser.get(base + thanks, params=query).text == "Order m-1: paid\n"
            refused = browser.get(base + checkout.format(order="x-1"), params={"method": "ovo"})
            assert refused.status_code == 404
            assert runtime.ledger.payments_for_order(SNAP, "x-1") == []
        assert paid_events(recorder) == 1
    finally:
        server.stop()
        runtime.close()
