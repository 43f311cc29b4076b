"""Standard Webhooks signatures: a :class:`Signer` for senders and a :class:`Verifier` for receivers.

A request carries three headers: ``webhook-id`` (unique per message, the same on every retry),
``webhook-timestamp`` (integer unix seconds) and ``webhook-signature``, a space-separated list of
``<version>,<base64 signature>`` over the bytes ``{id}.{timestamp}.{body}``. Version ``v1`` is
HMAC-SHA256 with a ``whsec_`` secret, ``v1a`` is ed25519.

Rotation: a sender signs with every key it holds (one signature each), and a verifier holding old and new
keys accepts a request when any signature matches any key, so either side can switch first.
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from airflow_provider_integrations.webhooks.errors import SignatureError, WebhookConfigError
from airflow_provider_integrations.webhooks.keys import (
    Ed25519SigningKey,
    Ed25519VerifyKey,
    HmacKey,
    SigningKey,
    VerifyKey,
    b64decode_strict,
    parse_key,
)

__all__ = [
    "DEFAULT_TOLERANCE",
    "WEBHOOK_ID",
    "WEBHOOK_SIGNATURE",
    "WEBHOOK_TIMESTAMP",
    "SignedMessage",
    "Signer",
    "Verifier",
    "get_header",
    "signed_content",
]

WEBHOOK_ID: Final = "webhook-id"
WEBHOOK_TIMESTAMP: Final = "webhook-timestamp"
WEBHOOK_SIGNATURE: Final = "webhook-signature"
#: Seconds a timestamp may lie in the past or in the future (replay window and clock skew).
DEFAULT_TOLERANCE: Final = 300.0
MAX_WEBHOOK_ID_LENGTH: Final = 256
# Each ed25519 check costs ~50 µs: a header listing thousands of signatures must not cost seconds.
MAX_SIGNATURES: Final = 16
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_PRINTABLE = re.compile(r"[\x21-\x7e]+")


def signed_content(webhook_id: str, timestamp: int, body: bytes) -> bytes:
    """The exact bytes both sides sign: ``{id}.{timestamp}.{body}``."""
    return f"{webhook_id}.{timestamp}.".encode() + body


@dataclass(frozen=True, slots=True)
class SignedMessage:
    """What a successful verification vouches for."""

    webhook_id: str
    timestamp: int


def _parse_keys(texts: Iterable[str], field: str) -> list[HmacKey | Ed25519SigningKey | Ed25519VerifyKey]:
    if isinstance(texts, str):
        texts = texts.split()  # one string of space-separated keys, as an env var holds them
    keys = [parse_key(text, field=f"{field}[{i}]") for i, text in enumerate(texts)]
    if not keys:
        raise WebhookConfigError(field, "at least one key")
    return keys


class Signer:
    """Signs requests with every key it holds (several during a rotation)."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Sequence[SigningKey]) -> None:
        if not keys:
            raise WebhookConfigError("keys", "at least one signing key")
        self._keys = tuple(keys)

    @classmethod
    def from_secrets(cls, texts: Iterable[str], *, field: str = "secrets") -> Signer:
        """From ``whsec_``/``whsk_`` texts (a list, or one space-separated string)."""
        keys: list[SigningKey] = []
        for i, key in enumerate(_parse_keys(texts, field)):
            if isinstance(key, Ed25519VerifyKey):
                raise WebhookConfigError(f"{field}[{i}]", "a whsec_ or whsk_ key (a whpk_ key cannot sign)")
            keys.append(key)
        return cls(keys)

    def signature(self, webhook_id: str, timestamp: int, body: bytes) -> str:
        """The ``webhook-signature`` header value."""
        content = signed_content(webhook_id, timestamp, body)
        return " ".join(f"{key.version},{key.sign(content)}" for key in self._keys)

    def headers(
        self, body: bytes, *, webhook_id: str | None = None, timestamp: int | None = None
    ) -> dict[str, str]:
        """The three signature headers, with a fresh ``msg_`` id and the current time by default."""
        webhook_id = webhook_id or f"msg_{secrets.token_urlsafe(18)}"
        timestamp = int(time.time()) if timestamp is None else timestamp
        return {
            WEBHOOK_ID: webhook_id,
            WEBHOOK_TIMESTAMP: str(timestamp),
            WEBHOOK_SIGNATURE: self.signature(webhook_id, timestamp, body),
        }

    def __repr__(self) -> str:
        return f"Signer({len(self._keys)} keys)"


