"""The webhook event log: external events kept per source, once per ``webhook-id``, read in order.

A callback (``store``) is one-shot: one task try waits for one answer. An *event* is part of a stream a
partner keeps sending (``order.created``, ``export.ready``...), which several consumers read at their own
pace, so events live in an append-only log::

    source     seq  webhook_id   type            payload (encrypted)   received_at
    partner      1  msg_2x8...   order.created   ...                   ...
    partner      2  msg_9fa...   export.ready    ...                   ...

Contract, the same on SQLite and PostgreSQL:

* :meth:`EventLog.append` is idempotent per ``(source, webhook_id)``. The first append gets the source's
  next sequence number and returns ``accepted`` only once it is committed; every later append of the same
  id (a partner's retry) changes nothing and returns ``duplicate`` with the original number.
* Sequence numbers per source run 1, 2, 3... and are allocated under the source's counter row lock, so
  they commit in order: a reader that saw ``n`` committed has seen everything below ``n``. (A serial
  column does not promise that: two writers can commit 12 before 11, and a reader at 12 skips 11.)
* :meth:`EventLog.read` returns the events after a cursor, in order; :meth:`EventLog.follow` waits for
  more, woken by NOTIFY (PostgreSQL, the process's one shared LISTEN connection) or by one shared poll
  of the sources' counters (SQLite).
* Consumers keep their cursor in the log: :meth:`EventLog.start_consumer` creates it (``earliest``: before
  every retained event, ``latest``: after the current last one) or returns the stored one, and
  :meth:`EventLog.commit` only ever moves it forward.
* :meth:`EventLog.cleanup_expired` deletes events older than the retention. A deleted event's
  ``webhook-id`` would be accepted again, but its signature timestamp is long outside the receiver's
  tolerance by then, so a replay is refused before it reaches the log.

The payload is encrypted at rest with the store's :class:`PayloadCodec`, bound to ``source`` and
``webhook-id``, so a ciphertext copied onto another row does not decrypt.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import re
from abc import abstractmethod
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal, TypedDict

from airflow_provider_integrations.webhooks.crypto import PayloadCodec
from airflow_provider_integrations.webhooks.errors import WebhookConfigError
from airflow_provider_integrations.webhooks.store import (
    CallbackStore,
    PostgresCallbackStore,
    SqliteCallbackStore,
    store_from_url,
)
from airflow_provider_integrations.webhooks.store.base import StoreBase, utcnow

__all__ = [
    "DEFAULT_RETENTION",
    "START_POSITIONS",
    "AppendOutcome",
    "AppendResult",
    "Event",
    "EventLog",
    "EventPayload",
    "StartAt",
    "check_source",
    "event_log_for",
    "event_log_from_url",
]

#: How long :meth:`EventLog.cleanup_expired` keeps events (and so dedups their ``webhook-id``).
DEFAULT_RETENTION: Final = timedelta(days=7)
DEFAULT_BATCH: Final = 100
#: A follower re-reads after this many idle seconds even without a wake-up (belt and braces).
IDLE_RECHECK: Final = 30.0
StartAt = Literal["earliest", "latest"]
START_POSITIONS: Final = ("earliest", "latest")
# No whitespace: NOTIFY payloads carry sources space-separated. Fits connection ids and URL segments.
_SOURCE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


def check_source(source: object, field: str = "source") -> str:
    """``source`` if it is a valid source name, else :class:`WebhookConfigError` naming ``field``."""
    if not isinstance(source, str) or _SOURCE.fullmatch(source) is None:
        raise WebhookConfigError(field, "1 to 128 characters of [A-Za-z0-9_.:-]", value=source)
    return source


class AppendOutcome(str, enum.Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class AppendResult:
    outcome: AppendOutcome
    seq: int  # the event's sequence number (the original one for a duplicate)


class EventPayload(TypedDict):
    """An event as it travels in a ``TriggerEvent`` and in the asset event's ``extra["payload"]``."""

    source: str
    seq: int
    event_id: str  # the webhook-id
    type: str
    received_at: str  # ISO 8601, UTC
    payload: Any


@dataclass(frozen=True, slots=True)
class Event:
    source: str
    seq: int
    webhook_id: str
    type: str
    payload: Any  # parsed JSON
    received_at: datetime

    def as_payload(self) -> EventPayload:
        return EventPayload(
            source=self.source,
            seq=self.seq,
            event_id=self.webhook_id,
            type=self.type,
            received_at=self.received_at.isoformat(),
            payload=self.payload,
        )


