"""An order-system plugin for ``gateway worker`` processes in tests
(``--plugin worker_hooks:plugin``, run from this folder).

Every delivered event is appended to ``$WORKER_HOOK_LOG`` as one JSON line (``pid``,
``event_id``, ``kind``, ``order_reference``, ``at``: wall-clock seconds), flushed and
fsync'ed before the hook returns, so it survives a SIGKILL right after. ``$WORKER_HOOK_DELAY``
(seconds, default 0) makes every hook take that long, after recording: a slow order system,
so a test can stop or kill a worker while it holds leases.
"""

from __future__ import annotations

import json
import os
import time

from gateway_core._events import PaymentEvent
from gateway_core.hookspecs import hookimpl


class FileHooks:
    def _record(self, event: PaymentEvent) -> None:
        line = json.dumps(
            {
                "pid": os.getpid(),
                "event_id": event.event_id,
                "kind": event.kind.value,
                "order_reference": event.order_reference,
                "at": time.time(),
            },
            sort_keys=True,
        )
        with open(os.environ["WORKER_HOOK_LOG"], "a", encoding="utf-8") as log:
            log.write(line + "\n")
            log.flush()
            os.fsync(log.fileno())
        time.sleep(float(os.environ.get("WORKER_HOOK_DELAY", "0") or 0))

    @hookimpl
    def gateway_payment_created(self, event: PaymentEvent) -> None:
        self._record(event)

    @hookimpl
    def gateway_payment_paid(self, event: PaymentEvent) -> None:
        self._record(event)

    @hookimpl
    def gateway_payment_failed(self, event: PaymentEvent) -> None:
        self._record(event)

    @hookimpl
    def gateway_payment_expired(self, event: PaymentEvent) -> None:
        self._record(event)

    @hookimpl
    def gateway_payment_cancelled(self, event: PaymentEvent) -> None:
        self._record(event)


plugin = FileHooks()