class Verifier:
    """Accepts a request when any of its signatures matches any key held (old and new while rotating)."""

    __slots__ = ("_asymmetric", "_hmac")

    def __init__(self, keys: Sequence[VerifyKey]) -> None:
        if not keys:
            raise WebhookConfigError("keys", "at least one verification key")
        self._hmac = tuple(k for k in keys if isinstance(k, HmacKey))
        self._asymmetric = tuple(
            k.public() if isinstance(k, Ed25519SigningKey) else k for k in keys if not isinstance(k, HmacKey)
        )

    @classmethod
    def from_secrets(cls, texts: Iterable[str], *, field: str = "secrets") -> Verifier:
        """From ``whsec_``/``whpk_``/``whsk_`` texts (a list, or one space-separated string)."""
        return cls(_parse_keys(texts, field))

    def verify(
        self,
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: float | None = None,
        tolerance: float = DEFAULT_TOLERANCE,
    ) -> SignedMessage:
        """Check the three headers against ``body``; raise :class:`SignatureError` with a reason code.

        ``headers`` may be any mapping: names are matched case-insensitively.
        """
        webhook_id = get_header(headers, WEBHOOK_ID)
        raw_timestamp = get_header(headers, WEBHOOK_TIMESTAMP)
        signatures = get_header(headers, WEBHOOK_SIGNATURE)
        if not (webhook_id and raw_timestamp and signatures):
            raise SignatureError(
                "missing_header", f"{WEBHOOK_ID}, {WEBHOOK_TIMESTAMP} and {WEBHOOK_SIGNATURE} are required"
            )
        if len(webhook_id) > MAX_WEBHOOK_ID_LENGTH or not _PRINTABLE.fullmatch(webhook_id):
            raise SignatureError(
                "invalid_webhook_id",
                f"{WEBHOOK_ID} must be 1 to {MAX_WEBHOOK_ID_LENGTH} printable ASCII characters",
            )
        if not _TIMESTAMP.fullmatch(raw_timestamp):
            raise SignatureError("invalid_timestamp", f"{WEBHOOK_TIMESTAMP} must be integer unix seconds")
        timestamp = int(raw_timestamp)
        skew = timestamp - (time.time() if now is None else now)
        if skew < -tolerance:
            raise SignatureError("stale_timestamp", f"{WEBHOOK_TIMESTAMP} is older than {tolerance:g} s")
        if skew > tolerance:
            raise SignatureError(
                "future_timestamp", f"{WEBHOOK_TIMESTAMP} is more than {tolerance:g} s ahead"
            )
        # Sign over the canonical integer, as the reference implementations do ("0012" -> "12").
        if self._matches(signed_content(webhook_id, timestamp, body), signatures):
            return SignedMessage(webhook_id, timestamp)
        raise SignatureError("no_valid_signature", "no signature matches a key of this receiver")

    def _matches(self, content: bytes, header: str) -> bool:
        digests: list[bytes] | None = None
        for entry in header.split()[:MAX_SIGNATURES]:
            version, _, encoded = entry.partition(",")
            signature = b64decode_strict(encoded)
            if signature is None:
                continue
            if version == "v1" and self._hmac:
                # One HMAC per key, however many v1 signatures the header lists.
                digests = digests or [key.digest(content) for key in self._hmac]
                if any(hmac.compare_digest(digest, signature) for digest in digests):
                    return True
            elif version == "v1a" and any(key.verify(content, signature) for key in self._asymmetric):
                return True
        return False

    def __repr__(self) -> str:
        return f"Verifier({len(self._hmac)} hmac, {len(self._asymmetric)} ed25519 keys)"


def get_header(headers: Mapping[str, str], name: str) -> str | None:
    """Header ``name`` (lower case) from any mapping, stripped; ``None`` if absent."""
    value = headers.get(name)
    if value is None:
        # Plain dicts are case-sensitive; aiohttp's and Starlette's header maps are not.
        for key, candidate in headers.items():
            if key.lower() == name:
                return candidate.strip()
        return None
    return value.strip()
