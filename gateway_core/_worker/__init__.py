"""``gateway worker``: the long-running background process (outbox delivery, reconcile,
refund settling, journal pruning) and its health endpoint. The command itself is
:mod:`gateway_core._cli_worker`; operations are described in ``docs/operations.md``
("Workers")."""

from __future__ import annotations

from gateway_core._worker._config import WorkerConfig
from gateway_core._worker._health import HealthServer, Route, worker_routes
from gateway_core._worker._loop import PRUNE_LEASE, REFUNDS_LEASE, TokenBucket, Worker

__all__ = [
    "PRUNE_LEASE",
    "REFUNDS_LEASE",
    "HealthServer",
    "Route",
    "TokenBucket",
    "Worker",
    "WorkerConfig",
    "worker_routes",
]
