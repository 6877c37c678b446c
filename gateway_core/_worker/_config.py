"""The ``[worker]`` table: what ``gateway worker`` does, how often, and how gently.

Every key is optional; unknown keys are refused by name, like the rest of the configuration.
Durations are seconds unless the key says otherwise; ``prune_journal_older_than`` takes the
``gateway prune`` form (``30d``, ``12h``...). ``[worker.inquiry_rates]`` sets the inquiry
rate of single gateways (by configured name), over ``inquiry_rate``.
"""

from __future__ import annotations

import argparse
from collections.abc import Collection, Mapping
from datetime import timedelta
from typing import Any

import attrs

from gateway_core._cli_maintenance import duration
from gateway_core._config import SettingsReader
from gateway_core._exceptions import ConfigurationError

_DAY = 24 * 3600.0


@attrs.frozen
class WorkerConfig:
    """One worker's settings (see ``docs/configuration.md``, "Worker")."""

    #: Pause between two passes that found nothing to do.
    tick_seconds: float = 1.0
    #: Outbox events claimed per delivery pass, and how long the claim (lease) lasts.
    deliver_batch: int = 100
    event_lease_seconds: float = 60.0
    #: Reconcile: on/off, how often a pass runs, payments claimed per gateway per pass, and
    #: how long a claimed payment is left alone by every worker (the lease).
    reconcile: bool = True
    reconcile_interval_seconds: float = 5.0
    reconcile_batch: int = 100
    reconcile_lease_seconds: float = 300.0
    #: The token bucket of provider inquiries (reconcile and refund settling), per gateway:
    #: inquiries per second and the most taken at once; ``inquiry_rates`` per gateway name.
    inquiry_rate: float = 2.0
    inquiry_burst: int = 10
    inquiry_rates: Mapping[str, float] = attrs.field(factory=dict)
    #: Settling open refunds: on/off, how often (once per interval across the fleet), how many.
    refunds: bool = True
    refund_interval_seconds: float = 60.0
    refund_batch: int = 100
    #: Pruning the journal: entries older than this go (None: never), at most once per
    #: interval across the fleet.
    prune_journal_older_than: timedelta | None = None
    prune_interval_seconds: float = 3600.0
    #: The health endpoint (``/healthz``, ``/readyz``); port 0 picks a free one.
    health: bool = True
    health_host: str = "127.0.0.1"
    health_port: int = 8081
    #: ``/healthz`` fails when the loop has not finished a pass for this long.
    health_stale_seconds: float = 120.0

    def rate_for(self, gateway: str) -> float:
        """Inquiries per second allowed to ``gateway``."""
        return float(self.inquiry_rates.get(gateway, self.inquiry_rate))

    @classmethod
    def from_settings(
        cls, table: Mapping[str, Any], *, gateways: Collection[str] = ()
    ) -> WorkerConfig:
        """The ``[worker]`` table, checked; ``gateways`` are the configured gateway names
        (``[worker.inquiry_rates]`` may name only those)."""
        read = SettingsReader(table, provider="worker", ignore=frozenset())
        older = read.text("prune_journal_older_than", "")
        try:
            prune_age = duration(older) if older else None
        except argparse.ArgumentTypeError as exc:
            raise ConfigurationError(
                f"setting 'prune_journal_older_than' of [worker]: {exc}",
                key="prune_journal_older_than",
                provider="worker",
            ) from None
        config = cls(
            tick_seconds=read.number("tick_seconds", 1.0, minimum=0.01, maximum=3600),
            deliver_batch=read.integer("deliver_batch", 100, minimum=1, maximum=10_000),
            event_lease_seconds=read.number("event_lease_seconds", 60.0, minimum=1, maximum=_DAY),
            reconcile=read.flag("reconcile", True),
            reconcile_interval_seconds=read.number(
                "reconcile_interval_seconds", 5.0, minimum=0.01, maximum=_DAY
            ),
            reconcile_batch=read.integer("reconcile_batch", 100, minimum=1, maximum=10_000),
            reconcile_lease_seconds=read.number(
                "reconcile_lease_seconds", 300.0, minimum=1, maximum=30 * _DAY
            ),
            inquiry_rate=read.number("inquiry_rate", 2.0, minimum=0, maximum=10_000),
            inquiry_burst=read.integer("inquiry_burst", 10, minimum=1, maximum=10_000),
            inquiry_rates=_rates(read, gateways),
            refunds=read.flag("refunds", True),
            refund_interval_seconds=read.number(
                "refund_interval_seconds", 60.0, minimum=1, maximum=_DAY
            ),
            refund_batch=read.integer("refund_batch", 100, minimum=1, maximum=10_000),
            prune_journal_older_than=prune_age,
            prune_interval_seconds=read.number(
                "prune_interval_seconds", 3600.0, minimum=1, maximum=30 * _DAY
            ),
            health=read.flag("health", True),
            health_host=read.text("health_host", "127.0.0.1", max_length=255),
            health_port=read.integer("health_port", 8081, minimum=0, maximum=65535),
            health_stale_seconds=read.number(
                "health_stale_seconds", 120.0, minimum=1, maximum=_DAY
            ),
        )
        read.finish()
        return config


def _rates(read: SettingsReader, gateways: Collection[str]) -> dict[str, float]:
    table = read._raw("inquiry_rates", {})
    if not isinstance(table, Mapping):
        raise ConfigurationError(
            "setting 'inquiry_rates' of [worker] must be a table of gateway = rate",
            key="inquiry_rates",
            provider="worker",
        )
    rates: dict[str, float] = {}
    for name, value in table.items():
        if str(name) not in gateways:
            known = ", ".join(sorted(gateways)) or "none"
            raise ConfigurationError(
                f"[worker.inquiry_rates] names {name!r}, which is not a configured gateway "
                f"(configured: {known})",
                key=f"inquiry_rates.{name}",
                provider="worker",
            )
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not 0 <= value <= 10_000:
            raise ConfigurationError(
                f"[worker.inquiry_rates] {name!r} must be a number from 0 to 10000",
                key=f"inquiry_rates.{name}",
                provider="worker",
            )
        rates[str(name)] = float(value)
    return rates
