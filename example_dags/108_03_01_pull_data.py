"""
# Pull data from external systems

Extraction is where most integration DAGs start, and where quiet data loss happens: a page skipped when
the partner's data shifts, a truncated file loaded as if it were complete, a full re-read every night
because nobody kept a watermark. Each section below extracts from the sandbox partner (or PostgreSQL)
and a task checks that *all* the data arrived, and only once.

## API data extraction

`extract_api` is a plain `HttpRequestOperator` with a `pagination` spec: every page of the partner's
collection is fetched through the connection's session, retries and rate limit, and the items of all
pages go to XCom as one list. `response_schema` checks each page against the API contract, so a renamed
field fails the task instead of loading nulls.

## Pagination handling

Partners paginate in four styles (link header, cursor, offset, page number); each is a strategy object
(`http/pagination.py`) that decides the next request from the current page, and stops with a
`PaginationError` if a buggy partner sends the same "next" twice. `extract_pages` walks a link-header
collection page by page with `api.paginate` and writes each page to a JSONL file as it arrives, so
memory stays flat however large the collection is. `verify_api` checks both extractions: 95 items, ids
1..95, no duplicates.

## Database queries

`query_database` reads a 5,000-row table through `AsyncPostgresHook` (one asyncpg pool) in keyset
batches, `WHERE id > $1 ORDER BY id LIMIT 1000`, with bound parameters: unlike `OFFSET`, each batch is an
index range scan, and rows inserted during the read cannot shift the batches. A second query aggregates
on the server instead of pulling rows to the worker.

## File downloads

`download_file` streams an 8 MB export to disk with `IntegrationHttpHook.download`: chunks of 256 KiB
(memory does not grow with the file), into `export.bin.part`, renamed into place only after the size
and the SHA-256 from the partner's manifest match. The sandbox drops the connection after 3 MB, once:
the hook resumes with `Range: bytes=<on disk>-` and `If-Range: <ETag>` and fetches only the rest; had
the file changed in between, the server would send it whole and the download would start over rather
than splice two versions. A partial file survives a failed try, so an Airflow retry resumes too.

## Incremental extraction

Re-reading everything every run does not scale. `extract_incremental` keeps a **watermark**, the largest
`updated_at` it has loaded, in the **asset state store** of the `partner_orders` asset (Airflow 3.3):
state that belongs to the data, not to a task instance or a run, and that survives across runs. Each
run asks the partner only for `updated_since=<watermark>` (cursor-paginated), stores what it got, and
only then advances the watermark, so a failed load re-reads rather than skips (at-least-once; make the
load an upsert). The DAG proves it: `partner_activity` creates 25 orders, the first extraction picks
them up, then 5 new orders and 2 updates arrive, and the second extraction fetches exactly those 7.
The first extraction of the very first run has no watermark and reads everything.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Asset, get_current_context, task

from airflow_provider_integrations.hooks.http import IntegrationHttpHook
from airflow_provider_integrations.hooks.postgres import AsyncPostgresHook
from airflow_provider_integrations.http.pagination import CursorPaginator, LinkHeaderPaginator
from airflow_provider_integrations.operators.http import HttpRequestOperator

REQUIRES = ["postgresql"]
API, PG = "sandbox_api", "integrations_pg"
TOTAL_ITEMS, SOURCE_ROWS, BATCH = 95, 5000, 1000
FILE_SIZE, DROP_AFTER = 8_000_000, 3_000_000
ORDERS = Asset(name="partner_orders", uri="sandbox://records/partner-orders")
DATASET = "partner-orders"  # the partner's collection behind the asset

ITEM_PAGE_SCHEMA = {
    "type": "object",
    "required": ["data", "meta"],
    "properties": {
        "data": {"type": "array", "items": {"type": "object", "required": ["id", "name", "value"]}},
    },
}


def run_folder() -> Path:
    """A scratch folder per run (a shared volume or object store in a deployment)."""
    run_id = get_current_context()["run_id"]
    folder = Path(tempfile.gettempdir()) / f"pull_data_{hashlib.sha1(run_id.encode()).hexdigest()[:10]}"
    folder.mkdir(exist_ok=True)
    return folder


def source_table() -> str:
    return f"pull_source_{run_folder().name.rsplit('_', 1)[1]}"


with DAG(
    dag_id="108_03_01_pull_data",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["reference", "patterns", "intermediate", "success"],
    doc_md=__doc__,
) as dag:
    # [START howto_extract_api_with_pagination]
    extract_api = HttpRequestOperator(
        task_id="extract_api",
        integration_http_conn_id=API,
        endpoint="/pages/cursor",
        query={"total": TOTAL_ITEMS, "limit": 20},
        pagination={"type": "cursor", "cursor_path": "meta.next_cursor", "items_path": "data"},
        response_schema=ITEM_PAGE_SCHEMA,
    )
    # [END howto_extract_api_with_pagination]

    # [START howto_paginate_page_by_page]
    @task
    def extract_pages() -> dict[str, Any]:
        hook, out = IntegrationHttpHook(API), run_folder() / "items.jsonl"

        async def walk() -> int:
            paginator = LinkHeaderPaginator()
            async with hook.client() as api:
                with out.open("w") as f:
                    async for page in api.paginate(
                        paginator, "/pages/link", params={"total": TOTAL_ITEMS, "per_page": 25}
                    ):
                        f.writelines(json.dumps(item) + "\n" for item in paginator.items(page))
            return paginator.pages

        pages = asyncio.run(walk())
        return {"path": str(out), "pages": pages}

    # [END howto_paginate_page_by_page]

    @task
    def verify_api(items: list[dict[str, Any]], pages: dict[str, Any]) -> dict[str, int]:
        from_file = [json.loads(line) for line in Path(pages["path"]).read_text().splitlines()]
        for name, got in (("extract_api", items), ("extract_pages", from_file)):
            ids = [item["id"] for item in got]
            assert ids == list(range(1, TOTAL_ITEMS + 1)), f"{name}: missing or repeated items: {ids}"
        assert pages["pages"] == 4, pages  # 95 items, 25 per page
        return {"items": len(items), "file_items": len(from_file)}

    # [START howto_query_database_in_batches]
    @task
    def create_source() -> None:
        AsyncPostgresHook(PG).execute(
            f"CREATE TABLE {source_table()} AS SELECT g AS id, 'customer-' || (g % 37) AS customer,"
            f" (g % 500) * 1.5 AS amount FROM generate_series(1, {SOURCE_ROWS}) AS g"
        )

    @task
    def query_database() -> dict[str, Any]:
        hook, table = AsyncPostgresHook(PG), source_table()

        async def extract() -> dict[str, Any]:
            rows: list[dict[str, Any]] = []
            queries, last_id = 0, 0
            async with hook.pool() as pool:
                while True:
                    batch = await pool.fetch(
                        f"SELECT id, customer, amount FROM {table} WHERE id > $1 ORDER BY id LIMIT $2",
                        last_id,
                        BATCH,
                    )
                    queries += 1
                    rows.extend(dict(r) for r in batch)
                    if len(batch) < BATCH:
                        break
                    last_id = batch[-1]["id"]
                top = await pool.fetch(
                    f"SELECT customer, sum(amount) AS total FROM {table} GROUP BY customer"
                    " ORDER BY total DESC, customer LIMIT $1",
                    3,
                )
            leaders = [(r["customer"], float(r["total"])) for r in top]
            return {"rows": rows, "queries": queries, "top": leaders}

        got = asyncio.run(extract())
        ids = [r["id"] for r in got["rows"]]
        assert ids == list(range(1, SOURCE_ROWS + 1)), "every row once, in key order"
        assert got["queries"] == SOURCE_ROWS // BATCH + 1, got["queries"]  # the last, empty batch ends it
        expected_total = sum((g % 500) * 1.5 for g in range(1, SOURCE_ROWS + 1))
        assert abs(sum(float(r["amount"]) for r in got["rows"]) - expected_total) < 1e-6
        print(f"{len(ids)} rows in {got['queries']} keyset queries; top customers: {got['top']}")
        return {"rows": len(ids), "queries": got["queries"], "top": got["top"]}

    @task
    def drop_source() -> None:
        AsyncPostgresHook(PG).execute(f"DROP TABLE IF EXISTS {source_table()}")

    # [END howto_query_database_in_batches]

    # [START howto_download_file_with_resume]
    @task
    def download_file() -> dict[str, Any]:
        hook, folder = IntegrationHttpHook(API), run_folder()
        key = folder.name  # the sandbox drops the connection once per key
        manifest = hook.request("GET", "/files/export.bin/manifest", params={"size": FILE_SIZE}).json()
        result = hook.download(
            "/files/export.bin",
            folder / "export.bin",
            params={"size": FILE_SIZE, "key": key, "cut_after": DROP_AFTER},
            checksum=f"sha256:{manifest['sha256']}",
            expected_size=manifest["size"],
        )
        print(
            f"{result.size:,} bytes in {result.requests} requests, resumed at {result.resumed_at}, "
            f"{result.seconds:.2f} s, {result.digest}"
        )
        assert result.requests == 2 and len(result.resumed_at) == 1, result
        assert 0 < result.resumed_at[0] <= DROP_AFTER, "the second request fetched only the rest"
        assert not (folder / "export.bin.part").exists()
        assert hashlib.sha256((folder / "export.bin").read_bytes()).hexdigest() == manifest["sha256"]
        return result.as_dict()

    # [END howto_download_file_with_resume]

    # [START howto_incremental_extraction]
    @task
    def partner_activity() -> list[int]:
        """Stand-in for the partner's users: 25 new orders since the last run."""
        doc = IntegrationHttpHook(API).request("POST", f"/records/{DATASET}", json={"new": 25}).json()
        return list(doc["created"])

    def extract_incremental(task_id: str) -> Any:
        @task(task_id=task_id, outlets=[ORDERS])
        def extract(**context: Any) -> dict[str, Any]:
            state = context["asset_state_store"][ORDERS]
            watermark = state.get("watermark")
            paginator = CursorPaginator("meta.next_cursor", items_path="data")
            params = {"limit": 10} | ({"updated_since": watermark} if watermark else {})
            pages = IntegrationHttpHook(API).paginate(paginator, f"/records/{DATASET}", params=params)
            records = [item for page in pages for item in paginator.items(page)]

            # Load first, advance the watermark last: a failure in between re-reads, never skips.
            with (run_folder() / f"{task_id}.jsonl").open("w") as f:
                f.writelines(json.dumps(r) + "\n" for r in records)
            new_watermark = max((r["updated_at"] for r in records), default=watermark)
            if new_watermark is not None:
                state.set("watermark", new_watermark)
            print(f"{task_id}: {len(records)} records changed since {watermark}; watermark {new_watermark}")
            return {"before": watermark, "after": new_watermark, "ids": [r["id"] for r in records]}

        return extract()

    @task
    def more_partner_activity(created: list[int]) -> dict[str, list[int]]:
        """5 new orders and 2 changed ones between the two extractions."""
        body = {"new": 5, "update": created[:2]}
        doc = IntegrationHttpHook(API).request("POST", f"/records/{DATASET}", json=body).json()
        return {"created": doc["created"], "updated": doc["updated"]}

    @task(inlets=[ORDERS])
    def verify_incremental(
        created: list[int],
        changes: dict[str, list[int]],
        first: dict[str, Any],
        second: dict[str, Any],
        **context: Any,
    ) -> dict[str, Any]:
        assert set(created) <= set(first["ids"]), "the first extraction saw every new order"
        if first["before"] is None:  # no watermark yet: the very first run reads everything
            assert sorted(first["ids"]) == list(range(1, max(created) + 1)), first
        assert second["before"] == first["after"], "the second run started from the persisted watermark"
        assert second["ids"] == changes["created"] + changes["updated"], (
            f"exactly the 7 changed orders, in update order: {second['ids']}"
        )
        persisted = context["asset_state_store"][ORDERS].get("watermark")
        assert persisted == second["after"] > first["after"], (persisted, first, second)
        return {"first": len(first["ids"]), "second": len(second["ids"]), "watermark": persisted}

    # [END howto_incremental_extraction]

    @task
    def make_folder() -> str:
        return str(run_folder())

    @task
    def remove_folder(folder: str) -> None:
        shutil.rmtree(folder, ignore_errors=True)

    folder = make_folder()
    pages = extract_pages()
    api_checked = verify_api(extract_api.output, pages)

    source = create_source()
    queried = query_database()
    source >> queried >> drop_source().as_teardown(setups=source)

    downloaded = download_file()

    created = partner_activity()
    first = extract_incremental("extract_incremental")
    changes = more_partner_activity(created)
    second = extract_incremental("extract_incremental_again")
    created >> first >> changes >> second
    incremental = verify_incremental(created, changes, first, second)

    folder >> [pages, downloaded, created]
    [api_checked, downloaded, incremental] >> remove_folder(folder).as_teardown(setups=folder)


if __name__ == "__main__":
    dag.test()
