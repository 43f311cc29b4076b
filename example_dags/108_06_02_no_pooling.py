"""
# Anti-pattern: no connection pooling

Opening a database connection per query looks harmless in a single task. Run 30 of those tasks at
once, or one task that fans out into threads, and the database sees a **connection storm**: hundreds of
connects per second, each forking a server process, authenticating and tearing down again. This DAG
provokes the storm on purpose, measures it from the server's side (`pg_stat_activity`), then applies
the fix and measures again. It succeeds when the anti-pattern shows its cost *and* the fix removes it.

## Connection storms

`connection_storm` runs 300 short lookups from 30 threads the naive way: `PostgresHook.get_conn()`
(what `get_records()` and `run()` do inside), one query, close. A sampler polls `pg_stat_activity` from
its own connection and prints how many connections of the storm the server holds over time: up to one
per thread, and 300 connections opened in total for 300 queries.

## Resource waste

`resource_waste` measures what each of those connections costs: the time to open it and the memory of
the new server process (`pg_backend_memory_contexts`), and multiplies by the storm's 300 connects. None
of that work answers a query.

## External system overload

Every server has a connection limit (`max_connections`, or a per-role `CONNECTION LIMIT`). When a storm
crosses it, connects fail with SQLSTATE 53300 ("too many connections") and *other* applications of the
same database fail too. `external_system_overload` shows it safely on a throw-away role limited to 5
connections: 20 concurrent unpooled workers, most of them refused; then the same 20 workers through a
pool of 5: all succeed, because they wait for a pooled connection instead of opening a new one.

## Performance impact

`compare` prints connections opened, peak connections and wall time for the storm and for the pooled
runs of the same workload, and checks that the pools open at most 5 connections, hold fewer at the
peak, and finish faster: connecting costs more than the lookups themselves.

## Pooling implementation

`pooling_implementation` runs the storm's workload twice more:

- async code: `AsyncPostgresHook` (one asyncpg pool per connection and event loop, `pool_max_size=5`),
  30 concurrent callers sharing 5 connections;
- sync code: the SQLAlchemy engine of `PostgresHook` (`get_sqlalchemy_engine(engine_kwargs=
  {"pool_size": 5, "max_overflow": 0})`), 30 threads sharing 5 connections, disposed when done.

In Airflow, prefer deferrable sensors (one pool in the triggerer for thousands of waits, see
`SqlConditionSensor`) over many poking tasks, size pools per process, and keep the sum of all pools
below the server's limit (or put PgBouncer in front of it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

from airflow.providers.postgres.hooks.postgres import PostgresHook
from airflow.sdk import DAG, get_current_context, task

from airflow_provider_integrations.hooks.postgres import AsyncPostgresHook
from airflow_provider_integrations.postgres.pool import lease_pool

REQUIRES = ["postgresql"]
PG = "integrations_pg"
WORKERS, QUERIES = 30, 300
LOOKUP = "SELECT pg_backend_pid()"


def run_suffix() -> str:
    return hashlib.sha1(get_current_context()["run_id"].encode()).hexdigest()[:10]


class ConnectionSampler:
    """Counts the server's connections of one ``application_name`` every few ms, from its own connection."""

    def __init__(self, application_name: str, interval: float = 0.005) -> None:
        self.application_name, self.interval = application_name, interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        dsn = "host=127.0.0.1 port=5432 dbname=test user=postgres application_name=storm-sampler"
        with psycopg.connect(dsn, autocommit=True) as conn:
            t0 = time.perf_counter()
            while not self._stop.is_set():
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                    [self.application_name],
                ).fetchone()
                self.samples.append((time.perf_counter() - t0, int(row[0]) if row else 0))
                time.sleep(self.interval)

    @property
    def peak(self) -> int:
        return max((n for _, n in self.samples), default=0)

    def timeline(self, buckets: int = 12) -> str:
        """Peak count per time slice, as the storm's shape."""
        if not self.samples:
            return "-"
        end = self.samples[-1][0] or 1.0
        peaks = [0] * buckets
        for at, n in self.samples:
            slot = min(buckets - 1, int(at / end * buckets))
            peaks[slot] = max(peaks[slot], n)
        return " ".join(str(p) for p in peaks)

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        time.sleep(0.05)  # its own connection is open before the measured work starts
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.05)
        self._stop.set()
        self._thread.join(5)


