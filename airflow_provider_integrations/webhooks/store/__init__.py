"""Callback stores: SQLite (default: one file, one machine) and PostgreSQL (LISTEN/NOTIFY, many hosts).

:func:`store_from_url` builds either from one URL, as the standalone receiver's ``--store`` takes it.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from airflow_provider_integrations.postgres import PgConfig
from airflow_provider_integrations.webhooks.crypto import PayloadCodec
from airflow_provider_integrations.webhooks.errors import WebhookConfigError
from airflow_provider_integrations.webhooks.store.base import (
    DEFAULT_KEEP_DELIVERED,
    CallbackState,
    CallbackStore,
    Delivery,
    DeliveryOutcome,
)
from airflow_provider_integrations.webhooks.store.postgres import PostgresCallbackStore
from airflow_provider_integrations.webhooks.store.sqlite import DEFAULT_POLL_INTERVAL, SqliteCallbackStore

__all__ = [
    "DEFAULT_KEEP_DELIVERED",
    "DEFAULT_POLL_INTERVAL",
    "CallbackState",
    "CallbackStore",
    "Delivery",
    "DeliveryOutcome",
    "PostgresCallbackStore",
    "SqliteCallbackStore",
    "store_from_url",
]

_URL_FORMS = "sqlite:///relative/path.db, sqlite:////absolute/path.db or postgresql://user@host:port/db"
_PG_OPTIONS = frozenset({"schema", "table", "sslmode", "max_size"})


def store_from_url(url: str, *, codec: PayloadCodec | None = None) -> CallbackStore:
    """A (not yet opened) store for ``url``.

    * ``sqlite:///<path>``: the path after the third slash, SQLAlchemy style
      (``sqlite:////var/lib/callbacks.db`` is absolute);
    * ``postgresql://user[:password]@host[:port]/database[?schema=public&table=...&sslmode=...]``;
      leave the password out of the URL and set ``PGPASSWORD`` instead, so it shows in no process list.
    """
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("sqlite", "postgresql", "postgres"):
        raise WebhookConfigError("store", _URL_FORMS, value=_redacted(url))
    if parts.scheme == "sqlite":
        path = unquote(parts.path[1:]) if parts.path.startswith("/") else ""
        if parts.netloc or not path or parts.query:
            raise WebhookConfigError("store", _URL_FORMS, value=_redacted(url))
        return SqliteCallbackStore(Path(path), codec=codec)
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = set(query) - _PG_OPTIONS
    if unknown:
        raise WebhookConfigError("store", f"query options among {sorted(_PG_OPTIONS)}", value=sorted(unknown))
    try:
        port = parts.port or 5432
    except ValueError:
        raise WebhookConfigError("store", "a numeric port", value=_redacted(url)) from None
    max_size = query.get("max_size", "10")
    if not max_size.isdigit():
        raise WebhookConfigError("store max_size", "a positive integer", value=max_size)
    config = PgConfig(
        host=parts.hostname or "127.0.0.1",
        port=port,
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password) if parts.password else None,
        database=unquote(parts.path.lstrip("/")) or "postgres",
        ssl_mode=query.get("sslmode", "disable"),  # type: ignore[arg-type]  # PgConfig checks it
        max_size=int(max_size),
        name="webhook-store",
    )
    return PostgresCallbackStore(
        config,
        schema=query.get("schema", "public"),
        table=query.get("table", "webhook_callbacks"),
        codec=codec,
    )


def _redacted(url: object) -> object:
    if not isinstance(url, str):
        return url
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url
