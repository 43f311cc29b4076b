"""Group commit: how concurrent requests are gathered into batches (pure asyncio, no database)."""

from __future__ import annotations

import asyncio

import pytest

from airflow_provider_integrations.webhooks.store._batch import Batcher


async def test_a_lone_request_runs_at_once_and_load_forms_batches() -> None:
    seen: list[list[int]] = []
    started = asyncio.Event()
    release = asyncio.Event()

    async def run(items: list[int]) -> list[int]:
        seen.append(items)
        started.set()
        await release.wait()
        return [i * 10 for i in items]

    batcher: Batcher[int, int] = Batcher(run, max_batch=3, max_parallel=1)
    first = batcher.submit(0)
    await started.wait()
    assert seen == [[0]]  # no waiting for company
    rest = [batcher.submit(i) for i in range(1, 8)]  # queued behind the running batch
    release.set()
    assert await asyncio.gather(first, *rest) == [i * 10 for i in range(8)]
    assert seen == [[0], [1, 2, 3], [4, 5, 6], [7]]  # at most 3 each, in submission order


async def test_a_failed_batch_fails_each_of_its_callers_only() -> None:
    async def run(items: list[int]) -> list[int]:
        if 2 in items:
            raise RuntimeError("batch with 2 failed")
        await asyncio.sleep(0)
        return items

    batcher: Batcher[int, int] = Batcher(run, max_batch=2, max_parallel=1)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(5)), return_exceptions=True)
    # Batches: [0] alone (nothing was running), then [1, 2] fails together, then [3, 4].
    assert results[0] == 0 and results[3:] == [3, 4]
    assert all(isinstance(r, RuntimeError) for r in results[1:3])
    await batcher.drain()


async def test_parallel_batches_are_capped() -> None:
    running = peak = 0

    async def run(items: list[int]) -> list[int]:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return items

    batcher: Batcher[int, int] = Batcher(run, max_batch=1, max_parallel=3)
    assert await asyncio.gather(*(batcher.submit(i) for i in range(12))) == list(range(12))
    assert peak == 3 and batcher.batches == 12


async def test_a_cancelled_caller_does_not_break_the_batch() -> None:
    started = asyncio.Event()
    gate = asyncio.Event()

    async def run(items: list[int]) -> list[int]:
        started.set()
        await gate.wait()
        return items

    batcher: Batcher[int, int] = Batcher(run, max_batch=10, max_parallel=1)
    blocker = batcher.submit(0)
    await started.wait()
    doomed, kept = batcher.submit(1), batcher.submit(2)
    doomed.cancel()
    gate.set()
    assert await blocker == 0 and await kept == 2
    with pytest.raises(asyncio.CancelledError):
        await doomed
