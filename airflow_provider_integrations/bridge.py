"""The one bridge from synchronous code (operators on workers, ``test_connection``) into the async core.

Coroutines run on a single background event loop per process, so sessions and connection pools survive
between synchronous calls instead of being rebuilt by an ``asyncio.run`` per call. The loop is rebuilt
after ``fork`` (Airflow forks task processes) and its clients are closed at interpreter exit.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from airflow_provider_integrations.http import sessions
from airflow_provider_integrations.postgres import listen as pg_listen
from airflow_provider_integrations.postgres import pool as pg_pools

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def _start() -> asyncio.AbstractEventLoop:
    global _loop, _thread
    loop = asyncio.new_event_loop()
    # Sessions and pools opened by sync calls stay open between calls, until interpreter exit.
    sessions.mark_persistent(loop)
    pg_pools.mark_persistent(loop)
    thread = threading.Thread(target=loop.run_forever, name="integrations-async-bridge", daemon=True)
    thread.start()
    _loop, _thread = loop, thread
    return loop


def run_sync(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run ``coro`` on the bridge loop and wait for its result (exceptions propagate unchanged)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        coro.close()
        raise RuntimeError(
            "a synchronous integrations API was called from a running event loop; await its async twin "
            "(the method prefixed with 'a') instead"
        )
    with _lock:
        loop = _loop if _loop is not None and not _loop.is_closed() else _start()
    future = asyncio.run_coroutine_threadsafe(coro, loop)
    try:
        return future.result(timeout)
    except BaseException:
        # The waiting thread was interrupted (execution_timeout's signal, SIGTERM, a timeout here):
        # cancel the coroutine too, so no request outlives the task on the bridge loop.
        future.cancel()
        raise


@atexit.register
def shutdown() -> None:
    """Close the bridge's sessions cleanly and stop its loop."""
    global _loop, _thread
    with _lock:
        loop, thread, _loop, _thread = _loop, _thread, None, None
    if loop is None or thread is None or not thread.is_alive():
        return
    try:
        asyncio.run_coroutine_threadsafe(_close_all(), loop).result(10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


async def _close_all() -> None:
    await asyncio.gather(
        sessions.close_loop_clients(),
        pg_pools.close_loop_pools(),
        pg_listen.close_loop_listeners(),
        return_exceptions=True,
    )


def _after_fork_in_child() -> None:
    # The parent's loop thread does not exist in the child; start afresh on first use.
    global _loop, _thread
    _loop, _thread = None, None


os.register_at_fork(after_in_child=_after_fork_in_child)
