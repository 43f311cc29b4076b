"""
# Hook connection pooling

Opening a PostgreSQL connection costs a TCP handshake, authentication and a new server process
(a few milliseconds and several MB of server memory); a query on an open connection costs a fraction
of a millisecond. A pool keeps a few connections open and lends them out, so many queries share few
connections. `AsyncPostgresHook` keeps **one asyncpg pool per connection and event loop** in the
process: every hook, operator and trigger of that connection borrows from it.

## Pool configuration

Settings come from the connection's extras or, for a connection that `PostgresHook` also reads (libpq
rejects extras it does not know), from `pool_options=` on the hook:

| setting | meaning | default |
| --- | --- | --- |
| `pool_min_size` | connections opened up front and kept | 1 |
| `pool_max_size` | upper bound; also the concurrency limit on the database | 10 |
| `acquire_timeout` | seconds a caller waits for a free connection | 10 |
| `statement_timeout` | server-side limit per statement, seconds | server default |
| `connect_timeout` | seconds to open one connection (libpq's extra) | 10 |

`pool_configuration` shows the resolved config and the statement timeout enforced by the server.
Size the pool for the concurrency of *one process*, and keep the sum over all processes (workers,
triggerer) below the server's `max_connections`.

## Connection reuse

`connection_reuse` runs 300 queries, 50 at a time, through a pool of 3 connections: they all land on at
most 3 server backends, and take a fraction of the time of connecting for every query (measured side
by side, with the ratio printed).

## Pool exhaustion handling

When every connection stays busy for `acquire_timeout`, the next caller gets `PgPoolExhaustedError`,
which names the pool, its size and the number of waiting callers, instead of hanging. `pool_exhaustion`
provokes it (3 connections held, a 4th requested with a 0.5 s timeout) and then shows the fix: bound
the concurrency of your own code with a semaphore of the pool size, so callers queue in your code
rather than time out in the pool. A lost connection is retriable (`PgRetriableError`); exhaustion is a
sizing problem, so retrying it blindly only adds load.

## Cleanup patterns

- Borrow with `async with pool.connection()` / `async with hook.pool()`: the connection or lease goes
  back even when the block raises.
- The last lease on an event loop closes the pool (a trigger's `cleanup()` returns its lease); the
  background loop used by synchronous hook methods keeps its pools until the process exits.
- A connection whose server process died is dropped and replaced by the pool; a query caught on it
  at that moment fails with the retriable `PgRetriableError`, and the next one gets a new connection.

`cleanup_patterns` checks each: an exception inside the block leaves no connection in use, a
terminated backend (`pg_terminate_backend`) is replaced on the next query, and once the lease ends no
connection of the pool is left in `pg_stat_activity`.

## Monitor pool health

`pool.stats()` gives size, idle, in use, waiting callers, acquires, average and maximum acquire time
and the number of exhaustions; the server's view is `pg_stat_activity` (one row per connection, with
the pool's name as `application_name`). `pool_health` collects both under load and flags the signs of a
pool that is too small (waiting callers, slow acquires, exhaustions).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_integrations.hooks.postgres import AsyncPostgresHook
from airflow_provider_integrations.postgres.connect import connect_kwargs
from airflow_provider_integrations.postgres.errors import PgError, PgPoolExhaustedError, PgRetriableError

REQUIRES = ["postgresql"]
PG = "integrations_pg"
SMALL_POOL = {"pool_min_size": 1, "pool_max_size": 3, "acquire_timeout": 0.5, "statement_timeout": 2}


def server_connections(application_name: str) -> int:
    """Connections the server sees for one pool, counted from a separate plain connection."""
    import psycopg

    with psycopg.connect("host=127.0.0.1 port=5432 dbname=test user=postgres") as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [application_name]
        ).fetchone()
        return int(row[0]) if row else 0


def terminate_backend(pid: int) -> None:
    import psycopg

    with psycopg.connect("host=127.0.0.1 port=5432 dbname=test user=postgres") as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", [pid])


with DAG(
    dag_id="108_02_05_connection_pooling",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["reference", "patterns", "advanced", "success"],
    doc_md=__doc__,
) as dag:
    # [START howto_pool_configuration]
    @task
    def pool_configuration() -> dict[str, Any]:
        hook = AsyncPostgresHook(PG, pool_options=SMALL_POOL)
        config = hook.get_config()
        print(
            f"pool {config.label!r}: {config.dsn} min={config.min_size} max={config.max_size} "
            f"acquire_timeout={config.acquire_timeout}s statement_timeout={config.statement_timeout}s"
        )

        async def check() -> tuple[str, str]:
            async with hook.pool() as pool:
                shown = await pool.fetchval("SHOW statement_timeout")
                try:
                    await pool.execute("SELECT pg_sleep(3)")
                except PgError as exc:  # canceled by the server after 2 s
                    return shown, f"{exc.sqlstate}: {exc}"
                return shown, "not canceled"

        shown, canceled = asyncio.run(check())
        assert shown == "2s" and canceled.startswith("57014"), (shown, canceled)
        return {"max_size": config.max_size, "statement_timeout": shown, "long_query": canceled}

    # [END howto_pool_configuration]

    # [START howto_connection_reuse]
    @task
    def connection_reuse() -> dict[str, Any]:
        hook = AsyncPostgresHook(PG, pool_options=SMALL_POOL)
        queries, concurrency = 300, 50

        async def pooled() -> tuple[float, set[int]]:
            gate = asyncio.Semaphore(concurrency)

            async def one() -> int:
                async with gate:
                    return int(await pool.fetchval("SELECT pg_backend_pid()"))

            async with hook.pool() as pool:
                await pool.fetchval("SELECT 1")  # opened before timing, as in a long-running process
                t0 = time.perf_counter()
                pids = await asyncio.gather(*(one() for _ in range(queries)))
                return time.perf_counter() - t0, set(pids)

        async def connect_per_query(n: int) -> float:
            import asyncpg

            kwargs = connect_kwargs(hook.get_config(), application_name="connect-per-query")
            t0 = time.perf_counter()
            for _ in range(n):
                conn = await asyncpg.connect(**kwargs)
                try:
                    await conn.fetchval("SELECT pg_backend_pid()")
                finally:
                    await conn.close()
            return time.perf_counter() - t0

        pooled_s, pids = asyncio.run(pooled())
        sample = 50
        unpooled_s = asyncio.run(connect_per_query(sample))
        per_pooled, per_unpooled = pooled_s / queries * 1000, unpooled_s / sample * 1000
        print(
            f"{queries} pooled queries on {len(pids)} backends: {per_pooled:.3f} ms/query; "
            f"connect per query: {per_unpooled:.2f} ms/query ({per_unpooled / per_pooled:.0f}x slower)"
        )
        assert len(pids) <= SMALL_POOL["pool_max_size"], pids
        assert per_unpooled > per_pooled, "connecting for every query is the slow path"
        return {
            "backends": len(pids),
            "pooled_ms": round(per_pooled, 3),
            "unpooled_ms": round(per_unpooled, 2),
        }

    # [END howto_connection_reuse]

    # [START howto_pool_exhaustion]
    @task
    def pool_exhaustion() -> dict[str, Any]:
        hook = AsyncPostgresHook(PG, pool_options=SMALL_POOL)

        async def exhaust() -> dict[str, Any]:
            async with hook.pool() as pool:
                held = [pool.connection() for _ in range(3)]
                for borrowed in held:
                    await borrowed.__aenter__()
                t0 = time.perf_counter()
                try:
                    await pool.fetchval("SELECT 1")
                except PgPoolExhaustedError as exc:
                    waited, message = time.perf_counter() - t0, str(exc)
                else:
                    raise AssertionError("a 4th connection must not be granted")
                finally:
                    for borrowed in held:
                        await borrowed.__aexit__(None, None, None)

                # The fix: never ask for more connections at once than the pool has.
                gate = asyncio.Semaphore(pool.config.max_size)

                async def bounded(n: int) -> int:
                    async with gate, pool.connection() as conn:
                        await conn.execute("SELECT pg_sleep(0.05)")
                        return n

                done = await asyncio.gather(*(bounded(n) for n in range(12)))
                return {
                    "waited_s": round(waited, 2),
                    "error": message,
                    "bounded": len(done),
                    "stats": pool.stats(),
                }

        result = asyncio.run(exhaust())
        print(result["error"])
        assert 0.4 <= result["waited_s"] < 2.0, result
        assert "'integrations_pg' exhausted" in result["error"] and "all 3 connections" in result["error"]
        assert result["bounded"] == 12 and result["stats"]["exhausted"] == 1, result
        return result

    # [END howto_pool_exhaustion]

    # [START howto_pool_cleanup]
    @task
    def cleanup_patterns() -> dict[str, Any]:
        hook = AsyncPostgresHook(PG, pool_options=SMALL_POOL)

        async def scenario() -> dict[str, Any]:
            async with hook.pool() as pool:
                try:
                    async with pool.connection() as conn:
                        await conn.execute("SELECT 1/0")
                except PgError as exc:
                    after_error = pool.stats()
                    error = f"{exc.sqlstate} {exc}"
                # A backend killed by an administrator (or a failover) is replaced: the pool notices the
                # closed socket and reconnects. A query that raced the kill fails with a retriable error.
                victim = await pool.fetchval("SELECT pg_backend_pid()")
                await asyncio.to_thread(terminate_backend, victim)  # from outside the pool, like an admin
                await asyncio.sleep(0.2)
                try:
                    replaced = await pool.fetchval("SELECT pg_backend_pid()")
                except PgRetriableError:
                    replaced = await pool.fetchval("SELECT pg_backend_pid()")
                open_during = server_connections(pool.config.application_name)
            return {
                "error": error,
                "in_use_after_error": after_error["in_use"],
                "victim": victim,
                "replaced_by": replaced,
                "open_during": open_during,
            }

        result = asyncio.run(scenario())
        result["open_after"] = server_connections(hook.get_config().application_name)
        print(result)
        assert result["in_use_after_error"] == 0, "the connection went back despite the exception"
        assert result["replaced_by"] != result["victim"]
        assert result["open_during"] >= 1 and result["open_after"] == 0, "the last lease closed the pool"
        return result

    # [END howto_pool_cleanup]

    # [START howto_pool_health]
    @task
    def pool_health() -> dict[str, Any]:
        hook = AsyncPostgresHook(PG, pool_options={**SMALL_POOL, "acquire_timeout": 5})

        async def under_load() -> tuple[dict[str, Any], list[tuple[str, int]]]:
            async with hook.pool() as pool:

                async def work() -> None:
                    await pool.execute("SELECT pg_sleep(0.02)")

                await asyncio.gather(*(work() for _ in range(60)))
                rows = await pool.fetch(
                    "SELECT coalesce(state, 'unknown') AS state, count(*) AS n FROM pg_stat_activity"
                    " WHERE application_name = $1 GROUP BY 1 ORDER BY 1",
                    pool.config.application_name,
                )
                return pool.stats(), [(r["state"], r["n"]) for r in rows]

        stats, server = asyncio.run(under_load())
        warnings = []
        if stats["exhausted"]:
            warnings.append("exhausted: raise pool_max_size or lower concurrency")
        if stats["acquire_ms_max"] > 1000 * 0.5 * 5:
            warnings.append("slow acquires: the pool is too small for this load")
        print(
            f"pool {stats['name']}: size {stats['size']}/{stats['max_size']}, idle {stats['idle']}, "
            f"in use {stats['in_use']}, waiting {stats['waiting']}, {stats['acquires']} acquires, "
            f"acquire avg {stats['acquire_ms_avg']} ms max {stats['acquire_ms_max']} ms; server: {server}; "
            f"{'; '.join(warnings) or 'healthy'}"
        )
        assert stats["size"] <= 3 and stats["acquires"] == 61 and stats["exhausted"] == 0, stats
        assert stats["acquire_ms_max"] > 0, "60 callers on 3 connections had to wait their turn"
        assert sum(n for _, n in server) == stats["size"], (server, stats)
        return {"stats": stats, "server": server, "warnings": warnings}

    # [END howto_pool_health]

    pool_configuration() >> connection_reuse() >> pool_exhaustion() >> cleanup_patterns() >> pool_health()


if __name__ == "__main__":
    dag.test()
