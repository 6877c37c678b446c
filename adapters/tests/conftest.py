"""Fixtures shared by every test folder: ledger stores on both backends, and a whole stack
(the Faspay emulator over loopback HTTP + the merchant's WSGI endpoints + the payment service +
a recording order system) for integration tests.

PostgreSQL is the server named by ``$GATEWAY_TEST_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/test``); each test gets its own schema. When the server
is unreachable its tests are skipped with the reason, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import functools
import os
import socketserver
import sys
import threading
import uuid
import wsgiref.simple_server
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from gateway_core import Customer, Money, PaymentRequest, PluginHost, Settings
from gateway_core._runtime import Runtime, build_runtime
from gateway_core._service import ServicePolicy, StartedPayment
from gateway_core.ledger import Ledger, PostgresLedger, SQLiteLedger
from gateway_core.testing import HookRecorder
from gateway_core.web import make_wsgi_app

POSTGRES_URL = os.environ.get("GATEWAY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
TEST_PASSWORD = "S3NT1NEL-pw-Xq7t2LmZ9vR4"  # a sentinel: tests scan output for it


@attrs.frozen
class Store:
    """Where a ledger lives; picklable, so a spawned process can open the same store."""

    kind: str
    target: str
    schema: str = ""

    @property
    def url(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.target}"
        sep = "&" if "?" in self.target else "?"
        return f"{self.target}{sep}schema={self.schema}"

    def open(self) -> Ledger:
        if self.kind == "sqlite":
            return SQLiteLedger(self.target)
        return PostgresLedger(self.target, schema=self.schema)


#: This module as pytest loaded it. Test folders have no ``__init__.py`` and the tree has
#: several ``conftest.py``, so ``import conftest`` is ambiguous: tests take the ``suite``
#: fixture instead.
_THIS = sys.modules[__name__]


@pytest.fixture(scope="session")
def suite() -> Any:
    """The shared root conftest module (``Store``, ``build_stack``, ``TEST_PASSWORD``...)."""
    return _THIS


@functools.cache
def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used, or None."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            pass
    except psycopg.Error as exc:
        return f"{type(exc).__name__}: {str(exc).strip()}"
    return None


def require_postgres() -> None:
    """Skip (or, under CI=true, fail) when PostgreSQL is unreachable."""
    problem = postgres_problem()
    if problem is None:
        return
    message = f"PostgreSQL is not reachable at {POSTGRES_URL.split('@')[-1]}: {problem}"
    if os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}:
        pytest.fail(f"CI=true needs PostgreSQL: {message}", pytrace=False)
    pytest.skip(message)


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Store]:
    """A fresh, empty ledger store on each backend."""
    if request.param == "sqlite":
        yield Store("sqlite", str(tmp_path / "ledger.db"))
        return
    require_postgres()
    schema = f"gw_test_{uuid.uuid4().hex[:16]}"
    try:
        yield Store("postgres", POSTGRES_URL, schema)
    finally:
        drop_schema(schema)


@pytest.fixture
def sqlite_store(tmp_path: Any) -> Store:
    """A fresh SQLite ledger store."""
    return Store("sqlite", str(tmp_path / "ledger.db"))


# -- the whole stack ---------------------------------------------------------------------------


class _QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


class _ThreadingServer(socketserver.ThreadingMixIn, wsgiref.simple_server.WSGIServer):
    daemon_threads = True
    request_queue_size = 64


class _Late:
    target: Any = None

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return self.target(environ, start_response)


@attrs.define
class Stack:
    """The emulator, the merchant endpoints and the service, wired together over loopback."""

    emulator: Any  # gateway_faspay_dana.emulator.EmulatorApp
    emulator_url: str
    merchant_url: str
    runtime: Runtime
    recorder: HookRecorder
    store: Store
    gateway_name: str = "dana"
    now: Callable[[], datetime] = lambda: datetime.now(UTC)

    @property
    def service(self) -> Any:
        return self.runtime.service

    @property
    def ledger(self) -> Ledger:
        return self.runtime.ledger

    @property
    def notify_url(self) -> str:
        return f"{self.merchant_url}/notify/{self.gateway_name}"

    @property
    def return_url(self) -> str:
        return f"{self.merchant_url}/return/{self.gateway_name}"

    def request(self, order: str, amount: str = "2000", **fields: Any) -> PaymentRequest:
        values: dict[str, Any] = {
            "order_reference": order,
            "amount": Money(amount, "IDR"),
            "customer": Customer("Budi", email="budi@example.com", phone="081234567890"),
            "description": f"Order {order}",
            "return_url": self.return_url,
        }
        values.update(fields)
        return PaymentRequest(**values)

    def start(self, order: str, amount: str = "2000", **fields: Any) -> StartedPayment:
        started: StartedPayment = self.service.start_payment(
            self.gateway_name, self.request(order, amount, **fields)
        )
        return started

    def record(self, reference: str) -> Any:
        return self.service.payment(self.gateway_name, reference)

    def wait(self, timeout: float = 10.0) -> None:
        assert self.emulator.wait_for_deliveries(timeout), "emulator deliveries did not finish"


def build_stack(
    store: Store,
    *,
    policy: ServicePolicy | None = None,
    notification_format: str = "json",
    emulator_options: dict[str, Any] | None = None,
    max_retries: int = 2,
) -> tuple[Stack, Callable[[], None]]:
    """Start everything; returns the stack and its tear-down."""
    from gateway_faspay_dana.emulator import EmulatorApp, EmulatorServer, Merchant

    late = _Late()
    merchant_server = wsgiref.simple_server.make_server(
        "127.0.0.1", 0, late, server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    merchant_url = f"http://127.0.0.1:{merchant_server.server_port}"
    merchant = Merchant(
        "99999",
        merchant_name="Test Store",
        password=TEST_PASSWORD,
        notification_url=f"{merchant_url}/notify/dana",
        return_url=f"{merchant_url}/return/dana",
        notification_format=notification_format,  # type: ignore[arg-type]
    )
    options = {"retry_interval": 0.05, **(emulator_options or {})}
    app = EmulatorApp(merchant, **options)
    emulator = EmulatorServer(app).start()
    settings = Settings(
        providers={
            "dana": {
                "provider": "faspay_dana",
                "merchant_id": "99999",
                "merchant_name": "Test Store",
                "password": TEST_PASSWORD,
                "base_url": emulator.url,
                "read_timeout": 2.0,
                "deadline": 6.0,
                "max_retries": max_retries,
                "notification_format": notification_format,
            }
        },
        ledger_url=store.url,
    )
    recorder = HookRecorder()
    runtime = build_runtime(
        settings,
        host=PluginHost(),
        plugins=[recorder],
        environ={},
        policy=policy or ServicePolicy(reconcile_grace=timedelta(0)),
    )
    late.target = make_wsgi_app(runtime.service, return_page=f"{merchant_url}/thanks")
    thread = threading.Thread(target=merchant_server.serve_forever, daemon=True)
    thread.start()
    stack = Stack(app, emulator.url, merchant_url, runtime, recorder, store)

    def close() -> None:
        emulator.stop()
        merchant_server.shutdown()
        merchant_server.server_close()
        runtime.close()

    return stack, close


@pytest.fixture
def stack(any_store: Store) -> Iterator[Stack]:
    """The whole stack on each ledger backend."""
    built, close = build_stack(any_store)
    try:
        yield built
    finally:
        close()


@pytest.fixture
def sqlite_stack(sqlite_store: Store) -> Iterator[Stack]:
    """The whole stack on SQLite only (for tests whose point is not the backend)."""
    built, close = build_stack(sqlite_store)
    try:
        yield built
    finally:
        close()
