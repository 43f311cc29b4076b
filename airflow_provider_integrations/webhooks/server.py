"""The standalone receiver: a small aiohttp service around :class:`Receiver`, for a DMZ host.

Routes: ``POST /callbacks/{callback_id}``, ``POST /events/{source}`` (appended to the event log in the
same database) and ``GET /health`` (200 when the store answers, else 503).
Run it with ``python -m airflow_provider_integrations.webhooks serve`` (see ``__main__``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from aiohttp import web

from airflow_provider_integrations.webhooks.crypto import PayloadCodec
from airflow_provider_integrations.webhooks.errors import WebhookConfigError, WebhookError
from airflow_provider_integrations.webhooks.event_receiver import EventReceiver
from airflow_provider_integrations.webhooks.events import DEFAULT_RETENTION, EventLog, event_log_for
from airflow_provider_integrations.webhooks.receiver import (
    DEFAULT_MAX_BODY_BYTES,
    Receiver,
    ReceiverConfig,
    SecretResolver,
)
from airflow_provider_integrations.webhooks.signing import DEFAULT_TOLERANCE, Verifier
from airflow_provider_integrations.webhooks.store import store_from_url
from airflow_provider_integrations.webhooks.store.base import CallbackStore

__all__ = ["READY_PREFIX", "ServeConfig", "create_app", "serve", "static_resolver"]

READY_PREFIX = "webhook receiver listening on "
RECEIVER_KEY = web.AppKey("webhook_receiver", Receiver)
EVENTS_KEY = web.AppKey("webhook_event_receiver", EventReceiver)
log = logging.getLogger(__name__)


def create_app(receiver: Receiver, events: EventReceiver | None = None) -> web.Application:
    app = web.Application()
    app[RECEIVER_KEY] = receiver
    app.router.add_post("/callbacks/{callback_id}", _callback)
    if events is not None:
        app[EVENTS_KEY] = events
        app.router.add_post("/events/{source}", _event)
    app.router.add_get("/health", _health)
    return app


async def _callback(request: web.Request) -> web.Response:
    receiver = request.app[RECEIVER_KEY]
    callback_id = request.match_info["callback_id"]
    limit = receiver.config.max_body_bytes
    declared = request.content_length
    if declared is not None and declared > limit:
        verdict = receiver.too_large(callback_id, request.headers, declared)
    else:
        verdict = await receiver.handle(callback_id, request.headers, await _read_at_most(request, limit + 1))
    return web.Response(status=verdict.status, body=verdict.body, headers=verdict.headers)


async def _event(request: web.Request) -> web.Response:
    events = request.app[EVENTS_KEY]
    source = request.match_info["source"]
    declared = request.content_length
    if declared is not None and declared > events.config.max_body_bytes:
        verdict = events.too_large(source, request.headers, declared)
    else:
        body = await _read_at_most(request, events.config.max_body_bytes + 1)
        verdict = await events.handle(source, request.headers, body)
    return web.Response(status=verdict.status, body=verdict.body, headers=verdict.headers)


async def _read_at_most(request: web.Request, limit: int) -> bytes:
    # A chunked upload has no Content-Length: stop reading one byte past the limit.
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await request.content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


async def _health(request: web.Request) -> web.Response:
    try:
        await request.app[RECEIVER_KEY].store.ping()
    except WebhookError:
        return web.json_response({"status": "unavailable", "store": "down"}, status=503)
    return web.json_response({"status": "ok", "store": "ok"})


def static_resolver(verifiers: Mapping[str, Verifier]) -> SecretResolver:
    """A resolver over a fixed name -> verifier table (the standalone service's secrets)."""
    table = dict(verifiers)

    async def resolve(name: str) -> Verifier | None:
        return table.get(name)

    return resolve


@dataclass(frozen=True)
class ServeConfig:
    """What ``serve`` needs. ``secret_envs`` maps a secret name (as registrations name it) to the
    environment variable holding its keys, space-separated (old and new during a rotation)."""

    store_url: str
    secret_envs: Mapping[str, str]
    host: str = "127.0.0.1"
    port: int = 8780
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    tolerance: float = DEFAULT_TOLERANCE
    encryption_key_env: str | None = None
    cleanup_interval: float = 600.0
    event_retention: float = DEFAULT_RETENTION.total_seconds()
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)

    def verifiers(self) -> dict[str, Verifier]:
        if not self.secret_envs:
            raise WebhookConfigError("--secret-env", "at least one secret")
        table = {}
        for name, env in self.secret_envs.items():
            value = self.environ.get(env)
            if not value:
                raise WebhookConfigError(f"${env}", "a non-empty environment variable with the secret(s)")
            table[name] = Verifier.from_secrets(value, field=f"${env}")
        return table

    def codec(self) -> PayloadCodec:
        if self.encryption_key_env is None:
            return PayloadCodec()
        value = self.environ.get(self.encryption_key_env)
        if not value:
            raise WebhookConfigError(
                f"${self.encryption_key_env}", "a non-empty environment variable with the key(s)"
            )
        return PayloadCodec(value)


async def serve(config: ServeConfig, announce: Callable[[str], None]) -> None:
    """Serve until SIGTERM or SIGINT; ``announce`` gets the ready line once the socket listens."""
    verifiers = config.verifiers()  # fail before binding anything
    store = store_from_url(config.store_url, codec=config.codec())
    event_log = event_log_for(store)
    resolver = static_resolver(verifiers)
    receiver_config = ReceiverConfig(max_body_bytes=config.max_body_bytes, tolerance=config.tolerance)
    receiver = Receiver(store, resolver, receiver_config)
    events = EventReceiver(event_log, resolver, receiver_config)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with store, event_log:
        runner = web.AppRunner(create_app(receiver, events), access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        cleaner = loop.create_task(
            _clean_periodically(store, event_log, config.cleanup_interval, config.event_retention)
        )
        try:
            site = web.TCPSite(runner, config.host, config.port)
            await site.start()
            port = runner.addresses[0][1]
            host = "127.0.0.1" if config.host in ("", "0.0.0.0") else config.host
            announce(f"{READY_PREFIX}http://{host}:{port}")
            await stop.wait()
        finally:
            cleaner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await cleaner
            await runner.cleanup()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)


async def _clean_periodically(
    store: CallbackStore, event_log: EventLog, interval: float, event_retention: float
) -> None:
    if interval <= 0:
        return
    while True:
        await asyncio.sleep(interval)
        try:
            removed = await store.cleanup_expired()
            removed_events = await event_log.cleanup_expired(retention=timedelta(seconds=event_retention))
        except WebhookError as exc:
            log.warning("cleaning up expired callbacks and events failed: %s", exc)
        else:
            if removed or removed_events:
                log.info("removed %d expired callbacks and %d expired events", removed, removed_events)
