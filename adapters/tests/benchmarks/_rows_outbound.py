"""Rows P1 (create latency), P3 (create over TLS, pooled vs a new connection per call) and
P12 (memory over many creates): the Faspay plugin against its emulator on loopback.

P1 reuses ``bench_create`` (its emulator child process, bodies and timed loops). P3 serves the
emulator (WSGI) behind TLS (``_serve.py``) with a certificate made at run time by ``trustme``; the
client trusts it through a CA bundle file (``verify=<path>``; verification is never off).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import attrs

from adapters.tests.benchmarks._harness import (
    Context,
    Result,
    abab,
    compare,
    info,
    median,
    micros,
    span,
)

_SERVE = str(Path(__file__).with_name("_serve.py"))


def p1(ctx: Context) -> list[Result]:
    import requests

    from adapters.tests.benchmarks._common import pin
    from adapters.tests.benchmarks.bench_create import (
        Server,
        _baseline,
        _bodies,
        _candidate,
        _gateway,
        _template,
    )

    calls, warmup = ctx.size(200, 2000), ctx.size(50, 200)
    server = Server()  # the emulator in a child process, pinned to CPU 0
    note = pin(1)
    try:
        url = server.url + "/cvr/300011/10"
        gateway = _gateway(server.url)
        total = warmup + ctx.rounds * calls
        bodies = _bodies(gateway, [f"RB{i:08d}" for i in range(total)])
        template = _template()
        requests_ = [attrs.evolve(template, merchant_reference=f"RC{i:08d}") for i in range(total)]
        session = requests.Session()
        _baseline(session, url, bodies[:warmup])
        _candidate(gateway, requests_[:warmup])

        def window(r: int) -> slice:
            return slice(warmup + r * calls, warmup + (r + 1) * calls)

        base, cand = abab(
            lambda r: median(_baseline(session, url, bodies[window(r)])),
            lambda r: median(_candidate(gateway, requests_[window(r)])),
            ctx.rounds,
        )
        session.close()
        gateway.close()
    finally:
        server.close()
    result = compare(
        "P1 create() median latency", "faspay", base, cand, fmt=micros, target=1.10, at_most=True
    )
    added = [c - b for b, c in zip(base, cand, strict=True)]
    median_added = median(cand) - median(base)
    result.notes.append(
        f"P1: {ctx.rounds} rounds × {calls} calls per side after {warmup} warm-up calls; "
        "baseline requests.Session().post of a pre-serialised signed body to the same emulator "
        f"(child process, CPU 0), client {note}; each call a new bill_no"
    )
    added_row = Result(
        "P1 time added per create()",
        "faspay",
        "-",
        f"{median_added * 1e6:+,.0f} µs",
        None,
        "≤ 100 µs",
        median_added <= 100e-6,
        f"{span([a * 1e6 for a in added], 0)} µs per round",
    )
    return [result, added_row]


# -- P3: TLS -------------------------------------------------------------------------------


def _certificates(folder: Path) -> tuple[str, str, str]:
    """A throwaway CA and a server certificate for 127.0.0.1: (ca.pem, cert.pem, key.pem).
    Without ``trustme`` (in the ``test`` extra), a self-signed certificate from the
    ``openssl`` command, which is then its own CA bundle."""
    try:
        import trustme
    except ImportError:
        cert, key = folder / "cert.pem", folder / "key.pem"
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )  # fmt: skip
        return str(cert), str(cert), str(key)

    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    paths = (folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
    ca.cert_pem.write_to_path(str(paths[0]))
    issued.cert_chain_pems[0].write_to_path(str(paths[1]))
    for blob in issued.cert_chain_pems[1:]:
        blob.write_to_path(str(paths[1]), append=True)
    issued.private_key_pem.write_to_path(str(paths[2]))
    return str(paths[0]), str(paths[1]), str(paths[2])


class _Child:
    """A child process that prints its port on its first line."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, _SERVE, *args], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        port = self.proc.stdout.readline().strip()
        if not port.isdigit():
            self.close()
            raise RuntimeError(f"server {args[0]} did not start")
        self.port = int(port)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _wait_ready(url: str, ca: str) -> None:
    import requests

    for _ in range(100):
        try:
            requests.get(url + "/", verify=ca, timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.05)


