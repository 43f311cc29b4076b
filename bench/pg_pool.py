"""Pooled queries vs a new connection per query: 10,000 ``SELECT 1`` at concurrency 100.

- ``pooled``: our shared pool (``postgres.pool.lease_pool``, default ``max_size`` 10), 100 workers;
- ``connect_per_query``: ``asyncpg.connect`` + ``SELECT 1`` + ``close`` per query, which is what code
  without pooling does (a hook per task, a connection per poll).

A server accepts only ``max_connections`` sessions, so connect-per-query runs at most as many workers
as the server has free slots (minus a margin for other clients); the cap is printed. Contenders
alternate within each round; the ratio is the median of per-round ratios.

Run: ``.venv/bin/python bench/pg_pool.py [--queries 10000] [--concurrency 100] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from _common import run_concurrently

from airflow_provider_integrations.postgres import PgConfig, lease_pool

SERVER: dict[str, Any] = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": "test"}
# Slots left for everyone else (and for superusers' reserved ones) while connect-per-query runs.
MARGIN = 10


async def pooled(n: int, concurrency: int) -> dict[str, float]:
    config = PgConfig(**SERVER, name="pg-bench-pool")
    async with lease_pool(config) as pool:
        await pool.fetchval("SELECT 1")  # opened outside the timing, as a long-lived pool is

        async def call() -> None:
            assert await pool.fetchval("SELECT 1") == 1

        started = time.perf_counter()
        await run_concurrently(n, concurrency, call)
        elapsed = time.perf_counter() - started
        stats = pool.stats()
    return {"qps": n / elapsed, "connections": stats["size"], "acquire_ms_avg": stats["acquire_ms_avg"]}


async def connect_per_query(n: int, concurrency: int) -> dict[str, float]:
    async def call() -> None:
        conn = await asyncpg.connect(**SERVER)
        try:
            assert await conn.fetchval("SELECT 1") == 1
        finally:
            await conn.close()

    started = time.perf_counter()
    await run_concurrently(n, concurrency, call)
    return {"qps": n / (time.perf_counter() - started), "connections": n, "acquire_ms_avg": float("nan")}


async def free_slots() -> int:
    conn = await asyncpg.connect(**SERVER)
    try:
        row = await conn.fetchrow(
            "SELECT current_setting('max_connections')::int"
            " - current_setting('superuser_reserved_connections')::int"
            " - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS free"
        )
        return int(row["free"])
    finally:
        await conn.close()


async def run(queries: int, concurrency: int, rounds: int) -> tuple[dict[str, list[dict[str, float]]], int]:
    direct = max(1, min(concurrency, await free_slots() - MARGIN))
    contenders: dict[str, Callable[[], Awaitable[dict[str, float]]]] = {
        "pooled": lambda: pooled(queries, concurrency),
        "connect_per_query": lambda: connect_per_query(queries, direct),
    }
    await pooled(200, concurrency)  # warm-up
    await connect_per_query(50, direct)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in contenders}
    for number in range(rounds):
        order = list(contenders) if number % 2 == 0 else list(contenders)[::-1]
        for name in order:
            results[name].append(await contenders[name]())
    return results, direct


def report(queries: int, concurrency: int, direct: int, results: dict[str, list[dict[str, float]]]) -> str:
    ratio = statistics.median(
        p["qps"] / c["qps"] for p, c in zip(results["pooled"], results["connect_per_query"], strict=True)
    )
    lines = [
        "| contender | workers | queries/s | server sessions opened | avg acquire ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, runs in results.items():
        workers = concurrency if name == "pooled" else direct
        qps = statistics.median(r["qps"] for r in runs)
        acquire = statistics.median(r["acquire_ms_avg"] for r in runs)
        shown = "-" if acquire != acquire else f"{acquire:.2f}"  # NaN: no pool
        lines.append(f"| {name} | {workers} | {qps:,.0f} | {runs[0]['connections']:,.0f} | {shown} |")
    verdict = "ok" if ratio >= 20 else "MISSED"
    lines += ["", f"- pooled / connect_per_query: **{ratio:.1f}x** (target >= 20x: {verdict})"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results, direct = asyncio.run(run(args.queries, args.concurrency, args.rounds))
    print(f"\n{args.queries:,} x SELECT 1, concurrency {args.concurrency}, median of {args.rounds} rounds")
    print(report(args.queries, args.concurrency, direct, results))


if __name__ == "__main__":
    main()
