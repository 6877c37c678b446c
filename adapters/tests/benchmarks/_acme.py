"""The test suite's example plugin Acme Pay (``adapters/tests/example_plugin/acme_pay``) as a
benchmarked provider: a provider whose notification signature (HMAC-SHA256 of the whole body)
covers every field, so the service applies a first delivery without an inquiry.

The plugin is found as an application would find it: its folder (package + ``.dist-info``) on
``sys.path``, its entry point discovered by :class:`gateway_core.PluginHost`, the gateway class
taken from the host's provider registry. Payments are stored with the ledger's public
``insert_payment`` (the test suite does the same; creating them would need an Acme server).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

EXAMPLE_PLUGIN_DIR = Path(__file__).resolve().parents[1] / "example_plugin"
GATEWAY = "acme"  # the service's name of the gateway (the URL path /notify/acme)
PROVIDER = "acme_pay"
ACCOUNT = "bench_shop"
SECRET = "bench-acme-secret-not-real"  # a fake value for loopback benchmarks only
AMOUNT_MINOR = 1000
CURRENCY = "USD"


def on_path() -> None:
    """Put the example plugin's distribution folder on ``sys.path`` (once)."""
    folder = str(EXAMPLE_PLUGIN_DIR)
    if folder not in sys.path:
        sys.path.insert(0, folder)


def order_system() -> object:
    """A do-nothing order system, so hook delivery has an implementation to call."""
    from gateway_core import hookimpl

    class OrderSystem:
        @hookimpl
        def gateway_payment_paid(self, event: Any) -> None:
            return None

    return OrderSystem()


def host() -> Any:
    """A plugin host that discovered the example plugin by its entry point."""
    on_path()
    from gateway_core import PluginHost

    return PluginHost(entry_points=True, plugins=[order_system()])


def gateway(plugin_host: Any | None = None) -> Any:
    """An Acme Pay gateway built from the registry entry (no API is ever called: the
    benchmarks only deliver notifications, which Acme's signature settles)."""
    registry = (plugin_host or host()).registry
    cls = registry.get(PROVIDER).gateway_class
    return cls.from_config(
        {"account": ACCOUNT, "api_secret": SECRET, "base_url": "http://127.0.0.1:9"}, environ={}
    )


def service(ledger: Any, *, inline_hooks: bool = True) -> Any:
    """A ``PaymentService`` with the Acme gateway (as ``acme``) on ``ledger``."""
    from gateway_core import PaymentService

    plugin_host = host()
    return PaymentService(
        gateways={GATEWAY: gateway(plugin_host)},
        ledger=ledger,
        hooks=plugin_host.hooks,
        deliver_after_commit=inline_hooks,
    )


def reference(i: int) -> str:
    return f"A{i:08d}-1"


def insert_payments(ledger: Any, indexes: range) -> None:
    """Pending Acme payments ``reference(i)`` for ``i`` in ``indexes``."""
    from gateway_core import Money, PaymentStatus
    from gateway_core.ledger import PaymentRecord

    now = datetime.now(UTC)
    amount = Money.from_minor_units(AMOUNT_MINOR, CURRENCY)
    for i in indexes:
        ledger.insert_payment(
            PaymentRecord(
                gateway=GATEWAY,
                provider=PROVIDER,
                order_reference=f"A{i:08d}",
                merchant_reference=reference(i),
                provider_reference=f"ac_{i}",
                status=PaymentStatus.PENDING,
                amount=amount,
                merchant_id=ACCOUNT,
                expires_at=now + timedelta(days=30),
                created_at=now,
            )
        )


def notification(i: int) -> tuple[bytes, dict[str, str]]:
    """The signed "paid" notification of payment ``i``: body and headers."""
    on_path()
    from acme_pay import sign

    body = json.dumps(
        {
            "id": f"ac_{i}",
            "reference": reference(i),
            "status": "paid",
            "amount_minor": AMOUNT_MINOR,
            "currency": CURRENCY,
        }
    ).encode()
    return body, {"Acme-Signature": sign(SECRET, body)}


def signature_header(body: bytes) -> dict[str, str]:
    """The headers of a POST of ``body`` (for the webhook load generator)."""
    on_path()
    from acme_pay import sign

    return {"Content-Type": "application/json", "Acme-Signature": sign(SECRET, body)}
