"""``gateway prune``: delete journal entries older than a duration.

The journal keeps one row per inbound message, rejected ones included (anyone can send those),
so it grows without bound unless pruned; run this from cron or a worker. Only whole entries
older than the cutoff go: no entry is ever changed, and payments, transitions and hook events
are never touched. The dispatch and the ``--json`` output live in :mod:`gateway_core.cli`.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway_core._config import Settings
from gateway_core._runtime import DEFAULT_LEDGER_URL
from gateway_core.ledger import open_ledger

PRUNE_HELP = "delete journal entries older than a duration (e.g. --older-than 30d)"

_DURATION = re.compile(r"([0-9]{1,9})([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
#: Longer than any journal is worth keeping, short enough that ``now - duration`` is a date.
_LONGEST = timedelta(days=100 * 366)


def duration(text: str) -> timedelta:
    """An argparse type: a positive whole number and a unit, ``30d``, ``12h``, ``90m``, ``2w``
    or ``45s``, at most 100 years."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"not a duration: {text!r} (a number and a unit s, m, h, d or w, e.g. 30d)"
        )
    value = timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    if not timedelta(0) < value <= _LONGEST:
        raise argparse.ArgumentTypeError("must be more than 0 and at most 100 years")
    return value


def add_prune_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``gateway prune``."""
    parser.add_argument(
        "--older-than",
        type=duration,
        required=True,
        metavar="DURATION",
        help="delete journal entries received longer ago than this: 30d, 12h, 90m, 2w, 45s",
    )


def prune(
    settings: Settings, older_than: timedelta, now: datetime | None = None
) -> tuple[dict[str, Any], str]:
    """Prune the configured ledger's journal; returns the JSON document and the text line."""
    cutoff = (now or datetime.now(UTC)) - older_than
    with open_ledger(settings.ledger_url or DEFAULT_LEDGER_URL) as ledger:
        deleted = ledger.prune_journal(cutoff)
    data = {"deleted": deleted, "cutoff": cutoff.isoformat()}
    return data, f"journal entries deleted: {deleted} (received before {cutoff.isoformat()})"
