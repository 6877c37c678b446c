"""P8, P9, P10: import cost and plugin discovery, in fresh interpreters.

* P8 — ``python -X importtime -c "import gateway_core"``: the cumulative time of
  ``gateway_core`` against ``requests`` (median of ``--runs``, interleaved). Also shows the
  heaviest third-party imports under ``gateway_core``.
* P9 — wall time of ``import gateway_core; gateway_core.PluginHost()`` (import, entry-point
  discovery, registry ready) against ``python -c "import requests, tenacity, attrs, pluggy"``
  (``--wall-runs`` interleaved subprocess runs, medians), and ``PluginHost()`` alone in process.
* P10 — after ``PluginHost()``, is ``requests`` (or ``urllib3``) or the plugin's
  implementation module ``gateway_faspay_dana._gateway`` in ``sys.modules``? Printed as
  yes/no, as found.

    python adapters/tests/benchmarks/bench_import.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time

from adapters.tests.benchmarks._common import Table, median, spread, verdict

_IMPORTTIME = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")

# ``import gateway_core`` loads its submodules on first attribute access (PEP 562): the
# PluginHost class is fetched before the timer, so "PluginHost() alone" measures discovery
# and registration, not the lazy import of the plugin machinery.
_HOST = (
    "import time, sys; t0 = time.perf_counter(); import gateway_core; "
    "from gateway_core import PluginHost; "
    "t1 = time.perf_counter(); host = PluginHost(); t2 = time.perf_counter(); "
    "import json; print(json.dumps({'import': t1 - t0, 'discovery': t2 - t1, "
    "'providers': sorted(i.name for i in host.registry), "
    "'modules': {m: m in sys.modules for m in ('requests', 'urllib3', 'tenacity', "
    "'gateway_faspay_dana._gateway', 'gateway_faspay_dana._messages', "
    "'gateway_core._requests_transport', 'psycopg')}}))"
)


def _importtime(module: str, code: str = "") -> dict[str, int]:
    """``-X importtime`` cumulative microseconds per imported module name."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code or f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
    )
    cumulative: dict[str, int] = {}
    for line in proc.stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match:
            cumulative[match.group(4)] = int(match.group(2))
    return cumulative


def _wall(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - start


#: The first real use after the lazy import: what an application touches at start-up.
_FIRST_USE = (
    "import time; t0 = time.perf_counter(); import gateway_core; "
    "from gateway_core import PaymentService, PluginHost, RequestsTransport; "
    "from gateway_core.ledger import SQLiteLedger; print(time.perf_counter() - t0)"
)


def _wall_in_process(code: str) -> float:
    """Seconds ``code`` prints (its own timer, in a fresh interpreter)."""
    proc = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return float(proc.stdout.decode().strip().splitlines()[-1])


def run(*, runs: int, wall_runs: int) -> Table:
    table = Table("P8, P9, P10 — import and plugin discovery (fresh interpreters)")

    # P8: importtime, interleaved.
    core: list[int] = []
    req: list[int] = []
    parts: dict[str, list[int]] = {}
    plugin: list[int] = []
    first_use: list[float] = []
    for _ in range(runs):
        req.append(_importtime("requests")["requests"])
        found = _importtime("gateway_core")
        core.append(found["gateway_core"])
        first_use.append(_wall_in_process(_FIRST_USE))
        for name in (
            "attrs",
            "pluggy",
            "tenacity",
            "requests",
            "urllib3",
            "sqlite3",
            "tomllib",
            "importlib.metadata",
            "gateway_core.ledger",
        ):
            if name in found:
                parts.setdefault(name, []).append(found[name])
        during = _importtime("", "import gateway_core; gateway_core.PluginHost()")
        plugin.append(during.get("gateway_faspay_dana._gateway", 0))
    r, c = median(req) / 1000, median(core) / 1000
    table.row(
        "P8 import gateway_core, -X importtime cumulative",
        f"{r:.1f} ms (import requests)",
        f"{c:.1f} ms",
        verdict(c / r, 0.5, at_most=True),
        "≤ 0.5×",
    )
    table.row(
        "P8 first use: import gateway_core + PluginHost, PaymentService, RequestsTransport, "
        "SQLiteLedger (in process)",
        f"{r:.1f} ms (import requests)",
        f"{median(first_use) * 1e3:.1f} ms",
        f"{median(first_use) * 1e3 / r:.2f}×",
        "info",
    )
    shown = ", ".join(f"{name} {median(v) / 1000:.1f} ms" for name, v in sorted(parts.items()))
    table.note(
        f"P8: median of {runs} interleaved runs each; inside gateway_core: {shown or 'none'}; "
        f"per-run gateway_core/requests ratios "
        f"{spread([a / b for a, b in zip(core, req, strict=True)])}"
    )

    # P9: wall time, interleaved subprocess runs.
    baseline_code = "import requests, tenacity, attrs, pluggy"
    base: list[float] = []
    cand: list[float] = []
    details: list[dict[str, object]] = []
    for _ in range(wall_runs):
        base.append(_wall(baseline_code))
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", _HOST], check=True, capture_output=True, text=True
        )
        cand.append(time.perf_counter() - start)
        details.append(json.loads(proc.stdout))
    b, w = median(base), median(cand)
    table.row(
        "P9 import + PluginHost() registry ready, process wall time",
        f"{b * 1e3:.0f} ms (import requests, tenacity, attrs, pluggy)",
        f"{w * 1e3:.0f} ms",
        verdict(w / b, 1.15, at_most=True),
        "≤ 1.15×",
    )
    discovery = median([float(d["discovery"]) for d in details])  # type: ignore[arg-type]
    imported = median([float(d["import"]) for d in details])  # type: ignore[arg-type]
    table.row(
        "P9 PluginHost() alone, in process (discovery + registration)",
        "-",
        f"{discovery * 1e3:.1f} ms (import gateway_core {imported * 1e3:.0f} ms)",
        "-",
        "≤ 10 ms",
    )
    table.row(
        "P9 of which importing gateway_faspay_dana._gateway (-X importtime)",
        "-",
        f"{median(plugin) / 1000:.1f} ms",
        "-",
        "info",
    )
    table.note(
        f"P9: median of {wall_runs} interleaved subprocess runs each; per-run ratios "
        f"{spread([c_ / b_ for b_, c_ in zip(base, cand, strict=True)])}; providers found: "
        f"{', '.join(details[-1]['providers'])}"  # type: ignore[arg-type]
    )

    # P10: what discovery imported.
    modules: dict[str, bool] = details[-1]["modules"]  # type: ignore[assignment]
    for name in ("requests", "urllib3", "gateway_faspay_dana._gateway"):
        present = modules[name]
        table.row(
            f"P10 after PluginHost(): {name} in sys.modules",
            "-",
            "yes" if present else "no",
            "-",
            "no",
        )
    others = ", ".join(f"{m} {'yes' if v else 'no'}" for m, v in modules.items())
    table.note(f"P10: sys.modules after PluginHost(): {others}")
    table.note(f"interpreter: {sys.executable}")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    parser.add_argument("--runs", type=int, default=None, help="-X importtime runs per side")
    parser.add_argument("--wall-runs", type=int, default=None, help="wall-time runs per side")
    args = parser.parse_args(argv)
    runs = args.runs or (5 if args.quick else 7)
    wall_runs = args.wall_runs or (7 if args.quick else 15)
    run(runs=runs, wall_runs=wall_runs).print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
