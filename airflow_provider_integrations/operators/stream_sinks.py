"""What ``StreamBatchOperator`` hands each window to: a :class:`StreamBatch`, given to a sink.

A sink is either a plain callable ``fn(batch)`` (run on the worker) or an object with
``async def write(batch)`` such as :class:`PostgresSink`. The checkpoint is committed only after the
sink returned, so a crash replays the batch: make the sink idempotent (an upsert keyed by the event id)
and the result is the same as exactly-once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, runtime_checkable

from airflow_provider_integrations.hooks.postgres import AsyncPostgresHook
from airflow_provider_integrations.postgres.bulk import copy_records, upsert_records
from airflow_provider_integrations.streaming import Event, Position, StreamConfigError

__all__ = ["PostgresSink", "Sink", "SinkFunction", "StreamBatch"]

#: Column sources that are event attributes rather than fields of the event's JSON data.
ATTRIBUTES: Final = ("$position", "$type", "$key", "$data", "$received_at", "$stream")


@dataclass(frozen=True)
class StreamBatch:
    """One window of a stream, ready to process.

    ``from_position`` is where it started (the committed checkpoint); ``reason`` why the window closed
    (``count``, ``bytes``, ``time``, ``end`` or ``idle``); ``opened_at``/``closed_at`` wall-clock seconds.
    """

    stream: str
    consumer: str
    events: list[Event]
    from_position: Position | None
    reason: str | None = None
    opened_at: float | None = None
    closed_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def first_position(self) -> Position | None:
        return self.events[0].position if self.events else None

    @property
    def last_position(self) -> Position | None:
        """What is committed once the sink has returned."""
        return self.events[-1].position if self.events else None

    @property
    def size(self) -> int:
        return sum(event.size for event in self.events)

    def json(self) -> list[Any]:
        """Each event's data parsed as JSON."""
        return [event.json() for event in self.events]

    def __len__(self) -> int:
        return len(self.events)


SinkFunction = Callable[[StreamBatch], Any]


@runtime_checkable
class Sink(Protocol):
    """An async sink; its result (counts, say) is summed into the task's summary when it is a mapping."""

    async def write(self, batch: StreamBatch) -> Mapping[str, int] | None: ...


def _text(data: Any) -> Any:
    return data.decode() if isinstance(data, bytes) else data


class PostgresSink:
    """Write each batch to a PostgreSQL table in one transaction: an upsert keyed by ``keys``, or COPY.

    :param table: the target table (``schema`` for its schema).
    :param columns: ``{column: source}``; a source is a top-level field of the event's JSON data
        (``"seq"``) or an event attribute: ``$position``, ``$type``, ``$key``, ``$data`` (the raw
        text, for a ``text``/``json``/``jsonb`` column), ``$received_at`` (a timestamp), ``$stream``.
    :param keys: the columns of a unique constraint: rows are upserted on them (the idempotent,
        effectively-once mode); duplicates inside one batch keep the last. ``None`` appends with COPY.
    :param postgres_conn_id: a connection of the standard ``postgres`` type.

    ``table`` and ``schema`` are templated (the operator renders its sink).
    """

    template_fields: Sequence[str] = ("table", "schema")

    def __init__(
        self,
        *,
        table: str,
        columns: Mapping[str, str],
        keys: Sequence[str] | None = None,
        postgres_conn_id: str = AsyncPostgresHook.default_conn_name,
        schema: str | None = None,
    ) -> None:
        if not isinstance(table, str) or not table:
            raise StreamConfigError("sink.table", "a table name", table)
        if not isinstance(columns, Mapping) or not columns:
            raise StreamConfigError(
                "sink.columns", "a non-empty {column: field or $attribute} mapping", columns
            )
        for column, source in columns.items():
            if (
                not isinstance(source, str)
                or not source
                or (source.startswith("$") and source not in ATTRIBUTES)
            ):
                raise StreamConfigError(
                    f"sink.columns.{column}", f"a JSON field name or one of {', '.join(ATTRIBUTES)}", source
                )
        if keys is not None and (isinstance(keys, str) or not keys or any(k not in columns for k in keys)):
            raise StreamConfigError("sink.keys", f"a non-empty list of columns out of {list(columns)}", keys)
        self.table = table
        self.columns = dict(columns)
        self.keys = list(keys) if keys is not None else None
        self.postgres_conn_id = postgres_conn_id
        self.schema = schema

    def row(self, event: Event, stream: str) -> tuple[Any, ...]:
        doc: Any = None
        values: list[Any] = []
        for source in self.columns.values():
            if source == "$position":
                values.append(event.position)
            elif source == "$type":
                values.append(event.type)
            elif source == "$key":
                values.append(event.key)
            elif source == "$data":
                values.append(_text(event.data))
            elif source == "$received_at":
                values.append(dt.datetime.fromtimestamp(event.received_at, dt.UTC))
            elif source == "$stream":
                values.append(stream)
            else:
                if doc is None:
                    doc = event.json()
                values.append(doc.get(source) if isinstance(doc, dict) else None)
        return tuple(values)

    async def write(self, batch: StreamBatch) -> dict[str, int]:
        rows = [self.row(event, batch.stream) for event in batch.events]
        columns = list(self.columns)
        async with AsyncPostgresHook(self.postgres_conn_id).pool() as pool:
            if self.keys is None:
                loaded = await copy_records(pool, self.table, columns, rows, schema=self.schema)
                return {"inserted": loaded}
            # ON CONFLICT cannot touch one row twice in a statement: keep each key's last row.
            at = [columns.index(k) for k in self.keys]
            unique = list({tuple(row[i] for i in at): row for row in rows}.values())
            result = await upsert_records(pool, self.table, columns, unique, self.keys, schema=self.schema)
        return {"inserted": result.inserted, "updated": result.updated, "unchanged": result.unchanged}

    def __repr__(self) -> str:
        mode = f"upsert on {self.keys}" if self.keys else "append"
        return f"PostgresSink({self.postgres_conn_id!r}, {self.table!r}, {mode})"
