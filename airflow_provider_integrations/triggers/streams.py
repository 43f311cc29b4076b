"""``StreamWindowTrigger``: wait in the triggerer for a window of a stream, for ``StreamBatchOperator``.

The trigger opens the source *after* the position the task loaded from its checkpoint, waits for one
window (count, bytes, or ``max_seconds`` after its first event), and ends with one
:class:`WindowEvent`. It commits nothing: the task stores the window, then commits. A triggerer killed
mid-window is harmless; its replacement reopens the stream from the same position.

**Payload size.** Trigger events go through the metadata database (and the triggerer's log), so a
window travels *inline* only while its JSON stays under ``max_inline_bytes``. A larger window is sent
as positions only (``events`` is ``None``; ``from_position`` and ``count``), and the task reads the
same events again from the stream on the worker. Streams that cannot be replayed (LISTEN/NOTIFY, a
table tail starting at the end) are always inline; for them the window's byte limit is capped at
``max_inline_bytes`` instead. ``max_inline_bytes=0`` keeps event data out of the metadata database.

:class:`~.hooks.stream_windows.StreamWindows` is the reading loop, shared with the task's
non-deferrable mode.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncGenerator, Mapping
from typing import Any, Literal, TypedDict, cast

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_integrations.hooks.stream_windows import EventRecord, StreamWindows, is_fatal, record
from airflow_provider_integrations.hooks.streams import StreamSpec, window_from_spec, window_to_spec
from airflow_provider_integrations.streaming import Position, StreamConfigError, Window, WindowSpec
from airflow_provider_integrations.triggers._process import tune_process_once

__all__ = ["DEFAULT_INLINE_BYTES", "StreamWindowTrigger", "WindowEvent"]

#: Largest inline window (JSON bytes of its events) by default.
DEFAULT_INLINE_BYTES = 128 * 1024


class WindowEvent(TypedDict):
    """What the trigger yields: a window (``events`` inline, or ``None``: re-read), end, idle or error."""

    status: Literal["window", "end", "idle", "error"]
    stream: str
    from_position: Position | None
    first_position: Position | None
    last_position: Position | None
    count: int
    bytes: int
    reason: str | None
    opened_at: float | None
    closed_at: float | None
    events: list[EventRecord] | None
    carry: dict[str, Any] | None
    error_type: str | None
    message: str | None
    fatal: bool


def _event(status: str, stream: str, start: Position | None, carry: dict[str, Any] | None) -> WindowEvent:
    return WindowEvent(
        status=cast(Any, status), stream=stream, from_position=start, first_position=None, last_position=None,
        count=0, bytes=0, reason=None, opened_at=None, closed_at=None, events=None, carry=carry,
        error_type=None, message=None, fatal=False,
    )  # fmt: skip


class StreamWindowTrigger(BaseTrigger):
    """Wait for one window of ``source`` after ``from_position``.

    :param source: a stream spec (:class:`~airflow_provider_integrations.hooks.streams.StreamSpec` or
        its mapping form).
    :param window: a :class:`WindowSpec` or ``{"max_events", "max_bytes", "max_seconds"}``.
    :param from_position: read the events after this position (``None``: the stream's start).
    :param idle_timeout: end with ``status="idle"`` after this many seconds without an event.
    :param max_inline_bytes: largest window carried inline (JSON bytes); see the module docstring.
    :param carry: JSON echoed in the event (the task's progress; ``dag.test()`` drops defer kwargs).
    """

    def __init__(
        self,
        *,
        source: StreamSpec | Mapping[str, Any],
        window: WindowSpec | Mapping[str, Any],
        from_position: Position | None = None,
        idle_timeout: float | None = None,
        max_inline_bytes: int = DEFAULT_INLINE_BYTES,
        carry: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.spec = StreamSpec.from_spec(source)
        self.window = window_from_spec(window)
        if (
            isinstance(max_inline_bytes, bool)
            or not isinstance(max_inline_bytes, int)
            or max_inline_bytes < 0
        ):
            raise StreamConfigError("max_inline_bytes", "an integer >= 0", max_inline_bytes)
        if idle_timeout is not None and not (isinstance(idle_timeout, int | float) and idle_timeout > 0):
            raise StreamConfigError("idle_timeout", "a number of seconds > 0, or None", idle_timeout)
        self.from_position = from_position
        self.idle_timeout = idle_timeout
        self.max_inline_bytes = max_inline_bytes
        self.carry = dict(carry) if carry is not None else None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "source": self.spec.to_spec(),
                "window": window_to_spec(self.window),
                "from_position": self.from_position,
                "idle_timeout": self.idle_timeout,
                "max_inline_bytes": self.max_inline_bytes,
                "carry": self.carry,
            },
        )

    @property
    def inline_only(self) -> bool:
        return not self.spec.replayable_from(self.from_position)

    def effective_window(self) -> WindowSpec:
        """The window, its byte limit capped when it must travel inline."""
        if not self.inline_only:
            return self.window
        cap = max(self.max_inline_bytes, 1024)
        limit = cap if self.window.max_bytes is None else min(cap, self.window.max_bytes)
        return dataclasses.replace(self.window, max_bytes=limit)

    async def read(self) -> WindowEvent:
        """Wait for the window; errors become an ``error`` event (``fatal``: retrying cannot help)."""
        stream = self.spec.stream_name
        try:
            async with StreamWindows(
                self.spec, self.effective_window(), self.from_position, self.idle_timeout
            ) as reader:
                outcome, window = await reader.next()
                if window is None:
                    return _event(outcome, stream, self.from_position, self.carry)
                return self._payload(window, reader.last_reason)
        except Exception as exc:
            payload = _event("error", stream, self.from_position, self.carry)
            payload["error_type"], payload["message"] = type(exc).__name__, str(exc)
            payload["fatal"] = is_fatal(exc)
            return payload

    def _payload(self, window: Window, reason: str | None) -> WindowEvent:
        payload = _event("window", self.spec.stream_name, self.from_position, self.carry)
        size = window.size
        payload["first_position"], payload["last_position"] = window.first_position, window.last_position
        payload["count"], payload["bytes"], payload["reason"] = len(window), size, reason
        payload["opened_at"], payload["closed_at"] = window.opened_at, window.closed_at
        if self.inline_only or size <= self.max_inline_bytes:
            records = [record(event) for event in window.events]
            if self.inline_only or len(json.dumps(records)) <= self.max_inline_bytes:
                payload["events"] = records
        return payload

    async def run(self) -> AsyncGenerator[TriggerEvent, None]:
        tune_process_once()
        payload = await self.read()
        where = f"after {self.from_position!r}" if self.from_position is not None else "from the start"
        if payload["status"] == "error":
            self.log.warning("Stream %s %s: %s", payload["stream"], where, payload["message"])
        else:
            mode = "inline" if payload["events"] is not None else "positions only"
            self.log.info(
                "Stream %s %s: %s, %d events (%s)", payload["stream"], where, payload["status"],
                payload["count"], mode,
            )  # fmt: skip
        # Yielded after the source is closed: a triggerer that cancels us right after the event
        # (or dag.test()'s asyncio.run) finds nothing half-open.
        yield TriggerEvent(payload)  # type: ignore[no-untyped-call]
