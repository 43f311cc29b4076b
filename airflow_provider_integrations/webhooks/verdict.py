"""What the receiver answers, and the one audit line it writes per request.

The audit line is JSON on the ``airflow_provider_integrations.webhooks.audit`` logger. It carries ids,
the verdict and timings, never a secret, a signature or a byte of the body. The ids come from the
request itself, so they are cut to printable ASCII and a bounded length before they are logged.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["AUDIT_LOGGER", "OUTCOMES", "Verdict"]

AUDIT_LOGGER: Final = "airflow_provider_integrations.webhooks.audit"
audit_log = logging.getLogger(AUDIT_LOGGER)

#: status -> outcome; ``reason`` refines the outcome (``stale_timestamp``, ``schema_violation``...).
OUTCOMES: Final = {
    202: "accepted",
    200: "duplicate",
    400: "malformed",
    401: "unauthorized",
    404: "not_found",
    413: "too_large",
    415: "unsupported_media_type",
    500: "error",
    503: "unavailable",
}
_LOGGABLE = re.compile(r"[^\x21-\x7e]")
_MAX_LOGGED_ID: Final = 128


def loggable(value: str | None) -> str | None:
    """An attacker-supplied id made safe for a log line: printable ASCII, bounded length."""
    if value is None:
        return None
    cleaned = _LOGGABLE.sub("?", value[: _MAX_LOGGED_ID + 1])
    return cleaned if len(cleaned) <= _MAX_LOGGED_ID else cleaned[:_MAX_LOGGED_ID] + "..."


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer to one callback request; an adapter sends ``status``, ``body`` and ``headers``."""

    status: int
    reason: str
    callback_id: str | None = None
    webhook_id: str | None = None
    detail: str = ""
    latency_ms: float = 0.0
    body_bytes: int = 0

    @property
    def outcome(self) -> str:
        return OUTCOMES.get(self.status, "error")

    @property
    def body(self) -> bytes:
        doc: dict[str, Any] = {"outcome": self.outcome, "reason": self.reason}
        if self.detail:
            doc["detail"] = self.detail
        return json.dumps(doc).encode()

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json"}

    def audit_fields(self) -> dict[str, Any]:
        return {
            "event": "webhook_callback",
            "callback_id": loggable(self.callback_id),
            "webhook_id": loggable(self.webhook_id),
            "status": self.status,
            "verdict": self.outcome,
            "reason": self.reason,
            "body_bytes": self.body_bytes,
            "latency_ms": round(self.latency_ms, 3),
        }

    def audit(self, logger: logging.Logger = audit_log) -> None:
        logger.info("%s", json.dumps(self.audit_fields(), separators=(",", ":")))
