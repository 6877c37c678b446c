"""Delivery of an emulator's notifications (webhooks) to the merchant, in background threads.

The provider's policy is parameters, not code: a :class:`RetrySchedule` (delays between
attempts, how many retries a given reply earns, random shift, a time scale), the success test
``accept`` (``(http_status, reply body) -> Verdict``; :func:`accept_2xx` by default), the
request headers, and the body of each :class:`Message` (already rendered by the emulator).
Faults are parameters of a :class:`NotificationPlan`: ``delay`` before the first attempt,
``duplicates`` sent after the original, a ``burst`` of concurrent copies, a ``reorder``
message sent after the original, ``drop`` (nothing sent, every attempt recorded as failed).
Every attempt and reply is recorded (:meth:`Notifier.deliveries`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urljoin, urlsplit

_log = logging.getLogger("gateway_core.emulation")

_REPLY_LIMIT = 64 * 1024
_REDIRECTS = (307, 308)


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What one reply means: ``delivered``, else ``error``; ``fields`` go into the attempt
    record (for example the provider's acknowledgement code)."""

    delivered: bool
    error: str | None = None
    fields: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def accept_2xx(status: int, reply: bytes) -> Verdict:
    """Delivered on any HTTP 2xx (the body is ignored)."""
    if 200 <= status < 300:
        return Verdict(True)
    return Verdict(False, f"HTTP {status}")


class RetrySchedule:
    """When to try again after a failed attempt.

    ``delays[n - 1]`` seconds (times ``scale``) pass before retry ``n``; at most
    ``len(delays)`` retries, fewer when ``retries_for(http_status)`` (``None`` for a
    connection error or timeout) says so — 0 stops at once. ``jitter(delay)`` may shift each
    delay (for example ``lambda d: rng.uniform(0, d)`` with a seeded ``random.Random``).
    """

    def __init__(
        self,
        delays: Sequence[float],
        *,
        retries_for: Callable[[int | None], int] | None = None,
        jitter: Callable[[float], float] | None = None,
        scale: float = 1.0,
    ) -> None:
        if any(d < 0 for d in delays) or scale < 0:
            raise ValueError("retry delays must be >= 0")
        self.delays = tuple(float(d) for d in delays)
        self.retries_for = retries_for
        self.jitter = jitter
        self.scale = float(scale)

    @classmethod
    def fixed(cls, interval: float, max_attempts: int) -> RetrySchedule:
        """``max_attempts`` attempts in all, ``interval`` seconds apart."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        return cls([float(interval)] * (max_attempts - 1))

    @property
    def max_attempts(self) -> int:
        """The original attempt plus every retry the schedule allows at most."""
        return len(self.delays) + 1

    def retries_allowed(self, http_status: int | None) -> int:
        """How many retries a failed attempt with this reply status earns in all."""
        if self.retries_for is None:
            return len(self.delays)
        return max(0, min(len(self.delays), self.retries_for(http_status)))

    def delay(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (1-based)."""
        base = self.delays[retry - 1] * self.scale
        return max(0.0, self.jitter(base)) if self.jitter is not None else base


@dataclasses.dataclass(frozen=True)
class Message:
    """One rendered notification: its body and content type, and ``labels`` recorded with the
    delivery (and usable as filters of :meth:`Notifier.deliveries`)."""

    body: bytes
    content_type: str = "application/json"
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class NotificationPlan:
    """What to send for one event, where, and with which notification faults."""

    url: str
    message: Message
    faults: list[str] = dataclasses.field(default_factory=list)
    delay: float = 0.0
    duplicates: int = 0
    burst: int = 1
    drop: bool = False
    reorder: Message | None = None
    kind: str = "original"
    #: Further messages of the same event, each delivered (with its own retries) after the
    #: main one, in order, before any duplicate (``kind`` ``"followup"``).
    followups: Sequence[Message] = ()
    #: Plans with the same non-empty ``sequence`` (for example an order id) make their first
    #: attempts in submission order: a job waits (at most ``timeout`` + 5 s) until the previous
    #: one's first attempt is over; retries do not hold the next one back. A plan with a
    #: ``delay`` or a ``drop`` waits its turn but holds nobody back.
    sequence: str = ""


