"""One command for the whole performance table (issue 13; reliability plan §6.3).

Every row compares a candidate (the library) with a baseline (what it is built on) measured in
the same run on the same machine, interleaved (ABAB...), over at least 5 rounds; the medians
are compared and the spread of the per-round ratios is printed. The machine (CPUs, model,
Python, platform) and the load average before and after are printed with the table. The
script reports; it never asserts and exits 0 whatever the ratios (a crash still fails).

Ratios are candidate / baseline for latencies, memory and import time ("≤" targets) and
candidate throughput / baseline throughput for throughputs ("≥" targets); P6 is the duplicate
path's throughput over the first-delivery path's.

    python adapters/tests/benchmarks/run.py [--quick] [--json FILE] [--only P1,P5,...]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``adapters.tests.benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from adapters.tests.benchmarks._harness import Context, Result, loadavg, machine

#: Row group -> (module, function, what it measures). Each function takes a ``Context`` and
#: returns the ``Result`` lines of its group.
ROWS: dict[str, tuple[str, str, str]] = {
    "P1": ("_rows_outbound", "p1", "create() latency vs bare Session.post"),
    "P3": ("_rows_outbound", "p3", "create() over TLS, pooled vs new connection per call"),
    "P4": ("_rows_inbound", "p4", "verify + acknowledge vs json.loads + json.dumps"),
    "P5": ("_rows_inbound", "p5", "first delivery vs json.loads + INSERT + COMMIT; P6 too"),
    "P7": ("_rows_inbound", "p7", "webhook endpoint vs constant-ack app"),
    "P8": ("_rows_scale", "p8", "import gateway_core vs import requests"),
    "S1": ("_rows_scale", "s1", "first delivery, large ledger vs small, SQLite + PostgreSQL"),
    "S2": ("_rows_scale", "s2", "PostgreSQL, 1/2/4/8 processes, double transitions"),
    "P12": ("_rows_outbound", "p12", "memory over many creates vs bare Session.post"),
}
#: Names accepted by --only that are produced by another group.
ALIASES = {"P6": "P5"}

DIRECTION = (
    "ratio = candidate / baseline: of latencies, memory growth and import time (targets ≤), "
    "of throughputs (targets ≥); P6 = duplicate throughput / first-delivery throughput; "
    "S1 = latency with the large ledger / with the small one; "
    "met? is never a failure (the script reports)"
)

COLUMNS = ("row", "provider", "baseline", "candidate", "ratio", "target", "met?", "spread")


def row_function(group: str) -> Callable[[Context], list[Result]]:
    module, function, _ = ROWS[group]
    loaded = importlib.import_module(f"adapters.tests.benchmarks.{module}")
    found: Callable[[Context], list[Result]] = getattr(loaded, function)
    return found


def select(only: str | None) -> list[str]:
    if not only:
        return list(ROWS)
    chosen: list[str] = []
    for name in only.replace(" ", "").split(","):
        key = ALIASES.get(name.upper(), name.upper())
        if key not in ROWS:
            raise SystemExit(f"unknown row {name!r}; rows: {', '.join([*ROWS, *ALIASES])}")
        if key not in chosen:
            chosen.append(key)
    return chosen


def render(results: Sequence[Result]) -> str:
    cells = [
        (
            r.row,
            r.provider,
            r.baseline,
            r.candidate,
            r.ratio_text(),
            r.target,
            r.met_text(),
            r.spread,
        )
        for r in results
    ]
    widths = [max(len(str(c[i])) for c in [COLUMNS, *cells]) for i in range(len(COLUMNS))]

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    out = [line(COLUMNS), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(c) for c in cells]
    return "\n".join(out)


def _affinity() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def _restore_affinity(cpus: set[int] | None) -> None:
    if cpus:
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setaffinity(0, cpus)


def run(groups: Sequence[str], ctx: Context) -> tuple[list[Result], list[str]]:
    """Run the row groups in order; a group that crashes is reported and the run goes on."""
    results: list[Result] = []
    failures: list[str] = []
    for group in groups:
        started = time.perf_counter()
        print(f"... {group}: {ROWS[group][2]}", file=sys.stderr, flush=True)
        affinity = _affinity()
        try:
            produced = row_function(group)(ctx)
        except Exception as exc:
            traceback.print_exc()
            failures.append(f"{group}: {type(exc).__name__}: {exc}")
            continue
        finally:
            _restore_affinity(affinity)  # a row may pin this process to one CPU
        for result in produced:
            result.extra.setdefault("group", group)
            result.extra.setdefault("seconds", round(time.perf_counter() - started, 1))
        results.extend(produced)
    return results, failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (smaller sizes)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--only", metavar="ROWS", help="comma-separated rows, e.g. P1,P5,S2")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (≥ 5)")
    args = parser.parse_args(argv)
    groups = select(args.only)
    from adapters.tests.benchmarks._common import quiet_logging

    quiet_logging()
    load_before = loadavg()
    started = time.perf_counter()
    when = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        ctx = Context(quick=args.quick, workdir=Path(tmp), rounds=max(5, args.rounds))
        results, failures = run(groups, ctx)
    wall = time.perf_counter() - started
    load_after = loadavg()
    info = machine()
    print(
        f"# Performance table ({'--quick' if args.quick else 'full run'}), "
        f"{when:%Y-%m-%d %H:%M} UTC, {wall:.0f} s"
    )
    print()
    print(
        f"_machine: {info['cpus']} CPUs ({info['cpus_usable']} usable), {info['cpu_model']}; "
        f"{info['python']}; {info['platform']}_"
    )
    print(f"_load average (1, 5, 15 min): before {load_before}, after {load_after}_")
    print(f"_{DIRECTION}_")
    print()
    print(render(results))
    notes = [note for r in results for note in r.notes]
    if notes:
        print()
        for note in notes:
            print(f"- {note}")
    if failures:
        print()
        for failure in failures:
            print(f"- CRASHED {failure}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "when": when.isoformat(),
                    "quick": args.quick,
                    "wall_seconds": round(wall, 1),
                    "machine": info,
                    "load_before": load_before,
                    "load_after": load_after,
                    "rows": [
                        {
                            "row": r.row,
                            "provider": r.provider,
                            "baseline": r.baseline,
                            "candidate": r.candidate,
                            "ratio": r.ratio,
                            "target": r.target,
                            "met": r.met,
                            "spread": r.spread,
                            "notes": r.notes,
                            **r.extra,
                        }
                        for r in results
                    ],
                    "crashed": failures,
                },
                indent=2,
                ensure_ascii=False,
            )
            + "\n"
        )
    # A crashed row group is a crash of the benchmark: it fails (CI runs --quick as a smoke
    # test); a missed target never does.
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
