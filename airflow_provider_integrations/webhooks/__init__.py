"""Webhook callbacks and events without Airflow: Standard Webhooks signing, callback ids, durable stores
and event logs, and framework-neutral receivers (plus a standalone aiohttp service).

::

    registration = CallbackRegistration.new(dag_id=..., run_id=..., task_id=..., try_number=...,
                                            secret_name="partner", ttl=3600, schema=None)
    url = registration.url("https://hooks.example.com")      # .../callbacks/<unguessable id>

    async with store_from_url("sqlite:////var/lib/cb.db", codec=PayloadCodec(keys)) as store:
        await store.register(registration)                   # worker, before starting the work
        delivery = await store.wait(registration.callback_id, timeout=60)   # trigger; None on timeout
        delivery.payload, delivery.webhook_id, delivery.received_at

    receiver = Receiver(store, resolve_secret, ReceiverConfig(max_body_bytes=..., tolerance=300))
    verdict = await receiver.handle(callback_id, headers, body)   # adapter; verdict.status/.body/.headers

Public API
----------
* ``signing``: :class:`Signer` (``from_secrets([...])``, ``headers(body)``, ``signature(id, ts, body)``)
  and :class:`Verifier` (``from_secrets([...])``, ``verify(headers, body, now=, tolerance=)`` ->
  :class:`SignedMessage`, or :class:`SignatureError` with a ``reason`` code). Keys: ``whsec_`` (HMAC,
  ``v1``), ``whsk_``/``whpk_`` (ed25519, ``v1a``); several keys = rotation. ``generate_secret()``.
* ``ids``: :class:`CallbackRegistration` (frozen; ``new(...)``, ``url(base)``, ``expired(now)``),
  ``callback_url(base, id)``, ``new_callback_id()``.
* ``store``: :class:`CallbackStore` with ``open/close`` (or ``async with``), ``register``, ``get``,
  ``deliver(callback_id, webhook_id, body) -> DeliveryOutcome`` (accepted | duplicate | unknown |
  expired), ``delivery(id)``, ``wait(id, timeout) -> Delivery | None`` (raises
  :class:`CallbackNotFoundError` / :class:`CallbackExpiredError`), ``cleanup_expired(now)``, ``ping()``.
  :class:`SqliteCallbackStore` (polling, default) and :class:`PostgresCallbackStore` (LISTEN/NOTIFY on
  the process's one shared LISTEN connection); ``store_from_url(url, codec=)`` picks one.
  A callback is one-shot: the first accepted delivery is what every waiter gets; later deliveries,
  whether replays of the same ``webhook-id`` or distinct messages, are ``duplicate`` and change nothing.
  ``accepted`` means committed (SQLite: WAL, ``synchronous=FULL``). Both stores group-commit concurrent
  deliveries (one transaction, and on PostgreSQL one NOTIFY, per batch) without delaying a lone one.
* ``events``: :class:`EventLog`, an append-only log of a partner's events per source, with ``open/close``
  (or ``async with``), ``append(source, webhook_id, type, body) -> AppendResult`` (``outcome``
  accepted | duplicate, and the event's ``seq``; idempotent per ``webhook-id``), ``read(source, after)``
  and ``follow(source, after)`` -> :class:`Event` batches in ``seq`` order (``Event.as_payload()`` ->
  :class:`EventPayload`), ``last_seq``, ``start_consumer``/``commit`` (cursors kept in the log),
  ``cleanup_expired(now, retention=)``, ``ping()``. :class:`SqliteEventLog` and
  :class:`PostgresEventLog`; ``event_log_for(store)`` builds one (not yet opened) in a callback store's
  database, with its payload keys; ``event_log_from_url(url, codec=)`` from a store URL.
* ``crypto``: :class:`PayloadCodec` (AES-256-GCM at rest; keys newest first), ``generate_payload_key()``.
* ``receiver``: :class:`Receiver` and :class:`ReceiverConfig`; ``SecretResolver`` is
  ``async (secret_name) -> Verifier | None`` (the Airflow layer resolves a connection; cache there).
  :class:`Verdict` carries ``status``, ``reason``, ``body``, ``headers`` and writes one JSON audit line
  per request on the ``airflow_provider_integrations.webhooks.audit`` logger. An adapter reads at most
  ``max_body_bytes + 1`` bytes and calls ``handle``, or ``too_large(id, headers, size)`` when the
  declared Content-Length already exceeds the limit; ``handle`` never raises.
* ``event_receiver``: :class:`EventReceiver`, the same for ``POST /events/{source}``: verifies with the
  secret named like the source and appends to an :class:`EventLog`; :class:`EventVerdict` adds ``source``
  and ``seq``. ``checks`` holds the request checks both receivers run.
* ``server``: ``create_app(receiver)`` (aiohttp) and ``python -m airflow_provider_integrations.webhooks
  serve --store URL --secret-env [NAME=]ENV``, ``GET /health``.

Errors (``errors.py``) hang under :class:`~airflow_provider_integrations.exceptions.IntegrationError`.
Stores and receivers belong to the event loop that opened them; share one per process.
"""

from __future__ import annotations

from airflow_provider_integrations.webhooks.crypto import PayloadCodec, generate_payload_key
from airflow_provider_integrations.webhooks.errors import (
    CallbackConflictError,
    CallbackExpiredError,
    CallbackNotFoundError,
    PayloadDecryptError,
    SignatureError,
    StoreUnavailableError,
    WebhookConfigError,
    WebhookError,
)
from airflow_provider_integrations.webhooks.event_receiver import EventReceiver, EventVerdict
from airflow_provider_integrations.webhooks.events import (
    AppendOutcome,
    AppendResult,
    Event,
    EventLog,
    EventPayload,
    event_log_for,
    event_log_from_url,
)
from airflow_provider_integrations.webhooks.ids import CallbackRegistration, callback_url, new_callback_id
from airflow_provider_integrations.webhooks.keys import generate_keypair, generate_secret
from airflow_provider_integrations.webhooks.receiver import Receiver, ReceiverConfig, SecretResolver
from airflow_provider_integrations.webhooks.signing import SignedMessage, Signer, Verifier
from airflow_provider_integrations.webhooks.store import (
    CallbackStore,
    Delivery,
    DeliveryOutcome,
    PostgresCallbackStore,
    SqliteCallbackStore,
    store_from_url,
)
from airflow_provider_integrations.webhooks.store.events_postgres import PostgresEventLog
from airflow_provider_integrations.webhooks.store.events_sqlite import SqliteEventLog
from airflow_provider_integrations.webhooks.verdict import Verdict

__all__ = [
    "AppendOutcome",
    "AppendResult",
    "CallbackConflictError",
    "CallbackExpiredError",
    "CallbackNotFoundError",
    "CallbackRegistration",
    "CallbackStore",
    "Delivery",
    "DeliveryOutcome",
    "Event",
    "EventLog",
    "EventPayload",
    "EventReceiver",
    "EventVerdict",
    "PayloadCodec",
    "PayloadDecryptError",
    "PostgresCallbackStore",
    "PostgresEventLog",
    "Receiver",
    "ReceiverConfig",
    "SecretResolver",
    "SignatureError",
    "SignedMessage",
    "Signer",
    "SqliteCallbackStore",
    "SqliteEventLog",
    "StoreUnavailableError",
    "Verdict",
    "Verifier",
    "WebhookConfigError",
    "WebhookError",
    "callback_url",
    "event_log_for",
    "event_log_from_url",
    "generate_keypair",
    "generate_payload_key",
    "generate_secret",
    "new_callback_id",
    "store_from_url",
]
