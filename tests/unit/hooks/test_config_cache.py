"""The per-process connection config cache: TTL, and single-flight lookups per event loop."""

from __future__ import annotations

import asyncio

import pytest

from airflow_provider_integrations.hooks._config_cache import ConfigCache


class SlowLoader:
    """A lookup that waits for the test to release it, counting calls."""

    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.fail = fail

    async def __call__(self) -> str:
        self.calls += 1
        await self.release.wait()
        if self.fail:
            raise LookupError("connection 'x' not found")
        return f"config-{self.calls}"


async def test_concurrent_callers_share_one_lookup() -> None:
    cache: ConfigCache[str] = ConfigCache(lambda: 300.0)
    load = SlowLoader()
    waiters = [asyncio.create_task(cache.aget("x", load)) for _ in range(500)]
    await asyncio.sleep(0)
    load.release.set()
    assert set(await asyncio.gather(*waiters)) == {"config-1"}
    assert load.calls == 1
    assert cache.lookups == {"x": 1}
    assert await cache.aget("x", load) == "config-1", "served from the cache afterwards"


async def test_a_failed_lookup_reaches_every_waiter_and_is_not_cached() -> None:
    cache: ConfigCache[str] = ConfigCache(lambda: 300.0)
    failing = SlowLoader(fail=True)
    waiters = [asyncio.create_task(cache.aget("x", failing)) for _ in range(3)]
    await asyncio.sleep(0)
    failing.release.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, LookupError) for r in results)
    assert failing.calls == 1
    ok = SlowLoader()
    ok.release.set()
    assert await cache.aget("x", ok) == "config-1", "the next caller looks it up again"


async def test_a_cancelled_waiter_does_not_cancel_the_shared_lookup() -> None:
    cache: ConfigCache[str] = ConfigCache(lambda: 300.0)
    load = SlowLoader()
    first = asyncio.create_task(cache.aget("x", load))
    second = asyncio.create_task(cache.aget("x", load))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    load.release.set()
    assert await second == "config-1"
    assert load.calls == 1


async def test_ttl_zero_looks_up_every_time() -> None:
    cache: ConfigCache[str] = ConfigCache(lambda: 0.0)
    load = SlowLoader()
    load.release.set()
    assert [await cache.aget("x", load) for _ in range(3)] == ["config-1", "config-2", "config-3"]


def test_sync_and_async_callers_on_different_loops_each_get_a_result() -> None:
    cache: ConfigCache[str] = ConfigCache(lambda: 300.0)
    assert cache.get("x", lambda: "sync") == "sync"
    cache.invalidate("x")

    async def main() -> str:
        load = SlowLoader()
        load.release.set()
        return await cache.aget("x", load)

    assert asyncio.run(main()) == "config-1"
    assert asyncio.run(main()) == "config-1", "cached across loops; in-flight state is per loop"
