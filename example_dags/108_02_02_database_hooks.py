"""
# Database hooks

A database hook turns an Airflow connection into a database session. The official providers give one
hook per database, all sharing the common-sql API (`DbApiHook`); this provider adds an asyncio hook for
PostgreSQL. Every hook here reads the **same** connections: `integrations_pg` (type `postgres`) and
`integrations_mysql` (type `mysql`), so credentials live in one place.

## PostgresHook usage

`PostgresHook(postgres_conn_id=...)` (apache-airflow-providers-postgres, psycopg 3 when installed)
exposes the common-sql methods: `run()` for statements, `get_records()` / `get_first()` for queries,
`insert_rows()` for small inserts, `bulk_load()` / `copy_expert()` for COPY. Parameters are bound by the
driver (`%s` placeholders), never pasted into the SQL. `postgres_hook_usage` inserts, queries with
parameters and reads the server version.

## MySqlHook usage

`MySqlHook(mysql_conn_id=...)` has the same methods (mysqlclient underneath), so code moves between
databases by changing the hook and the SQL dialect. `mysql_hook_usage` does the same work on MariaDB.

## SQLAlchemy integration

`hook.get_sqlalchemy_engine(engine_kwargs=...)` builds an engine from the connection (the URL comes from
`hook.sqlalchemy_url`, password included but hidden in `repr`). Use it for libraries that want an engine
(pandas, ORMs) and for sync pooling: the engine's `QueuePool` keeps connections between statements.
`engine.begin()` is a transaction block. `sqlalchemy_integration` uses both engines and disposes of them
when done (an engine left open keeps its connections until the process exits).

## Connection pooling

`PostgresHook` and `MySqlHook` open a **new** connection for every `get_records()` / `run()` call and
close it afterwards; `connection_pooling` shows two calls landing on two server backends. An SQLAlchemy
engine or `AsyncPostgresHook` reuse one: the same backend answers every statement. Pool sizing,
exhaustion and health are the subject of `108_02_05_connection_pooling`.

## Async hook

`AsyncPostgresHook` (this provider) reads the same `postgres` connection and runs queries on a shared
asyncpg pool: `async with hook.pool() as pool` in async code (triggers), `hook.fetch()` /
`hook.fetchval()` / `hook.execute()` in tasks. Its `test_connection()` diagnoses the connection layer by
layer (DNS, TCP, authentication, database, server version, SSL) in one line. The UI's **Test** button
for a `postgres` connection runs `PostgresHook.test_connection()` (a `SELECT 1`), because the
connection type belongs to the postgres provider; call the async hook's test from a task, as
`async_hook_usage` does. Pool settings go into `pool_options=` when the connection is shared with
`PostgresHook`, since libpq rejects extras it does not know.

## Transaction handling

- `hook.run([...])` runs its statements in one transaction: committed after the last, rolled back if
  one fails (`autocommit=False`, the default);
- a raw DB-API connection (`hook.get_conn()`) is committed or rolled back by you, and closed in `finally`;
- `engine.begin()` commits on success and rolls back on an exception;
- `run_in_transaction(pool, fn)` (async) re-runs `fn` after a serialization failure or deadlock, and
  `savepoint(conn)` undoes part of a transaction.

`transactions` makes each of them fail half-way and checks that nothing of the failed unit was kept.

## common-sql operators

`SQLExecuteQueryOperator` and `SQLCheckOperator` work with the same connections (`conn_id=`): the tables
are created with the first, and the results checked with the second (it fails when any value of the
first row is false). The tables are per run (`hooks_demo_<hash of run_id>`) and dropped by a teardown task.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from airflow.providers.common.sql.operators.sql import SQLCheckOperator, SQLExecuteQueryOperator
from airflow.providers.mysql.hooks.mysql import MySqlHook
from airflow.providers.postgres.hooks.postgres import PostgresHook
from airflow.sdk import DAG, get_current_context, task

from airflow_provider_integrations.hooks.postgres import AsyncPostgresHook
from airflow_provider_integrations.postgres.errors import PgDataError
from airflow_provider_integrations.postgres.tx import run_in_transaction, savepoint

REQUIRES = ["postgresql", "mariadb"]
PG, MYSQL = "integrations_pg", "integrations_mysql"
ROWS = [(1, "ada", Decimal("10.50")), (2, "bob", Decimal("7.25")), (3, "cy", Decimal("3.00"))]


def run_suffix(run_id: str) -> str:
    return hashlib.sha1(run_id.encode()).hexdigest()[:10]


def demo_table() -> str:
    return f"hooks_demo_{run_suffix(get_current_context()['run_id'])}"


TABLE = "hooks_demo_{{ run_id | run_suffix }}"
DDL = f"CREATE TABLE {TABLE} (id int PRIMARY KEY, name varchar(40) NOT NULL, amount numeric(10,2))"

with DAG(
    dag_id="108_02_02_database_hooks",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["reference", "core", "intermediate", "success"],
    doc_md=__doc__,
    user_defined_filters={"run_suffix": run_suffix},
) as dag:
    # [START howto_common_sql_execute]
    create_pg = SQLExecuteQueryOperator(task_id="create_pg_table", conn_id=PG, sql=DDL)
    create_mysql = SQLExecuteQueryOperator(task_id="create_mysql_table", conn_id=MYSQL, sql=DDL)
    # [END howto_common_sql_execute]

    # [START howto_postgres_hook]
    @task
    def postgres_hook_usage() -> dict[str, Any]:
        hook = PostgresHook(postgres_conn_id=PG)
        table = demo_table()
        hook.insert_rows(table, ROWS, target_fields=["id", "name", "amount"])
        rows = hook.get_records(f"SELECT id, name FROM {table} WHERE amount > %s ORDER BY id", parameters=[5])
        assert [tuple(r) for r in rows] == [(1, "ada"), (2, "bob")], rows
        (total,) = hook.get_first(f"SELECT sum(amount) FROM {table}")
        assert total == Decimal("20.75"), total
        version = hook.get_first("SHOW server_version")[0]
        return {"rows": len(rows), "total": str(total), "server": f"PostgreSQL {version.split()[0]}"}

    # [END howto_postgres_hook]

    # [START howto_mysql_hook]
    @task
    def mysql_hook_usage() -> dict[str, Any]:
        hook = MySqlHook(mysql_conn_id=MYSQL)
        table = demo_table()
        hook.insert_rows(table, ROWS, target_fields=["id", "name", "amount"])
        rows = hook.get_records(f"SELECT id, name FROM {table} WHERE amount > %s ORDER BY id", parameters=[5])
        assert [tuple(r) for r in rows] == [(1, "ada"), (2, "bob")], rows
        (total,) = hook.get_first(f"SELECT sum(amount) FROM {table}")
        assert total == Decimal("20.75"), total
        return {"rows": len(rows), "total": str(total), "server": hook.get_first("SELECT version()")[0]}

    # [END howto_mysql_hook]

    # [START howto_sqlalchemy_engine]
    @task
    def sqlalchemy_integration() -> dict[str, Any]:
        import sqlalchemy as sa

        table, totals = demo_table(), {}
        for name, hook in (
            ("postgres", PostgresHook(postgres_conn_id=PG)),
            ("mysql", MySqlHook(mysql_conn_id=MYSQL)),
        ):
            engine = hook.get_sqlalchemy_engine(
                engine_kwargs={"pool_size": 2, "max_overflow": 0, "pool_pre_ping": True}
            )
            try:
                with engine.begin() as conn:  # one transaction, committed at the end of the block
                    conn.execute(
                        sa.text(f"INSERT INTO {table} (id, name, amount) VALUES (:id, :name, :amount)"),
                        [{"id": 10, "name": "sqlalchemy", "amount": Decimal("1.25")}],
                    )
                with engine.connect() as conn:
                    totals[name] = str(conn.execute(sa.text(f"SELECT sum(amount) FROM {table}")).scalar_one())
                print(
                    f"{name}: {engine.url.render_as_string(hide_password=True)} pool={engine.pool.status()}"
                )
            finally:
                engine.dispose()  # close the pooled connections now, not at interpreter exit
        assert totals == {"postgres": "22.00", "mysql": "22.00"}, totals
        return totals

    # [END howto_sqlalchemy_engine]

    # [START howto_hook_connection_reuse]
    @task
    def connection_pooling() -> dict[str, int]:
        pid_sql = "SELECT pg_backend_pid()"
        hook = PostgresHook(postgres_conn_id=PG)
        per_call = {hook.get_first(pid_sql)[0] for _ in range(3)}

        engine = hook.get_sqlalchemy_engine(engine_kwargs={"pool_size": 1, "max_overflow": 0})
        try:
            import sqlalchemy as sa

            pooled_sync = set()
            for _ in range(3):
                with engine.connect() as conn:
                    pooled_sync.add(conn.execute(sa.text(pid_sql)).scalar_one())
        finally:
            engine.dispose()

        async def pooled() -> set[int]:
            async with AsyncPostgresHook(PG, pool_options={"pool_max_size": 1}).pool() as pool:
                return {await pool.fetchval(pid_sql) for _ in range(3)}

        pooled_async = asyncio.run(pooled())
        print(
            f"backends used for 3 statements: PostgresHook {len(per_call)}, SQLAlchemy engine "
            f"{len(pooled_sync)}, AsyncPostgresHook {len(pooled_async)}"
        )
        assert len(per_call) == 3, "PostgresHook connects for every call"
        assert len(pooled_sync) == 1 and len(pooled_async) == 1, "pools reuse their connection"
        return {
            "postgres_hook": len(per_call),
            "sqlalchemy": len(pooled_sync),
            "async_hook": len(pooled_async),
        }

    # [END howto_hook_connection_reuse]

    # [START howto_async_hook]
    @task
    def async_hook_usage() -> dict[str, Any]:
        hook = AsyncPostgresHook(PG)
        ok, diagnosis = hook.test_connection()
        print(diagnosis)
        assert ok and "database (test exists)" in diagnosis, diagnosis
        table = demo_table()

        async def summarize() -> dict[str, Any]:
            async with hook.pool() as pool:
                # Independent queries run concurrently on the pool's connections.
                count, names = await asyncio.gather(
                    pool.fetchval(f"SELECT count(*) FROM {table}"),
                    pool.fetch(f"SELECT name FROM {table} WHERE amount >= $1 ORDER BY id", Decimal("5")),
                )
                return {"count": count, "names": [r["name"] for r in names], "pool": pool.stats()}

        summary = asyncio.run(summarize())
        assert summary["names"] == ["ada", "bob"], summary
        # The sync conveniences run the same code on the provider's background loop.
        assert hook.fetchval(f"SELECT count(*) FROM {table}") == summary["count"]
        return {"diagnosis": diagnosis, **summary}

    # [END howto_async_hook]

    # [START howto_transactions]
    @task
    def transactions() -> dict[str, str]:
        table, outcome = demo_table(), {}
        pg = PostgresHook(postgres_conn_id=PG)

        def count(hook: Any) -> int:
            return int(hook.get_first(f"SELECT count(*) FROM {table}")[0])

        # 1. run(): all statements or none.
        before = count(pg)
        try:
            pg.run(
                [f"INSERT INTO {table} VALUES (20, 'kept?', 1)", f"INSERT INTO {table} VALUES (20, 'dup', 1)"]
            )
        except Exception as exc:
            outcome["run"] = f"rolled back: {type(exc).__name__}"
        assert count(pg) == before, "the first INSERT was rolled back with the second"

        # 2. A raw DB-API connection on MariaDB: commit or rollback is yours.
        mysql = MySqlHook(mysql_conn_id=MYSQL)
        before = count(mysql)
        conn = mysql.get_conn()
        try:
            cur = conn.cursor()
            cur.execute(f"INSERT INTO {table} VALUES (21, 'half', 1)")
            cur.execute(f"INSERT INTO {table} VALUES (21, 'duplicate', 1)")
            conn.commit()
        except Exception as exc:
            conn.rollback()
            outcome["dbapi"] = f"rolled back: {type(exc).__name__}"
        finally:
            conn.close()
        assert count(mysql) == before

        # 3. Async: a savepoint undoes one step, the transaction goes on; run_in_transaction retries
        #    serialization failures and deadlocks.
        async def transfer(db: Any) -> str:
            await db.execute(f"UPDATE {table} SET amount = amount - 1 WHERE id = 1")
            try:
                async with savepoint(db):
                    await db.execute(f"INSERT INTO {table} VALUES (1, 'duplicate key', 0)")
            except Exception as exc:
                return f"savepoint rolled back ({type(exc).__name__}), update kept"
            return "no error"

        async def main() -> str:
            async with AsyncPostgresHook(PG).pool() as pool:
                return await run_in_transaction(pool, transfer, isolation="serializable")

        outcome["savepoint"] = asyncio.run(main())
        assert pg.get_first(f"SELECT amount FROM {table} WHERE id = 1")[0] == Decimal("9.50")
        assert PgDataError.__name__ in outcome["savepoint"], outcome  # unique violation: class 23
        print(outcome)
        return outcome

    # [END howto_transactions]

    # [START howto_sql_check]
    check_pg = SQLCheckOperator(
        task_id="check_postgres",
        conn_id=PG,
        sql=f"SELECT count(*) = 4, sum(amount) = 21.00 FROM {TABLE}",
    )
    check_mysql = SQLCheckOperator(
        task_id="check_mysql",
        conn_id=MYSQL,
        sql=f"SELECT count(*) = 4, sum(amount) = 22.00 FROM {TABLE}",
    )
    # [END howto_sql_check]

    drop_pg = SQLExecuteQueryOperator(
        task_id="drop_pg_table", conn_id=PG, sql=f"DROP TABLE IF EXISTS {TABLE}"
    )
    drop_mysql = SQLExecuteQueryOperator(
        task_id="drop_mysql_table", conn_id=MYSQL, sql=f"DROP TABLE IF EXISTS {TABLE}"
    )

    pg_work = postgres_hook_usage()
    mysql_work = mysql_hook_usage()
    engines = sqlalchemy_integration()
    tx = transactions()
    create_pg >> pg_work
    create_mysql >> mysql_work
    (
        [pg_work, mysql_work]
        >> engines
        >> [connection_pooling(), async_hook_usage()]
        >> tx
        >> [check_pg, check_mysql]
    )
    check_pg >> drop_pg.as_teardown(setups=create_pg)
    check_mysql >> drop_mysql.as_teardown(setups=create_mysql)


if __name__ == "__main__":
    dag.test()
