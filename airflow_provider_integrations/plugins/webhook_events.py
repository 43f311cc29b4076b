"""``POST /events/{source}`` for the API-server webhook app (``plugins.webhooks``), a router of its own.

The framework-neutral :class:`~airflow_provider_integrations.webhooks.event_receiver.EventReceiver` judges
the request (202 accepted, 200 duplicate, 400, 401, 404 unknown source, 413, 415, 503) and appends
accepted events to the event log of ``[integrations] webhook_store``, where ``WebhookEventTrigger``
watchers read them. A source is named like the partner's signing connection, whose password holds its keys.

Like the callback route, the receiver opens on the first request (a store that is down never stops the
API server) and closes with the app: FastAPI merges this router's lifespan into the app's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import APIRouter, FastAPI, Request, Response

from airflow_provider_integrations.hooks.webhook_events import event_receiver
from airflow_provider_integrations.plugins._http import read_at_most, send_verdict
from airflow_provider_integrations.webhooks.event_receiver import EventReceiver, EventVerdict

__all__ = ["events"]

log = logging.getLogger(__name__)


class EventReceiverState:
    """The event receiver of one running app, opened on first use and closed with the app."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._stack: AsyncExitStack | None = None
        self._receiver: EventReceiver | None = None

    async def get(self) -> EventReceiver:
        if self._receiver is not None:
            return self._receiver
        async with self._lock:
            if self._receiver is None:
                stack = AsyncExitStack()
                self._receiver = await stack.enter_async_context(event_receiver())
                self._stack = stack
        return self._receiver

    async def aclose(self) -> None:
        stack, self._stack, self._receiver = self._stack, None, None
        if stack is not None:
            await stack.aclose()


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state = app.state.webhook_event_receiver = EventReceiverState()
    try:
        yield
    finally:
        await state.aclose()


events = APIRouter(tags=["webhook events"], lifespan=_lifespan)


async def event_receiver_of(request: Request) -> EventReceiver:
    state: EventReceiverState | None = getattr(request.app.state, "webhook_event_receiver", None)
    if state is None:  # an app started without lifespan: open on demand
        state = request.app.state.webhook_event_receiver = EventReceiverState()
    return await state.get()


@events.post("/events/{source}")
async def append_event(source: str, request: Request) -> Response:
    try:
        receiver = await event_receiver_of(request)
    except Exception as exc:
        # Settings, connection or database: answered like a store failure (503, which partners retry);
        # the cause goes to the log, never to the caller.
        log.warning("webhook event receiver unavailable: %s: %s", type(exc).__name__, exc)
        verdict = EventVerdict(503, "store_unavailable", source=source)
        verdict.audit()
        return send_verdict(verdict)
    limit = receiver.config.max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return send_verdict(receiver.too_large(source, request.headers, int(declared)))
    return send_verdict(
        await receiver.handle(source, request.headers, await read_at_most(request, limit + 1))
    )
