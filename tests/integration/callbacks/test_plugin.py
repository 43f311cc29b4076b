"""The receiver plugin inside Airflow's API application, loaded the way Airflow loads it: through the
``airflow.plugins`` entry point, by ``airflow.api_fastapi.app.create_app``.

These tests drive the app in-process (``TestClient``); ``test_triggerer.py`` runs it in a real
``airflow api-server`` process.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from airflow_provider_integrations.hooks.webhooks import WebhookHook
from airflow_provider_integrations.plugins.webhooks import URL_PREFIX, WebhookReceiverPlugin
from airflow_provider_integrations.postgres.pool import close_loop_pools
from airflow_provider_integrations.sandbox.webhooks import FORGED_WEBHOOK_SECRET
from airflow_provider_integrations.webhooks import CallbackRegistration, Delivery
from tests.integration.callbacks.conftest import (
    DISTRIBUTION,
    ENTRY_POINT_NAME,
    ENTRY_POINT_VALUE,
    SettingsFactory,
    declares_entry_point,
    plugins_rediscovered,
    store_setting,
)
from tests.webhooks.conftest import PAYLOAD_KEY, expired_registration, pg_schema, registration, signed

CALLBACKS = f"{URL_PREFIX}/callbacks"
SCHEMA = {"type": "object", "required": ["status"]}


def test_the_distribution_declares_the_plugin_entry_point() -> None:
    """The plugin loads only through this entry point: pyproject must declare it (then reinstall)."""
    assert declares_entry_point(), (
        f'{DISTRIBUTION} declares no [project.entry-points."airflow.plugins"] {ENTRY_POINT_NAME}; '
        "add it to pyproject.toml and reinstall the package"
    )


@pytest.fixture
def api_app(plugin_path: str | None, airflow_db: Path) -> Iterator[Callable[[], TestClient]]:
    """``client()``: Airflow's API app with plugins discovered afresh, as an API-server worker starts."""
    with plugins_rediscovered(plugin_path):
        from airflow.api_fastapi.app import create_app

        yield lambda: TestClient(create_app("core"))


def test_airflow_loads_the_plugin_from_its_entry_point(api_app: Callable[[], TestClient]) -> None:
    from airflow import plugins_manager

    plugins = [p for p in plugins_manager._get_plugins()[0] if isinstance(p, WebhookReceiverPlugin)]
    assert len(plugins) == 1
    source = plugins[0].source
    assert type(source).__name__ == "EntryPointSource", source
    assert ENTRY_POINT_VALUE in str(source) and "group='airflow.plugins'" in str(source), str(source)
    apps, _ = plugins_manager.get_fastapi_plugins()
    assert [a["url_prefix"] for a in apps if a["app"] is WebhookReceiverPlugin.fastapi_apps[0]["app"]] == [
        URL_PREFIX
    ]


