"""The framework-neutral receiver: one request in, one :class:`Verdict` out.

Checks run cheapest first, and nothing unauthenticated is parsed:

====  ===========================  ==========================================================
 413  ``body_too_large``           body longer than ``max_body_bytes``
 415  ``unsupported_content_type`` not ``application/json`` (nor ``application/*+json``)
 404  ``unknown_callback``         malformed or unregistered callback id (or cleaned up)
 404  ``expired_callback``         past ``expires_at`` with nothing delivered
 401  signature reason codes       see ``errors.SIGNATURE_REASONS``;
                                   ``unknown_secret`` when the registration's secret cannot be resolved
 400  ``malformed_json``           not UTF-8 JSON; ``schema_violation``: fails the callback's schema
 200  ``duplicate``                the callback already holds a delivery (a replay, or a later message)
 202  ``accepted``                 stored and committed
 503  ``store_unavailable``        the store failed (the partner should retry); ``secret_unavailable``
====  ===========================  ==========================================================

Adapters (the standalone aiohttp service, the Airflow API-server plugin) read at most
``max_body_bytes + 1`` bytes, call :meth:`Receiver.handle` and send the verdict back.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final

import jsonschema

from airflow_provider_integrations.webhooks.checks import (
    Rejection,
    body_too_large,
    check_envelope,
    check_signature,
    parse_json,
)
from airflow_provider_integrations.webhooks.errors import WebhookError
from airflow_provider_integrations.webhooks.ids import CallbackRegistration, is_callback_id
from airflow_provider_integrations.webhooks.signing import (
    DEFAULT_TOLERANCE,
    WEBHOOK_ID,
    Verifier,
    get_header,
)
from airflow_provider_integrations.webhooks.store.base import CallbackStore, DeliveryOutcome
from airflow_provider_integrations.webhooks.verdict import Verdict, audit_log

__all__ = ["DEFAULT_MAX_BODY_BYTES", "Receiver", "ReceiverConfig", "SecretResolver"]

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES: Final = 1024 * 1024
#: ``await resolve(secret_name)`` -> the verifier of that secret, or ``None`` if there is no such secret.
SecretResolver = Callable[[str], Awaitable[Verifier | None]]
_CACHED_REGISTRATIONS: Final = 4096
_STATUS = {
    DeliveryOutcome.ACCEPTED: (202, "accepted"),
    DeliveryOutcome.DUPLICATE: (200, "duplicate"),
    DeliveryOutcome.UNKNOWN: (404, "unknown_callback"),
    DeliveryOutcome.EXPIRED: (404, "expired_callback"),
}


@dataclass(frozen=True, slots=True)
class ReceiverConfig:
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    #: seconds a ``webhook-timestamp`` may be off, in either direction
    tolerance: float = DEFAULT_TOLERANCE

    def __post_init__(self) -> None:
        if not isinstance(self.max_body_bytes, int) or self.max_body_bytes < 1:
            raise ValueError(f"max_body_bytes: expected an integer >= 1, got {self.max_body_bytes!r}")
        if not self.tolerance > 0:
            raise ValueError(f"tolerance: expected seconds > 0, got {self.tolerance!r}")


class Receiver:
    """Verifies, validates and stores callbacks. Holds no secrets: ``resolve_secret`` maps the
    registration's ``secret_name`` to a :class:`Verifier` (and should cache)."""

    def __init__(
        self,
        store: CallbackStore,
        resolve_secret: SecretResolver,
        config: ReceiverConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        audit: logging.Logger = audit_log,
    ) -> None:
        self.store = store
        self.config = config or ReceiverConfig()
        self._resolve = resolve_secret
        self._clock = clock
        self._audit = audit
        # Registrations never change once stored, so a hit can be trusted; expiry is checked on every
        # request and the store re-checks existence when delivering.
        self._registrations: OrderedDict[str, CallbackRegistration] = OrderedDict()

    async def handle(self, callback_id: str, headers: Mapping[str, str], body: bytes) -> Verdict:
        """Judge one ``POST /callbacks/{callback_id}``; writes the audit line and never raises."""
        started = time.perf_counter()
        webhook_id: str | None = None
        try:
            webhook_id = get_header(headers, WEBHOOK_ID)
            status, reason, detail = await self._judge(callback_id, headers, body)
        except Rejection as rejection:
            status, reason, detail = rejection.status, rejection.reason, rejection.detail
        except Exception:
            log.exception("webhook receiver failed on callback %s", callback_id[:64])
            status, reason, detail = 500, "internal_error", ""
        verdict = Verdict(
            status, reason, callback_id, webhook_id, detail, (time.perf_counter() - started) * 1000, len(body)
        )
        verdict.audit(self._audit)
        return verdict

    def too_large(self, callback_id: str, headers: Mapping[str, str], size: int) -> Verdict:
        """The 413 for a request whose declared ``Content-Length`` already exceeds the limit, so an
        adapter need not read the body at all."""
        rejection = body_too_large(self.config.max_body_bytes)
        verdict = Verdict(
            rejection.status,
            rejection.reason,
            callback_id,
            get_header(headers, WEBHOOK_ID),
            rejection.detail,
            body_bytes=size,
        )
        verdict.audit(self._audit)
        return verdict

    async def _judge(self, callback_id: str, headers: Mapping[str, str], body: bytes) -> tuple[int, str, str]:
        check_envelope(headers, body, self.config.max_body_bytes)
        registration = await self._registration(callback_id)
        now = self._clock()
        if registration.expires_at.timestamp() <= now:
            raise Rejection(404, "expired_callback")
        verifier = await self._verifier(registration.secret_name)
        message = check_signature(verifier, headers, body, now=now, tolerance=self.config.tolerance)
        payload = parse_json(body)
        if registration.schema is not None:
            _validate(registration.schema_json or "", payload)
        try:
            outcome = await self.store.deliver(
                callback_id, message.webhook_id, body, now=datetime.fromtimestamp(now, timezone.utc)
            )
        except WebhookError as exc:
            log.warning("callback store failed while delivering to %s: %s", callback_id, exc)
            raise Rejection(503, "store_unavailable") from None
        status, reason = _STATUS[outcome]
        return status, reason, ""

    async def _registration(self, callback_id: str) -> CallbackRegistration:
        cached = self._registrations.get(callback_id)
        if cached is not None:
            self._registrations.move_to_end(callback_id)
            return cached
        if not is_callback_id(callback_id):
            raise Rejection(404, "unknown_callback")
        try:
            registration = await self.store.get(callback_id)
        except WebhookError as exc:
            log.warning("callback store failed while reading %s: %s", callback_id, exc)
            raise Rejection(503, "store_unavailable") from None
        if registration is None:
            raise Rejection(404, "unknown_callback")
        self._registrations[callback_id] = registration
        if len(self._registrations) > _CACHED_REGISTRATIONS:
            self._registrations.popitem(last=False)
        return registration

    async def _verifier(self, secret_name: str) -> Verifier:
        try:
            verifier = await self._resolve(secret_name)
        except Exception as exc:
            # Names the secret, never its value; the partner retries on 503.
            log.warning("resolving webhook secret %r failed: %s", secret_name, type(exc).__name__)
            raise Rejection(503, "secret_unavailable") from None
        if verifier is None:
            log.warning("no webhook secret named %r is configured", secret_name)
            raise Rejection(401, "unknown_secret")
        return verifier


@functools.lru_cache(maxsize=256)
def _validator(schema_json: str) -> Any:
    schema = json.loads(schema_json)
    return jsonschema.validators.validator_for(schema)(schema)


def _validate(schema_json: str, payload: Any) -> None:
    error = jsonschema.exceptions.best_match(_validator(schema_json).iter_errors(payload))
    if error is not None:
        # The path and the rule, not the offending value: it is part of the body.
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise Rejection(400, "schema_violation", f"payload at {where} violates '{error.validator}'")