def report(name: str, opened: int, sampler: ConnectionSampler, seconds: float) -> dict[str, Any]:
    print(
        f"{name}: {QUERIES} queries, {opened} connections opened, peak {sampler.peak} open at once, "
        f"{seconds * 1000:.0f} ms; pg_stat_activity counts over time: {sampler.timeline()}"
    )
    return {"opened": opened, "peak": sampler.peak, "seconds": round(seconds, 3)}


with DAG(
    dag_id="108_06_02_no_pooling",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["reference", "anti-pattern", "intermediate", "failure"],
    doc_md=__doc__,
) as dag:
    # [START howto_connection_storm]
    @task
    def connection_storm() -> dict[str, Any]:
        name = f"storm-{run_suffix()}"
        hook = PostgresHook(postgres_conn_id=PG, options=f"-c application_name={name}")

        def lookup(_: int) -> int:
            conn = hook.get_conn()  # a new connection for every query: the anti-pattern
            try:
                row = conn.execute(LOOKUP).fetchone()
                return int(row[0]) if row else 0
            finally:
                conn.close()

        with ConnectionSampler(name) as sampler, ThreadPoolExecutor(WORKERS) as threads:
            t0 = time.perf_counter()
            pids = list(threads.map(lookup, range(QUERIES)))
            seconds = time.perf_counter() - t0
        result = report("no pooling", len(set(pids)), sampler, seconds)
        assert result["opened"] > QUERIES * 0.9, "each query had a connection of its own"
        return result

    # [END howto_connection_storm]

    # [START howto_connection_cost]
    @task
    def resource_waste(storm: dict[str, Any]) -> dict[str, Any]:
        import psycopg

        dsn = "host=127.0.0.1 port=5432 dbname=test user=postgres"
        t0 = time.perf_counter()
        for _ in range(20):
            with psycopg.connect(dsn) as conn:
                conn.execute("SELECT 1")
        connect_ms = (time.perf_counter() - t0) / 20 * 1000
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT sum(total_bytes) FROM pg_backend_memory_contexts").fetchone()
            backend_kb = int(row[0]) // 1024 if row else 0
        wasted_s = storm["opened"] * connect_ms / 1000
        print(
            f"one connection: {connect_ms:.1f} ms to open, {backend_kb} KB of server memory; the storm "
            f"opened {storm['opened']}: about {wasted_s:.1f} s of connect work and {storm['peak']} server "
            f"processes ({storm['peak'] * backend_kb / 1024:.1f} MB) at its peak, to run {QUERIES} lookups"
        )
        assert connect_ms > 0 and backend_kb > 0
        return {"connect_ms": round(connect_ms, 2), "backend_kb": backend_kb, "wasted_s": round(wasted_s, 2)}

    # [END howto_connection_cost]

    # [START howto_connection_limit]
    @task
    def external_system_overload() -> dict[str, int]:
        import asyncpg
        import psycopg

        role = f"storm_{run_suffix()}"
        admin = "host=127.0.0.1 port=5432 dbname=test user=postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 5")
        try:

            async def unpooled() -> str:
                try:
                    conn = await asyncpg.connect(host="127.0.0.1", port=5432, database="test", user=role)
                except asyncpg.PostgresError as exc:
                    return str(exc.sqlstate)
                try:
                    await conn.execute("SELECT pg_sleep(0.3)")
                finally:
                    await conn.close()
                return "ok"

            async def storm() -> list[str]:
                return list(await asyncio.gather(*(unpooled() for _ in range(20))))

            outcomes = asyncio.run(storm())
            refused = sum(o != "ok" for o in outcomes)

            # The fix: the same 20 jobs through a pool of 5 connections of the limited role.
            config = dataclasses.replace(
                AsyncPostgresHook(PG).get_config(), user=role, max_size=5, acquire_timeout=30, name=role
            )

            async def pooled() -> int:
                async with lease_pool(config) as pool:
                    done = await asyncio.gather(*(pool.execute("SELECT pg_sleep(0.3)") for _ in range(20)))
                    return len(done)

            succeeded = asyncio.run(pooled())
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"DROP ROLE IF EXISTS {role}")
        print(
            f"role limited to 5 connections: 20 unpooled workers -> {20 - refused} ok, {refused} refused "
            f"({sorted(set(outcomes) - {'ok'})}); 20 workers through a pool of 5 -> {succeeded} ok, 0 refused"
        )
        assert refused >= 10 and "53300" in outcomes, outcomes
        assert succeeded == 20
        return {"unpooled_refused": refused, "pooled_ok": succeeded}

    # [END howto_connection_limit]

    # [START howto_pooling_fix]
    @task
    def pooling_implementation() -> dict[str, Any]:
        suffix, results = run_suffix(), {}

        # Async code: one asyncpg pool of 5 shared by 30 concurrent callers.
        config = dataclasses.replace(
            AsyncPostgresHook(PG, pool_options={"pool_max_size": 5}).get_config(), name=f"pooled-{suffix}"
        )

        async def pooled() -> list[int]:
            async with lease_pool(config) as pool:
                await pool.fetchval("SELECT 1")  # warm: a long-lived process opens its pool once
                gate = asyncio.Semaphore(WORKERS)

                async def lookup() -> int:
                    async with gate:
                        return int(await pool.fetchval(LOOKUP))

                return await asyncio.gather(*(lookup() for _ in range(QUERIES)))

        with ConnectionSampler(config.name) as sampler:
            t0 = time.perf_counter()
            pids = asyncio.run(pooled())
            results["asyncpg_pool"] = report(
                "AsyncPostgresHook pool", len(set(pids)), sampler, time.perf_counter() - t0
            )

        # Sync code: the SQLAlchemy engine's QueuePool, 30 threads on 5 connections.
        import sqlalchemy as sa

        name = f"engine-{suffix}"
        engine = PostgresHook(postgres_conn_id=PG).get_sqlalchemy_engine(
            engine_kwargs={"pool_size": 5, "max_overflow": 0, "connect_args": {"application_name": name}}
        )
        try:

            def sync_lookup(_: int) -> int:
                with engine.connect() as conn:
                    return int(conn.execute(sa.text(LOOKUP)).scalar_one())

            with engine.connect():
                pass  # warm one connection, as above
            with ConnectionSampler(name) as sampler, ThreadPoolExecutor(WORKERS) as threads:
                t0 = time.perf_counter()
                pids = list(threads.map(sync_lookup, range(QUERIES)))
                results["sqlalchemy_pool"] = report(
                    "SQLAlchemy QueuePool", len(set(pids)), sampler, time.perf_counter() - t0
                )
        finally:
            engine.dispose()
        return results

    # [END howto_pooling_fix]

    @task
    def compare(storm: dict[str, Any], pooled: dict[str, Any], waste: dict[str, Any]) -> None:
        rows = [("no pooling", storm), *pooled.items()]
        print(f"{'approach':<18} {'opened':>7} {'peak':>5} {'ms':>7}")
        for name, r in rows:
            print(f"{name:<18} {r['opened']:>7} {r['peak']:>5} {r['seconds'] * 1000:>7.0f}")
        for name, r in pooled.items():
            assert r["opened"] <= 5 and r["peak"] <= 5, (name, r)
            assert r["peak"] < storm["peak"], f"{name}: fewer server connections than the storm"
            assert r["seconds"] < storm["seconds"], f"{name}: faster than connecting per query"
        print(f"the storm spent ~{waste['wasted_s']} s opening connections; the pools opened at most 5")

    storm = connection_storm()
    waste = resource_waste(storm)
    fixed = pooling_implementation()
    storm >> fixed
    compare(storm, fixed, waste)
    storm >> external_system_overload()


if __name__ == "__main__":
    dag.test()
