"""An order-system plugin for command-line tests: ``gateway --plugin jsonl_hooks:OrderSystem``.

Appends every event it receives to the JSON-lines file named by ``$GATEWAY_TEST_HOOK_LOG``
(nothing when unset), so a test can see what a ``gateway`` subprocess delivered.
"""

from __future__ import annotations

import json
import os

from gateway_core import PaymentEvent, hookimpl


class OrderSystem:
    def _log(self, event: PaymentEvent) -> None:
        path = os.environ.get("GATEWAY_TEST_HOOK_LOG")
        if path:
            with open(path, "a", encoding="utf-8") as handle:
                record = {"event_id": event.event_id, "kind": event.kind.value}
                if event.provider_kind:
                    record["provider_kind"] = event.provider_kind
                    record["merchant_reference"] = event.merchant_reference
                    record["event_amount"] = str(event.event_amount)
                handle.write(json.dumps(record))
                handle.write("\n")

    @hookimpl
    def gateway_payment_created(self, event: PaymentEvent) -> None:
        self._log(event)

    @hookimpl
    def gateway_payment_paid(self, event: PaymentEvent) -> None:
        self._log(event)

    @hookimpl
    def gateway_payment_failed(self, event: PaymentEvent) -> None:
        self._log(event)

    @hookimpl
    def gateway_payment_expired(self, event: PaymentEvent) -> None:
        self._log(event)

    @hookimpl
    def gateway_payment_cancelled(self, event: PaymentEvent) -> None:
        self._log(event)

    @hookimpl
    def gateway_payment_reversed(self, event: PaymentEvent) -> None:
        self._log(event)

    @hookimpl
    def gateway_payment_needs_review(self, event: PaymentEvent) -> None:
        self._log(event)

    @hookimpl
    def gateway_provider_event(self, event: PaymentEvent) -> None:
        self._log(event)
