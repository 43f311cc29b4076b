"""What the SQLite callback store and event log share: one file, a writer and a reader thread, one poller.

Writes go through the writer thread, which group-commits whatever is queued; reads use the reader's own
connection, so polling never queues behind commits. Waiters are woken by one shared poller per store,
which asks :meth:`SqliteStoreBase._ready` about every waited-for key once per interval.
"""

from __future__ import annotations

import sqlite3
from abc import abstractmethod
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final

from airflow_provider_integrations.webhooks.crypto import PayloadCodec
from airflow_provider_integrations.webhooks.errors import WebhookConfigError
from airflow_provider_integrations.webhooks.store._sqlite_thread import SqliteThread
from airflow_provider_integrations.webhooks.store.base import StoreBase
from airflow_provider_integrations.webhooks.store.waiting import PollingFeed, WaitFeed

__all__ = ["DEFAULT_POLL_INTERVAL", "SqliteStoreBase", "from_timestamp", "select_in"]

DEFAULT_POLL_INTERVAL: Final = 0.2
# SQLite's default limit on bound parameters is 32766 (999 before 3.32); stay far below either.
_VALUES_PER_QUERY: Final = 500


def from_timestamp(value: float) -> datetime:
    return datetime.fromtimestamp(value, timezone.utc)


def select_in(conn: sqlite3.Connection, query: str, values: list[str]) -> Iterator[Any]:
    """The rows of ``query`` whose ``{marks}`` is the placeholder list of an ``IN (...)`` over ``values``,
    queried a chunk at a time."""
    for start in range(0, len(values), _VALUES_PER_QUERY):
        chunk = values[start : start + _VALUES_PER_QUERY]
        yield from conn.execute(query.format(marks=",".join("?" * len(chunk))), chunk)


class SqliteStoreBase(StoreBase):
    """:param path: the database file (created, with its directory, if missing).
    :param ddl: the statements that create the tables. :param threads: the threads' name prefix.
    :param poll_interval: seconds between the shared poller's checks."""

    def __init__(
        self,
        path: str | Path,
        *,
        ddl: tuple[str, ...],
        threads: str,
        codec: PayloadCodec | None,
        poll_interval: float,
    ) -> None:
        super().__init__(codec)
        if not poll_interval > 0:
            raise WebhookConfigError("poll_interval", "seconds > 0", value=poll_interval)
        self.path = str(path)
        self._ddl = ddl
        self._writer = SqliteThread(self.path, name=f"{threads}-writer", writer=True)
        self._reader = SqliteThread(self.path, name=f"{threads}-reader", writer=False)
        self._poller = PollingFeed(self._ready, poll_interval)
        self._opened = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path}>"

    async def open(self) -> None:
        if self._opened:
            return
        self._opened = True
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        await self._writer.start()
        # Statement by statement: executescript() would commit the writer's open transaction.
        await self._writer.run(lambda conn: [conn.execute(statement) for statement in self._ddl] and None)
        await self._reader.start()

    async def close(self) -> None:
        await self._poller.close()
        await self._reader.stop()
        await self._writer.stop()

    async def ping(self) -> None:
        await self._reader.run(lambda conn: conn.execute("SELECT 1").fetchone())

    def _feed(self) -> WaitFeed:
        return self._poller

    @abstractmethod
    async def _ready(self, keys: list[str]) -> set[str]:
        """Of the waited-for ``keys``, those whose waiters should read again now."""
