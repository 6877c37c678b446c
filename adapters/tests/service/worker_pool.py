"""Running payment-service workers (``workers/service_worker.py``) as separate OS processes,
released together through a start barrier, for the multi-process tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

WORKER = Path(__file__).resolve().parent / "workers" / "service_worker.py"


def worker_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GATEWAY_", "FASPAY_")) or k == "GATEWAY_TEST_POSTGRES"
    }
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_workers(
    mapping: dict[str, Any],
    bodies: list[Any],
    tmp_path: Path,
    *,
    workers: int,
    gateway: str,
    **options: Any,
) -> list[dict[str, Any]]:
    """Start ``workers`` processes, release them together, return their results (with hooks).

    ``bodies`` are notification bodies for ``gateway``, or ``{"gateway": ..., "body": ...}``
    objects; a callable ``bodies_for(index)`` in ``options`` gives each worker its own list."""
    procs: list[tuple[subprocess.Popen[str], Path, Path]] = []

    def kill_all() -> None:  # a hung worker must not hang the test run
        for proc, _, _ in procs:
            if proc.poll() is None:
                proc.kill()

    watchdog = threading.Timer(90, kill_all)
    watchdog.start()
    try:
        bodies_for = options.pop("bodies_for", None)
        for index in range(workers):
            spec_path = tmp_path / f"worker-{index}.json"
            result_path = tmp_path / f"worker-{index}.result.json"
            hook_log = tmp_path / f"worker-{index}.hooks.jsonl"
            spec = {
                "settings": mapping,
                "gateway": gateway,
                "bodies": bodies_for(index) if bodies_for else bodies,
                "hook_log": str(hook_log),
                "result": str(result_path),
                "barrier": True,
                **options,
            }
            spec_path.write_text(json.dumps(spec), encoding="utf-8")
            proc = subprocess.Popen(
                [sys.executable, str(WORKER), str(spec_path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=worker_env(),
                cwd=str(tmp_path),
            )
            procs.append((proc, result_path, hook_log))
        for proc, _, _ in procs:  # the start barrier: everyone built and connected
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if line.strip() != "ready":
                _, err = proc.communicate(timeout=30)
                pytest.fail(f"worker did not start: {line!r}\n{err}")
        for proc, _, _ in procs:  # release them all at once
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc, result_path, hook_log in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, f"worker exited {proc.returncode}:\n{err}"
            assert "Traceback" not in err, err
            result = json.loads(result_path.read_text(encoding="utf-8"))
            hooks = hook_log.read_text(encoding="utf-8").splitlines() if hook_log.exists() else []
            result["hooks"] = [json.loads(line) for line in hooks]
            results.append(result)
        return results
    finally:
        watchdog.cancel()
        for proc, _, _ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
