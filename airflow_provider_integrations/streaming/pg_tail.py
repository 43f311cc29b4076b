"""Tail a PostgreSQL table (the outbox pattern) as a lossless, resumable source.

Rows are read in batches, ``SELECT ... WHERE id > $1 ORDER BY id LIMIT n``, on the shared pool of the
config. Once caught up the tail waits for a NOTIFY on ``notify_channel`` (a trigger or the writer sends
it; the payload is ignored) or ``poll_interval`` seconds, whichever comes first, so a lost notification
costs latency, never rows.

Cursors:

- ``id_column`` alone: the position is the row's id (an integer).
- ``timestamp_column`` too: rows are ordered by ``(timestamp, id)``, and the position is
  ``"<ISO timestamp>|<id>"``; the id breaks ties between rows of the same timestamp.

Ids (or timestamps) must become visible in order: a row committed with a smaller id than one already
read is skipped. That holds for a single writer, or when writers take a lock to insert; otherwise
read only rows older than the longest write transaction (``settle`` seconds, timestamp cursor).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

from airflow_provider_integrations.postgres.config import PgConfig
from airflow_provider_integrations.postgres.ident import qualified, quote_ident
from airflow_provider_integrations.postgres.listen import Subscription, listener_for
from airflow_provider_integrations.postgres.pool import PgPool, lease_pool
from airflow_provider_integrations.streaming.base import StreamSource
from airflow_provider_integrations.streaming.errors import StreamConfigError
from airflow_provider_integrations.streaming.events import Event, Position, StreamOptions


class PgTableTail(StreamSource):
    """Rows of ``table`` after the position; ``data`` is ``data_column`` (text; JSON is passed as text).

    :param id_column: a unique, increasing integer column (a ``bigserial``/identity).
    :param timestamp_column: order by this timestamp (ties broken by ``id_column``) instead.
    :param key_column: / :param type_column: columns for the event key and type (default: the table).
    :param batch_size: rows per query; a full batch is followed by the next query at once.
    :param poll_interval: seconds between queries once caught up, without a notification.
    :param notify_channel: a channel whose notifications wake the tail up early.
    :param start: where a tail without a position begins: ``"beginning"`` or ``"end"`` (new rows only).
    :param settle: with a timestamp cursor, read only rows at least this many seconds old.
    """

    def __init__(
        self,
        config: PgConfig,
        table: str,
        *,
        schema: str | None = None,
        id_column: str = "id",
        timestamp_column: str | None = None,
        data_column: str = "payload",
        key_column: str | None = None,
        type_column: str | None = None,
        batch_size: int = 1000,
        poll_interval: float = 1.0,
        notify_channel: str | None = None,
        start: str = "beginning",
        settle: float = 0.0,
        name: str | None = None,
        options: StreamOptions | None = None,
    ) -> None:
        if not isinstance(config, PgConfig):
            raise StreamConfigError("config", "a PgConfig", config)
        for field, value in (("table", table), ("id_column", id_column), ("data_column", data_column)):
            if not isinstance(value, str) or not value:
                raise StreamConfigError(field, "a non-empty identifier", value)
        super().__init__(name or f"{config.label}/{schema + '.' if schema else ''}{table}", options)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise StreamConfigError("batch_size", "an integer >= 1", batch_size, stream=self.name)
        if not isinstance(poll_interval, int | float) or poll_interval <= 0:
            raise StreamConfigError(
                "poll_interval", "a number of seconds > 0", poll_interval, stream=self.name
            )
        if start not in ("beginning", "end"):
            raise StreamConfigError("start", "'beginning' or 'end'", start, stream=self.name)
        if not isinstance(settle, int | float) or settle < 0 or (settle and timestamp_column is None):
            raise StreamConfigError(
                "settle", "seconds >= 0, with a timestamp_column", settle, stream=self.name
            )
        self.config = config
        self.table = table
        self.schema = schema
        self.id_column = id_column
        self.timestamp_column = timestamp_column
        self.batch_size = batch_size
        self.poll_interval = float(poll_interval)
        self.notify_channel = notify_channel
        self.start_at = start
        self.settle = float(settle)
        self.type_name = table
        selected = [id_column, data_column, key_column, type_column]
        if timestamp_column:
            selected.append(timestamp_column)
        self._columns = ", ".join(quote_ident(c) if c else "NULL" for c in selected)
        self._from = qualified(table, schema)

    def _query(self, cursor: tuple[Any, ...] | None) -> tuple[str, Sequence[Any]]:
        i, ts = quote_ident(self.id_column), self.timestamp_column
        where: list[str] = []
        args: list[Any] = []
        if cursor is not None:
            if ts:
                where.append(f"({quote_ident(ts)}, {i}) > ($1, $2)")
            else:
                where.append(f"{i} > $1")
            args.extend(cursor)
        if self.settle:
            assert ts
            where.append(f"{quote_ident(ts)} <= now() - make_interval(secs => ${len(args) + 1})")
            args.append(self.settle)
        order = f"{quote_ident(ts)}, {i}" if ts else i
        sql = f"SELECT {self._columns} FROM {self._from}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return f"{sql} ORDER BY {order} LIMIT {self.batch_size}", args

    def _cursor(self, position: Position | None) -> tuple[Any, ...] | None:
        if position is None:
            return None
        if not self.timestamp_column:
            if isinstance(position, bool) or not isinstance(position, int):
                raise StreamConfigError("from_position", "an integer id", position, stream=self.name)
            return (position,)
        stamp, _, ident = str(position).rpartition("|")
        try:
            return (dt.datetime.fromisoformat(stamp), int(ident))
        except ValueError:
            raise StreamConfigError(
                "from_position",
                "'<ISO timestamp>|<id>' (a position of this tail)",
                position,
                stream=self.name,
            ) from None

    async def _end_cursor(self, pool: PgPool) -> tuple[Any, ...] | None:
        i, ts = quote_ident(self.id_column), self.timestamp_column
        order = f"{quote_ident(ts)} DESC, {i} DESC" if ts else f"{i} DESC"
        cols = f"{quote_ident(ts)}, {i}" if ts else i
        row = await pool.fetchrow(f"SELECT {cols} FROM {self._from} ORDER BY {order} LIMIT 1")
        return tuple(row) if row is not None else None

    async def _stream(self, position: Position | None) -> AsyncGenerator[list[Event], None]:
        cursor = self._cursor(position)
        async with lease_pool(self.config) as pool, self._wakeups() as wakeups:
            if cursor is None and self.start_at == "end":
                cursor = await self._end_cursor(pool)
                if cursor is not None:
                    # As if opened there: reconnects resume here, not at a later end, and the
                    # source's position (what a consumer would checkpoint) is this end.
                    self._resume_from = self._start_position = self._position(cursor)
            while True:
                sql, args = self._query(cursor)
                rows = await pool.fetch(sql, *args)
                self._mark_ready()
                if rows:
                    now, ts = time.time(), self.timestamp_column is not None
                    events = [self._event(row, now, ts) for row in rows]
                    last = rows[-1]
                    cursor = (last[4], last[0]) if ts else (last[0],)
                    yield events
                if len(rows) < self.batch_size:
                    await self._wait(wakeups)

    def _position(self, cursor: tuple[Any, ...]) -> Position:
        return f"{cursor[0].isoformat()}|{cursor[1]}" if self.timestamp_column else int(cursor[0])

    def _event(self, row: Any, now: float, ts: bool) -> Event:
        ident, data, key, etype = row[0], row[1], row[2], row[3]
        position: Position = f"{row[4].isoformat()}|{ident}" if ts else ident
        if data is not None and not isinstance(data, str | bytes):
            data = str(data)
        return Event(
            position,
            self.type_name if etype is None else str(etype),
            data,
            now,
            None if key is None else str(key),
        )

    @contextlib.asynccontextmanager
    async def _wakeups(self) -> AsyncIterator[Subscription | None]:
        if self.notify_channel is None:
            yield None
            return
        # maxsize 1: notifications only say "look again", so the latest one is all that matters.
        sub = await listener_for(self.config).subscribe(self.notify_channel, maxsize=1)
        try:
            yield sub
        finally:
            await sub.close()

    async def _wait(self, wakeups: Subscription | None) -> None:
        if wakeups is None:
            await asyncio.sleep(self.poll_interval)
            return
        try:
            await asyncio.wait_for(anext(wakeups), self.poll_interval)
        except TimeoutError:
            pass
        except StopAsyncIteration:
            await asyncio.sleep(self.poll_interval)  # the listener was closed: poll from now on
