"""``StreamEventTrigger``: events of a stream start DAG runs through an ``AssetWatcher``.

::

    orders = Asset("orders", watchers=[AssetWatcher(
        name="orders_created",
        trigger=StreamEventTrigger(
            source={"kind": "sse", "conn_id": "partner", "path": "/orders/events", "key_field": "customer"},
            event_types=["created"], condition={"jmespath": "total", "gte": 100},
        ),
    )])

One asset event per matching stream event (``per="event"``), or one per window holding its matching
events (``per="window"``, for busy streams). Events are filtered by type (names or ``fnmatch`` patterns)
and by an :mod:`~airflow_provider_integrations.http.conditions` condition on the JSON data. The payload
(``triggering_asset_events[...].extra["payload"]``) carries ``position``, ``type``, ``key`` and ``data``;
the scheduler may fold several asset events into one DAG run, so sort them by ``position`` there.

**One consumer per stream.** Watchers whose ``source``, ``per``, ``window``, ``consumer`` and
``checkpoint_store`` are equal share one Airflow 3.3 shared stream: one connection to the source and
one checkpoint, whatever their filters. The stream is read in order by that one reader, so events of
a key keep their order; the checkpoint is cumulative, so the stream advances in a single lane.

**Checkpoints (ack mode).** The position is committed only once Airflow confirmed that every watcher
stored the asset events it derived from the events before it (or filtered them out). A triggerer
killed before that replays those events from the checkpoint: delivery is at-least-once, so handle
events idempotently (keyed by ``position``). A watcher added later joins at the group's position.
``run()`` (``dag.test()``, or outside a shared stream) has no such confirmation: it commits an event's
position when the next event is asked for.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from typing import Any, Final, Literal

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_provider_integrations.hooks.stream_checkpoints import check_store_url, open_checkpoint
from airflow_provider_integrations.hooks.stream_windows import record
from airflow_provider_integrations.hooks.streams import StreamSpec, window_from_spec, window_to_spec
from airflow_provider_integrations.http.conditions import shared_predicate, validate
from airflow_provider_integrations.streaming import Event, StreamConfigError, StreamProtocolError, Window
from airflow_provider_integrations.triggers._stream_producer import StreamEventProducer, read_stream

__all__ = ["StreamEventProducer", "StreamEventTrigger"]

STREAM: Final = "airflow_provider_integrations.stream_events"
Per = Literal["event", "window"]


def _check_types(event_types: Sequence[str] | None) -> list[str] | None:
    if event_types is None:
        return None
    if isinstance(event_types, str) or not isinstance(event_types, Sequence) or not event_types:
        raise StreamConfigError(
            "event_types", "a non-empty list of event types or patterns, or None", event_types
        )
    for i, kind in enumerate(event_types):
        if not isinstance(kind, str) or not kind.strip():
            raise StreamConfigError(f"event_types[{i}]", "an event type or fnmatch pattern", kind)
    return sorted(set(event_types))  # deterministic kwargs: the watcher's identity must not depend on order


def _data(event: Event, limit: int) -> tuple[Any, bool]:
    """The event's data for a payload: parsed JSON (text if it is not JSON), or ``None`` if too large."""
    if event.size > limit:
        return None, True
    try:
        return event.json(), False
    except StreamProtocolError:
        text = record(event)["data"]
        return text, False


