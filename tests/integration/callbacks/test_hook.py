"""``WebhookHook``: settings parsed once and validated naming the option, partner verifiers cached per
connection, and one open store per store and event loop however many callers lease it."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_integrations.hooks._webhook_stores import open_stores
from airflow_provider_integrations.hooks.webhooks import VERIFIERS, WebhookHook, WebhookSettings
from airflow_provider_integrations.postgres.listen import close_loop_listeners
from airflow_provider_integrations.postgres.pool import close_loop_pools
from airflow_provider_integrations.sandbox.webhooks import FORGED_WEBHOOK_SECRET, PARTNER_WEBHOOK_SECRET
from airflow_provider_integrations.webhooks import (
    PostgresCallbackStore,
    SignatureError,
    SqliteCallbackStore,
    StoreUnavailableError,
    WebhookConfigError,
)
from tests.integration.callbacks.conftest import PG_CONN, SettingsFactory
from tests.webhooks.conftest import NEW_SECRET, OLD_SECRET, PAYLOAD_KEY, _psql, registration, signed, unique

# -- settings -----------------------------------------------------------------------------------------


def test_defaults_need_no_configuration(webhook_settings: SettingsFactory) -> None:
    settings = webhook_settings()
    home = os.environ["AIRFLOW_HOME"]
    assert settings.store_url == f"sqlite:///{home}/integrations_webhooks.db"
    assert settings.base_url is None
    assert (settings.max_body_bytes, settings.tolerance, settings.codec.encrypts) == (
        1024 * 1024,
        300.0,
        False,
    )
    # The literal provider default is expanded too, whether or not Airflow expanded it.
    literal = webhook_settings(webhook_store="sqlite:///{AIRFLOW_HOME}/integrations_webhooks.db")
    assert literal.store_url == settings.store_url


def test_configured_values(webhook_settings: SettingsFactory) -> None:
    settings = webhook_settings(
        webhook_base_url="https://airflow.example.com/integrations/webhooks",
        webhook_store=f"postgres_conn://{PG_CONN}?schema=hooks&table=cb",
        webhook_payload_keys=PAYLOAD_KEY,
        webhook_max_body_bytes="4096",
        webhook_tolerance_seconds="60",
    )
    assert (
        settings.callback_url("a" * 43)
        == "https://airflow.example.com/integrations/webhooks/callbacks/" + "a" * 43
    )
    assert (settings.max_body_bytes, settings.tolerance, settings.codec.encrypts) == (4096, 60.0, True)
    assert PAYLOAD_KEY not in repr(settings)


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("webhook_base_url", "ftp://example.com", "an absolute http(s) URL"),
        ("webhook_base_url", "https://example.com/hooks?token=1", "without query"),
        ("webhook_store", "mysql://db/x", "postgres_conn://<postgres connection id>"),
        ("webhook_store", f"postgres_conn://{PG_CONN}?sslmode=require", "[?schema=...&table=...]"),
        ("webhook_store", "postgres_conn:///?schema=x", "postgres_conn://<postgres connection id>"),
        ("webhook_max_body_bytes", "lots", "a number (int)"),
        ("webhook_max_body_bytes", "0", "an integer >= 1"),
        ("webhook_tolerance_seconds", "-5", "seconds > 0"),
    ],
)
def test_bad_settings_name_the_option(
    webhook_settings: SettingsFactory, option: str, value: str, expected: str
) -> None:
    with pytest.raises(WebhookConfigError) as caught:
        webhook_settings(**{option: value})
    assert caught.value.field == f"[integrations] {option}"
    assert expected in str(caught.value)


def test_a_bad_payload_key_is_named_not_shown(webhook_settings: SettingsFactory) -> None:
    with pytest.raises(WebhookConfigError) as caught:
        webhook_settings(webhook_payload_keys=f"{PAYLOAD_KEY} not-a-key-but-secret-text")
    assert caught.value.field == "[integrations] webhook_payload_keys"
    assert "not-a-key-but-secret-text" not in str(caught.value) and PAYLOAD_KEY not in str(caught.value)


def test_a_callback_url_needs_the_base_url(webhook_settings: SettingsFactory) -> None:
    with pytest.raises(WebhookConfigError, match=r"\[integrations\] webhook_base_url: expected the public"):
        webhook_settings().callback_url("a" * 43)


# -- partner verifiers --------------------------------------------------------------------------------


async def test_verifier_accepts_every_key_of_a_rotation(secret_connection: Callable[..., str]) -> None:
    conn_id = secret_connection(f"{NEW_SECRET} {OLD_SECRET}")
    verifier = await WebhookHook(WebhookSettings(None, "sqlite:////tmp/unused.db")).averifier(conn_id)
    assert verifier is not None
    for secret in (NEW_SECRET, OLD_SECRET):
        body, headers = signed({"ok": True}, secret)
        verifier.verify(headers, body)
    body, headers = signed({"ok": True}, FORGED_WEBHOOK_SECRET)
    with pytest.raises(SignatureError):
        verifier.verify(headers, body)


async def test_verifiers_are_cached_per_connection_until_invalidated(
    secret_connection: Callable[..., str],
) -> None:
    hook = WebhookHook(WebhookSettings(None, "sqlite:////tmp/unused.db"))
    conn_id = secret_connection(PARTNER_WEBHOOK_SECRET)
    before = VERIFIERS.lookups.get(conn_id, 0)
    first = await asyncio.gather(*(hook.averifier(conn_id) for _ in range(50)))
    assert len({id(v) for v in first}) == 1, "one verifier for all callers"
    assert VERIFIERS.lookups[conn_id] == before + 1, "one connection lookup (single flight, then cached)"

    secret_connection(NEW_SECRET)  # rotated: invalidates the cache entry, as an operator would
    rotated = await hook.averifier(conn_id)
    assert rotated is not None and rotated is not first[0]
    body, headers = signed({"ok": True}, NEW_SECRET)
    rotated.verify(headers, body)


async def test_missing_connection_is_no_verifier_and_an_empty_password_is_named(
    secret_connection: Callable[..., str],
) -> None:
    hook = WebhookHook(WebhookSettings(None, "sqlite:////tmp/unused.db"))
    assert await hook.averifier("no_such_connection") is None
    conn_id = secret_connection("")
    with pytest.raises(WebhookConfigError, match=r"connection 'partner_webhook' password: expected at least"):
        await hook.averifier(conn_id)


# -- shared stores --------------------------------------------------------------------------------------


async def test_concurrent_leases_share_one_store_which_closes_with_the_last(tmp_path: Path) -> None:
    hook = WebhookHook(WebhookSettings(None, f"sqlite:///{tmp_path}/callbacks.db"))
    entered = asyncio.Event()
    seen = []

    async def lease() -> None:
        async with hook.store() as store:
            seen.append(store)
            if len(seen) == 20:
                entered.set()
            await entered.wait()
            assert open_stores() == 1

    await asyncio.gather(*(lease() for _ in range(20)))
    assert len({id(s) for s in seen}) == 1 and isinstance(seen[0], SqliteCallbackStore)
    assert open_stores() == 0
    async with hook.store() as reopened:  # a later lease opens a fresh store
        assert reopened is not seen[0]
        assert await reopened.get("x" * 43) is None


async def test_postgres_conn_store_uses_the_connection(pg_connection: str) -> None:
    schema = unique("whhook")
    _psql(f'CREATE SCHEMA "{schema}"')
    try:
        settings = WebhookSettings(None, f"postgres_conn://{pg_connection}?schema={schema}&table=cb")
        async with WebhookHook(settings).store() as store:
            assert isinstance(store, PostgresCallbackStore)
            where = (store.config.host, store.config.database, store.schema, store.table)
            assert where == ("127.0.0.1", "test", schema, "cb")
            reg = registration()
            await store.register(reg)
            assert await store.get(reg.callback_id) == reg
    finally:
        await close_loop_listeners()
        await close_loop_pools()
        _psql(f'DROP SCHEMA "{schema}" CASCADE')


async def test_a_failed_open_is_raised_and_retried_by_the_next_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # bound, never listening: connections are refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        conn = {
            "conn_type": "postgres",
            "host": "127.0.0.1",
            "port": port,
            "login": "postgres",
            "schema": "x",
        }
        monkeypatch.setenv(
            "AIRFLOW_CONN_WEBHOOKS_DOWN", json.dumps({**conn, "extra": {"connect_timeout": 2}})
        )
        hook = WebhookHook(WebhookSettings(None, "postgres_conn://webhooks_down"))
        for _ in range(2):
            with pytest.raises(StoreUnavailableError):
                async with hook.store():
                    pass
            assert open_stores() == 0
    await close_loop_pools()
