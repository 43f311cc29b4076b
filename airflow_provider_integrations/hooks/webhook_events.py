"""The Airflow glue of webhook *events*: the event log next to the callback store, and its receiver.

- :func:`lease_event_log`: the open event log of a webhook store (default ``[integrations]
  webhook_store``), one per store and event loop, however many watchers and requests use it;
- :func:`event_receiver`: an :class:`EventReceiver` on that log for ``POST /events/{source}``;
- :func:`event_url`: the URL a partner posts a source's events to.

A source is named like the partner's signing connection (``secret_conn_id`` of its callbacks): the
receiver verifies ``/events/<source>`` with the keys in that connection's password, as the standalone
receiver does with its ``--secret-env <source>=ENV`` secrets. A connection whose password holds no
webhook key is answered like a missing one (404), so the route tells nothing about other connections.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from airflow_provider_integrations.hooks._webhook_stores import lease_store
from airflow_provider_integrations.hooks.webhooks import WebhookHook, WebhookSettings, load_settings
from airflow_provider_integrations.webhooks import new_callback_id
from airflow_provider_integrations.webhooks.event_receiver import EventReceiver
from airflow_provider_integrations.webhooks.events import EventLog, check_source, event_log_for
from airflow_provider_integrations.webhooks.ids import CALLBACKS_PATH

__all__ = ["event_receiver", "event_url", "lease_event_log"]

EVENTS_PATH: Final = "/events/"


def event_url(source: str, settings: WebhookSettings | None = None) -> str:
    """``{webhook_base_url}/events/{source}``: where the partner behind ``source`` posts its events."""
    settings = settings or load_settings()
    base = settings.callback_url(new_callback_id()).rsplit(CALLBACKS_PATH, 1)[0]  # checks the option is set
    return base + EVENTS_PATH + check_source(source)


@asynccontextmanager
async def lease_event_log(
    store: str | None = None, *, settings: WebhookSettings | None = None
) -> AsyncIterator[EventLog]:
    """The open event log of ``store`` (a ``webhook_store`` URL; default: the configured one), shared
    on the running loop and closed with its last lease. ``settings`` default to the process's."""
    settings = settings or load_settings()
    if store is not None:
        settings = dataclasses.replace(settings, store_url=store)
    key, make = await WebhookHook(settings).resolve_store()
    async with lease_store(("events", key), lambda: event_log_for(make())) as log:
        yield log


@asynccontextmanager
async def event_receiver(hook: WebhookHook | None = None) -> AsyncIterator[EventReceiver]:
    """An :class:`EventReceiver` on the configured store's event log (the Airflow plugin's)."""
    hook = hook or WebhookHook()
    async with lease_event_log(settings=hook.settings) as log:
        yield EventReceiver(log, hook.averifier, hook.settings.receiver_config())
