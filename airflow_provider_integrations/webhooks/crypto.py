"""Payload encryption at rest: AES-256-GCM with a list of keys (the first encrypts, all decrypt).

A stored blob starts with a format byte:

* ``0x00`` + the payload: stored in the clear (no key configured);
* ``0x01`` + key id (8 bytes) + nonce (12) + ciphertext and tag: encrypted.

The key id is a hash of the key, so decryption picks the right key without trying each, and rows written
before a rotation stay readable as long as the old key is still listed. The callback id is bound in as
associated data: a ciphertext copied onto another callback's row does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable, Sequence
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from airflow_provider_integrations.webhooks.errors import PayloadDecryptError, WebhookConfigError

__all__ = ["PayloadCodec", "generate_payload_key"]

KEY_BYTES: Final = 32
_PLAIN: Final = b"\x00"
_AES_GCM: Final = b"\x01"
_KID_BYTES: Final = 8
_NONCE_BYTES: Final = 12


def generate_payload_key() -> str:
    """A fresh key in the text form :class:`PayloadCodec` takes (urlsafe base64 of 32 bytes)."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"webhook-payload-key:" + key).digest()[:_KID_BYTES]


def _parse(text: str, field: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip().encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raw = b""
    if len(raw) != KEY_BYTES:
        raise WebhookConfigError(field, f"urlsafe base64 of {KEY_BYTES} random bytes", secret=True)
    return raw


class PayloadCodec:
    """Turns a payload into the blob a store keeps, and back.

    :param keys: urlsafe-base64 AES-256 keys, newest first (a list, or one space-separated string).
        Without keys payloads are stored in the clear; encrypted rows then fail to decode.
    """

    __slots__ = ("_aead", "_primary")

    def __init__(self, keys: Iterable[str] | str = ()) -> None:
        texts: Sequence[str] = keys.split() if isinstance(keys, str) else list(keys)
        raws = [_parse(text, f"encryption_keys[{i}]") for i, text in enumerate(texts)]
        self._aead = {_key_id(raw): AESGCM(raw) for raw in raws}
        self._primary = _key_id(raws[0]) if raws else None

    @property
    def encrypts(self) -> bool:
        return self._primary is not None

    def encode(self, callback_id: str, payload: bytes) -> bytes:
        if self._primary is None:
            return _PLAIN + payload
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead[self._primary].encrypt(nonce, payload, callback_id.encode())
        return _AES_GCM + self._primary + nonce + sealed

    def decode(self, callback_id: str, blob: bytes) -> bytes:
        blob = bytes(blob)
        kind, rest = blob[:1], blob[1:]
        if kind == _PLAIN:
            return rest
        if kind != _AES_GCM or len(rest) < _KID_BYTES + _NONCE_BYTES + 16:
            raise PayloadDecryptError(f"stored payload of callback {callback_id} has an unknown format")
        kid, nonce, sealed = (
            rest[:_KID_BYTES],
            rest[_KID_BYTES : _KID_BYTES + _NONCE_BYTES],
            rest[_KID_BYTES + _NONCE_BYTES :],
        )
        aead = self._aead.get(kid)
        if aead is None:
            raise PayloadDecryptError(
                f"stored payload of callback {callback_id} was encrypted with key id {kid.hex()}, which is "
                "not among the configured encryption keys (keep old keys listed after a rotation)"
            )
        try:
            return aead.decrypt(nonce, sealed, callback_id.encode())
        except InvalidTag:
            raise PayloadDecryptError(
                f"stored payload of callback {callback_id} failed authentication (tampered, or moved "
                "from another callback)"
            ) from None

    def __repr__(self) -> str:
        return f"PayloadCodec({len(self._aead)} keys)"
