"""Count, byte and tumbling time windows, with the flush on timeout, over a source the test feeds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator

import pytest

from airflow_provider_integrations.streaming import Event, StreamConfigError, Window, WindowSpec, windows
from airflow_provider_integrations.streaming.base import StreamSource
from airflow_provider_integrations.streaming.events import Position


class FeedSource(StreamSource):
    """A real source whose "server" is the test: each list put on ``feed`` is one read; ``None`` ends it."""

    def __init__(self) -> None:
        super().__init__("feed")
        self.feed: asyncio.Queue[list[Event] | None] = asyncio.Queue()
        self.seq = 0

    async def _stream(self, position: Position | None) -> AsyncGenerator[list[Event], None]:
        while (batch := await self.feed.get()) is not None:
            yield batch
        self._finished = True

    def send(self, count: int, size: int = 10) -> None:
        batch = []
        for _ in range(count):
            self.seq += 1
            batch.append(Event(self.seq, "t", b"x" * size, time.time()))
        self.feed.put_nowait(batch)

    def end(self) -> None:
        self.feed.put_nowait(None)


def positions(window: Window) -> list[Position | None]:
    return [e.position for e in window.events]


async def test_count_windows_split_reads_and_keep_order() -> None:
    source = FeedSource()
    for _ in range(7):
        source.send(150)  # reads that straddle window boundaries
    source.end()
    async with source:
        got = [w async for w in windows(source, WindowSpec(max_events=100))]
    assert [len(w) for w in got] == [100] * 10 + [50]
    assert [w.reason for w in got] == ["count"] * 10 + ["end"]
    assert [p for w in got for p in positions(w)] == list(range(1, 1051))
    assert (got[3].first_position, got[3].last_position) == (301, 400)


async def test_byte_windows_stay_under_the_limit_and_an_oversized_event_stands_alone() -> None:
    source = FeedSource()
    source.send(25, size=100)
    source.send(1, size=1000)  # larger than the limit
    source.send(5, size=100)
    source.end()
    async with source:
        got = [w async for w in windows(source, WindowSpec(max_bytes=350))]
    assert [w.size for w in got] == [300] * 8 + [100, 1000, 350 - 50, 200]
    assert [len(w) for w in got] == [3] * 8 + [1, 1, 3, 2]
    assert all(w.size <= 350 or len(w) == 1 for w in got)
    assert [p for w in got for p in positions(w)] == list(range(1, 32))


async def test_a_partial_count_window_is_flushed_on_timeout() -> None:
    source = FeedSource()
    async with source:
        stream = windows(source, WindowSpec(max_events=100, max_seconds=0.2))
        source.send(30)
        started = time.monotonic()
        # The source stays silent until the window has come out: only the timeout can close it.
        window = await asyncio.wait_for(anext(stream), 5)
        waited = time.monotonic() - started
        assert (len(window), window.reason) == (30, "time")
        assert 0.15 <= waited < 2
        assert window.closed_at - window.opened_at >= 0.15
        source.send(100)
        assert (await anext(stream)).reason == "count"
        source.end()
        assert [w async for w in stream] == []


async def test_tumbling_time_windows_close_on_time_with_events_still_coming() -> None:
    source = FeedSource()

    async def produce() -> None:
        for _ in range(40):
            source.send(5)
            await asyncio.sleep(0.01)  # the producer's pace, not synchronisation
        source.end()

    async with source:
        producer = asyncio.create_task(produce())
        got = [w async for w in windows(source, WindowSpec(max_seconds=0.1))]
        await producer
    assert sum(len(w) for w in got) == 200
    assert [p for w in got for p in positions(w)] == list(range(1, 201))
    assert len(got) >= 3 and all(w.reason == "time" for w in got[:-1])
    assert all(w.closed_at - w.opened_at < 0.1 + 0.3 for w in got[:-1])  # loose: a busy machine


async def test_the_last_window_is_flushed_at_the_end_and_empty_windows_never_appear() -> None:
    source = FeedSource()
    source.end()
    async with source:
        assert [w async for w in windows(source, WindowSpec(max_events=5, max_seconds=0.05))] == []


async def test_source_errors_propagate_through_windows() -> None:
    class Failing(FeedSource):
        async def _stream(self, position: Position | None) -> AsyncGenerator[list[Event], None]:
            yield [Event(1, "t", b"x", 0.0)]
            raise StreamConfigError("demo", "nothing", 0)

    source = Failing()
    async with source:
        with pytest.raises(StreamConfigError, match="demo"):
            [w async for w in windows(source, WindowSpec(max_events=10, max_seconds=5))]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "WindowSpec"),
        ({"max_events": 0}, "max_events"),
        ({"max_bytes": True}, "max_bytes"),
        ({"max_seconds": -1}, "max_seconds"),
        ({"max_events": "10"}, "max_events"),
    ],
)
def test_window_spec_names_the_bad_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(StreamConfigError) as caught:
        WindowSpec(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field and "expected" in str(caught.value)
