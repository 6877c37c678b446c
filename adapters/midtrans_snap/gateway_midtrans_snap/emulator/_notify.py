"""Midtrans' webhooks on the emulation kit's notifier (protocol reference §4, §7.5, §11.5).

Delivery: ``POST`` JSON with ``Accept: application/json`` and ``User-Agent: Veritrans``, 15 s
timeout, any 2xx acknowledges (the body is ignored). Retries (§4.2): 500 once, 503 four times,
400/404 twice, 301/302/303 never, 307/308 followed (at most 5, POST, same body), anything else
(other codes, timeouts, connection errors) five times; the delays 2, 10, 30, 90 and 210 minutes
times ``retry_scale``, each shifted uniformly into (0, delay] when ``retry_jitter`` (the docs'
"random shift", ASSUMPTION; seedable). Targets: the attempt's ``X-Override-Notification`` URLs,
else the merchant's notification URL plus any ``X-Append-Notification`` URLs, each independently.

The webhooks of one order reach each URL in the order of its events (the first attempt of
one after the first attempt of the previous; retries hold nothing back). A refund sends two
webhooks, in order: without, then with ``bank_confirmed_at`` (§7.5; the
second is a ``followup`` delivery of the same event).

Notification faults (``endpoint="notification"``, optionally only for ``on_status`` and/or
``order_id``): the kit's ``duplicate``, ``delay``, ``drop``, ``burst``; ``reorder`` (after the
real webhook, a stale one for ``status``, default ``pending``, signed for it); ``hold`` (the
matching webhook is held back and delivered right after the next webhook of the same order: the
later event arrives first, e.g. ``settlement`` before ``pending``, §4.9).
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from typing import Any

from gateway_core.emulation.faults import (
    ENDPOINT_FAULT_SPECS,
    NOTIFICATION_FAULT_SPECS,
    FaultCatalogue,
    FaultPlan,
)
from gateway_core.emulation.notifier import Message, NotificationPlan, Notifier, RetrySchedule
from gateway_midtrans_snap.emulator import _model as m
from gateway_midtrans_snap.emulator._render import webhook_body
from gateway_midtrans_snap.emulator._settings import Settings

#: In an attempt's notification URLs: the merchant's dashboard URL (X-Append-Notification).
MERCHANT_URL = "@merchant"

#: Retry delays in seconds (§4.2).
RETRY_DELAYS = (120.0, 600.0, 1800.0, 5400.0, 12600.0)

#: Endpoint names (faults are scripted per endpoint).
ENDPOINTS = (
    "snap_create",
    "snap_cancel",
    "page",
    "page_submit",
    "status",
    "cancel",
    "expire",
    "approve",
    "deny",
    "refund",
    "refund_direct",
)

#: The kit's faults plus Midtrans' own: ``core_error`` (a JSON error with body ``status_code``
#: ``code``, default 500, not processed) and ``bank_reject`` (a direct refund the bank refuses).
CATALOGUE = FaultCatalogue(
    ENDPOINTS,
    endpoint_specs={
        **ENDPOINT_FAULT_SPECS,
        "core_error": {"code": ((str,), "500"), "message": ((str, type(None)), None)},
        "bank_reject": {},
    },
    notification_specs={
        **NOTIFICATION_FAULT_SPECS,
        "reorder": {"status": ((str,), m.PENDING)},
        "hold": {},
    },
    filters=("on_status", "order_id"),
)


def retries_for(http_status: int | None) -> int:
    """How many retries Midtrans makes after a reply with this status (§4.2)."""
    if http_status == 500:
        return 1
    if http_status == 503:
        return 4
    if http_status in (400, 404):
        return 2
    if http_status in (301, 302, 303):
        return 0
    return 5


def midtrans_schedule(
    *, scale: float = 1.0, jitter: bool = True, seed: int | None = None
) -> RetrySchedule:
    """Midtrans' retry schedule, scaled by ``scale``, optionally shifted at random."""
    shift: Callable[[float], float] | None = None
    if jitter:
        rng = random.Random(seed)
        lock = threading.Lock()

        def shift(delay: float) -> float:
            with lock:
                return delay * (1.0 - rng.random())

    return RetrySchedule(RETRY_DELAYS, retries_for=retries_for, jitter=shift, scale=scale)


def midtrans_notifier(
    *, schedule: RetrySchedule, timeout: float, now: Callable[[], str]
) -> Notifier:
    """A kit notifier with Midtrans' headers, 2xx acknowledgement and redirect rule."""
    return Notifier(
        schedule=schedule,
        now=now,
        timeout=timeout,
        headers={"Accept": "application/json", "User-Agent": "Veritrans"},
        follow_redirects=5,
        name="midtrans-emulator",
    )


