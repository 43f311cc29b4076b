"""The framework-neutral receiver of events: ``POST /events/{source}`` in, one :class:`EventVerdict` out.

The same checks as the callback :class:`Receiver`, cheapest first, nothing unauthenticated parsed; a
*source* takes the place of a callback id, and its secret is the one named like the source (a source
exists exactly when the resolver knows a secret of that name):

====  ===========================  ==========================================================
 413  ``body_too_large``           body longer than ``max_body_bytes``
 415  ``unsupported_content_type`` not ``application/json`` (nor ``application/*+json``)
 404  ``unknown_source``           malformed source name, no secret of that name, or one that
                                   holds no webhook key
 401  signature reason codes       see ``errors.SIGNATURE_REASONS``
 400  ``malformed_json``           not UTF-8 JSON; ``missing_event_type``: not an object with a
                                   string ``type`` (the Standard Webhooks payload shape)
 200  ``duplicate``                the source already holds this ``webhook-id``
 202  ``accepted``                 appended and committed
 503  ``store_unavailable``        the log failed (the partner should retry); ``secret_unavailable``
====  ===========================  ==========================================================
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final

from airflow_provider_integrations.webhooks.checks import (
    Rejection,
    body_too_large,
    check_envelope,
    check_signature,
    parse_json,
)
from airflow_provider_integrations.webhooks.errors import WebhookConfigError, WebhookError
from airflow_provider_integrations.webhooks.events import AppendOutcome, EventLog, check_source
from airflow_provider_integrations.webhooks.receiver import ReceiverConfig, SecretResolver
from airflow_provider_integrations.webhooks.signing import WEBHOOK_ID, Verifier, get_header
from airflow_provider_integrations.webhooks.verdict import Verdict, audit_log, loggable

__all__ = ["MAX_EVENT_TYPE_LENGTH", "EventReceiver", "EventVerdict"]

log = logging.getLogger(__name__)

MAX_EVENT_TYPE_LENGTH: Final = 200


@dataclass(frozen=True, slots=True)
class EventVerdict(Verdict):
    """A :class:`Verdict` about an event: names the ``source`` and, once stored, the ``seq``."""

    source: str | None = None
    seq: int | None = None

    @property
    def body(self) -> bytes:
        doc: dict[str, Any] = {"outcome": self.outcome, "reason": self.reason}
        if self.detail:
            doc["detail"] = self.detail
        if self.seq is not None:
            doc["seq"] = self.seq
        return json.dumps(doc).encode()

    def audit_fields(self) -> dict[str, Any]:
        fields = Verdict.audit_fields(self)  # zero-argument super() fails in slotted dataclasses
        del fields["callback_id"]
        return {**fields, "event": "webhook_event", "source": loggable(self.source), "seq": self.seq}


class EventReceiver:
    """Verifies events and appends them to the log. Holds no secrets: ``resolve_secret`` maps a source
    name to its :class:`Verifier` (and should cache)."""

    def __init__(
        self,
        log: EventLog,
        resolve_secret: SecretResolver,
        config: ReceiverConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        audit: logging.Logger = audit_log,
    ) -> None:
        self.log = log
        self.config = config or ReceiverConfig()
        self._resolve = resolve_secret
        self._clock = clock
        self._audit = audit

    async def handle(self, source: str, headers: Mapping[str, str], body: bytes) -> EventVerdict:
        """Judge one ``POST /events/{source}``; writes the audit line and never raises."""
        started = time.perf_counter()
        webhook_id: str | None = None
        seq: int | None = None
        try:
            webhook_id = get_header(headers, WEBHOOK_ID)
            status, reason, seq = await self._judge(source, headers, body)
            detail = ""
        except Rejection as rejection:
            status, reason, detail = rejection.status, rejection.reason, rejection.detail
        except Exception:
            log.exception("webhook event receiver failed on source %s", loggable(source))
            status, reason, detail = 500, "internal_error", ""
        verdict = EventVerdict(
            status,
            reason,
            webhook_id=webhook_id,
            detail=detail,
            latency_ms=(time.perf_counter() - started) * 1000,
            body_bytes=len(body),
            source=source,
            seq=seq,
        )
        verdict.audit(self._audit)
        return verdict

    def too_large(self, source: str, headers: Mapping[str, str], size: int) -> EventVerdict:
        """The 413 for a declared ``Content-Length`` over the limit, so the body need not be read."""
        rejection = body_too_large(self.config.max_body_bytes)
        verdict = EventVerdict(
            rejection.status,
            rejection.reason,
            webhook_id=get_header(headers, WEBHOOK_ID),
            detail=rejection.detail,
            body_bytes=size,
            source=source,
        )
        verdict.audit(self._audit)
        return verdict

    async def _judge(self, source: str, headers: Mapping[str, str], body: bytes) -> tuple[int, str, int]:
        check_envelope(headers, body, self.config.max_body_bytes)
        verifier = await self._verifier(source)
        now = self._clock()
        message = check_signature(verifier, headers, body, now=now, tolerance=self.config.tolerance)
        event_type = _event_type(parse_json(body))
        try:
            result = await self.log.append(
                source, message.webhook_id, event_type, body, now=datetime.fromtimestamp(now, timezone.utc)
            )
        except WebhookError as exc:
            log.warning("event log failed while appending to %s: %s", source, exc)
            raise Rejection(503, "store_unavailable") from None
        if result.outcome is AppendOutcome.ACCEPTED:
            return 202, "accepted", result.seq
        return 200, "duplicate", result.seq

    async def _verifier(self, source: str) -> Verifier:
        try:
            check_source(source)
        except WebhookError:
            raise Rejection(404, "unknown_source") from None
        try:
            verifier = await self._resolve(source)
        except WebhookConfigError:
            # A secret of that name exists but holds no webhook key (another kind of connection):
            # answered like an unknown source, so the route reveals nothing about other secrets.
            log.warning("the secret named like source %r holds no webhook key", source)
            raise Rejection(404, "unknown_source") from None
        except Exception as exc:
            # Names the source, never a secret; the partner retries on 503.
            log.warning("resolving the secret of source %r failed: %s", source, type(exc).__name__)
            raise Rejection(503, "secret_unavailable") from None
        if verifier is None:
            raise Rejection(404, "unknown_source")
        return verifier


def _event_type(payload: Any) -> str:
    kind = payload.get("type") if isinstance(payload, dict) else None
    if not isinstance(kind, str) or not kind.strip() or len(kind) > MAX_EVENT_TYPE_LENGTH:
        raise Rejection(
            400,
            "missing_event_type",
            f"the body must be a JSON object with a 'type' string of 1 to {MAX_EVENT_TYPE_LENGTH} characters",
        )
    return kind