@pytest.fixture(params=["sqlite", "postgres"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    if request.param == "sqlite":
        yield "sqlite", str(tmp_path / "callbacks.db")
        return
    with pg_schema("whplug") as schema:
        yield "postgres", schema


def register(*regs: CallbackRegistration) -> None:
    async def run() -> None:
        async with WebhookHook().store() as store:
            for reg in regs:
                await store.register(reg)
        await close_loop_pools()

    asyncio.run(run())


def delivery(callback_id: str) -> Delivery | None:
    async def run() -> Delivery | None:
        async with WebhookHook().store() as store:
            found = await store.delivery(callback_id)
        await close_loop_pools()
        return found

    return asyncio.run(run())


def send(client: TestClient, callback_id: str, body: Any, **kw: Any) -> tuple[int, str]:
    content, headers = signed(body, **kw) if not isinstance(body, tuple) else body
    response = client.post(f"{CALLBACKS}/{callback_id}", content=content, headers=headers)
    return response.status_code, response.json()["reason"]


def test_callbacks_through_the_api_server_app(
    api_app: Callable[[], TestClient],
    store_location: tuple[str, str],
    webhook_settings: SettingsFactory,
    secret_connection: Callable[..., str],
    pg_connection: str,
) -> None:
    webhook_settings(
        webhook_store=store_setting(*store_location),
        webhook_payload_keys=PAYLOAD_KEY,
        webhook_max_body_bytes="2048",
    )
    conn_id = secret_connection()
    good, schema_bound, expired = (
        registration(secret_name=conn_id),
        registration(secret_name=conn_id, schema=SCHEMA),
        expired_registration(secret_name=conn_id),
    )
    register(good, schema_bound, expired)
    stale = int((datetime.now(timezone.utc) - timedelta(minutes=10)).timestamp())
    with api_app() as client:
        assert client.get(f"{URL_PREFIX}/health").json() == {"status": "ok", "store": "ok"}
        answers = {
            "forged": send(client, good.callback_id, {"status": "x"}, secret=FORGED_WEBHOOK_SECRET),
            "stale": send(client, good.callback_id, {"status": "x"}, timestamp=stale),
            "unknown": send(client, "u" * 43, {"status": "x"}),
            "expired": send(client, expired.callback_id, {"status": "x"}),
            "malformed": send(client, good.callback_id, b"{not json"),
            "schema": send(client, schema_bound.callback_id, {"no_status": 1}),
            "accepted": send(client, good.callback_id, {"status": "done"}, webhook_id="msg_1"),
            "replayed": send(client, good.callback_id, {"status": "done"}, webhook_id="msg_1"),
        }
        body, headers = signed(b"[" + b"1," * 2000 + b"1]")
        answers["declared_too_large"] = send(client, good.callback_id, (body, headers))
        chunks = iter([body[:1500], body[1500:]])  # no Content-Length: sent chunked
        chunked = client.post(f"{CALLBACKS}/{good.callback_id}", content=chunks, headers=headers)
        assert "content-length" not in chunked.request.headers
        answers["streamed_too_large"] = (chunked.status_code, chunked.json()["reason"])
        answers["wrong_type"] = send(
            client, good.callback_id, (b"{}", {**signed(b"{}")[1], "Content-Type": "text/plain"})
        )
        # The core API is untouched by the mount.
        assert client.get("/api/v2/version").status_code == 200
    assert answers == {
        "forged": (401, "no_valid_signature"),
        "stale": (401, "stale_timestamp"),
        "unknown": (404, "unknown_callback"),
        "expired": (404, "expired_callback"),
        "malformed": (400, "malformed_json"),
        "schema": (400, "schema_violation"),
        "accepted": (202, "accepted"),
        "replayed": (200, "duplicate"),
        "declared_too_large": (413, "body_too_large"),
        "streamed_too_large": (413, "body_too_large"),
        "wrong_type": (415, "unsupported_content_type"),
    }
    stored = delivery(good.callback_id)
    assert stored is not None and stored.payload == {"status": "done"} and stored.webhook_id == "msg_1"
    assert delivery(schema_bound.callback_id) is None and delivery(expired.callback_id) is None


def test_a_store_that_is_down_is_a_503_and_the_api_server_keeps_serving(
    api_app: Callable[[], TestClient],
    webhook_settings: SettingsFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as probe:  # bound, never listening: connections are refused
        probe.bind(("127.0.0.1", 0))
        down = {"conn_type": "postgres", "host": "127.0.0.1", "port": probe.getsockname()[1], "login": "x"}
        monkeypatch.setenv("AIRFLOW_CONN_WEBHOOKS_DOWN", json.dumps(down))
        webhook_settings(webhook_store="postgres_conn://webhooks_down")
        with api_app() as client:
            assert client.get("/api/v2/version").status_code == 200, "the API server started regardless"
            health = client.get(f"{URL_PREFIX}/health")
            assert (health.status_code, health.json()) == (503, {"status": "unavailable", "store": "down"})
            assert send(client, "a" * 43, {"status": "x"}) == (503, "store_unavailable")
