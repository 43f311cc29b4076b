"""A batch run in its own process, for the crash test: ``python _crash_child.py URL KEY STATE_DIR``.

Prints ``acked N`` after each acknowledged batch (the parent kills it after a few) and, if it gets to the
end, ``summary {json}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from airflow_provider_integrations.connections.http_config import BreakerConfig, HttpClientConfig, RetryPolicy
from airflow_provider_integrations.http.batch import BatchRun, BatchSettings
from airflow_provider_integrations.http.batch_store import BatchStore
from airflow_provider_integrations.http.sessions import lease_client

ITEMS = 1200
BATCH_SIZE = 20


async def main(url: str, key: str, state: Path) -> None:
    config = HttpClientConfig(
        base_url=url,
        retry=RetryPolicy(base_delay=0.01, max_delay=0.05),
        breaker=BreakerConfig(failure_threshold=0),
    )
    settings = BatchSettings(
        endpoint="/batch",
        query={"key": key, "permanent": 0.05, "transient": 0.2, "delay": 0.05},
        batch_size=BATCH_SIZE,
        concurrency=2,
        retry_base_delay=0.01,
        retry_max_delay=0.02,
        idempotency_prefix="crash",
    )
    items = [{"id": f"item-{i}", "n": i} for i in range(ITEMS)]
    store = BatchStore(state / "outcomes.jsonl", state / "checkpoint")
    async with lease_client(config) as api:
        run = BatchRun(api, items, settings, store, on_commit=lambda b: print(f"acked {b}", flush=True))
        summary = await run.run()
    print("summary " + json.dumps(summary), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], Path(sys.argv[3])))
