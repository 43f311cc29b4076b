"""Signing keys of the Standard Webhooks scheme, parsed from their text forms.

* ``whsec_<base64>``: a shared HMAC-SHA256 secret (signature version ``v1``); signs and verifies.
* ``whsk_<base64>``: an ed25519 private key (``v1a``), the 32-byte seed or libsodium's 64-byte
  seed+public form; signs, and verifies through its public half.
* ``whpk_<base64>``: an ed25519 public key (``v1a``); verifies only.

A key object never shows its material in ``repr``, so logging a verifier or an exception that holds one
cannot leak it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from airflow_provider_integrations.webhooks.errors import WebhookConfigError

__all__ = [
    "Ed25519SigningKey",
    "Ed25519VerifyKey",
    "HmacKey",
    "SigningKey",
    "VerifyKey",
    "generate_keypair",
    "generate_secret",
    "parse_key",
]

SECRET_PREFIX: Final = "whsec_"
PRIVATE_KEY_PREFIX: Final = "whsk_"
PUBLIC_KEY_PREFIX: Final = "whpk_"
# The specification asks for 24 to 64 random bytes.
MIN_SECRET_BYTES: Final = 24
MAX_SECRET_BYTES: Final = 64


def b64decode_strict(text: str) -> bytes | None:
    """Standard-alphabet base64 to bytes; ``None`` if it is not valid base64."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class HmacKey:
    """A ``whsec_`` shared secret: signatures ``v1,<base64 hmac-sha256>``."""

    __slots__ = ("_key",)
    version: Final = "v1"

    def __init__(self, key: bytes) -> None:
        if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
            raise WebhookConfigError(
                "secret", f"{MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes of key material", secret=True
            )
        self._key = key

    def sign(self, content: bytes) -> str:
        return _b64encode(self.digest(content))

    def digest(self, content: bytes) -> bytes:
        return hmac.new(self._key, content, hashlib.sha256).digest()

    def verify(self, content: bytes, signature: bytes) -> bool:
        return hmac.compare_digest(self.digest(content), signature)

    def text(self) -> str:
        """The ``whsec_`` form, to hand to a partner or store in a connection."""
        return SECRET_PREFIX + _b64encode(self._key)

    def __repr__(self) -> str:
        return "HmacKey(***)"


class Ed25519VerifyKey:
    """A ``whpk_`` public key: verifies ``v1a,<base64 ed25519>`` signatures."""

    __slots__ = ("_key",)
    version: Final = "v1a"

    def __init__(self, key: ed25519.Ed25519PublicKey) -> None:
        self._key = key

    def verify(self, content: bytes, signature: bytes) -> bool:
        try:
            self._key.verify(signature, content)
        except InvalidSignature:
            return False
        return True

    def text(self) -> str:
        return PUBLIC_KEY_PREFIX + _b64encode(self._key.public_bytes(Encoding.Raw, PublicFormat.Raw))

    def __repr__(self) -> str:
        return f"Ed25519VerifyKey({self.text()})"  # public: safe to show


class Ed25519SigningKey:
    """A ``whsk_`` private key: signs ``v1a``; :meth:`public` gives the key receivers verify with."""

    __slots__ = ("_key",)
    version: Final = "v1a"

    def __init__(self, key: ed25519.Ed25519PrivateKey) -> None:
        self._key = key

    def sign(self, content: bytes) -> str:
        return _b64encode(self._key.sign(content))

    def public(self) -> Ed25519VerifyKey:
        return Ed25519VerifyKey(self._key.public_key())

    def verify(self, content: bytes, signature: bytes) -> bool:
        return self.public().verify(content, signature)

    def text(self) -> str:
        seed = self._key.private_bytes_raw()
        public = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return PRIVATE_KEY_PREFIX + _b64encode(seed + public)

    def __repr__(self) -> str:
        return "Ed25519SigningKey(***)"


SigningKey = HmacKey | Ed25519SigningKey
VerifyKey = HmacKey | Ed25519VerifyKey | Ed25519SigningKey


def parse_key(text: str, *, field: str = "secret") -> HmacKey | Ed25519SigningKey | Ed25519VerifyKey:
    """Parse one key from its text form; ``field`` names it in the error (the value is never shown).

    A bare base64 string without a prefix is read as an HMAC secret, as the reference libraries do.
    """
    if not isinstance(text, str) or not text.strip():
        raise WebhookConfigError(field, "a whsec_, whsk_ or whpk_ key", value=text, secret=True)
    text = text.strip()
    if text.startswith(PRIVATE_KEY_PREFIX):
        raw = b64decode_strict(text[len(PRIVATE_KEY_PREFIX) :])
        if raw is None or len(raw) not in (32, 64):
            raise WebhookConfigError(
                field, "whsk_ followed by base64 of a 32 or 64-byte ed25519 key", secret=True
            )
        private = ed25519.Ed25519PrivateKey.from_private_bytes(raw[:32])
        derived = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        if len(raw) == 64 and not hmac.compare_digest(raw[32:], derived):
            raise WebhookConfigError(field, "a whsk_ key whose public half matches its seed", secret=True)
        return Ed25519SigningKey(private)
    if text.startswith(PUBLIC_KEY_PREFIX):
        raw = b64decode_strict(text[len(PUBLIC_KEY_PREFIX) :])
        if raw is None or len(raw) != 32:
            raise WebhookConfigError(
                field, "whpk_ followed by base64 of a 32-byte ed25519 public key", value=text
            )
        return Ed25519VerifyKey(ed25519.Ed25519PublicKey.from_public_bytes(raw))
    raw = b64decode_strict(text.removeprefix(SECRET_PREFIX))
    if raw is None:
        raise WebhookConfigError(field, "whsec_ followed by base64 (standard alphabet)", secret=True)
    try:
        return HmacKey(raw)
    except WebhookConfigError as exc:
        raise WebhookConfigError(field, exc.expected, secret=True) from None


def generate_secret(nbytes: int = 32) -> str:
    """A fresh ``whsec_`` shared secret."""
    return HmacKey(secrets.token_bytes(nbytes)).text()


def generate_keypair() -> tuple[str, str]:
    """A fresh ed25519 pair as ``(whsk_ private, whpk_ public)``."""
    key = Ed25519SigningKey(ed25519.Ed25519PrivateKey.generate())
    return key.text(), key.public().text()