def associated_data(source: str, webhook_id: str) -> str:
    """What a stored payload is bound to (the codec's associated data)."""
    return f"event:{source}:{webhook_id}"


class EventLog(StoreBase):
    """Where events live; use one instance per process and event loop, opened with ``async with``."""

    async def append(
        self, source: str, webhook_id: str, event_type: str, body: bytes, *, now: datetime | None = None
    ) -> AppendResult:
        """Store ``body`` (the raw JSON) as the event ``webhook_id`` of ``source``; see the module doc."""
        blob = self.codec.encode(associated_data(source, webhook_id), body)
        return await self._append(source, webhook_id, event_type, blob, now or utcnow())

    @abstractmethod
    async def read(self, source: str, after: int, *, limit: int = DEFAULT_BATCH) -> list[Event]:
        """Up to ``limit`` events of ``source`` with ``seq > after``, in order."""

    @abstractmethod
    async def last_seq(self, source: str) -> int:
        """The sequence number of the source's newest event (0 if none ever came)."""

    async def start_consumer(self, consumer: str, source: str, start_at: StartAt) -> int:
        """The consumer's cursor, created at ``start_at`` if it has none. A consumer reads one source:
        naming another raises :class:`WebhookConfigError`."""
        stored_source, seq = await self._start_consumer(consumer, source, latest=start_at == "latest")
        if stored_source != source:
            raise WebhookConfigError(
                "consumer", f"a consumer name not already reading source {stored_source!r}", value=consumer
            )
        return int(seq)

    @abstractmethod
    async def commit(self, consumer: str, seq: int) -> None:
        """Move the consumer's cursor to ``seq``; never backwards."""

    async def cleanup_expired(
        self, now: datetime | None = None, *, retention: timedelta = DEFAULT_RETENTION
    ) -> int:
        """Delete events received more than ``retention`` before ``now``; return how many."""
        return await self._delete_before((now or utcnow()) - retention)

    @abstractmethod
    async def _append(
        self, source: str, webhook_id: str, event_type: str, blob: bytes, at: datetime
    ) -> AppendResult:
        """Append the encrypted ``blob``, received ``at``; answer only once it is committed."""

    @abstractmethod
    async def _start_consumer(self, consumer: str, source: str, *, latest: bool) -> tuple[str, int]:
        """The consumer's stored ``(source, cursor)``, created (at the source's end if ``latest``) if new."""

    @abstractmethod
    async def _delete_before(self, cutoff: datetime) -> int: ...

    async def follow(
        self, source: str, after: int, *, limit: int = DEFAULT_BATCH, idle_recheck: float = IDLE_RECHECK
    ) -> AsyncGenerator[list[Event], None]:
        """Batches of the events after ``after``, forever: what is stored first, then each new one as it
        commits. Close it (``contextlib.aclosing``) to stop waiting."""
        position = after
        async with self._feed().watch(source) as wake:
            # The feed is live before the first read: an event committed before a read is in it, one
            # committed after wakes us. Clearing before reading keeps a wake-up that lands mid-read.
            while True:
                wake.clear()
                events = await self.read(source, position, limit=limit)
                if events:
                    position = events[-1].seq
                    yield events
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), idle_recheck)

    def _event(
        self, source: str, seq: int, webhook_id: str, event_type: str, blob: bytes, received_at: datetime
    ) -> Event:
        payload = json.loads(self.codec.decode(associated_data(source, webhook_id), blob))
        return Event(source, seq, webhook_id, event_type, payload, received_at)


def event_log_for(store: CallbackStore) -> EventLog:
    """An event log (not yet opened) in the same database as ``store``, with the same payload keys."""
    # Imported here: the backends import this module.
    from airflow_provider_integrations.webhooks.store.events_postgres import PostgresEventLog
    from airflow_provider_integrations.webhooks.store.events_sqlite import SqliteEventLog

    if isinstance(store, SqliteCallbackStore):
        return SqliteEventLog(store.path, codec=store.codec)
    if isinstance(store, PostgresCallbackStore):
        return PostgresEventLog(store.config, schema=store.schema, codec=store.codec)
    raise WebhookConfigError(
        "store", "a SqliteCallbackStore or PostgresCallbackStore", value=type(store).__name__
    )


def event_log_from_url(url: str, *, codec: PayloadCodec | None = None) -> EventLog:
    """The event log of the store ``url`` names (the forms of :func:`store_from_url`)."""
    return event_log_for(store_from_url(url, codec=codec))
