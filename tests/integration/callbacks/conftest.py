"""Fixtures for the Airflow side of webhook callbacks: ``[integrations]`` settings, the partner's secret
connection, a PostgreSQL connection for ``postgres_conn://`` stores, and the plugin's entry point.

The plugin reaches Airflow only through the ``airflow.plugins`` entry point. When the installed
distribution does not declare it yet (pyproject edited, package not reinstalled), :func:`plugin_path`
provides a minimal distribution that declares exactly that entry point: Airflow's plugins manager then
finds it through ``importlib.metadata``, the same lookup it does for the real one.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from airflow_provider_integrations.hooks.webhooks import VERIFIERS, WebhookSettings, load_settings
from airflow_provider_integrations.sandbox.webhooks import PARTNER_WEBHOOK_SECRET

DISTRIBUTION = "airflow-provider-integrations"
ENTRY_POINT_GROUP = "airflow.plugins"
ENTRY_POINT_NAME = "integrations_webhooks"
ENTRY_POINT_VALUE = "airflow_provider_integrations.plugins.webhooks:WebhookReceiverPlugin"
SECRET_CONN = "partner_webhook"
PG_CONN = "webhooks_pg"
PG_CONNECTION = {
    "conn_type": "postgres",
    "host": "127.0.0.1",
    "port": 5432,
    "login": "postgres",
    "schema": "test",
}


def declares_entry_point() -> bool:
    """Whether the installed distribution declares the plugin's ``airflow.plugins`` entry point."""
    entry_points = importlib.metadata.distribution(DISTRIBUTION).entry_points
    return any(
        (ep.group, ep.name, ep.value) == (ENTRY_POINT_GROUP, ENTRY_POINT_NAME, ENTRY_POINT_VALUE)
        for ep in entry_points
    )


def entry_point_path(root: Path) -> str | None:
    """A directory to put on the path so the entry point exists; ``None`` when the install declares it."""
    if declares_entry_point():
        return None
    info = root / "airflow_provider_integrations_entry_points-0.0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: airflow-provider-integrations-entry-points\nVersion: 0.0.0\n"
    )
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n{ENTRY_POINT_NAME} = {ENTRY_POINT_VALUE}\n"
    )
    return str(root)


@pytest.fixture(scope="session")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> str | None:
    return entry_point_path(tmp_path_factory.mktemp("plugin-entry-point"))


@contextmanager
def plugins_rediscovered(path: str | None) -> Iterator[None]:
    """Make this process's Airflow discover plugins afresh (with ``path`` on ``sys.path``)."""
    from airflow import plugins_manager
    from airflow._shared.module_loading import _get_grouped_entry_points

    def forget() -> None:
        importlib.invalidate_caches()
        _get_grouped_entry_points.cache_clear()
        plugins_manager._get_plugins.cache_clear()
        plugins_manager.get_fastapi_plugins.cache_clear()

    if path is not None:
        sys.path.insert(0, path)
    forget()
    try:
        yield
    finally:
        if path is not None:
            sys.path.remove(path)
        forget()


SettingsFactory = Callable[..., WebhookSettings]


@pytest.fixture
def webhook_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[SettingsFactory]:
    """``configure(webhook_store=..., ...)`` sets ``AIRFLOW__INTEGRATIONS__*`` and re-reads the settings."""

    def configure(**options: str) -> WebhookSettings:
        for name, value in options.items():
            monkeypatch.setenv(f"AIRFLOW__INTEGRATIONS__{name.upper()}", value)
        load_settings.cache_clear()
        return load_settings()

    yield configure
    load_settings.cache_clear()


@pytest.fixture
def secret_connection(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., str]]:
    """``set_keys("whsec_... whsec_...")`` (re)defines the partner's secret connection."""

    def set_keys(keys: str = PARTNER_WEBHOOK_SECRET) -> str:
        doc = {"conn_type": "generic", "password": keys}
        monkeypatch.setenv(f"AIRFLOW_CONN_{SECRET_CONN.upper()}", json.dumps(doc))
        VERIFIERS.invalidate(SECRET_CONN)
        return SECRET_CONN

    set_keys()
    yield set_keys
    VERIFIERS.invalidate()


@pytest.fixture
def pg_connection(monkeypatch: pytest.MonkeyPatch) -> str:
    from airflow_provider_integrations.hooks.postgres import CONFIGS

    monkeypatch.setenv(f"AIRFLOW_CONN_{PG_CONN.upper()}", json.dumps(PG_CONNECTION))
    CONFIGS.invalidate(PG_CONN)
    return PG_CONN


def store_setting(kind: str, where: str) -> str:
    """``webhook_store`` for a store location of ``tests/webhooks`` (a SQLite path or a schema)."""
    if kind == "sqlite":
        return f"sqlite:///{where}"
    return f"postgres_conn://{PG_CONN}?schema={where}"
