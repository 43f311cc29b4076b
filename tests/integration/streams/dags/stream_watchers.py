"""Two assets watched by StreamEventTriggers on one sandbox SSE stream, each scheduling a DAG.

``airflow dags reserialize`` registers the watchers (``STREAM_TEST_KEY`` names the stream's stats key,
``STREAM_TEST_STORE`` the checkpoint store); the triggerer then runs both in one shared stream.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_integrations.triggers.stream_events import StreamEventTrigger

SOURCE = {
    "kind": "sse",
    "conn_id": "streams_sandbox",
    "path": "/streams/sse",
    "key_field": "key",
    "params": {"key": os.environ.get("STREAM_TEST_KEY", "unset"), "keys": 3, "rate": 20},
}
STORE = os.environ.get("STREAM_TEST_STORE")

created = Asset(
    "stream_created",
    watchers=[
        AssetWatcher(
            name="created_events",
            trigger=StreamEventTrigger(SOURCE, event_types=["created"], checkpoint_store=STORE),
        )
    ],
)
key_k1 = Asset(
    "stream_key_k1",
    watchers=[
        AssetWatcher(
            name="k1_events",
            trigger=StreamEventTrigger(
                SOURCE, condition={"jmespath": "key", "equals": "k1"}, checkpoint_store=STORE
            ),
        )
    ],
)

for asset in (created, key_k1):
    with DAG(
        dag_id=f"on_{asset.name}",
        schedule=[asset],
        start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
        catchup=False,
        tags=["test"],
        # Watchers of assets only paused DAGs use are not registered; no scheduler runs in the test.
        is_paused_upon_creation=False,
    ):

        @task
        def handle() -> None:
            pass

        handle()
