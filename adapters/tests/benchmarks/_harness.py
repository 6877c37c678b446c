"""The pieces every row of ``run.py`` shares: the result of a row, interleaved rounds (ABAB),
ratios and their targets, and the run's context (sizes for ``--quick`` or a full run).

A row reports; it never asserts. ``met`` is ``None`` for an informational row.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

POSTGRES_URL = os.environ.get("GATEWAY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass
class Result:
    """One line of the table."""

    row: str
    provider: str
    baseline: str
    candidate: str
    ratio: float | None
    target: str
    met: bool | None
    spread: str
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def ratio_text(self) -> str:
        return "-" if self.ratio is None else f"{self.ratio:.2f}×"

    def met_text(self) -> str:
        return "info" if self.met is None else ("yes" if self.met else "NO")


@dataclass
class Context:
    """What a row needs to know about the run."""

    quick: bool
    workdir: Path
    rounds: int = 5
    postgres_url: str = POSTGRES_URL
    #: Divides the ``--quick`` sizes (a smoke test of the harness itself uses 20).
    shrink: int = 1

    def size(self, quick: int, full: int) -> int:
        return max(1, quick // self.shrink) if self.quick else full

    def subdir(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.workdir))


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def abab(
    baseline: Callable[[int], float],
    candidate: Callable[[int], float],
    rounds: int,
) -> tuple[list[float], list[float]]:
    """Run ``baseline(r)`` then ``candidate(r)`` for ``r`` in ``range(rounds)``: interleaved,
    so both sides share the machine's noise. Returns the per-round values of each side."""
    base: list[float] = []
    cand: list[float] = []
    for r in range(rounds):
        base.append(baseline(r))
        cand.append(candidate(r))
    return base, cand


def span(values: Sequence[float], digits: int = 2, unit: str = "") -> str:
    """``min–max`` of per-round values."""
    if not values:
        return "-"
    return f"{min(values):.{digits}f}–{max(values):.{digits}f}{unit}"


def ratios(base: Sequence[float], cand: Sequence[float]) -> list[float]:
    return [c / b for b, c in zip(base, cand, strict=True) if b]


def compare(
    row: str,
    provider: str,
    base: Sequence[float],
    cand: Sequence[float],
    *,
    fmt: Callable[[float], str],
    target: float | None,
    at_most: bool,
    target_text: str = "",
    invert: bool = False,
) -> Result:
    """The result of interleaved rounds: medians of each side, the ratio of the medians
    (candidate / baseline, or baseline / candidate with ``invert``), the target, and the
    spread of the per-round ratios."""
    b, c = median(base), median(cand)
    per_round = ratios(cand, base) if invert else ratios(base, cand)
    ratio = (b / c if invert else c / b) if b and c else float("nan")
    met = None
    if target is not None:
        met = ratio <= target if at_most else ratio >= target
    text = target_text or ("info" if target is None else f"{'≤' if at_most else '≥'} {target:g}×")
    return Result(
        row=row,
        provider=provider,
        baseline=fmt(b),
        candidate=fmt(c),
        ratio=ratio,
        target=text,
        met=met,
        spread=f"ratio {span(per_round)} over {len(per_round)} rounds",
    )


def info(row: str, provider: str, baseline: str, candidate: str, spread: str = "-") -> Result:
    return Result(row, provider, baseline, candidate, None, "info", None, spread)


def micros(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} µs"


def millis(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f} ms"


def per_second(rate: float) -> str:
    return f"{rate:,.0f}/s"


def machine() -> dict[str, Any]:
    """The machine and interpreter, for the report."""
    model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = os.cpu_count() or 0
    return {
        "cpus": os.cpu_count(),
        "cpus_usable": affinity,
        "cpu_model": model or "unknown",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "executable": sys.executable,
        "platform": platform.platform(),
    }


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