class StreamEventTrigger(BaseEventTrigger):
    """Yield one event per matching stream event, or per window of them; see the module docstring.

    :param source: a stream spec (mapping form or :class:`~.hooks.streams.StreamSpec`).
    :param event_types: event types or ``fnmatch`` patterns to keep; ``None`` keeps all.
    :param condition: an ``http.conditions`` condition on the event's JSON data.
    :param per: ``"event"`` or ``"window"`` (then ``window`` is required).
    :param window: ``{"max_events", "max_bytes", "max_seconds"}`` for ``per="window"``.
    :param consumer: the checkpoint's consumer name; default: a digest of the stream settings.
    :param checkpoint_store: a store URL overriding ``[integrations] stream_checkpoints``.
    :param max_payload_bytes: event data larger than this is left out of the payload (``truncated``).
    :param reopen_after: seconds to wait before reopening a stream the server ended.
    """

    def __init__(
        self,
        source: StreamSpec | Mapping[str, Any],
        event_types: Sequence[str] | None = None,
        condition: Mapping[str, Any] | None = None,
        per: Per = "event",
        window: Mapping[str, Any] | None = None,
        consumer: str | None = None,
        checkpoint_store: str | None = None,
        max_payload_bytes: int = 65_536,
        reopen_after: float = 30.0,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.spec = StreamSpec.from_spec(source)
        self.event_types = _check_types(event_types)
        if condition is not None:
            validate(condition, "condition")
        self.condition = dict(condition) if condition is not None else None
        if per not in ("event", "window"):
            raise StreamConfigError("per", "'event' or 'window'", per)
        if (window is None) != (per == "event"):
            raise StreamConfigError("window", "a window spec exactly when per='window'", window)
        self.per: Per = per
        self.window = window_to_spec(window_from_spec(window)) if window is not None else None
        if consumer is not None and (not isinstance(consumer, str) or not consumer.strip()):
            raise StreamConfigError("consumer", "a non-empty consumer name, or None", consumer)
        self.consumer = consumer
        self.checkpoint_store = (
            check_store_url(checkpoint_store, "checkpoint_store") if checkpoint_store else None
        )
        if (
            isinstance(max_payload_bytes, bool)
            or not isinstance(max_payload_bytes, int)
            or max_payload_bytes < 0
        ):
            raise StreamConfigError("max_payload_bytes", "an integer >= 0", max_payload_bytes)
        self.max_payload_bytes = max_payload_bytes
        if not (isinstance(reopen_after, int | float) and reopen_after > 0):
            raise StreamConfigError("reopen_after", "a number of seconds > 0", reopen_after)
        self.reopen_after = float(reopen_after)
        self._matches_condition = shared_predicate(self.condition, "condition") if self.condition else None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "source": self.spec.to_spec(),
                "event_types": self.event_types,
                "condition": self.condition,
                "per": self.per,
                "window": self.window,
                "consumer": self.consumer,
                "checkpoint_store": self.checkpoint_store,
                "max_payload_bytes": self.max_payload_bytes,
                "reopen_after": self.reopen_after,
            },
        )

    # -- identity: what the watchers of one group share ----------------------------------------------

    def _group(self) -> tuple[str, ...]:
        window = json.dumps(self.window, sort_keys=True)
        return (self.spec.digest(), self.per, window, self.checkpoint_store or "", self.consumer or "")

    @property
    def consumer_name(self) -> str:
        """The checkpoint's consumer: ``consumer``, or a digest stable across processes (not ``hash()``)."""
        if self.consumer is not None:
            return self.consumer
        return "se_" + hashlib.sha256("\n".join(self._group()).encode()).hexdigest()[:40]

    def shared_stream_key(self) -> tuple[str, ...]:
        # Filters are left out on purpose: watchers of one stream differing only in them share the reader.
        return (STREAM, *self._group())

    # -- filtering -----------------------------------------------------------------------------------

    def matches(self, event: Event) -> bool:
        if self.event_types is not None and not any(
            fnmatch.fnmatchcase(event.type, pattern) for pattern in self.event_types
        ):
            return False
        if self._matches_condition is None:
            return True
        try:
            return self._matches_condition(event.json())
        except StreamProtocolError:
            return False  # not JSON: a condition on its fields cannot hold

    def payload(self, raw: Event | Window) -> dict[str, Any] | None:
        """The trigger event's payload for a raw event or window, or ``None`` when nothing matches."""
        stream = self.spec.stream_name
        if isinstance(raw, Event):
            if not self.matches(raw):
                return None
            data, truncated = _data(raw, self.max_payload_bytes)
            return {
                "stream": stream, "position": raw.position, "type": raw.type, "key": raw.key, "data": data,
                "received_at": raw.received_at, "truncated": truncated,
            }  # fmt: skip
        matching = [event for event in raw.events if self.matches(event)]
        if not matching:
            return None
        events, budget, truncated = [], self.max_payload_bytes, False
        for event in matching:
            budget -= event.size
            if budget < 0:
                truncated = True
                break
            events.append({"position": event.position, "type": event.type, "key": event.key,
                           "data": _data(event, self.max_payload_bytes)[0]})  # fmt: skip
        return {
            "stream": stream, "first_position": raw.first_position, "last_position": raw.last_position,
            "count": len(matching), "window_count": len(raw), "events": events, "truncated": truncated,
        }  # fmt: skip

    # -- in the triggerer: one shared stream per group, in ack mode ----------------------------------

    @classmethod
    def create_shared_stream_producer(cls, kwargs: dict[str, Any]) -> StreamEventProducer:
        return StreamEventProducer(cls(**kwargs))

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        async for raw in shared_stream:
            payload = self.payload(raw)
            if payload is not None:
                yield TriggerEvent(payload)  # type: ignore[no-untyped-call]

    # -- standalone: dag.test(), or outside a shared stream ------------------------------------------

    async def run(self) -> AsyncGenerator[TriggerEvent, None]:
        checkpoint = open_checkpoint(self.spec.stream_name, self.consumer_name, self.checkpoint_store)
        async with checkpoint as cp, contextlib.aclosing(read_stream(self, await cp.load())) as stream:
            async for raw, position in stream:
                payload = self.payload(raw)
                if payload is not None:
                    yield TriggerEvent(payload)  # type: ignore[no-untyped-call]
                # Resumed: the triggerer took the event (there is no persistence signal here).
                await cp.commit(position)
