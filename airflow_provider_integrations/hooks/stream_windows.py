"""Windows of a stream described by a spec: the reading loop the trigger and the worker share.

:class:`StreamWindows` opens the spec's source after a position and hands out one window at a time,
with an idle timeout; :func:`record` / :func:`restore` turn events into plain data and back (trigger
events and deferred tasks carry only JSON); :func:`is_fatal` tells a stream error retrying cannot fix.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal, NotRequired, TypedDict, cast

from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_provider_integrations.exceptions import ConnectionConfigError
from airflow_provider_integrations.hooks.streams import StreamSpec, build_source
from airflow_provider_integrations.http.errors import HttpError
from airflow_provider_integrations.postgres.errors import PgError
from airflow_provider_integrations.streaming import (
    Event,
    Position,
    Source,
    StreamConfigError,
    StreamProtocolError,
    Window,
    WindowSpec,
    windows,
)
from airflow_provider_integrations.streaming.base import StreamSource

__all__ = ["EventRecord", "Outcome", "StreamWindows", "is_fatal", "record", "restore"]

Outcome = Literal["window", "end", "idle"]


class EventRecord(TypedDict):
    """One event as plain data. ``encoding``: ``data`` was bytes, as UTF-8 text or as base64."""

    position: Position | None
    type: str
    key: str | None
    data: str
    received_at: float
    encoding: NotRequired[Literal["utf-8", "base64"]]


def record(event: Event) -> EventRecord:
    """``event`` as plain data; resolving a position read from JSON may raise :class:`StreamProtocolError`."""
    data = event.data
    out = EventRecord(
        position=event.position, type=event.type, key=event.key, data="", received_at=event.received_at
    )
    if isinstance(data, bytes):
        try:
            out["data"], out["encoding"] = data.decode(), "utf-8"
        except UnicodeDecodeError:
            out["data"], out["encoding"] = base64.b64encode(data).decode("ascii"), "base64"
    else:
        out["data"] = data if isinstance(data, str) else str(data)
    return out


def restore(rec: Mapping[str, Any]) -> Event:
    """The :class:`Event` a record was made from (bytes data comes back as bytes)."""
    data: str | bytes = rec["data"]
    encoding = rec.get("encoding")
    if encoding == "utf-8":
        data = rec["data"].encode()
    elif encoding == "base64":
        data = base64.b64decode(rec["data"])
    return Event(rec["position"], rec["type"], data, rec["received_at"], rec["key"])


def is_fatal(exc: BaseException) -> bool:
    """Whether retrying the task cannot help: bad settings, a refused request, a broken stream format."""
    if isinstance(exc, ConnectionConfigError | StreamConfigError | StreamProtocolError):
        return True
    if isinstance(exc, AirflowNotFoundException):
        return True  # the connection does not exist
    return isinstance(exc, HttpError | PgError) and not exc.retriable


class _IdleGuard:
    """Stands in for the source in :func:`windows`: a wait for events longer than ``idle_timeout``
    reads as the end of the stream, so the loop flushes what it holds and stops."""

    def __init__(self, source: Source, idle_timeout: float | None) -> None:
        self.source = source
        self.idle_timeout = idle_timeout
        self.idle = False

    async def read_batch(
        self, max_events: int | None = None, timeout: float | None = None
    ) -> list[Event] | None:
        # windows() waits without a timeout for a window's first event (and, without max_seconds, for
        # every later one): exactly the waits an idle timeout bounds.
        if timeout is None and self.idle_timeout is not None:
            got = await self.source.read_batch(max_events, self.idle_timeout)
            if got == []:
                self.idle = True
                return None
            return got
        return await self.source.read_batch(max_events, timeout)


class StreamWindows:
    """``async with StreamWindows(spec, window, position) as reader``: ``await reader.next()`` per window.

    Opens the spec's source after ``position``; :meth:`next` returns ``("window", window)``, or
    ``("end", None)`` when the stream ended, or ``("idle", None)`` after ``idle_timeout`` seconds
    without an event (a partly filled window is returned first, its reason ``"idle"``).
    """

    def __init__(
        self,
        spec: StreamSpec,
        window: WindowSpec,
        position: Position | None,
        idle_timeout: float | None = None,
    ) -> None:
        self.spec = spec
        self.window = window
        self.position = position
        self.idle_timeout = idle_timeout
        self.source: StreamSource | None = None
        self._guard: _IdleGuard | None = None
        self._windows: AsyncIterator[Window] | None = None
        self.last_reason: str | None = None

    async def __aenter__(self) -> StreamWindows:
        source = await build_source(self.spec)
        await source.open(self.position).start()
        self.source = source
        self._guard = _IdleGuard(source, self.idle_timeout)
        return self

    async def next(self) -> tuple[Outcome, Window | None]:
        assert self._guard is not None, "use 'async with StreamWindows(...)'"
        if self._windows is None:
            self._guard.idle = False
            # windows() only calls read_batch on its source: the guard is enough of one.
            self._windows = windows(cast(Source, self._guard), self.window)
        try:
            window = await anext(self._windows)
        except StopAsyncIteration:
            self._windows = None
            return ("idle" if self._guard.idle else "end"), None
        self.last_reason = window.reason
        if self._guard.idle:
            self.last_reason = "idle"
            await self._close_windows()  # it has returned its last window; the next call starts anew
        return "window", window

    async def _close_windows(self) -> None:
        pending, self._windows = self._windows, None
        aclose = getattr(pending, "aclose", None)
        if aclose is not None:
            await aclose()

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self._close_windows()
        finally:
            if self.source is not None:
                await self.source.close()
