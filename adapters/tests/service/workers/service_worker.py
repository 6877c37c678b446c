"""A payment-service worker run as a separate OS process by the multi-process tests.

Usage: ``python service_worker.py SPEC.json``. The spec (JSON) names:

``settings``
    the configuration mapping (``{"ledger": {"url": ...}, "providers": {...}}``) given to
    ``Settings.from_mapping``; every worker builds its own runtime from it, so all of them
    share the ledger named there.
``gateway``
    the configured gateway name the notifications are for.
``bodies``
    notification bodies (text) for ``gateway``, or ``{"gateway": ..., "body": ...}`` objects,
    handled in order with ``service.handle_notification``.
``hook_log``
    a file each hook delivery is appended to (one JSON line per delivery, flushed and
    fsync'ed before the hook returns, so it survives a SIGKILL right after the hook).
``result``
    where the outcomes are written (JSON) once every body was handled.
``barrier``
    when true, print ``ready`` and wait for one line on stdin before handling anything, so a
    parent can release several workers at once.
``deliver``
    when true, run one more outbox delivery pass after the last body.
``drain``
    when a positive number N, then deliver the outbox N events at a time until a pass finds
    nothing due (several workers draining one outbox contend for the claims).

``GATEWAY_CRASH_AT`` (set by the parent) makes this process SIGKILL itself at a point, the way
a power cut would: the worker wraps the service's ledger (:class:`CrashingLedger`); production
code has no crash hooks.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

from gateway_core import Settings
from gateway_core._events import PaymentEvent
from gateway_core._runtime import build_runtime
from gateway_core.ledger import ApplyResult, OutboxEvent
from gateway_core.testing import HookRecorder


class FileRecorder(HookRecorder):
    """A :class:`HookRecorder` that also appends every delivery to a file, durably."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def _record(self, event: PaymentEvent) -> None:
        super()._record(event)
        line = json.dumps(
            {
                "pid": os.getpid(),
                "event_id": event.event_id,
                "kind": event.kind.value,
                "order_reference": event.order_reference,
                "merchant_reference": event.merchant_reference,
                "payload": OutboxEvent.from_event(event, None).payload,
            },
            sort_keys=True,
        )
        with open(self.path, "a", encoding="utf-8") as log:
            log.write(line + "\n")
            log.flush()
            os.fsync(log.fileno())


class CrashingLedger:
    """The service's ledger, with a SIGKILL at one point:

    ``after_commit``
        right after the write transaction of a status transition commits (the transition
        and its outbox event, leased to this process), before the hook runs and before any
        reply leaves;
    ``after_hook``
        after the order system's hook ran, before its delivery is recorded (the mark waits
        for the ledger's next write);
    ``before_ack``
        after the service returned (committed, hook run, its mark still deferred), before the
        acknowledgement leaves (see :func:`main`).
    """

    def __init__(self, inner: Any, point: str) -> None:
        self._inner = inner
        self._point = point
        self._committed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @staticmethod
    def _die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def _committed_transition(self, result: ApplyResult) -> None:
        if result is ApplyResult.APPLIED:
            if self._point == "after_commit":
                self._die()
            self._committed = True

    def apply_transition(self, *args: Any, **kwargs: Any) -> Any:
        result = self._inner.apply_transition(*args, **kwargs)
        self._committed_transition(result)
        return result

    def commit_transition(self, *args: Any, **kwargs: Any) -> Any:
        outcome = self._inner.commit_transition(*args, **kwargs)
        self._committed_transition(outcome.result)
        return outcome

    def _recording(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self._point == "after_hook":
            self._die()
        return getattr(self._inner, name)(*args, **kwargs)

    def mark_delivered(self, *args: Any, **kwargs: Any) -> Any:
        return self._recording("mark_delivered", *args, **kwargs)

    def defer_delivered(self, *args: Any, **kwargs: Any) -> Any:
        return self._recording("defer_delivered", *args, **kwargs)


def main(argv: list[str]) -> int:
    with open(argv[1], encoding="utf-8") as file:
        spec: dict[str, Any] = json.load(file)
    settings = Settings.from_mapping(spec["settings"], source=argv[1])
    recorder = FileRecorder(spec["hook_log"])
    runtime = build_runtime(settings, plugins=[recorder], environ={})
    try:
        service = runtime.service
        crash_at = os.environ.get("GATEWAY_CRASH_AT")
        if crash_at:
            service.ledger = CrashingLedger(service.ledger, crash_at)
        bodies = [
            (b["gateway"], b["body"].encode("utf-8"))
            if isinstance(b, dict)
            else (spec["gateway"], b.encode("utf-8"))
            for b in spec["bodies"]
        ]
        runtime.ledger.counts_by_status()  # open the connection before the start line
        if spec.get("barrier"):
            sys.stdout.write("ready\n")
            sys.stdout.flush()
            if sys.stdin.readline().strip() != "go":
                return 3
        started = time.time()
        outcomes = []
        for gateway_name, body in bodies:
            outcome = service.handle_notification(gateway_name, body, {})
            if crash_at == "before_ack":  # the service is done; the reply has not left
                os.kill(os.getpid(), signal.SIGKILL)
            outcomes.append(
                {
                    "verdict": outcome.verdict,
                    "reason": outcome.reason,
                    "accepted": outcome.acknowledgement.accepted,
                    "status_code": outcome.acknowledgement.status_code,
                    "ack_body": outcome.acknowledgement.body.decode("utf-8", "replace"),
                    "merchant_reference": (
                        outcome.payment.merchant_reference if outcome.payment else ""
                    ),
                }
            )
        finished = time.time()
        extra = None
        if spec.get("deliver"):
            report = service.deliver_events()
            extra = {"delivered": report.delivered, "failed": report.failed}
        passes = []
        if spec.get("drain"):
            while True:
                report = service.deliver_events(limit=int(spec["drain"]))
                if not report.delivered and not report.failed:
                    break
                passes.append(report.delivered)
        result = {
            "pid": os.getpid(),
            "started": started,
            "finished": finished,
            "outcomes": outcomes,
            "delivery": extra,
            "drain_passes": passes,
        }
        with open(spec["result"], "w", encoding="utf-8") as file:
            json.dump(result, file)
    finally:
        runtime.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