def message(body: dict[str, Any], event: str) -> Message:
    """A webhook message labelled for the delivery records."""
    labels = {
        "order_id": str(body.get("order_id", "")),
        "transaction_id": str(body.get("transaction_id", "")),
        "status": str(body.get("transaction_status", "")),
        "status_code": str(body.get("status_code", "")),
        "merchant_id": str(body.get("merchant_id", "")),
        "event": event,
    }
    return Message(json.dumps(body).encode(), "application/json", labels)


class Announcer:
    """Turns a transaction's new state into webhook jobs, with the notification faults."""

    def __init__(
        self,
        *,
        notifier: Notifier,
        faults: FaultPlan,
        merchants: Callable[[str], m.Merchant | None],
        settings: Settings,
    ) -> None:
        self._notifier = notifier
        self._faults = faults
        self._merchants = merchants
        self._settings = settings
        self._held: dict[str, list[tuple[str, Message]]] = {}
        self._lock = threading.Lock()

    def targets(self, txn: m.Transaction, merchant: m.Merchant) -> list[str]:
        """Where the webhooks of ``txn`` go (``MERCHANT_URL`` stands for the dashboard's)."""
        urls = list(txn.notification_urls) or [MERCHANT_URL]
        return [merchant.notification_url if url == MERCHANT_URL else url for url in urls]

    def __call__(
        self,
        txn: m.Transaction,
        *,
        status: str | None = None,
        kind: str = "original",
        refund_key: str | None = None,
    ) -> list[dict[str, Any]]:
        merchant = self._merchants(txn.merchant_id)
        if merchant is None:  # pragma: no cover - merchants are never removed
            return []
        shown = status or txn.status
        faults = {
            f.kind: f
            for f in self._faults.take_notification(on_status=shown, order_id=txn.order_id)
        }
        key = merchant.server_key
        cancel_code = self._settings.cancel_webhook_code
        event = "refund" if refund_key else "status"
        main = message(
            webhook_body(txn, key, status=shown, cancel_code=cancel_code, unconfirmed=refund_key),
            event,
        )
        followups: list[Message] = []
        if refund_key:
            followups.append(message(webhook_body(txn, key, cancel_code=cancel_code), "refund"))
        reorder = None
        if "reorder" in faults:
            stale = str(faults["reorder"].param("status"))
            reorder = message(webhook_body(txn, key, status=stale, cancel_code=cancel_code), event)
        targets = self.targets(txn, merchant)
        with self._lock:
            held = self._held.pop(txn.order_id, [])
            if "hold" in faults:
                # Held with its follow-ups (a refund's bank confirmation), after anything
                # already held for the order: all go out, in order, with the next event.
                self._held[txn.order_id] = [
                    *held,
                    *((url, msg) for url in targets for msg in (main, *followups)),
                ]
                return [{"held": True, "order_id": txn.order_id, "status": shown}]
        records: list[dict[str, Any]] = []
        for url in targets:
            later = [msg for held_url, msg in held if held_url == url]
            plan = NotificationPlan(
                url=url,
                message=main,
                faults=sorted(faults),
                delay=float(faults["delay"].param("seconds")) if "delay" in faults else 0.0,
                duplicates=int(faults["duplicate"].param("times")) if "duplicate" in faults else 0,
                burst=int(faults["burst"].param("times")) if "burst" in faults else 1,
                drop="drop" in faults,
                reorder=reorder,
                kind=kind,
                followups=[*followups, *later],
                sequence=f"{txn.merchant_id}|{txn.order_id}|{url}",
            )
            records += [d.to_dict() for d in self._notifier.submit(plan)]
        return records

    def release(self) -> list[dict[str, Any]]:
        """Deliver every held webhook now (in the order they were held)."""
        with self._lock:
            held, self._held = self._held, {}
        records: list[dict[str, Any]] = []
        for items in held.values():
            for url, msg in items:
                plan = NotificationPlan(url=url, message=msg, kind="held")
                records += [d.to_dict() for d in self._notifier.submit(plan)]
        return records

    def held(self) -> list[dict[str, str]]:
        """The webhooks held back (order_id, status, url)."""
        with self._lock:
            return [
                {"order_id": order, "status": msg.labels.get("status", ""), "url": url}
                for order, items in self._held.items()
                for url, msg in items
            ]

    def clear(self) -> None:
        """Forget held webhooks."""
        with self._lock:
            self._held.clear()