@dataclasses.dataclass
class Delivery:
    """One notification delivery (with its attempts) as recorded by the emulator."""

    id: int
    kind: str
    url: str
    message: Message
    created_at: str
    faults: list[str]
    drop: bool = False
    state: str = "pending"
    attempts: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the control API (the message's labels at the top level)."""
        return {
            "id": self.id,
            "kind": self.kind,
            **self.message.labels,
            "url": self.url,
            "content_type": self.message.content_type,
            "body": self.message.body.decode("utf-8", errors="replace"),
            "created_at": self.created_at,
            "faults": list(self.faults),
            "state": self.state,
            "delivered": self.state == "delivered",
            "attempts": [dict(a) for a in self.attempts],
        }


class Notifier:
    """A small dispatcher: one background thread per notification job.

    ``now`` stamps records (the emulator clock's wall time); ``headers`` are sent with every
    POST (besides ``Content-Type``); ``attempt_fields`` are the provider's extra keys of an
    attempt record with their defaults; ``follow_redirects`` is how many 307/308 redirects an
    attempt follows (POST, same body).
    """

    def __init__(
        self,
        *,
        schedule: RetrySchedule,
        now: Callable[[], str],
        accept: Callable[[int, bytes], Verdict] = accept_2xx,
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
        attempt_fields: Mapping[str, Any] | None = None,
        follow_redirects: int = 0,
        name: str = "emulator",
    ) -> None:
        self.schedule = schedule
        self.accept = accept
        self.timeout = float(timeout)
        self.headers = dict(headers or {"User-Agent": "gateway-emulator"})
        self.attempt_fields = dict(attempt_fields or {})
        self.follow_redirects = int(follow_redirects)
        self.name = name
        self._now = now
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._records: list[Delivery] = []
        self._next_id = 1
        self._active = 0
        self._threads: set[threading.Thread] = set()
        self._abort = threading.Event()
        self._closed = False
        self._sequences: dict[str, threading.Event] = {}

    # --- public -------------------------------------------------------------------------------

    def submit(self, plan: NotificationPlan) -> list[Delivery]:
        """Record and start delivering ``plan``; returns the deliveries it will make."""
        with self._lock:
            if self._closed:
                return []
            main = self._new(plan, plan.message, plan.kind)
            group = [main] + [self._new(plan, plan.message, "burst") for _ in range(plan.burst - 1)]
            extras = [self._new(plan, message, "followup") for message in plan.followups]
            extras += [self._new(plan, plan.message, "duplicate") for _ in range(plan.duplicates)]
            if plan.reorder is not None:
                extras.append(self._new(plan, plan.reorder, "reorder"))
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
            previous = self._sequences.get(plan.sequence) if plan.sequence else None
            turn = threading.Event()
            if plan.sequence and plan.delay <= 0 and not plan.drop:
                self._sequences[plan.sequence] = turn
            thread = threading.Thread(
                target=self._job,
                args=(plan.delay, group, extras, abort, previous, turn),
                name=f"{self.name}-notify-{main.id}",
                daemon=True,
            )
            self._threads.add(thread)
        thread.start()
        return everything

    def deliveries(self, **labels: str | None) -> list[dict[str, Any]]:
        """Snapshot of the recorded deliveries whose labels match (None values are ignored)."""
        wanted = {k: v for k, v in labels.items() if v is not None}
        with self._lock:
            return [
                d.to_dict()
                for d in self._records
                if all(d.message.labels.get(k) == v for k, v in wanted.items())
            ]

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
            self._sequences = {}

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

    def _new(self, plan: NotificationPlan, message: Message, kind: str) -> Delivery:
        record = Delivery(
            id=self._next_id,
            kind=kind,
            url=plan.url,
            message=message,
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
        previous: threading.Event | None = None,
        turn: threading.Event | None = None,
    ) -> None:
        try:
            if delay > 0 and abort.wait(delay):
                self._abandon(group + extras)
                return
            if previous is not None:
                deadline = time.monotonic() + self.timeout + 5.0
                while not previous.wait(0.05):
                    if abort.is_set() or time.monotonic() >= deadline:
                        break
            if len(group) == 1:
                self._deliver(group[0], abort, turn)
            else:
                self._burst(group, abort)
            if turn is not None:
                turn.set()
            for record in extras:
                self._deliver(record, abort)
        except Exception:  # pragma: no cover - a bug here must not kill the process silently
            _log.exception("notification job failed")
        finally:
            if turn is not None:
                turn.set()
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
            threading.Thread(target=run, args=(r,), name=f"{self.name}-burst-{r.id}", daemon=True)
            for r in group
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _abandon(self, records: list[Delivery]) -> None:
        with self._lock:
            for record in records:
                if record.state == "pending":
                    record.state = "aborted"

    def _deliver(
        self, record: Delivery, abort: threading.Event, first: threading.Event | None = None
    ) -> None:
        number = 1
        while True:
            schedule = self.schedule  # read each time: the emulator may change it mid-job
            if abort.is_set():
                self._abandon([record])
                return
            attempt = self._attempt(record, number)
            if first is not None:
                first.set()
            with self._lock:
                record.attempts.append(attempt)
                if attempt["delivered"]:
                    record.state = "delivered"
                    return
            if number > schedule.retries_allowed(attempt["http_status"]):
                break
            if abort.wait(schedule.delay(number)):
                self._abandon([record])
                return
            number += 1
        with self._lock:
            record.state = "failed"

    def _attempt_record(self, number: int, **values: Any) -> dict[str, Any]:
        record: dict[str, Any] = {
            "attempt": number,
            "at": self._now(),
            "http_status": None,
            **self.attempt_fields,
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
        verdict = self.accept(status, reply)
        return self._attempt_record(
            number,
            http_status=status,
            **verdict.fields,
            delivered=verdict.delivered,
            error=None if verdict.delivered else (verdict.error or f"HTTP {status}"),
            reply=reply[:2000].decode("utf-8", errors="replace"),
            elapsed=round(time.monotonic() - started, 4),
        )

    def _post(self, record: Delivery) -> tuple[int, bytes]:
        url = record.url
        for _ in range(self.follow_redirects + 1):
            status, reply, location = self._post_once(url, record.message)
            if status not in _REDIRECTS or not location:
                break
            url = urljoin(url, location)
        return status, reply

    def _post_once(self, url: str, message: Message) -> tuple[int, bytes, str | None]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"unsupported notification URL scheme {parts.scheme!r}")
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=self.timeout)
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.timeout)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {
            "Content-Type": message.content_type,
            **self.headers,
            "Connection": "close",
        }
        try:
            conn.request("POST", target, body=message.body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read(_REPLY_LIMIT), response.getheader("Location")
        finally:
            conn.close()
