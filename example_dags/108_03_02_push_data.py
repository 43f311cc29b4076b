"""
# Push data to external systems

Loading is where integrations do damage: a retried task that posts twice creates duplicate orders, a
half-loaded batch leaves a table inconsistent, a row-by-row loop takes hours. Each section below shows
the safe way, with a task that checks the outcome.

## API data posting

A `POST` is not idempotent, and Airflow *will* retry it (a timeout after the partner processed the
request looks like a failure). Send an **idempotency key**, stable across retries of the same unit of
work, and the partner answers a repeat with the stored response instead of processing it again.
`post_to_api` posts the orders in batches of 100, each with the key `<run>-orders-<batch>`, then
re-sends one batch as a retry would: the sandbox's `/echo` replays the first response (same
`request_id`, `replayed: true`). Re-using a key for a *different* body is refused with 422.
`HttpRequestOperator` sends a key derived from the task instance automatically (`post_summary`).

## Database inserts

`PostgresBulkLoadOperator` loads rows with COPY, in one statement: all rows or none. Rows come from an
upstream task's XCom (`rows=extract_orders.output`), a file (`path=`), or `upstream_task_id=`. A rejected
row fails the task without retries and names the row and column (see `108_02_02` and the tests).
For a handful of rows, `SQLExecuteQueryOperator` with bound parameters is enough (`sql_upsert`).

## File uploads

`export_file` writes the returns to a CSV file; `load_file` loads it into the table (the header names
the columns, the server parses the values), and `upload_file` sends the same file to the partner with
its SHA-256 as idempotency key and checks the size and checksum the partner received.

## Batch vs streaming

`batch_vs_streaming` loads the same 2,000 events three ways: one `INSERT` per event (streaming: lowest
latency per event, one round trip each), micro-batches of 500 (a streaming consumer that flushes a buffer
by size or age), and one COPY (batch: highest throughput, data waits for the batch). It prints rows/s
for each, and does the same for the API: 20 single-record `POST`s against one batch `POST` of 20.
Choose by the latency the consumer needs; batch whenever it tolerates minutes.

## Upsert patterns

An upsert inserts new keys and updates existing ones: `mode="upsert", keys=["id"]` COPYs the rows into a
temporary table and merges them with `INSERT ... ON CONFLICT (id) DO UPDATE` in one transaction, and
rows whose values did not change are not rewritten. So a re-run (Airflow retry, backfill) is safe:
`upsert_changes` reports 50 inserted and 50 updated, `upsert_rerun` the same rows as unchanged.
`verify_upserts` and `check_totals` (`SQLCheckOperator`) check the table.

Tables are per run (`push_orders_<hash of run_id>`) and dropped by a teardown task.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import shutil
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from airflow.providers.common.sql.operators.sql import SQLCheckOperator, SQLExecuteQueryOperator
from airflow.sdk import DAG, get_current_context, task

from airflow_provider_integrations.hooks.http import IntegrationHttpHook
from airflow_provider_integrations.hooks.postgres import AsyncPostgresHook
from airflow_provider_integrations.http.errors import ClientRequestError
from airflow_provider_integrations.operators.http import HttpRequestOperator
from airflow_provider_integrations.operators.postgres import PostgresBulkLoadOperator
from airflow_provider_integrations.postgres.bulk import copy_records

REQUIRES = ["postgresql"]
PG, API = "integrations_pg", "sandbox_api"
COLUMNS = ["id", "customer", "amount", "ordered_on"]


def run_suffix(run_id: str) -> str:
    return hashlib.sha1(run_id.encode()).hexdigest()[:10]


def current_suffix() -> str:
    return run_suffix(get_current_context()["run_id"])


def order(n: int, bump: int = 0) -> dict[str, Any]:
    return {
        "id": n,
        "customer": f"c{n % 17:02d}",
        "amount": str(Decimal(n % 50 + 1 + bump) + Decimal("0.99")),
        "ordered_on": (date(2026, 1, 1) + timedelta(days=n % 28)).isoformat(),
    }


ORDERS = "push_orders_{{ run_id | run_suffix }}"

with DAG(
    dag_id="108_03_02_push_data",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["reference", "patterns", "intermediate", "success"],
    doc_md=__doc__,
    user_defined_filters={"run_suffix": run_suffix},
) as dag:
    create_table = SQLExecuteQueryOperator(
        task_id="create_table",
        conn_id=PG,
        sql=f"CREATE TABLE {ORDERS} (id int PRIMARY KEY, customer text NOT NULL,"
        " amount numeric(10,2) NOT NULL CHECK (amount > 0), ordered_on date)",
    )

    @task
    def extract_orders() -> list[dict[str, Any]]:
        return [order(n) for n in range(1, 301)]

    @task
    def extract_changes() -> list[dict[str, Any]]:
        # 251-300 exist (new amounts), 301-350 are new.
        return [order(n, bump=5) for n in range(251, 351)]

    orders = extract_orders()

    # [START howto_post_with_idempotency_keys]
    @task
    def post_to_api(records: list[dict[str, Any]]) -> dict[str, Any]:
        hook, suffix = IntegrationHttpHook(API), current_suffix()
        batches = [records[i : i + 100] for i in range(0, len(records), 100)]
        first = []
        for number, batch in enumerate(batches):
            sent = hook.request(
                "POST", "/echo/orders", json=batch, idempotency_key=f"{suffix}-orders-{number}"
            )
            first.append(sent.json())
        assert all(doc["json"] == batch for doc, batch in zip(first, batches, strict=True))

        # A retry of batch 0 (same key, same body) is answered from the partner's store.
        again = hook.request(
            "POST", "/echo/orders", json=batches[0], idempotency_key=f"{suffix}-orders-0"
        ).json()
        assert again["replayed"] is True and again["request_id"] == first[0]["request_id"], again

        # The same key with another body is a bug on our side; the partner refuses it.
        try:
            hook.request("POST", "/echo/orders", json=batches[1], idempotency_key=f"{suffix}-orders-0")
        except ClientRequestError as exc:
            refused = f"{exc.status}"
        else:
            raise AssertionError("a reused key with a different body must be refused")
        assert refused == "422"
        return {"batches": len(batches), "replayed": again["replayed"], "reused_key": refused}

    post_summary = HttpRequestOperator(
        task_id="post_summary",
        integration_http_conn_id=API,
        method="POST",
        endpoint="/echo/summaries",
        json={"run": "{{ run_id }}", "orders": 300},
        response_filter="{key: idempotency_key, body: json}",
    )
    # [END howto_post_with_idempotency_keys]

    # [START howto_bulk_insert_and_upsert]
    insert_orders = PostgresBulkLoadOperator(
        task_id="insert_orders", postgres_conn_id=PG, table=ORDERS, columns=COLUMNS, rows=orders
    )
    upsert_changes = PostgresBulkLoadOperator(
        task_id="upsert_changes",
        postgres_conn_id=PG,
        table=ORDERS,
        columns=COLUMNS,
        mode="upsert",
        keys=["id"],
        upstream_task_id="extract_changes",
    )
    upsert_rerun = PostgresBulkLoadOperator(
        task_id="upsert_rerun",
        postgres_conn_id=PG,
        table=ORDERS,
        columns=COLUMNS,
        mode="upsert",
        keys=["id"],
        upstream_task_id="extract_changes",
    )
    # [END howto_bulk_insert_and_upsert]

    @task
    def verify_upserts(inserted: dict[str, int], changed: dict[str, int], rerun: dict[str, int]) -> None:
        assert inserted == {"inserted": 300, "updated": 0, "unchanged": 0}, inserted
        assert changed == {"inserted": 50, "updated": 50, "unchanged": 0}, changed
        assert rerun == {"inserted": 0, "updated": 0, "unchanged": 100}, "a re-run changes nothing"
        amount = AsyncPostgresHook(PG).fetchval(
            f"SELECT amount FROM push_orders_{current_suffix()} WHERE id = 260"
        )
        assert amount == Decimal(order(260, bump=5)["amount"]), amount

    # [START howto_sql_upsert]
    sql_upsert = SQLExecuteQueryOperator(
        task_id="sql_upsert",
        conn_id=PG,
        sql=f"INSERT INTO {ORDERS} (id, customer, amount) VALUES (%(id)s, %(customer)s, %(amount)s)"
        " ON CONFLICT (id) DO UPDATE SET amount = EXCLUDED.amount",
        parameters={"id": 1, "customer": "c01", "amount": "99.00"},
    )
    # [END howto_sql_upsert]

    # [START howto_file_load_and_upload]
    @task
    def export_file() -> dict[str, Any]:
        folder = Path(tempfile.gettempdir()) / f"push_data_{current_suffix()}"
        folder.mkdir(exist_ok=True)
        path = folder / "returns.csv"
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(order(n) for n in range(351, 551))
        return {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}

    exported = export_file()

    load_file = PostgresBulkLoadOperator(
        task_id="load_file",
        postgres_conn_id=PG,
        table=ORDERS,
        columns=COLUMNS,
        mode="upsert",
        keys=["id"],
        path="{{ ti.xcom_pull(task_ids='export_file')['path'] }}",
    )

    @task
    def upload_file(exported: dict[str, Any]) -> dict[str, Any]:
        body = Path(exported["path"]).read_bytes()
        hook = IntegrationHttpHook(API)
        received = hook.request(
            "POST",
            "/echo/uploads/returns.csv",
            data=body,
            headers={"Content-Type": "text/csv"},
            idempotency_key=f"file-{exported['sha256'][:32]}",
        ).json()
        assert received["body_size"] == len(body) and received["body_sha256"] == exported["sha256"], received
        return {"bytes": received["body_size"], "sha256": received["body_sha256"]}

    @task
    def remove_file(exported: dict[str, Any]) -> None:
        shutil.rmtree(Path(exported["path"]).parent, ignore_errors=True)

    # [END howto_file_load_and_upload]

    # [START howto_batch_vs_streaming]
    @task
    def batch_vs_streaming() -> dict[str, Any]:
        events = [(n, f"event-{n}", Decimal(n % 97) + 1) for n in range(1, 2001)]
        hook, table = AsyncPostgresHook(PG), f"push_events_{current_suffix()}"
        ddl = f"CREATE TABLE IF NOT EXISTS {table} (id int PRIMARY KEY, kind text, amount numeric(10,2))"

        async def run() -> dict[str, float]:
            rates = {}
            async with hook.pool() as pool:
                await pool.execute(ddl)
                await pool.execute(f"TRUNCATE {table}")
                t0 = time.perf_counter()
                for event in events:  # streaming: one statement (one round trip) per event
                    await pool.execute(f"INSERT INTO {table} VALUES ($1, $2, $3)", *event)
                rates["streaming"] = len(events) / (time.perf_counter() - t0)

                await pool.execute(f"TRUNCATE {table}")
                t0 = time.perf_counter()
                buffer: list[tuple[Any, ...]] = []
                for event in events:  # a consumer that flushes every 500 events
                    buffer.append(event)
                    if len(buffer) == 500:
                        await copy_records(pool, table, ["id", "kind", "amount"], buffer)
                        buffer = []
                rates["micro_batch"] = len(events) / (time.perf_counter() - t0)

                await pool.execute(f"TRUNCATE {table}")
                t0 = time.perf_counter()
                await copy_records(pool, table, ["id", "kind", "amount"], events)  # batch: one COPY
                rates["batch"] = len(events) / (time.perf_counter() - t0)
                assert await pool.fetchval(f"SELECT count(*) FROM {table}") == len(events)
            return rates

        rates = asyncio.run(run())

        api, records = IntegrationHttpHook(API), [order(n) for n in range(1, 21)]
        t0 = time.perf_counter()
        for record in records:
            api.request("POST", "/echo/events", json=record, idempotency_key=None)
        single = time.perf_counter() - t0
        t0 = time.perf_counter()
        api.request("POST", "/echo/events/batch", json=records, idempotency_key=None)
        batched = time.perf_counter() - t0
        print(
            "database rows/s: "
            + ", ".join(f"{name} {rate:,.0f}" for name, rate in rates.items())
            + f"; API: 20 single POSTs {single * 1000:.0f} ms vs one batch POST {batched * 1000:.0f} ms"
        )
        assert rates["batch"] > rates["streaming"] and rates["micro_batch"] > rates["streaming"], rates
        assert batched < single, (batched, single)
        return {
            "rows_per_s": {k: round(v) for k, v in rates.items()},
            "api_ms": [single * 1000, batched * 1000],
        }

    # [END howto_batch_vs_streaming]

    check_totals = SQLCheckOperator(
        task_id="check_totals",
        conn_id=PG,
        sql=f"SELECT count(*) = 550, min(amount) > 0, max(id) = 550,"
        f" (SELECT amount FROM {ORDERS} WHERE id = 1) = 99.00 FROM {ORDERS}",
    )

    drop_tables = SQLExecuteQueryOperator(
        task_id="drop_tables",
        conn_id=PG,
        sql=[f"DROP TABLE IF EXISTS {ORDERS}", "DROP TABLE IF EXISTS push_events_{{ run_id | run_suffix }}"],
    )

    changes = extract_changes()
    verified = verify_upserts(insert_orders.output, upsert_changes.output, upsert_rerun.output)
    create_table >> insert_orders >> changes >> upsert_changes >> upsert_rerun >> verified
    verified >> sql_upsert >> load_file >> check_totals
    exported >> load_file
    [load_file, upload_file(exported)] >> remove_file(exported).as_teardown(setups=exported)
    post_to_api(orders) >> post_summary
    streaming = batch_vs_streaming()
    [check_totals, streaming] >> drop_tables.as_teardown(setups=create_table)


if __name__ == "__main__":
    dag.test()
