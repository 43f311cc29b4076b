"""Group commit for asyncio callers: concurrent requests share transactions.

A request that arrives while fewer than ``max_parallel`` batches are running starts one at once, so a
quiet receiver adds no delay. Under load, requests queue up behind the running batches and the next
batch takes them all (up to ``max_batch``): one commit, and one NOTIFY, for many deliveries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

I = TypeVar("I")  # noqa: E741 - item
R = TypeVar("R")


class Batcher(Generic[I, R]):
    def __init__(
        self, run: Callable[[list[I]], Awaitable[Sequence[R]]], *, max_batch: int = 100, max_parallel: int = 4
    ) -> None:
        self._run = run
        self.max_batch = max_batch
        self.max_parallel = max_parallel
        self._pending: list[tuple[I, asyncio.Future[R]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0  # for tests and statistics

    def submit(self, item: I) -> asyncio.Future[R]:
        """Queue ``item`` now (synchronously, so submission order is batch order); await the result."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._start()
        return future

    def _start(self) -> None:
        while self._pending and len(self._tasks) < self.max_parallel:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            task = asyncio.get_running_loop().create_task(self._execute(batch))
            self._tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._start()

    async def _execute(self, batch: list[tuple[I, asyncio.Future[R]]]) -> None:
        self.batches += 1
        try:
            results = await self._run([item for item, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # every caller of the batch gets the failure
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def drain(self) -> None:
        """Wait for the running batches (before closing what they use)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
