"""The request checks both receivers run (callbacks and events), and how a failed one ends the request.

Cheapest first, and nothing unauthenticated is parsed: :func:`check_envelope` (size, media type) before
any lookup, :func:`check_signature` once the receiver knows which keys apply, :func:`parse_json` only
after that. A failed check raises :class:`Rejection`, which the receiver turns into its verdict.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from airflow_provider_integrations.webhooks.errors import SignatureError
from airflow_provider_integrations.webhooks.signing import SignedMessage, Verifier, get_header

__all__ = ["Rejection", "body_too_large", "check_envelope", "check_signature", "parse_json"]


class Rejection(Exception):
    """Ends a request with ``status``, a stable ``reason`` code and a ``detail`` for the partner."""

    def __init__(self, status: int, reason: str, detail: str = "") -> None:
        self.status, self.reason, self.detail = status, reason, detail


def body_too_large(max_body_bytes: int) -> Rejection:
    return Rejection(413, "body_too_large", f"the body must be at most {max_body_bytes} bytes")


def check_envelope(headers: Mapping[str, str], body: bytes, max_body_bytes: int) -> None:
    """413 for a body over the limit, 415 unless it is declared ``application/json`` (or ``+json``)."""
    if len(body) > max_body_bytes:
        raise body_too_large(max_body_bytes)
    media_type = (get_header(headers, "content-type") or "").split(";", 1)[0].strip().lower()
    if not (
        media_type == "application/json"
        or (media_type.startswith("application/") and media_type.endswith("+json"))
    ):
        raise Rejection(415, "unsupported_content_type", "Content-Type must be application/json")


def check_signature(
    verifier: Verifier, headers: Mapping[str, str], body: bytes, *, now: float, tolerance: float
) -> SignedMessage:
    """401 with the :class:`SignatureError`'s reason code unless ``verifier`` accepts the request."""
    try:
        return verifier.verify(headers, body, now=now, tolerance=tolerance)
    except SignatureError as exc:
        raise Rejection(401, exc.reason, str(exc)) from None


def parse_json(body: bytes) -> Any:
    """The parsed body; 400 unless it is UTF-8 JSON (``NaN`` and ``Infinity`` are not JSON)."""
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise Rejection(400, "malformed_json", "the body must be UTF-8 JSON") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
