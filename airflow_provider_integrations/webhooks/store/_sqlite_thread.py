"""A SQLite connection owned by one thread, driven from asyncio.

sqlite3 blocks, so each connection lives on its own thread and jobs reach it through a queue. The
writer commits every job waiting in the queue in one transaction (group commit): under load, one
fsync makes many deliveries durable at once, and each job still gets its own outcome because it runs
inside its own savepoint.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, Final, TypeVar

from airflow_provider_integrations.webhooks.errors import StoreUnavailableError

T = TypeVar("T")
Job = tuple[Callable[[sqlite3.Connection], Any], "concurrent.futures.Future[Any]"]
MAX_BATCH: Final = 256
BUSY_TIMEOUT_MS: Final = 10_000


class SqliteThread:
    def __init__(self, path: str, *, name: str, writer: bool) -> None:
        self.path = path
        self.writer = writer
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._opened: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._stopped: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    async def start(self) -> None:
        self._thread.start()
        await asyncio.wrap_future(self._opened)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on the thread; for the writer, return once its transaction committed."""
        if self._stopped.done() or not self._thread.is_alive():
            raise StoreUnavailableError(f"sqlite callback store {self.path} is closed (or was never opened)")
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._jobs.put((fn, future))
        return await asyncio.wrap_future(future)

    async def stop(self) -> None:
        if self._thread.is_alive():
            self._jobs.put(None)
            await asyncio.wrap_future(self._stopped)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        # FULL syncs the WAL on every commit: once deliver() returned, a power cut cannot undo it.
        conn.execute("PRAGMA synchronous = FULL")
        return conn

    def _main(self) -> None:
        try:
            conn = self._connect()
        except sqlite3.Error as exc:
            self._opened.set_exception(StoreUnavailableError(f"cannot open sqlite store {self.path}: {exc}"))
            self._stopped.set_result(None)
            return
        self._opened.set_result(None)
        try:
            while (job := self._jobs.get()) is not None:
                batch = [job]
                stop = False
                while len(batch) < MAX_BATCH:
                    try:
                        more = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop = True
                        break
                    batch.append(more)
                started = [(fn, fut) for fn, fut in batch if fut.set_running_or_notify_cancel()]
                if self.writer:
                    self._commit(conn, started)
                else:
                    for fn, fut in started:
                        self._settle(fut, *self._call(conn, fn))
                if stop:
                    break
        finally:
            conn.close()
            # Anything queued behind the stop marker must not wait forever.
            while True:
                try:
                    left = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if left is not None and left[1].set_running_or_notify_cancel():
                    left[1].set_exception(
                        StoreUnavailableError(f"sqlite callback store {self.path} is closed")
                    )
            self._stopped.set_result(None)

    def _commit(self, conn: sqlite3.Connection, jobs: list[Job]) -> None:
        if not jobs:
            return
        outcomes: list[tuple[Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for fn, _ in jobs:
                conn.execute("SAVEPOINT job")
                outcome = self._call(conn, fn)
                conn.execute("ROLLBACK TO job" if outcome[1] is not None else "RELEASE job")
                if outcome[1] is not None:
                    conn.execute("RELEASE job")
                outcomes.append(outcome)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            error = StoreUnavailableError(f"sqlite callback store {self.path}: {exc}")
            for _, fut in jobs:
                fut.set_exception(error)
            return
        for (_, fut), outcome in zip(jobs, outcomes, strict=True):
            self._settle(fut, *outcome)

    def _call(
        self, conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], Any]
    ) -> tuple[Any, BaseException | None]:
        try:
            return fn(conn), None
        except sqlite3.Error as exc:
            return None, StoreUnavailableError(f"sqlite callback store {self.path}: {exc}")
        except Exception as exc:
            return None, exc

    @staticmethod
    def _settle(fut: concurrent.futures.Future[Any], result: Any, error: BaseException | None) -> None:
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(result)
