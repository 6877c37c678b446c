"""Delivery of payment notifications to the merchant, in background threads.

Policy (§10.1, ASSUMPTIONS where the docs are silent): one attempt plus up to three re-sends
(``max_attempts=4``) spaced by ``retry_interval`` seconds (default 60); an attempt counts as
delivered only when the reply is HTTP 200 **and** its body (JSON or XML, sniffed) has
``response_code`` ``"00"``. Every attempt and reply is recorded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from gateway_faspay_dana.emulator._messages import parse_acknowledgement, render

_log = logging.getLogger("gateway_faspay_dana.emulator")

_REPLY_LIMIT = 64 * 1024


@dataclasses.dataclass
class Delivery:
    """One notification delivery (with its attempts) as recorded by the emulator."""

    id: int
    kind: str
    merchant_id: str
    bill_no: str
    trx_id: str
    status: str
    url: str
    format: str
    body: bytes
    content_type: str
    created_at: str
    faults: list[str]
    drop: bool = False
    state: str = "pending"
    attempts: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the control API."""
        return {
            "id": self.id,
            "kind": self.kind,
            "merchant_id": self.merchant_id,
            "bill_no": self.bill_no,
            "trx_id": self.trx_id,
            "status": self.status,
            "url": self.url,
            "format": self.format,
            "content_type": self.content_type,
            "body": self.body.decode("utf-8", errors="replace"),
            "created_at": self.created_at,
            "faults": list(self.faults),
            "state": self.state,
            "delivered": self.state == "delivered",
            "attempts": [dict(a) for a in self.attempts],
        }


@dataclasses.dataclass
class NotificationPlan:
    """What to send for one status change, and how (notification faults applied)."""

    merchant_id: str
    url: str
    format: str
    fields: Mapping[str, str]
    faults: list[str] = dataclasses.field(default_factory=list)
    delay: float = 0.0
    duplicates: int = 0
    burst: int = 1
    drop: bool = False
    reorder_fields: Mapping[str, str] | None = None
    kind: str = "original"


