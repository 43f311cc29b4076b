"""Checkpoints in a local SQLite file (stdlib ``sqlite3``), the zero-setup default.

sqlite3 blocks, so calls run in a worker thread, one at a time per store. The file is in WAL mode
with ``synchronous=NORMAL``: a commit survives the process being killed; after a power loss the last
commits may be missing, which replays their events again (at-least-once still holds).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

from airflow_provider_integrations.streaming.checkpoints.base import check_key, decode, encode
from airflow_provider_integrations.streaming.errors import CheckpointError, StreamConfigError
from airflow_provider_integrations.streaming.events import Position

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stream_checkpoints (
    stream TEXT NOT NULL,
    consumer TEXT NOT NULL,
    position TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (stream, consumer)
)
"""
_UPSERT = """
INSERT INTO stream_checkpoints (stream, consumer, position, updated_at) VALUES (?, ?, ?, ?)
ON CONFLICT (stream, consumer) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at
"""


class SqliteCheckpointStore:
    """Checkpoints in the SQLite file ``path`` (created, with its directory, on first use).

    Several processes may share the file; ``busy_timeout`` seconds bound the wait for another writer.
    """

    def __init__(self, path: str | Path, *, busy_timeout: float = 10.0) -> None:
        if not isinstance(path, str | Path) or not str(path):
            raise StreamConfigError("path", "a file path for the SQLite database", path)
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout, check_same_thread=False, isolation_level=None
            )
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(_SCHEMA)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _load(self, stream: str, consumer: str) -> str | None:
        with self._lock:
            row = (
                self._connection()
                .execute(
                    "SELECT position FROM stream_checkpoints WHERE stream = ? AND consumer = ?",
                    (stream, consumer),
                )
                .fetchone()
            )
        return None if row is None else str(row[0])

    def _commit(self, stream: str, consumer: str, text: str) -> None:
        with self._lock:
            self._connection().execute(_UPSERT, (stream, consumer, text, time.time()))

    async def load(self, stream: str, consumer: str) -> Position | None:
        check_key(stream, consumer)
        try:
            text = await asyncio.to_thread(self._load, stream, consumer)
        except (sqlite3.Error, OSError) as exc:
            raise CheckpointError(f"cannot read checkpoints from {self.path}: {exc}", stream=stream) from exc
        return None if text is None else decode(text, stream, consumer)

    async def commit(self, stream: str, consumer: str, position: Position) -> None:
        check_key(stream, consumer)
        text = encode(position)
        try:
            await asyncio.to_thread(self._commit, stream, consumer, text)
        except (sqlite3.Error, OSError) as exc:
            raise CheckpointError(
                f"cannot commit checkpoint to {self.path}: {exc}", stream=stream, position=position
            ) from exc

    def _close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()

    async def close(self) -> None:
        await asyncio.to_thread(self._close)

    def __repr__(self) -> str:
        return f"SqliteCheckpointStore({str(self.path)!r})"
