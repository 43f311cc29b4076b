"""``POST /events/{source}`` as the API-server plugin serves it: the ``events`` router in a FastAPI app
built like ``plugins.webhooks.create_app`` (driven in-process with ``TestClient``, lifespan included)."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from airflow_provider_integrations.hooks.webhooks import VERIFIERS, load_settings
from airflow_provider_integrations.plugins.webhook_events import events
from airflow_provider_integrations.sandbox.webhooks import PARTNER_WEBHOOK_SECRET
from airflow_provider_integrations.webhooks import PayloadCodec
from airflow_provider_integrations.webhooks.events import event_log_from_url
from tests.webhooks.conftest import PAYLOAD_KEY, signed


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("AIRFLOW__INTEGRATIONS__WEBHOOK_STORE", f"sqlite:///{tmp_path}/webhooks.db")
    monkeypatch.setenv("AIRFLOW__INTEGRATIONS__WEBHOOK_PAYLOAD_KEYS", PAYLOAD_KEY)
    # The partner's signing connection names the source, as secret_conn_id does for its callbacks.
    partner = {"conn_type": "generic", "password": PARTNER_WEBHOOK_SECRET}
    monkeypatch.setenv("AIRFLOW_CONN_PARTNER", json.dumps(partner))
    # Another kind of connection must look like no connection at all.
    database = {"conn_type": "postgres", "host": "db", "login": "etl", "password": "hunter2"}
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps(database))
    load_settings.cache_clear()
    VERIFIERS.invalidate()
    app = FastAPI()
    app.include_router(events)
    with TestClient(app) as test_client:
        yield test_client
    load_settings.cache_clear()
    VERIFIERS.invalidate()


def stored_types(tmp_path: Path) -> list[tuple[int, str, str]]:
    async def read() -> list[tuple[int, str, str]]:
        url = f"sqlite:///{tmp_path}/webhooks.db"
        async with event_log_from_url(url, codec=PayloadCodec([PAYLOAD_KEY])) as log:
            return [(e.seq, e.webhook_id, e.type) for e in await log.read("partner", 0)]

    return asyncio.run(read())


def test_events_are_verified_with_the_source_connection_and_appended_once(
    client: TestClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    body, headers = signed({"type": "export.ready", "data": {"file": "orders.csv"}})
    first = client.post("/events/partner", content=body, headers=headers)
    assert (first.status_code, first.json()) == (202, {"outcome": "accepted", "reason": "accepted", "seq": 1})
    again = client.post("/events/partner", content=body, headers=headers)
    assert (again.status_code, again.json()["outcome"], again.json()["seq"]) == (200, "duplicate", 1)
    for other in ("carrier", "warehouse"):
        unknown = client.post(f"/events/{other}", content=body, headers=headers)
        assert (unknown.status_code, unknown.json()["reason"]) == (404, "unknown_source"), other
    too_large = client.post(
        "/events/partner", content=io.BytesIO(b"x" * (1024 * 1024 + 1)), headers=signed(b"{}")[1]
    )
    assert (too_large.status_code, too_large.json()["reason"]) == (413, "body_too_large")
    assert stored_types(tmp_path) == [(1, headers["webhook-id"], "export.ready")]
    assert "hunter2" not in caplog.text


def test_a_store_that_cannot_open_is_503(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    client.app.state.webhook_event_receiver = None  # type: ignore[attr-defined]  # as if never opened
    monkeypatch.setenv("AIRFLOW__INTEGRATIONS__WEBHOOK_STORE", "postgres_conn://missing_connection")
    load_settings.cache_clear()
    body, headers = signed({"type": "export.ready"})
    answer = client.post("/events/partner", content=body, headers=headers)
    assert (answer.status_code, answer.json()["reason"]) == (503, "store_unavailable")