class Notifier:
    """A small dispatcher: one background thread per notification job."""

    def __init__(
        self,
        *,
        retry_interval: float = 60.0,
        max_attempts: int = 4,
        timeout: float = 10.0,
        now: Callable[[], str],
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.retry_interval = float(retry_interval)
        self.max_attempts = int(max_attempts)
        self.timeout = float(timeout)
        self._now = now
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._records: list[Delivery] = []
        self._next_id = 1
        self._active = 0
        self._threads: set[threading.Thread] = set()
        self._abort = threading.Event()
        self._closed = False

    # --- public -------------------------------------------------------------------------------

    def submit(self, plan: NotificationPlan) -> list[Delivery]:
        """Record and start delivering ``plan``; returns the deliveries it will make."""
        with self._lock:
            if self._closed:
                return []
            main = self._new(plan, plan.fields, plan.kind)
            group = [main] + [self._new(plan, plan.fields, "burst") for _ in range(plan.burst - 1)]
            extras = [self._new(plan, plan.fields, "duplicate") for _ in range(plan.duplicates)]
            if plan.reorder_fields is not None:
                extras.append(self._new(plan, plan.reorder_fields, "reorder"))
            everything = group + extras
            if not plan.url and not plan.drop:
                for record in everything:
                    record.state = "skipped"
                    record.attempts.append(
                        self._attempt_record(1, error="no notification_url configured")
                    )
                return everything
            self._active += 1
            abort = self._abort
            thread = threading.Thread(
                target=self._job,
                args=(plan.delay, group, extras, abort),
                name=f"faspay-emulator-notify-{main.id}",
                daemon=True,
            )
            self._threads.add(thread)
        thread.start()
        return everything

    def deliveries(self, bill_no: str | None = None) -> list[dict[str, Any]]:
        """Snapshot of the recorded deliveries (optionally for one ``bill_no``)."""
        with self._lock:
            return [d.to_dict() for d in self._records if bill_no is None or d.bill_no == bill_no]

    def idle(self) -> bool:
        """True when no delivery job is running."""
        with self._lock:
            return self._active == 0

    def wait(self, timeout: float = 10.0) -> bool:
        """Block until every delivery job has finished; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._active:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def reset(self) -> None:
        """Forget the records and abort running jobs (they stop between attempts)."""
        with self._lock:
            self._abort.set()
            self._abort = threading.Event()
            self._records = []

    def close(self, timeout: float = 5.0) -> None:
        """Abort every job and join the threads."""
        with self._lock:
            self._closed = True
            self._abort.set()
            threads = list(self._threads)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # --- internals ----------------------------------------------------------------------------

    def _new(self, plan: NotificationPlan, fields: Mapping[str, str], kind: str) -> Delivery:
        body, content_type = render(fields, plan.format)
        record = Delivery(
            id=self._next_id,
            kind=kind,
            merchant_id=plan.merchant_id,
            bill_no=fields.get("bill_no", ""),
            trx_id=fields.get("trx_id", ""),
            status=fields.get("payment_status_code", ""),
            url=plan.url,
            format=plan.format,
            body=body,
            content_type=content_type,
            created_at=self._now(),
            faults=list(plan.faults),
            drop=plan.drop,
        )
        self._next_id += 1
        self._records.append(record)
        return record

    def _job(
        self,
        delay: float,
        group: list[Delivery],
        extras: list[Delivery],
        abort: threading.Event,
    ) -> None:
        try:
            if delay > 0 and abort.wait(delay):
                self._abandon(group + extras)
                return
            if len(group) == 1:
                self._deliver(group[0], abort)
            else:
                self._burst(group, abort)
            for record in extras:
                self._deliver(record, abort)
        except Exception:  # pragma: no cover - a bug here must not kill the process silently
            _log.exception("notification job failed")
        finally:
            with self._idle:
                self._active -= 1
                self._threads.discard(threading.current_thread())
                self._idle.notify_all()

    def _burst(self, group: list[Delivery], abort: threading.Event) -> None:
        barrier = threading.Barrier(len(group), timeout=max(5.0, self.timeout))

        def run(record: Delivery) -> None:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()
            try:
                self._deliver(record, abort)
            except Exception:  # pragma: no cover
                _log.exception("burst delivery failed")

        threads = [
            threading.Thread(target=run, args=(r,), name=f"faspay-emulator-burst-{r.id}")
            for r in group
        ]
        for thread in threads:
            thread.daemon = True
            thread.start()
        for thread in threads:
            thread.join()

    def _abandon(self, records: list[Delivery]) -> None:
        with self._lock:
            for record in records:
                if record.state == "pending":
                    record.state = "aborted"

    def _deliver(self, record: Delivery, abort: threading.Event) -> None:
        for number in range(1, self.max_attempts + 1):
            if abort.is_set():
                self._abandon([record])
                return
            attempt = self._attempt(record, number)
            with self._lock:
                record.attempts.append(attempt)
                if attempt["delivered"]:
                    record.state = "delivered"
                    return
            if number < self.max_attempts and abort.wait(self.retry_interval):
                self._abandon([record])
                return
        with self._lock:
            record.state = "failed"

    def _attempt_record(self, number: int, **values: Any) -> dict[str, Any]:
        record: dict[str, Any] = {
            "attempt": number,
            "at": self._now(),
            "http_status": None,
            "response_code": None,
            "delivered": False,
            "error": None,
            "reply": None,
            "elapsed": 0.0,
        }
        record.update(values)
        return record

    def _attempt(self, record: Delivery, number: int) -> dict[str, Any]:
        if record.drop:
            return self._attempt_record(
                number, error="dropped by fault: merchant unreachable (nothing sent)"
            )
        started = time.monotonic()
        try:
            status, reply = self._post(record)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            _log.debug("notification %s attempt %s failed: %s", record.id, number, exc)
            return self._attempt_record(
                number,
                error=f"{type(exc).__name__}: {exc}",
                elapsed=round(time.monotonic() - started, 4),
            )
        ack = parse_acknowledgement(reply)
        code = ack.get("response_code")
        delivered = status == 200 and code == "00"
        error = None
        if not delivered:
            error = f"HTTP {status}" if status != 200 else f"response_code {code!r}"
        return self._attempt_record(
            number,
            http_status=status,
            response_code=code,
            delivered=delivered,
            error=error,
            reply=reply[:2000].decode("utf-8", errors="replace"),
            elapsed=round(time.monotonic() - started, 4),
        )

    def _post(self, record: Delivery) -> tuple[int, bytes]:
        parts = urlsplit(record.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"unsupported notification URL scheme {parts.scheme!r}")
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=self.timeout)
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.timeout)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request(
                "POST",
                target,
                body=record.body,
                headers={
                    "Content-Type": record.content_type,
                    "User-Agent": "faspay-dana-emulator",
                    "Connection": "close",
                },
            )
            response = conn.getresponse()
            return response.status, response.read(_REPLY_LIMIT)
        finally:
            conn.close()
