"""Fixed sandbox credentials and the ``/secure/{scheme}/whoami`` endpoints.

The credentials are public constants on purpose: tests and examples import them
instead of copying literals, so a change here cannot silently desynchronise them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from airflow_provider_integrations.sandbox.params import json_error
from airflow_provider_integrations.sandbox.state import get_state

BASIC_USERNAME = "demo"
BASIC_PASSWORD = "demo-password"
BEARER_TOKEN = "sandbox-token"
API_KEY = "sandbox-api-key"
API_KEY_HEADER = "X-API-Key"
API_KEY_QUERY_PARAM = "api_key"
OAUTH_CLIENT_ID = "sandbox-client"
OAUTH_CLIENT_SECRET = "sandbox-secret"
HMAC_KEY_ID = "sandbox-key"
HMAC_SECRET = "sandbox-hmac-secret"
HMAC_ALGORITHMS = ("sha256", "sha512")
HMAC_MAX_SKEW_SECONDS = 300

SCHEMES = ("basic", "bearer", "api_key", "oauth2", "hmac", "mtls")

_REALM = 'realm="sandbox"'


class AuthFailure(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def parse_basic_authorization(header: str | None) -> tuple[str, str] | None:
    """Decode ``Basic`` credentials; None when absent or not Basic."""
    if not header:
        return None
    kind, _, encoded = header.partition(" ")
    if kind.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthFailure("invalid_credentials", "malformed Basic credentials") from None
    user, sep, password = decoded.partition(":")
    if not sep:
        raise AuthFailure("invalid_credentials", "malformed Basic credentials")
    return user, password


def _bearer_token(request: web.Request) -> str:
    kind, _, token = request.headers.get("Authorization", "").partition(" ")
    if kind.lower() != "bearer" or not token.strip():
        raise AuthFailure("missing_credentials", "Bearer token required")
    return token.strip()


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


async def check_basic(request: web.Request) -> dict[str, Any]:
    creds = parse_basic_authorization(request.headers.get("Authorization"))
    if creds is None:
        raise AuthFailure("missing_credentials", "Basic credentials required")
    user, password = creds
    if not (_same(user, BASIC_USERNAME) and _same(password, BASIC_PASSWORD)):
        raise AuthFailure("invalid_credentials", "wrong username or password")
    return {"principal": user}


async def check_bearer(request: web.Request) -> dict[str, Any]:
    if not _same(_bearer_token(request), BEARER_TOKEN):
        raise AuthFailure("invalid_token", "unknown bearer token")
    return {"principal": "sandbox-token-holder"}


async def check_api_key(request: web.Request) -> dict[str, Any]:
    key = request.headers.get(API_KEY_HEADER) or request.query.get(API_KEY_QUERY_PARAM)
    if not key:
        raise AuthFailure("missing_credentials", f"{API_KEY_HEADER} header or {API_KEY_QUERY_PARAM} required")
    if not _same(key, API_KEY):
        raise AuthFailure("invalid_api_key", "unknown API key")
    return {"principal": "api-key-client"}


async def check_oauth2(request: web.Request) -> dict[str, Any]:
    info, reason = get_state(request).token_store.lookup(_bearer_token(request))
    if info is None:
        raise AuthFailure("invalid_token", reason)
    return {"principal": info.client_id, "scope": info.scope, "audience": info.audience}


def hmac_string_to_sign(method: str, raw_path: str, timestamp: str, body: bytes) -> bytes:
    """The exact bytes a client must sign: method, raw path+query, timestamp, sha256(body)."""
    body_hash = hashlib.sha256(body).hexdigest()
    return f"{method.upper()}\n{raw_path}\n{timestamp}\n{body_hash}".encode()


async def check_hmac(request: web.Request) -> dict[str, Any]:
    key_id = request.headers.get("X-Key-Id")
    timestamp = request.headers.get("X-Timestamp")
    signature = request.headers.get("X-Signature")
    if not (key_id and timestamp and signature):
        raise AuthFailure("missing_signature", "X-Key-Id, X-Timestamp and X-Signature are required")
    if not _same(key_id, HMAC_KEY_ID):
        raise AuthFailure("unknown_key_id", f"unknown key id {key_id!r}")
    try:
        signed_at = int(timestamp)
    except ValueError:
        raise AuthFailure("invalid_timestamp", "X-Timestamp must be integer unix seconds") from None
    if abs(time.time() - signed_at) > HMAC_MAX_SKEW_SECONDS:
        raise AuthFailure("stale_timestamp", f"timestamp outside the {HMAC_MAX_SKEW_SECONDS}s window")
    algorithm, sep, received = signature.partition("=")
    if not sep or algorithm not in HMAC_ALGORITHMS:
        raise AuthFailure("invalid_signature", f"X-Signature must be one of {HMAC_ALGORITHMS} '=<hex>'")
    message = hmac_string_to_sign(request.method, request.raw_path, timestamp, await request.read())
    expected = hmac.new(HMAC_SECRET.encode("utf-8"), message, algorithm).hexdigest()
    if not _same(received, expected):
        raise AuthFailure("invalid_signature", "signature mismatch")
    return {"principal": key_id, "algorithm": algorithm}


async def check_mtls(request: web.Request) -> dict[str, Any]:
    # Only meaningful when the sandbox runs with --client-ca; the TLS layer has
    # already verified the chain, we only report who the certificate names.
    transport = request.transport
    peercert = transport.get_extra_info("peercert") if transport is not None else None
    if not peercert:
        raise AuthFailure("missing_credentials", "a verified client certificate is required")
    subject = dict(item for rdn in peercert.get("subject", ()) for item in rdn)
    return {"principal": subject.get("commonName", "")}


Checker = Callable[[web.Request], Awaitable[dict[str, Any]]]

CHECKERS: dict[str, Checker] = {
    "basic": check_basic,
    "bearer": check_bearer,
    "api_key": check_api_key,
    "oauth2": check_oauth2,
    "hmac": check_hmac,
    "mtls": check_mtls,
}


def challenge(scheme: str, failure: AuthFailure) -> str:
    if scheme in ("bearer", "oauth2"):
        if failure.error == "missing_credentials":
            return f"Bearer {_REALM}"  # RFC 6750 3.1: no error code when no token was sent
        return f'Bearer {_REALM}, error="invalid_token", error_description="{failure.description}"'
    return {"basic": "Basic", "api_key": "ApiKey", "hmac": "HMAC", "mtls": "Mutual"}[scheme] + f" {_REALM}"


async def whoami(request: web.Request) -> web.Response:
    scheme = request.match_info["scheme"]
    checker = CHECKERS.get(scheme)
    if checker is None:
        return json_error(404, "unknown_scheme", f"scheme must be one of {SCHEMES}")
    try:
        result = await checker(request)
    except AuthFailure as failure:
        response = json_error(401, failure.error, failure.description)
        response.headers["WWW-Authenticate"] = challenge(scheme, failure)
        return response
    return web.json_response({"scheme": scheme, **result})


def register(app: web.Application) -> None:
    app.router.add_get("/secure/{scheme}/whoami", whoami, allow_head=False)
    app.router.add_post("/secure/{scheme}/whoami", whoami)
