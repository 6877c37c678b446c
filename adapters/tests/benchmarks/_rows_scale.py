"""Rows P8 (import time), S1 (first delivery in a large ledger vs a small one, SQLite and
PostgreSQL) and S2 (PostgreSQL, 1/2/4/8 processes delivering to one ledger).

S1 and S2 use the example plugin Acme Pay, whose signed notifications settle a payment without
an inquiry, so any payment row can be delivered to (bulk-loaded rows exist at no provider).
Ledgers are opened with ``open_ledger`` (migrated); the bulk rows are copies of one payment
stored through ``insert_payment``, with new references, loaded with ``executemany`` (SQLite)
or ``COPY`` (PostgreSQL, psycopg 3) straight into the payments table. PostgreSQL runs in
throwaway schemas, dropped afterwards.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from adapters.tests.benchmarks import _acme
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

# -- P8 ------------------------------------------------------------------------------------


def p8(ctx: Context) -> list[Result]:
    from adapters.tests.benchmarks.bench_import import _importtime

    base, cand = abab(
        lambda r: _importtime("requests")["requests"] / 1e6,
        lambda r: _importtime("gateway_core")["gateway_core"] / 1e6,
        max(ctx.rounds, ctx.size(5, 9)),
    )
    result = compare(
        "P8 import gateway_core vs import requests",
        "-",
        base,
        cand,
        fmt=lambda s: f"{s * 1e3:.1f} ms",
        target=0.70,
        at_most=True,
    )
    result.notes.append(
        "P8: python -X importtime -c 'import X' in fresh interpreters, interleaved; the "
        "cumulative time of the top module"
    )
    return [result]


# -- bulk loading --------------------------------------------------------------------------


def _columns(cursor: Any) -> list[str]:
    return [d[0] for d in cursor.description]


def _clone_rows(
    names: list[str], row: tuple[Any, ...], indexes: range
) -> Iterator[tuple[Any, ...]]:
    """Copies of the payment ``row`` (without ``id``) as Acme payment ``i`` for each index."""
    at = {name: names.index(name) for name in names}
    values = list(row)
    for i in indexes:
        values[at["order_reference"]] = f"A{i:08d}"
        values[at["merchant_reference"]] = _acme.reference(i)
        values[at["provider_reference"]] = f"ac_{i}"
        yield tuple(values)


def bulk_sqlite(path: Path, indexes: range) -> None:
    """Acme payments for ``indexes`` in the SQLite ledger at ``path``: the first through
    ``insert_payment``, the rest copies of its row (``executemany``)."""
    import sqlite3

    from gateway_core.ledger import open_ledger

    ledger = open_ledger(f"sqlite:///{path}?synchronous=NORMAL")
    _acme.insert_payments(ledger, indexes[:1])
    ledger.close()
    conn = sqlite3.connect(path)
    cursor = conn.execute(
        "SELECT * FROM gw_payments WHERE merchant_reference = ?", (_acme.reference(indexes[0]),)
    )
    names, row = _columns(cursor), cursor.fetchone()
    keep = [i for i, name in enumerate(names) if name != "id"]
    names = [names[i] for i in keep]
    template = tuple(row[i] for i in keep)
    sql = (
        f"INSERT INTO gw_payments ({', '.join(names)}) "  # noqa: S608 - names from the table
        f"VALUES ({', '.join('?' * len(names))})"
    )
    with conn:
        conn.executemany(sql, _clone_rows(names, template, indexes[1:]))
    conn.close()


@contextmanager
def postgres_schema(ctx: Context, label: str) -> Iterator[str]:
    """A throwaway schema name (dropped afterwards with everything in it)."""
    import psycopg

    schema = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    try:
        yield schema
    finally:
        with psycopg.connect(ctx.postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def schema_url(ctx: Context, schema: str) -> str:
    separator = "&" if "?" in ctx.postgres_url else "?"
    return f"{ctx.postgres_url}{separator}schema={schema}"


def bulk_postgres(ctx: Context, schema: str, indexes: range) -> None:
    """As :func:`bulk_sqlite`, in PostgreSQL ``schema`` (migrated here), with ``COPY``."""
    import psycopg

    from gateway_core.ledger import open_ledger

    ledger = open_ledger(schema_url(ctx, schema))
    _acme.insert_payments(ledger, indexes[:1])
    ledger.close()
    with psycopg.connect(ctx.postgres_url) as conn:
        cursor = conn.execute(
            f'SELECT * FROM "{schema}".gw_payments WHERE merchant_reference = %s',  # noqa: S608
            (_acme.reference(indexes[0]),),
        )
        names, row = _columns(cursor), cursor.fetchone()
        assert row is not None
        keep = [i for i, name in enumerate(names) if name != "id"]
        names = [names[i] for i in keep]
        from psycopg.types.json import Jsonb

        template = tuple(Jsonb(row[i]) if isinstance(row[i], dict | list) else row[i] for i in keep)
        with cursor.copy(f'COPY "{schema}".gw_payments ({", ".join(names)}) FROM STDIN') as copy:
            for values in _clone_rows(names, template, indexes[1:]):
                copy.write_row(values)
        conn.execute(f'ANALYZE "{schema}".gw_payments')


def postgres_available(ctx: Context) -> str:
    """ "" when PostgreSQL answers, else why not."""
    try:
        import psycopg

        with psycopg.connect(ctx.postgres_url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc)[:80]}"
    return ""


# -- S1 ------------------------------------------------------------------------------------


def _latencies(service: Any, indexes: list[int]) -> float:
    """Median seconds per first delivery of the notifications of ``indexes``."""
    handle, clock = service.handle_notification, time.perf_counter
    times = []
    for i in indexes:
        body, headers = _acme.notification(i)
        start = clock()
        outcome = handle(_acme.GATEWAY, body, headers)
        times.append(clock() - start)
        if outcome.verdict != "applied":
            raise RuntimeError(f"S1 expected 'applied', got {outcome.verdict!r}")
    return median(times)


def _s1_compare(
    ctx: Context, backend: str, small: Any, large: Any, sizes: tuple[int, int]
) -> Result:
    per_round = ctx.size(40, 150)
    rng = random.Random(13)
    picks_small = rng.sample(range(sizes[0]), per_round * (ctx.rounds + 1))
    picks_large = rng.sample(range(sizes[1]), per_round * (ctx.rounds + 1))

    def chunk(picks: list[int], r: int) -> list[int]:
        return picks[(r + 1) * per_round : (r + 2) * per_round]

    _latencies(small, picks_small[:per_round])  # warm-up
    _latencies(large, picks_large[:per_round])
    base, cand = abab(
        lambda r: _latencies(small, chunk(picks_small, r)),
        lambda r: _latencies(large, chunk(picks_large, r)),
        ctx.rounds,
    )
    return compare(
        f"S1 first delivery, {sizes[1]:,} vs {sizes[0]:,} payments, {backend}",
        _acme.PROVIDER,
        base,
        cand,
        fmt=micros,
        target=1.2,
        at_most=True,
    )


def s1(ctx: Context) -> list[Result]:
    from gateway_core.ledger import open_ledger

    sizes = (1000, ctx.size(100_000, 1_000_000))
    results = []
    folder = ctx.subdir("s1")
    started = time.perf_counter()
    bulk_sqlite(folder / "small.db", range(sizes[0]))
    bulk_sqlite(folder / "large.db", range(sizes[1]))
    load_sqlite = time.perf_counter() - started
    small = _acme.service(open_ledger(f"sqlite:///{folder / 'small.db'}?synchronous=NORMAL"))
    large = _acme.service(open_ledger(f"sqlite:///{folder / 'large.db'}?synchronous=NORMAL"))
    try:
        results.append(_s1_compare(ctx, "SQLite NORMAL", small, large, sizes))
    finally:
        small.ledger.close()
        large.ledger.close()
    results[-1].notes.append(
        f"S1: {ctx.rounds} interleaved rounds × {ctx.size(40, 150)} first deliveries to random "
        f"payments of each ledger (median latency per round); large ledger {sizes[1]:,} "
        f"payments{' (--quick; the full run uses 1,000,000)' if ctx.quick else ''}, small "
        f"{sizes[0]:,} (only the payments table is large: transitions, receipts, journal and "
        f"outbox start empty in both); bulk load {load_sqlite:.1f} s on SQLite"
    )
    missing = postgres_available(ctx)
    if missing:
        results.append(
            info("S1 PostgreSQL", _acme.PROVIDER, "-", "not measured", f"no server: {missing}")
        )
        return results
    with (
        postgres_schema(ctx, "s1small") as small_schema,
        postgres_schema(ctx, "s1large") as large_schema,
    ):
        started = time.perf_counter()
        bulk_postgres(ctx, small_schema, range(sizes[0]))
        bulk_postgres(ctx, large_schema, range(sizes[1]))
        load_pg = time.perf_counter() - started
        small = _acme.service(open_ledger(schema_url(ctx, small_schema)))
        large = _acme.service(open_ledger(schema_url(ctx, large_schema)))
        try:
            results.append(_s1_compare(ctx, "PostgreSQL", small, large, sizes))
        finally:
            small.ledger.close()
            large.ledger.close()
    results[-1].spread += f"; COPY load {load_pg:.1f} s"
    return results


# -- S2 ------------------------------------------------------------------------------------


def _s2_worker(url: str, own: list[int], other: list[int], barrier: Any, out: Any) -> None:
    """Deliver own[j] then other[j] for each j (the other list is a neighbour's own: the same
    notifications race in two processes); report verdict counts and seconds, or the error
    (and break the barrier, so nobody waits for a worker that failed)."""
    service = None
    try:
        from gateway_core.ledger import open_ledger

        service = _acme.service(open_ledger(url, migrate=False))
        deliveries = []
        for a, b in zip(own, other, strict=True):
            deliveries += [_acme.notification(a), _acme.notification(b)]
        service.ledger.ping()
        barrier.wait()
        verdicts: Counter[str] = Counter()
        start = time.perf_counter()
        for body, headers in deliveries:
            verdicts[service.handle_notification(_acme.GATEWAY, body, headers).verdict] += 1
        out.put((dict(verdicts), time.perf_counter() - start))
    except BaseException as exc:
        barrier.abort()
        out.put(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        if service is not None:
            service.ledger.close()


def _s2_trial(ctx: Context, url: str, processes: int, first: int, per: int) -> dict[str, Any]:
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    mp = multiprocessing.get_context(method)
    chunks = [list(range(first + p * per, first + (p + 1) * per)) for p in range(processes)]
    barrier = mp.Barrier(processes + 1)
    out = mp.Queue()
    workers = [
        mp.Process(
            target=_s2_worker,
            args=(url, chunks[p], chunks[(p + 1) % processes], barrier, out),
        )
        for p in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=120)  # broken when a worker failed: its error is queued
        start = time.perf_counter()
        reports = [out.get(timeout=600) for _ in workers]
        wall = time.perf_counter() - start
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.terminate()
                worker.join()
    errors = [message for kind, message in reports if kind == "error"]
    if errors:
        raise RuntimeError(f"S2 worker failed: {errors[0]}")
    verdicts: Counter[str] = Counter()
    for counts, _seconds in reports:
        verdicts.update(counts)
    return {"wall": wall, "verdicts": verdicts, "handled": sum(verdicts.values())}


def s2(ctx: Context) -> list[Result]:
    import psycopg

    missing = postgres_available(ctx)
    if missing:
        return [info("S2 PostgreSQL processes", _acme.PROVIDER, "-", "not measured", missing)]
    counts = (1, 2, 4, 8)
    rounds = 1 if ctx.quick else ctx.rounds
    per = ctx.size(25, 100)
    total = sum(counts) * per * rounds
    results: list[Result] = []
    rates: dict[int, list[float]] = {n: [] for n in counts}
    applied: dict[int, list[float]] = {n: [] for n in counts}
    verdicts: Counter[str] = Counter()
    with postgres_schema(ctx, "s2") as schema:
        bulk_postgres(ctx, schema, range(total))
        url = schema_url(ctx, schema)
        first = 0
        for _ in range(rounds):
            for n in counts:
                trial = _s2_trial(ctx, url, n, first, per)
                first += n * per
                rates[n].append(trial["handled"] / trial["wall"])
                applied[n].append(trial["verdicts"]["applied"] / trial["wall"])
                verdicts.update(trial["verdicts"])
        with psycopg.connect(ctx.postgres_url) as conn:
            per_payment = conn.execute(
                f'SELECT t.payment_id, COUNT(*) FROM "{schema}".gw_transitions t '  # noqa: S608
                "GROUP BY t.payment_id"
            ).fetchall()
            paid = conn.execute(
                f"SELECT COUNT(*) FROM \"{schema}\".gw_payments WHERE status = 'paid'"  # noqa: S608
            ).fetchone()
    histogram = Counter(count for _payment, count in per_payment)
    doubles = sum(n for count, n in histogram.items() if count > 1)
    one = rates[1]
    for n in counts:
        result = compare(
            f"S2 PostgreSQL, {n} process{'es' if n > 1 else ''}: notifications/s",
            _acme.PROVIDER,
            one,
            rates[n],
            fmt=lambda x: f"{x:,.0f}/s",
            target=None,
            at_most=False,
        )
        result.baseline = f"{median(one):,.0f}/s (1 process)"
        result.candidate += f" ({median(applied[n]):,.0f}/s first deliveries)"
        result.spread = f"per round {span(rates[n], 0)}/s over {len(rates[n])} round(s)"
        results.append(result)
    results.append(
        Result(
            "S2 payments with more than one transition",
            _acme.PROVIDER,
            "-",
            f"{doubles} (transitions per payment: {dict(sorted(histogram.items()))}; "
            f"{paid[0] if paid else '?'} paid of {total})",
            None,
            "0",
            doubles == 0 and (paid is not None and paid[0] == total),
            "verdicts "
            + ", ".join(f"{getattr(k, 'value', k)} {v}" for k, v in sorted(verdicts.items())),
        )
    )
    results[0].notes.append(
        f"S2: {rounds} round(s); each process delivers {per} first notifications of its own "
        f"payments interleaved with the {per} of its neighbour's (the same notifications race "
        "in two processes: half of all deliveries are duplicates), one PostgreSQL schema, "
        f"the processes started by multiprocessing and released together; ratio = "
        f"throughput / 1-process throughput; {os.cpu_count()} CPUs"
    )
    return results