def p3(ctx: Context) -> list[Result]:
    import requests

    from adapters.tests.benchmarks._common import gateway_settings, pin
    from adapters.tests.benchmarks.bench_create import _HEADERS, _bodies, _candidate, _template
    from gateway_core import RequestsTransport
    from gateway_faspay_dana import FaspayDanaGateway

    calls, warmup = ctx.size(40, 300), ctx.size(10, 50)
    ca, cert, key = _certificates(ctx.subdir("tls"))
    server = _Child("tls-emulator", cert, key)
    note = pin(1)
    try:
        base_url = f"https://127.0.0.1:{server.port}"
        _wait_ready(base_url, ca)
        url = base_url + "/cvr/300011/10"
        transport = RequestsTransport(connect_timeout=3.05, read_timeout=20.0, verify=ca)
        gateway = FaspayDanaGateway.from_config(
            gateway_settings(base_url), environ={}, transport=transport
        )
        total = warmup + ctx.rounds * calls
        bodies = _bodies(gateway, [f"TB{i:08d}" for i in range(total)])
        template = _template()
        requests_ = [attrs.evolve(template, merchant_reference=f"TC{i:08d}") for i in range(total)]

        def new_connection_each(chunk: list[bytes]) -> list[float]:
            times = []
            for body in chunk:
                start = time.perf_counter()
                reply = requests.post(  # a new Session, so a new TCP + TLS handshake each call
                    url, data=body, headers=_HEADERS, timeout=(3.05, 20), verify=ca
                )
                reply.content  # noqa: B018 - read the body, as the adapter does
                times.append(time.perf_counter() - start)
                if reply.status_code != 200:
                    raise RuntimeError(f"TLS baseline got HTTP {reply.status_code}")
            return times

        def window(r: int) -> slice:
            return slice(warmup + r * calls, warmup + (r + 1) * calls)

        new_connection_each(bodies[:warmup])
        _candidate(gateway, requests_[:warmup])
        base, cand = abab(
            lambda r: median(new_connection_each(bodies[window(r)])),
            lambda r: median(_candidate(gateway, requests_[window(r)])),
            ctx.rounds,
        )
        gateway.close()
    finally:
        server.close()
    result = compare(
        "P3 create() over TLS, pooled vs new connection per call",
        "faspay",
        base,
        cand,
        fmt=micros,
        target=0.40,
        at_most=True,
    )
    result.notes.append(
        f"P3: {ctx.rounds} rounds × {calls} calls per side after {warmup} warm-up calls; "
        "server: the Faspay emulator (WSGI) behind TLS (the standard library's threaded WSGI "
        "server, HTTP/1.1 keep-alive, TCP_NODELAY), certificate for 127.0.0.1 "
        "from a CA made at run time by trustme, child process on CPU 0; baseline "
        "requests.post(verify=<CA file>) (a new connection and handshake each call), "
        f"candidate FaspayDanaGateway.create with RequestsTransport(verify=<CA file>); client "
        f"{note}"
    )
    return [result]


# -- P12: memory ---------------------------------------------------------------------------


def _memory_run(variant: str, url: str, calls: int, segments: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, _SERVE, "memory", variant, url, str(calls), str(segments)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def p12(ctx: Context) -> list[Result]:
    from adapters.tests.benchmarks.bench_create import Server

    calls, segments = ctx.size(2000, 10_000), 5
    server = Server()
    try:
        runs = {v: _memory_run(v, server.url, calls, segments) for v in ("baseline", "candidate")}
    finally:
        server.close()
    results = []
    floor = 64 * 1024  # below this, growth is page-granular noise; ratios use it as the floor
    for index, (label, unit) in enumerate((("RSS", "KiB"), ("tracemalloc traced", "KiB"))):
        growth = {v: runs[v]["samples"][-1][index] for v in runs}
        steps = {
            v: [s[index] for s in runs[v]["samples"]] for v in runs
        }  # cumulative growth after each segment
        ratio = max(growth["candidate"], 0) / max(growth["baseline"], floor)
        results.append(
            Result(
                f"P12 {label} growth over {calls:,} creates",
                "faspay",
                f"{growth['baseline'] / 1024:+,.0f} {unit}",
                f"{growth['candidate'] / 1024:+,.0f} {unit}",
                ratio,
                "≤ 1.1×",
                ratio <= 1.1,
                "cumulative per segment (KiB) base "
                + "/".join(f"{x / 1024:.0f}" for x in steps["baseline"])
                + ", cand "
                + "/".join(f"{x / 1024:.0f}" for x in steps["candidate"]),
            )
        )
    results[0].notes.append(
        f"P12: one fresh process per side (baseline first), {calls:,} calls after 200 warm-up "
        f"calls, measured after each of {segments} segments after gc.collect(); tracemalloc on "
        "during the measured calls; ratio = candidate growth / max(baseline growth, 64 KiB)"
        + (" (--quick: 2,000 calls, not 10,000)" if ctx.quick else "")
    )
    results.append(
        info(
            "P12 seconds per side (tracemalloc on)",
            "faspay",
            f"{runs['baseline']['seconds']:.1f} s",
            f"{runs['candidate']['seconds']:.1f} s",
        )
    )
    return results
