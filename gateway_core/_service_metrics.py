"""What the payment service tells its metrics, and the no-op it tells by default.

The service calls these methods at its decision points (one call each); the real recorder is
:class:`gateway_core.metrics.Metrics` (Prometheus, an optional extra). Without it every call
is a method that does nothing, so a service without metrics pays one empty call per event.
This module imports nothing heavy: :mod:`gateway_core` stays lazy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: The ``progress`` callback of :meth:`~gateway_core.PaymentService.reconcile`.
Progress = Callable[[Any, str], None]


class ServiceMetrics:
    """The metrics interface of the payment service; every method here does nothing."""

    #: False for this no-op; True for a recorder that keeps what it is told.
    enabled: bool = False

    def inbound(self, gateway: str, provider: str, kind: str, verdict: str, reason: str) -> None:
        """One inbound message (``kind``: ``notification`` or ``return``) was decided."""

    def delivered(self, kind: str) -> None:
        """One outbox event of ``kind`` was delivered to the hooks."""

    def delivery_failed(self, kind: str) -> None:
        """A hook raised for one outbox event of ``kind`` (it will be retried)."""

    def reconcile_progress(self, progress: Progress | None) -> Progress | None:
        """``progress`` for :meth:`~gateway_core.PaymentService.reconcile`, wrapped so each
        payment's result is counted (here: ``progress`` unchanged)."""
        return progress

    def close(self) -> None:
        """Stop observing the process (provider calls); the counts stay readable."""


#: The default: a service without metrics.
NULL_METRICS = ServiceMetrics()
