"""What every webhook route of the API-server app shares: its receiver, opened on first use and closed
with the app, and one way to take a request to it (503 when it cannot open, 413 from Content-Length,
a bounded body read, the verdict as the answer).

Kept apart from the routes so routers in other modules (``webhook_events``) can use it and still be
listed in ``plugins.webhooks.ROUTERS`` without an import cycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Generic, Protocol, TypeVar

from fastapi import FastAPI, Request, Response

from airflow_provider_integrations.webhooks.receiver import ReceiverConfig
from airflow_provider_integrations.webhooks.verdict import Verdict

__all__ = ["AppResource", "lifespan", "read_at_most", "receive", "resource_of", "send_verdict"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class _Verdict(Protocol):
    @property
    def status(self) -> int: ...
    @property
    def body(self) -> bytes: ...
    @property
    def headers(self) -> dict[str, str]: ...


async def read_at_most(request: Request, limit: int) -> bytes:
    """At most ``limit`` bytes of the body (read ``max_body_bytes + 1`` to detect an oversized one)."""
    # A chunked upload has no Content-Length: stop one chunk past the limit, never buffer the rest.
    chunks: list[bytes] = []
    size = 0
    async with contextlib.aclosing(request.stream()) as stream:
        async for chunk in stream:
            chunks.append(chunk)
            size += len(chunk)
            if size >= limit:
                break
    return b"".join(chunks)[:limit]


def send_verdict(verdict: _Verdict) -> Response:
    """The HTTP answer of a receiver's verdict."""
    return Response(content=verdict.body, status_code=verdict.status, headers=verdict.headers)


class _Receiver(Protocol):
    """What the callback and the event receivers have in common."""

    @property
    def config(self) -> ReceiverConfig: ...
    def too_large(self, key: str, headers: Mapping[str, str], size: int) -> _Verdict: ...
    async def handle(self, key: str, headers: Mapping[str, str], body: bytes) -> _Verdict: ...


class AppResource(Generic[T]):
    """A resource of one running app (a receiver and its store), opened on first use and closed with the
    app: a store that is down never stops the API server from starting."""

    def __init__(self, open_: Callable[[], AbstractAsyncContextManager[T]]) -> None:
        self._open = open_
        self._lock = asyncio.Lock()
        self._stack: AsyncExitStack | None = None
        self._value: T | None = None

    async def get(self) -> T:
        if self._value is not None:
            return self._value
        async with self._lock:
            if self._value is None:
                stack = AsyncExitStack()
                self._value = await stack.enter_async_context(self._open())
                self._stack = stack
        return self._value

    async def aclose(self) -> None:
        stack, self._stack, self._value = self._stack, None, None
        if stack is not None:
            await stack.aclose()


def lifespan(
    name: str, open_: Callable[[], AbstractAsyncContextManager[T]]
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """A lifespan keeping an :class:`AppResource` in ``app.state.<name>`` and closing it at shutdown."""

    @asynccontextmanager
    async def span(app: FastAPI) -> AsyncIterator[None]:
        state = AppResource(open_)
        setattr(app.state, name, state)
        try:
            yield
        finally:
            await state.aclose()

    return span


async def resource_of(request: Request, name: str, open_: Callable[[], AbstractAsyncContextManager[T]]) -> T:
    """The resource ``name`` of the app serving ``request``."""
    state: AppResource[T] | None = getattr(request.app.state, name, None)
    if state is None:  # the lifespan did not run (an app started without it): open on demand
        state = AppResource(open_)
        setattr(request.app.state, name, state)
    return await state.get()


async def receive(
    request: Request,
    key: str,
    receiver: Callable[[], Awaitable[_Receiver]],
    unavailable: Callable[[], Verdict],
) -> Response:
    """Take ``request`` (for callback id or source ``key``) to the receiver and answer its verdict."""
    try:
        opened = await receiver()
    except Exception as exc:
        # Whatever keeps the store from opening (settings, connection, database down) is answered like
        # a store failure: 503, which partners retry. The cause goes to the log, never to the caller.
        log.warning("webhook receiver unavailable: %s: %s", type(exc).__name__, exc)
        verdict = unavailable()
        verdict.audit()
        return send_verdict(verdict)
    limit = opened.config.max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return send_verdict(opened.too_large(key, request.headers, int(declared)))
    body = await read_at_most(request, limit + 1)
    return send_verdict(await opened.handle(key, request.headers, body))
