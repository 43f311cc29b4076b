"""``StreamBatchOperator``: batches from a stream, processed and checkpointed (at-least-once).

Per window: the task loads the committed checkpoint of ``(stream, consumer)``, waits for the window
(in the triggerer when deferrable: :class:`~.triggers.streams.StreamWindowTrigger`), hands it to the
sink, and only then commits the window's last position. A crash anywhere before the commit replays
the window from the same position; an idempotent sink (:class:`PostgresSink` with ``keys``) absorbs
the replay, so the destination ends up as if each event was written once.

``max_windows`` lets one task instance process several windows (deferring again between them); the task
also stops when the stream ends, or after ``idle_timeout`` seconds without an event. Run one task
instance per consumer at a time (``max_active_runs=1``): two would each commit their own progress.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, Context, conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_integrations.bridge import run_sync
from airflow_provider_integrations.hooks.stream_checkpoints import check_store_url, open_checkpoint
from airflow_provider_integrations.hooks.stream_windows import StreamWindows, is_fatal, restore
from airflow_provider_integrations.hooks.streams import StreamSpec, window_from_spec
from airflow_provider_integrations.operators.stream_sinks import PostgresSink, Sink, SinkFunction, StreamBatch
from airflow_provider_integrations.streaming import Event, Position, StreamConfigError, WindowSpec
from airflow_provider_integrations.triggers.streams import (
    DEFAULT_INLINE_BYTES,
    StreamWindowTrigger,
    WindowEvent,
)

if TYPE_CHECKING:
    import jinja2

__all__ = ["PostgresSink", "Sink", "StreamBatch", "StreamBatchOperator"]


@dataclass
class _Progress:
    """What one task instance has done so far; travels through the trigger between windows."""

    windows: int = 0
    events: int = 0
    bytes: int = 0
    first_position: Position | None = None
    last_position: Position | None = None
    max_latency: float = 0.0
    sink: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any] | None) -> _Progress:
        return cls(**doc) if doc else cls()

    def add(self, batch: StreamBatch, result: Any, committed_at: float) -> None:
        self.windows += 1
        self.events += len(batch)
        self.bytes += batch.size
        if self.first_position is None:
            self.first_position = batch.first_position
        if batch.last_position is not None:
            self.last_position = batch.last_position
        if batch.opened_at is not None:
            self.max_latency = max(self.max_latency, round(committed_at - batch.opened_at, 3))
        if isinstance(result, Mapping):
            for name, count in result.items():
                if isinstance(count, int) and not isinstance(count, bool):
                    self.sink[name] = self.sink.get(name, 0) + count


class StreamBatchOperator(BaseOperator):
    """Read windows of a stream, hand each to ``sink``, then commit its checkpoint.

    :param source: a stream spec (:class:`~airflow_provider_integrations.hooks.streams.StreamSpec` or
        its mapping form, templated), e.g. ``{"kind": "sse", "conn_id": "partner", "path": "/events"}``.
    :param sink: ``fn(batch)`` run on the worker, or an object with ``async def write(batch)`` such as
        :class:`PostgresSink`. Its mapping results (row counts) are summed into the summary.
    :param window: a :class:`WindowSpec` or ``{"max_events", "max_bytes", "max_seconds"}``; ``max_seconds``
        is also the flush timeout of a count or byte window.
    :param consumer: the checkpoint's consumer name (templated); default ``<dag_id>.<task_id>``.
    :param max_windows: windows one task instance processes before it succeeds.
    :param idle_timeout: succeed (after flushing a partial window) once no event came for this long.
    :param checkpoint_store: a store URL overriding ``[integrations] stream_checkpoints``.
    :param max_inline_bytes: larger windows travel from the triggerer as positions and are read again
        on the worker (0: always; keeps event data out of the metadata database).
    :param reread_timeout: seconds the worker waits for the events of a window it reads again.
    :param wait_timeout: how long one deferral may wait for its window (None: no limit).
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``); False reads
        on the worker with the same code.
    :return: a summary: ``windows``, ``events``, ``bytes``, ``first_position``, ``last_position``,
        ``max_latency`` (seconds from a window's first event to its commit), ``sink`` (summed counts),
        ``stopped`` (``max_windows``, ``end`` or ``idle``), ``stream``, ``consumer``.
    """

    template_fields: Sequence[str] = ("source", "consumer", "checkpoint_store")
    template_fields_renderers = {"source": "json"}
    ui_color = "#e0f2fe"

    def __init__(
        self,
        *,
        source: StreamSpec | Mapping[str, Any],
        sink: Sink | SinkFunction,
        window: WindowSpec | Mapping[str, Any],
        consumer: str | None = None,
        max_windows: int = 1,
        idle_timeout: float | None = None,
        checkpoint_store: str | None = None,
        max_inline_bytes: int = DEFAULT_INLINE_BYTES,
        reread_timeout: float = 60.0,
        wait_timeout: timedelta | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=True),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # Validated at parse time, so a malformed spec fails the DAG import naming the field.
        self.source = StreamSpec.from_spec(source).to_spec()
        self.window = window_from_spec(window)
        if not isinstance(sink, Sink) and not callable(sink):
            raise StreamConfigError(
                "sink", "a callable fn(batch), or an object with async write(batch)", sink
            )
        self.sink = sink
        if isinstance(max_windows, bool) or not isinstance(max_windows, int) or max_windows < 1:
            raise StreamConfigError("max_windows", "an integer >= 1", max_windows)
        if checkpoint_store is not None and "{{" not in checkpoint_store:
            check_store_url(checkpoint_store, "checkpoint_store")
        # The trigger checks idle_timeout and max_inline_bytes; build one now so they fail here too.
        StreamWindowTrigger(
            source=self.source,
            window=self.window,
            idle_timeout=idle_timeout,
            max_inline_bytes=max_inline_bytes,
        )
        if not reread_timeout > 0:
            raise StreamConfigError("reread_timeout", "a number of seconds > 0", reread_timeout)
        self.consumer = consumer
        self.max_windows = max_windows
        self.idle_timeout = idle_timeout
        self.checkpoint_store = checkpoint_store
        self.max_inline_bytes = max_inline_bytes
        self.reread_timeout = float(reread_timeout)
        self.wait_timeout = wait_timeout
        self.deferrable = deferrable

    def render_template_fields(self, context: Context, jinja_env: jinja2.Environment | None = None) -> None:
        """Render the sink's own template fields too (``PostgresSink``'s table and schema).

        Not by listing ``sink`` in ``template_fields``: Airflow calls a callable template field, and a
        sink may well be a function.
        """
        jinja_env = jinja_env or self.get_template_env()
        super().render_template_fields(context, jinja_env)
        fields = getattr(self.sink, "template_fields", None)
        if fields and not callable(self.sink):
            self._do_render_template_fields(self.sink, fields, context, jinja_env, set())

    # -- helpers ------------------------------------------------------------------------------------

    @property
    def spec(self) -> StreamSpec:
        return StreamSpec.from_spec(self.source)  # after rendering: the rendered spec

    def _consumer(self) -> str:
        return self.consumer or f"{self.dag_id}.{self.task_id}"

    def _call(self, coro: Any) -> Any:
        try:
            return run_sync(coro)
        except Exception as exc:
            if is_fatal(exc):
                raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc
            raise

    async def _load(self) -> Position | None:
        async with open_checkpoint(self.spec.stream_name, self._consumer(), self.checkpoint_store) as cp:
            return await cp.load()

    async def _commit(self, position: Position | None) -> None:
        async with open_checkpoint(self.spec.stream_name, self._consumer(), self.checkpoint_store) as cp:
            await cp.commit(position)

    def _summary(self, progress: _Progress, stopped: str) -> dict[str, Any]:
        summary = {"stream": self.spec.stream_name, "consumer": self._consumer(), **asdict(progress)}
        summary["stopped"] = stopped
        self.log.info("Stream %s, consumer %s: %s", summary["stream"], summary["consumer"], summary)
        return summary

    def _handle(self, batch: StreamBatch, progress: _Progress) -> None:
        """Sink first, checkpoint second: the order that makes a crash replay rather than lose."""
        sink = self.sink
        result = self._call(sink.write(batch)) if isinstance(sink, Sink) else sink(batch)
        self._call(self._commit(batch.last_position))
        progress.add(batch, result, time.time())
        self.log.info(
            "Window %d: %d events (%s) up to position %r committed",
            progress.windows, len(batch), batch.reason, batch.last_position,
        )  # fmt: skip

    # -- execute ------------------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        position = self._call(self._load())
        self.log.info(
            "Stream %s: consumer %s resumes after %r", self.spec.stream_name, self._consumer(), position
        )
        if self.deferrable:
            self._defer(position, _Progress())
        return self._consume(position, _Progress())

    def _defer(self, position: Position | None, progress: _Progress) -> None:
        trigger = StreamWindowTrigger(
            source=self.source,
            window=self.window,
            from_position=position,
            idle_timeout=self.idle_timeout,
            max_inline_bytes=self.max_inline_bytes,
            carry=asdict(progress),
        )
        self.defer(trigger=trigger, method_name="execute_complete", timeout=self.wait_timeout)

    def _consume(self, position: Position | None, progress: _Progress) -> dict[str, Any]:
        """The non-deferrable mode: the trigger's reading loop, held open on the worker across windows."""
        reader = StreamWindows(self.spec, self.window, position, self.idle_timeout)
        self._call(reader.__aenter__())
        try:
            while progress.windows < self.max_windows:
                outcome, window = self._call(reader.next())
                if window is None:
                    return self._summary(progress, outcome)
                batch = StreamBatch(
                    self.spec.stream_name, self._consumer(), window.events, position,
                    reader.last_reason, window.opened_at, window.closed_at,
                )  # fmt: skip
                self._handle(batch, progress)
                position = progress.last_position
                if reader.last_reason in ("end", "idle"):
                    return self._summary(progress, reader.last_reason or "end")
        finally:
            run_sync(reader.__aexit__(None, None, None))
        return self._summary(progress, "max_windows")

    def execute_complete(self, context: Context, event: WindowEvent | None = None) -> Any:
        if event is None:
            raise AirflowException("the stream window trigger ended without an event")
        progress = _Progress.from_json(event["carry"])
        status = event["status"]
        if status == "error":
            message = f"stream {event['stream']}: {event['error_type']}: {event['message']}"
            if event["fatal"]:
                raise AirflowFailException(message)
            raise AirflowException(message)
        if status != "window":
            return self._summary(progress, status)
        batch = StreamBatch(
            event["stream"], self._consumer(), self._events(event), event["from_position"],
            event["reason"], event["opened_at"], event["closed_at"],
        )  # fmt: skip
        self._handle(batch, progress)
        if batch.reason in ("end", "idle") or progress.windows >= self.max_windows:
            return self._summary(progress, batch.reason if batch.reason in ("end", "idle") else "max_windows")
        self._defer(progress.last_position, progress)
        return None  # unreachable: defer() raises

    def _events(self, event: WindowEvent) -> list[Event]:
        if event["events"] is not None:
            return [restore(rec) for rec in event["events"]]
        events: list[Event] = self._call(self._reread(event["from_position"], event["count"]))
        if not events:
            raise AirflowException(
                f"stream {event['stream']}: the {event['count']} events after {event['from_position']!r} "
                f"could not be read again within {self.reread_timeout:.0f} s"
            )
        if len(events) != event["count"] or events[-1].position != event["last_position"]:
            self.log.warning(
                "Read %d events up to %r again; the triggerer saw %d up to %r (the stream changed)",
                len(events), events[-1].position, event["count"], event["last_position"],
            )  # fmt: skip
        return events

    async def _reread(self, position: Position | None, count: int) -> list[Event]:
        """The events of a window too large to travel inline, read again after ``position``."""
        async with StreamWindows(self.spec, WindowSpec(max_events=count), position, self.reread_timeout) as r:
            _, window = await r.next()
        return window.events if window is not None else []
