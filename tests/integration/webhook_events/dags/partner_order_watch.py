"""A DAG scheduled on an asset whose watcher is a WebhookEventTrigger (test fixture)."""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import DAG, Asset, AssetWatcher

from airflow_provider_integrations.triggers.webhook_events import WebhookEventTrigger

PARTNER_ORDERS = Asset(
    "partner_orders",
    watchers=[
        AssetWatcher(
            name="partner_order_events",
            trigger=WebhookEventTrigger(
                source="partner",
                event_types=["order.*"],
                condition={"jmespath": "data.total", "gte": 100},
            ),
        )
    ],
)

# No tasks: the test is about the run being created from the events, not about running it.
with DAG(
    dag_id="partner_order_watch",
    schedule=[PARTNER_ORDERS],
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
):
    pass
