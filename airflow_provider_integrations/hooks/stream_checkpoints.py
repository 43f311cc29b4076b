"""Where stream checkpoints live: ``[integrations] stream_checkpoints``, or a per-task override.

Two forms, neither holding a password:

* ``sqlite:///<absolute path>``; empty means ``sqlite:///$AIRFLOW_HOME/integrations_stream_checkpoints.db``:
  one machine, nothing to set up (workers and triggerers must share the file);
* ``postgres_conn://<conn_id>[?schema=...&table=...]``: a table (``stream_checkpoints`` by default) in the
  database of a ``postgres`` connection, for many machines.

The URL is checked when it is given (no I/O); the store opens when a checkpoint is loaded or committed
and closes when the ``async with`` block of :func:`open_checkpoint` ends.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import PurePosixPath
from typing import Final
from urllib.parse import parse_qs, urlsplit

from airflow.sdk import conf

from airflow_provider_integrations.hooks.postgres import AsyncPostgresHook
from airflow_provider_integrations.streaming import (
    Checkpoint,
    CheckpointStore,
    PgCheckpointStore,
    SqliteCheckpointStore,
    StreamConfigError,
)

__all__ = ["OPTION", "check_store_url", "open_checkpoint", "store_url"]

OPTION: Final = "[integrations] stream_checkpoints"
DEFAULT_FILE: Final = "integrations_stream_checkpoints.db"
_FORMS: Final = (
    "sqlite:///<absolute path>, or postgres_conn://<postgres connection id>[?schema=...&table=...]"
)
_PG_OPTIONS: Final = frozenset({"schema", "table"})


def _parse(url: object) -> tuple[str, str, dict[str, str]] | None:
    """``("sqlite", path, {})`` or ``("postgres_conn", conn_id, options)``; ``None`` if malformed."""
    if not isinstance(url, str):
        return None
    if url.startswith("sqlite:///"):
        path = url[len("sqlite://") :]
        ok = PurePosixPath(path).is_absolute() and path != "/" and "?" not in path
        return ("sqlite", path, {}) if ok else None
    prefix = "postgres_conn://"
    if not url.startswith(prefix):
        return None
    # "_" is not allowed in a URL scheme, so urlsplit would not recognise it: split the rest instead.
    parts = urlsplit("//" + url[len(prefix) :])
    options = parse_qs(parts.query, keep_blank_values=True)
    if (
        not parts.netloc
        or "@" in parts.netloc  # credentials: the connection holds them
        or parts.path not in ("", "/")
        or not set(options) <= _PG_OPTIONS
        or not all(len(v) == 1 and v[0] for v in options.values())
    ):
        return None
    return "postgres_conn", parts.netloc, {k: v[0] for k, v in options.items()}


def check_store_url(url: str, field: str = OPTION) -> str:
    """Return ``url`` if it has one of the two forms; otherwise raise naming ``field`` (no I/O)."""
    if _parse(url) is None:
        shown = "<redacted URL>" if isinstance(url, str) and "@" in url else url
        raise StreamConfigError(field, _FORMS, shown)
    return url


def store_url(override: str | None = None) -> str:
    """``override``, else the configured option, else the SQLite file under ``AIRFLOW_HOME``."""
    if override is not None:
        return check_store_url(override, "checkpoint_store")
    home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    url = conf.get("integrations", "stream_checkpoints", fallback="").strip()
    # An unexpanded provider default names the home; empty means the same default.
    url = url.replace("{AIRFLOW_HOME}", home) or f"sqlite:///{home}/{DEFAULT_FILE}"
    return check_store_url(url)


async def _make_store(url: str) -> CheckpointStore:
    parsed = _parse(url)
    assert parsed is not None, "checked by store_url()"
    kind, target, options = parsed
    if kind == "sqlite":
        return SqliteCheckpointStore(target)
    # The password and pool settings come from the connection, cached per process.
    config = await AsyncPostgresHook(target).aget_config()
    return PgCheckpointStore(
        config, table=options.get("table", "stream_checkpoints"), schema=options.get("schema")
    )


@asynccontextmanager
async def open_checkpoint(stream: str, consumer: str, url: str | None = None) -> AsyncIterator[Checkpoint]:
    """``async with open_checkpoint(stream, consumer) as checkpoint``: load and commit, then close.

    :param url: a store URL (see the module docstring); ``None`` reads ``[integrations] stream_checkpoints``.
    """
    checkpoint = Checkpoint(await _make_store(store_url(url)), stream, consumer)
    try:
        yield checkpoint
    finally:
        await checkpoint.store.close()
