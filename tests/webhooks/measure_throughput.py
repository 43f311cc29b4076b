"""Receiver throughput: signed callbacks per second verified and stored, for each store.

Run: ``.venv/bin/python -m tests.webhooks.measure_throughput [--requests 6000] [--concurrency 64]``.
The receiver runs as its own process (as deployed); the client pre-signs every request so that the
timed window holds only HTTP, verification and the committed store write. Every answer must be a 202
and every delivery must be in the store afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import aiohttp

from airflow_provider_integrations.postgres.listen import close_loop_listeners
from airflow_provider_integrations.postgres.pool import close_loop_pools
from tests.webhooks.conftest import (
    SECRETS,
    ReceiverProcess,
    _psql,
    make_store,
    registration,
    signed,
    store_url,
    unique,
)


def cpu_seconds(pid: int | str) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    total = 0.0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "postgres":
                total += cpu_seconds(pid)
        except OSError:
            continue
    return total


async def measure(kind: str, where: str, requests: int, concurrency: int) -> tuple[float, float, float]:
    """Callbacks per second, and CPU µs per callback of the receiver process and of PostgreSQL."""
    async with make_store(kind, where) as store:
        regs = [registration() for _ in range(requests)]
        await asyncio.gather(*(store.register(r) for r in regs))
    proc = ReceiverProcess(store_url(kind, where), SECRETS).start()  # audit lines on, as deployed
    try:
        prepared = [
            (reg.callback_id, *signed({"job": i, "status": "succeeded"})) for i, reg in enumerate(regs)
        ]
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as http:
            queue = iter(prepared)
            statuses: list[int] = []

            async def worker() -> None:
                for callback_id, body, headers in queue:
                    async with http.post(
                        f"{proc.url}/callbacks/{callback_id}", data=body, headers=headers
                    ) as r:
                        await r.read()
                        statuses.append(r.status)

            receiver_cpu, pg_cpu = cpu_seconds(proc.pid), postgres_cpu_seconds()
            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
            receiver_cpu, pg_cpu = cpu_seconds(proc.pid) - receiver_cpu, postgres_cpu_seconds() - pg_cpu
    finally:
        proc.close()
    assert statuses.count(202) == requests, {s: statuses.count(s) for s in set(statuses)}
    async with make_store(kind, where) as store:
        missing = [r.callback_id for r in regs if await store.delivery(r.callback_id) is None]
    assert not missing, f"{len(missing)} accepted callbacks not stored"
    await close_loop_listeners()
    await close_loop_pools()
    return requests / elapsed, receiver_cpu / requests * 1e6, pg_cpu / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stores", default="postgres,sqlite")
    args = parser.parse_args()
    for kind in args.stores.split(","):
        results = []
        for _ in range(args.rounds):
            if kind == "sqlite":
                with tempfile.TemporaryDirectory() as tmp:
                    where = str(Path(tmp) / "cb.db")
                    results.append(asyncio.run(measure(kind, where, args.requests, args.concurrency)))
            else:
                schema = unique("whbench")
                _psql(f'CREATE SCHEMA "{schema}"')
                try:
                    results.append(asyncio.run(measure(kind, schema, args.requests, args.concurrency)))
                finally:
                    _psql(f'DROP SCHEMA "{schema}" CASCADE')
        results.sort()
        rate, receiver_us, pg_us = results[len(results) // 2]
        rounds = ", ".join(f"{r[0]:,.0f}" for r in results)
        print(
            f"{kind}: median {rate:,.0f} callbacks/s (rounds: {rounds}); CPU per callback: "
            f"receiver {receiver_us:.0f} µs, postgres {pg_us:.0f} µs"
        )


if __name__ == "__main__":
    main()
