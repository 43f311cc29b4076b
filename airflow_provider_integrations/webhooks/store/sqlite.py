"""The SQLite callback store: one file, zero set-up, one machine.

WAL mode with ``synchronous=FULL``: a delivery is on disk before ``deliver`` returns ``accepted``.
Writes go through one writer thread that group-commits whatever is queued; reads use a second
connection, so waiters polling never queue behind commits. Several processes (the receiver, the
triggerer, workers registering callbacks) may share the file; SQLite's locking serialises their writes.
Waiters are woken by one shared poller per store (see :class:`PollingFeed`).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from airflow_provider_integrations.webhooks.crypto import PayloadCodec
from airflow_provider_integrations.webhooks.errors import CallbackConflictError, StoreUnavailableError
from airflow_provider_integrations.webhooks.ids import CallbackRegistration
from airflow_provider_integrations.webhooks.store._sqlite_base import (
    DEFAULT_POLL_INTERVAL,
    SqliteStoreBase,
    from_timestamp,
    select_in,
)
from airflow_provider_integrations.webhooks.store.base import CallbackState, CallbackStore, DeliveryOutcome
from airflow_provider_integrations.webhooks.store.records import registration_from_row, same_binding

__all__ = ["DEFAULT_POLL_INTERVAL", "SqliteCallbackStore"]

_COLUMNS: Final = (
    "callback_id, dag_id, run_id, task_id, map_index, try_number, secret_name, schema_json, created_at, "
    "expires_at"
)
_DDL: Final = (
    """
CREATE TABLE IF NOT EXISTS webhook_callbacks (
    callback_id TEXT PRIMARY KEY,
    dag_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    map_index INTEGER NOT NULL,
    try_number INTEGER NOT NULL,
    secret_name TEXT NOT NULL,
    schema_json TEXT,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    webhook_id TEXT,
    payload BLOB,
    delivered_at REAL
) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS webhook_callbacks_expires ON webhook_callbacks (expires_at)",
)


class SqliteCallbackStore(SqliteStoreBase, CallbackStore):
    """:param path: the database file (created, with its directory, if missing).
    :param poll_interval: seconds between the shared poller's checks for waiting callbacks."""

    def __init__(
        self,
        path: str | Path,
        *,
        codec: PayloadCodec | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        super().__init__(path, ddl=_DDL, threads="webhook-sqlite", codec=codec, poll_interval=poll_interval)

    async def register(self, registration: CallbackRegistration) -> None:
        r = registration
        row = (
            r.callback_id, r.dag_id, r.run_id, r.task_id, r.map_index, r.try_number, r.secret_name,
            r.schema_json, r.created_at.timestamp(), r.expires_at.timestamp(),
        )  # fmt: skip

        def insert(conn: sqlite3.Connection) -> None:
            cur = conn.execute(
                f"INSERT INTO webhook_callbacks ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (callback_id) DO NOTHING",
                row,
            )
            if cur.rowcount == 0:
                existing = conn.execute(
                    f"SELECT {_COLUMNS} FROM webhook_callbacks WHERE callback_id = ?", (r.callback_id,)
                ).fetchone()
                if not same_binding(_registration(existing), r):
                    raise CallbackConflictError(
                        f"callback id {r.callback_id} is already registered differently"
                    )

        await self._writer.run(insert)

    async def get(self, callback_id: str) -> CallbackRegistration | None:
        row = await self._reader.run(
            lambda conn: conn.execute(
                f"SELECT {_COLUMNS} FROM webhook_callbacks WHERE callback_id = ?", (callback_id,)
            ).fetchone()
        )
        return None if row is None else _registration(row)

    async def _deliver(self, callback_id: str, webhook_id: str, blob: bytes, at: datetime) -> DeliveryOutcome:
        ts = at.timestamp()

        def update(conn: sqlite3.Connection) -> DeliveryOutcome:
            cur = conn.execute(
                "UPDATE webhook_callbacks SET webhook_id = ?, payload = ?, delivered_at = ? "
                "WHERE callback_id = ? AND webhook_id IS NULL AND expires_at > ?",
                (webhook_id, blob, ts, callback_id, ts),
            )
            if cur.rowcount == 1:
                return DeliveryOutcome.ACCEPTED
            row = conn.execute(
                "SELECT webhook_id FROM webhook_callbacks WHERE callback_id = ?", (callback_id,)
            ).fetchone()
            if row is None:
                return DeliveryOutcome.UNKNOWN
            return DeliveryOutcome.DUPLICATE if row[0] is not None else DeliveryOutcome.EXPIRED

        return await self._writer.run(update)

    async def _cleanup(self, now: datetime, keep_delivered: timedelta) -> int:
        at = now.timestamp()
        keep = keep_delivered.total_seconds()
        count: int = await self._writer.run(
            lambda conn: (
                conn.execute(
                    "DELETE FROM webhook_callbacks WHERE (webhook_id IS NULL AND expires_at <= ?) "
                    "OR (webhook_id IS NOT NULL AND expires_at + ? <= ?)",
                    (at, keep, at),
                ).rowcount
            )
        )
        return count

    async def _state(self, callback_id: str) -> CallbackState | None:
        row = await self._reader.run(
            lambda conn: conn.execute(
                "SELECT expires_at, webhook_id, payload, delivered_at FROM webhook_callbacks "
                "WHERE callback_id = ?",
                (callback_id,),
            ).fetchone()
        )
        if row is None:
            return None
        expires_at, webhook_id, blob, delivered_at = row
        delivered = None if webhook_id is None else from_timestamp(delivered_at)
        delivery = None if delivered is None else self._decode(callback_id, webhook_id, blob, delivered)
        return CallbackState(from_timestamp(expires_at), delivery)

    async def _ready(self, keys: list[str]) -> set[str]:
        def query(conn: sqlite3.Connection) -> set[str]:
            # Delivered ids, and ids that vanished (cleaned up): both end a wait.
            waiting = select_in(
                conn,
                "SELECT callback_id FROM webhook_callbacks "
                "WHERE callback_id IN ({marks}) AND webhook_id IS NULL",
                keys,
            )
            return set(keys).difference(row[0] for row in waiting)

        return await self._reader.run(query)


def _registration(row: tuple[Any, ...]) -> CallbackRegistration:
    if row is None:
        raise StoreUnavailableError("a registration row vanished while being compared")
    values = list(row)
    values[8], values[9] = from_timestamp(values[8]), from_timestamp(values[9])
    return registration_from_row(*values)
