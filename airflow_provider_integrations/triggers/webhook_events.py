"""``WebhookEventTrigger``: signed webhook events from a partner start DAG runs through an ``AssetWatcher``.

::

    partner_orders = Asset("partner_orders", watchers=[AssetWatcher(
        name="partner_order_events",
        trigger=WebhookEventTrigger(source="partner", event_types=["order.*"],
                                    condition={"jmespath": "data.total", "gte": 100}),
    )])

    @dag(schedule=[partner_orders])
    def on_partner_order(): ...   # triggering_asset_events[...].extra["payload"] is an EventPayload

The receiver (the API-server plugin or the standalone service) verifies each ``POST /events/{source}``
and appends it to the event log in the webhook store (``[integrations] webhook_store``), once per
``webhook-id``. The trigger reads that log in sequence order and yields one event per new event whose
``type`` matches ``event_types`` (names or ``fnmatch`` patterns; ``None``: all) and whose body satisfies
``condition`` (an ``http.conditions`` condition). A source is named like the partner's signing
connection: the plugin verifies ``/events/<source>`` with the keys in that connection's password.

**Restarts.** The consumer's cursor lives in the event log, keyed by :attr:`consumer_key` (a stable digest
of the trigger's kwargs, or ``consumer=`` when given, so a definition can change without starting over).
``BaseEventTrigger.hash`` cannot key it: it is built on Python's ``hash()``, which is salted per process.
In the triggerer the trigger runs as a shared stream in *ack mode*: the cursor moves past an event only
once Airflow confirmed that the asset event derived from it is stored (or the filter dropped it). A
triggerer restarted after that neither replays nor skips; one killed in the second between storing an
asset event and the commit delivers that event once more (at least once), with the same ``event_id``.
``run()`` (``dag.test()``, or a trigger outside a shared stream) has no such confirmation and commits
once the triggerer took the event.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Final, cast
from urllib.parse import urlsplit

from airflow.triggers.base import BaseEventTrigger, TriggerEvent
from airflow.triggers.shared_stream import AdvanceItem, SharedStreamProducer

from airflow_provider_integrations.hooks.webhook_events import lease_event_log
from airflow_provider_integrations.hooks.webhooks import WebhookSettings
from airflow_provider_integrations.http.conditions import shared_predicate, validate
from airflow_provider_integrations.webhooks.errors import StoreUnavailableError, WebhookConfigError
from airflow_provider_integrations.webhooks.event_receiver import MAX_EVENT_TYPE_LENGTH
from airflow_provider_integrations.webhooks.events import (
    START_POSITIONS,
    Event,
    EventLog,
    StartAt,
    check_source,
)

__all__ = ["EventLogProducer", "WebhookEventTrigger"]

log = logging.getLogger(__name__)

STREAM: Final = "airflow_provider_integrations.webhook_events"
READ_BATCH: Final = 100
# Events handed to the triggerer and not yet resolved. Below the triggerer's subscriber queue bound
# (``shared_stream_subscriber_queue_size``, 1024), which fails a subscriber that falls behind: a
# backlog is read as fast as Airflow stores the asset events, never all at once.
MAX_IN_FLIGHT: Final = 256
MAX_BACKOFF: Final = 30.0
CLEANUP_INTERVAL: Final = 3600.0


def _check_types(event_types: Sequence[str] | None) -> list[str] | None:
    if event_types is None:
        return None
    if isinstance(event_types, str) or not isinstance(event_types, Sequence) or not event_types:
        raise WebhookConfigError("event_types", "a non-empty list of event types or patterns, or None")
    for i, kind in enumerate(event_types):
        if not isinstance(kind, str) or not kind.strip() or len(kind) > MAX_EVENT_TYPE_LENGTH:
            raise WebhookConfigError(f"event_types[{i}]", "an event type or fnmatch pattern", value=kind)
    return sorted(set(event_types))  # deterministic kwargs: the watcher's identity must not depend on order


class WebhookEventTrigger(BaseEventTrigger):
    """Yield one :class:`~airflow_provider_integrations.webhooks.events.EventPayload` per new matching
    event of ``source``, in sequence order.

    :param source: the source name in ``POST /events/{source}``.
    :param event_types: types or ``fnmatch`` patterns (``order.*``) to keep; ``None`` keeps all.
    :param condition: an ``http.conditions`` condition on the event body, e.g.
        ``{"jmespath": "data.total", "gte": 100}``.
    :param start_at: where a new consumer starts: ``earliest`` (every retained event) or ``latest``.
    :param consumer: name of the cursor; default: a digest of the other arguments.
    :param store: a ``[integrations] webhook_store`` URL for this trigger; default: that option.
    """

    def __init__(
        self,
        source: str,
        event_types: Sequence[str] | None = None,
        condition: Mapping[str, Any] | None = None,
        start_at: StartAt = "earliest",
        consumer: str | None = None,
        store: str | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.source = check_source(source)
        self.event_types = _check_types(event_types)
        if condition is not None:
            validate(condition, "condition")
        self.condition = dict(condition) if condition is not None else None
        if start_at not in START_POSITIONS:
            raise WebhookConfigError("start_at", f"one of {list(START_POSITIONS)}", value=start_at)
        self.start_at: StartAt = start_at
        self.consumer = None if consumer is None else check_source(consumer, "consumer")
        if store is not None:
            if not isinstance(store, str) or urlsplit(store).password:
                # Trigger kwargs are stored in the metadata database and shown in the UI.
                raise WebhookConfigError(
                    "store",
                    "a webhook_store URL without a password (postgres_conn://<conn id>, or PGPASSWORD)",
                )
            try:
                WebhookSettings(base_url=None, store_url=store)  # syntax only, no I/O
            except WebhookConfigError as exc:
                raise WebhookConfigError("store", exc.expected, value=exc.value) from None
        self.store = store

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "source": self.source,
                "event_types": self.event_types,
                "condition": self.condition,
                "start_at": self.start_at,
                "consumer": self.consumer,
                "store": self.store,
            },
        )

    @property
    def consumer_key(self) -> str:
        """Where the cursor lives in the event log: ``consumer``, or a digest stable across processes."""
        if self.consumer is not None:
            return self.consumer
        classpath, kwargs = self.serialize()
        canonical = json.dumps([classpath, kwargs], sort_keys=True, separators=(",", ":"))
        return "wh_" + hashlib.sha256(canonical.encode()).hexdigest()[:40]

    def matches(self, event: Event) -> bool:
        if self.event_types is not None and not any(
            fnmatch.fnmatchcase(event.type, pattern) for pattern in self.event_types
        ):
            return False
        return self.condition is None or shared_predicate(self.condition, "condition")(event.payload)

    # -- in the triggerer: one shared stream per consumer, in ack mode ------------------------------

    def shared_stream_key(self) -> tuple[str, str]:
        # One group per cursor: a second watcher of the source must not inherit another's position.
        return (STREAM, self.consumer_key)

    @classmethod
    def create_shared_stream_producer(cls, kwargs: dict[str, Any]) -> EventLogProducer:
        return EventLogProducer(cls(**kwargs))

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        async for event in shared_stream:
            if self.matches(event):
                yield TriggerEvent(dict(event.as_payload()))  # type: ignore[no-untyped-call]

    # -- standalone: dag.test(), or outside a shared stream ------------------------------------------

    async def run(self) -> AsyncIterator[TriggerEvent]:
        async with lease_event_log(self.store) as event_log:
            position = await event_log.start_consumer(self.consumer_key, self.source, self.start_at)
            async with contextlib.aclosing(
                event_log.follow(self.source, position, limit=READ_BATCH)
            ) as batches:
                async for batch in batches:
                    for event in batch:
                        if self.matches(event):
                            yield TriggerEvent(dict(event.as_payload()))  # type: ignore[no-untyped-call]
                            # Resumed: the triggerer took the event (no persistence signal here).
                            await event_log.commit(self.consumer_key, event.seq)
                    await event_log.commit(self.consumer_key, batch[-1].seq)


class EventLogProducer(SharedStreamProducer):
    """Reads the event log for one consumer and commits its cursor as Airflow confirms events stored."""

    def __init__(self, trigger: WebhookEventTrigger, *, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self.trigger = trigger
        self.max_in_flight = max_in_flight
        self.committed: int | None = None  # the cursor as last written (tests and logs)
        self._stack = contextlib.AsyncExitStack()
        self._log: EventLog | None = None
        self._in_flight = 0
        self._room = asyncio.Event()
        self._stalled = False
        self._next_cleanup = 0.0

    async def open_stream(self) -> AsyncIterator[tuple[Event, int]]:
        trigger, delay = self.trigger, 0.0
        # The lease outlives the stream: advances can still arrive while the group winds down.
        self._log = await self._stack.enter_async_context(lease_event_log(trigger.store))
        position: int | None = None
        while True:
            try:
                if position is None:
                    position = self.committed = await self._log.start_consumer(
                        trigger.consumer_key, trigger.source, trigger.start_at
                    )
                await self._clean_up(self._log)
                follow = self._log.follow(trigger.source, position, limit=READ_BATCH)
                async with contextlib.aclosing(follow) as batches:
                    async for batch in batches:
                        delay = 0.0
                        await self._clean_up(self._log)
                        for event in batch:
                            while self._in_flight >= self.max_in_flight:
                                self._room.clear()
                                await self._room.wait()
                            self._in_flight += 1
                            yield event, event.seq
                            position = event.seq
            except StoreUnavailableError as exc:
                # A database restart must not fail the watcher: back off, resume after the last event
                # handed out (the committed cursor is only ever moved by advance()).
                delay = min(MAX_BACKOFF, max(1.0, delay * 2))
                log.warning(
                    "event log of %r unavailable (%s); retrying in %.0f s", trigger.source, exc, delay
                )
                await asyncio.sleep(delay)

    async def _clean_up(self, event_log: EventLog) -> None:
        # Where no standalone receiver runs its clean-up loop, the watchers keep the log bounded: at
        # start, then at most hourly while events flow (a quiet source grows nothing to clean).
        now = asyncio.get_running_loop().time()
        if now >= self._next_cleanup:
            self._next_cleanup = now + CLEANUP_INTERVAL
            removed = await event_log.cleanup_expired()
            if removed:
                log.info("removed %d events older than the retention", removed)

    async def advance(self, batch: Sequence[AdvanceItem]) -> None:
        self._in_flight -= len(batch)
        self._room.set()
        if self._stalled or self._log is None:
            return
        upto: int | None = None
        for item in batch:
            outcome = item.outcome
            if outcome.failed or not (outcome.acked or outcome.rejected):
                # Not confirmed stored: the cursor stays before it for good (commits are cumulative),
                # so the next start of this consumer delivers it again.
                self._stalled = True
                log.warning(
                    "event %s of %r was not confirmed stored (%s); the cursor stays at %s",
                    item.broker_payload,
                    self.trigger.source,
                    outcome,
                    upto if upto is not None else self.committed,
                )
                break
            upto = cast(int, item.broker_payload)
        if upto is not None:
            await self._log.commit(self.trigger.consumer_key, upto)
            self.committed = upto

    async def aclose(self) -> None:
        await self._stack.aclose()
