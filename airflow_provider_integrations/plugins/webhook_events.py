"""``POST /events/{source}`` for the API-server webhook app (``plugins.webhooks``), a router of its own.

The framework-neutral :class:`~airflow_provider_integrations.webhooks.event_receiver.EventReceiver` judges
the request (202 accepted, 200 duplicate, 400, 401, 404 unknown source, 413, 415, 503) and appends
accepted events to the event log of ``[integrations] webhook_store``, where ``WebhookEventTrigger``
watchers read them. A source is named like the partner's signing connection, whose password holds its keys.

Like the callback route, the receiver opens on the first request (a store that is down never stops the
API server) and closes with the app: FastAPI merges this router's lifespan into the app's.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from airflow_provider_integrations.hooks.webhook_events import event_receiver
from airflow_provider_integrations.plugins._http import lifespan, receive, resource_of
from airflow_provider_integrations.webhooks.event_receiver import EventReceiver, EventVerdict

__all__ = ["events"]

events = APIRouter(tags=["webhook events"], lifespan=lifespan("webhook_event_receiver", event_receiver))


async def event_receiver_of(request: Request) -> EventReceiver:
    return await resource_of(request, "webhook_event_receiver", event_receiver)


@events.post("/events/{source}")
async def append_event(source: str, request: Request) -> Response:
    return await receive(
        request,
        source,
        lambda: event_receiver_of(request),
        lambda: EventVerdict(503, "store_unavailable", source=source),
    )
