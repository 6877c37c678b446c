"""Timing helpers for the linear-time redaction tests (core patterns and plugin patterns)."""

from __future__ import annotations

import random
import string
import time

from gateway_core import redact_text

SIZE = 16 * 1024


def junk() -> str:
    """An ordinary body of junk: random printable ASCII with spaces and JSON punctuation."""
    rnd = random.Random(9)
    alphabet = string.ascii_letters + string.digits + ' {}:,"'
    return "".join(rnd.choice(alphabet) for _ in range(SIZE))


def cpu(text: str) -> float:
    """The least CPU time of several runs of five redactions (min: the run least disturbed)."""
    best = float("inf")
    for _ in range(9):
        start = time.process_time()
        for _ in range(5):
            redact_text(text)
        best = min(best, time.process_time() - start)
    return best


def hostile_cost_ratio(unit: str) -> float:
    """CPU cost of redacting 16 KiB of ``unit`` repeated, relative to 16 KiB of junk."""
    hostile = (unit * (SIZE // len(unit) + 1))[:SIZE]
    ordinary = junk()
    cpu(ordinary)  # warm up
    return cpu(hostile) / cpu(ordinary)
