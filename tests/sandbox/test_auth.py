"""Every /secure/{scheme}/whoami scheme: accepted and rejected credentials."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

import aiohttp
import pytest
from yarl import URL

from airflow_provider_integrations.sandbox import SandboxProcess
from airflow_provider_integrations.sandbox.auth import (
    API_KEY,
    BASIC_PASSWORD,
    BASIC_USERNAME,
    BEARER_TOKEN,
    HMAC_KEY_ID,
    HMAC_SECRET,
)


async def whoami(
    http: aiohttp.ClientSession, sandbox: SandboxProcess, scheme: str, **kwargs: object
) -> tuple[int, dict, aiohttp.typedefs.LooseHeaders]:
    async with http.get(f"{sandbox.url}/secure/{scheme}/whoami", **kwargs) as response:  # type: ignore[arg-type]
        return response.status, await response.json(), response.headers


async def test_basic_accepts_valid_credentials(http: aiohttp.ClientSession, sandbox: SandboxProcess) -> None:
    status, body, _ = await whoami(
        http,
        sandbox,
        "basic",
        headers={"Authorization": aiohttp.encode_basic_auth(BASIC_USERNAME, BASIC_PASSWORD)},
    )
    assert status == 200
    assert body == {"scheme": "basic", "principal": "demo"}


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({}, "missing_credentials"),
        ({"Authorization": aiohttp.encode_basic_auth(BASIC_USERNAME, "wrong")}, "invalid_credentials"),
        ({"Authorization": "Basic !!!not-base64"}, "invalid_credentials"),
    ],
)
async def test_basic_rejects(
    http: aiohttp.ClientSession, sandbox: SandboxProcess, headers: dict[str, str], error: str
) -> None:
    status, body, response_headers = await whoami(http, sandbox, "basic", headers=headers)
    assert status == 401
    assert body["error"] == error
    assert response_headers["WWW-Authenticate"] == 'Basic realm="sandbox"'


async def test_bearer(http: aiohttp.ClientSession, sandbox: SandboxProcess) -> None:
    status, body, _ = await whoami(
        http, sandbox, "bearer", headers={"Authorization": f"Bearer {BEARER_TOKEN}"}
    )
    assert (status, body["scheme"]) == (200, "bearer")
    status, body, headers = await whoami(http, sandbox, "bearer", headers={"Authorization": "Bearer nope"})
    assert (status, body["error"]) == (401, "invalid_token")
    assert 'error="invalid_token"' in headers["WWW-Authenticate"]
    status, _, headers = await whoami(http, sandbox, "bearer")
    assert status == 401
    assert headers["WWW-Authenticate"] == 'Bearer realm="sandbox"'


async def test_api_key_in_header_or_query(http: aiohttp.ClientSession, sandbox: SandboxProcess) -> None:
    status, body, _ = await whoami(http, sandbox, "api_key", headers={"X-API-Key": API_KEY})
    assert (status, body["scheme"]) == (200, "api_key")
    status, _, _ = await whoami(http, sandbox, "api_key", params={"api_key": API_KEY})
    assert status == 200
    status, body, headers = await whoami(http, sandbox, "api_key", headers={"X-API-Key": "wrong"})
    assert (status, body["error"]) == (401, "invalid_api_key")
    assert "WWW-Authenticate" in headers
    status, body, _ = await whoami(http, sandbox, "api_key")
    assert (status, body["error"]) == (401, "missing_credentials")


async def test_oauth2_rejects_tokens_it_did_not_issue(
    http: aiohttp.ClientSession, sandbox: SandboxProcess
) -> None:
    status, body, _ = await whoami(
        http, sandbox, "oauth2", headers={"Authorization": f"Bearer {BEARER_TOKEN}"}
    )
    assert (status, body["error"]) == (401, "invalid_token")


async def test_unknown_scheme_is_404(http: aiohttp.ClientSession, sandbox: SandboxProcess) -> None:
    status, body, _ = await whoami(http, sandbox, "kerberos")
    assert (status, body["error"]) == (404, "unknown_scheme")


async def test_mtls_scheme_needs_a_client_certificate(
    http: aiohttp.ClientSession, sandbox: SandboxProcess
) -> None:
    status, body, _ = await whoami(http, sandbox, "mtls")
    assert (status, body["error"]) == (401, "missing_credentials")


# -- HMAC -------------------------------------------------------------------------------------------


def sign(
    method: str,
    path_and_query: str,
    body: bytes = b"",
    *,
    timestamp: int | None = None,
    algorithm: str = "sha256",
    key_id: str = HMAC_KEY_ID,
    secret: str = HMAC_SECRET,
) -> dict[str, str]:
    """Independent implementation of the documented wire format."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    message = f"{method}\n{path_and_query}\n{ts}\n{hashlib.sha256(body).hexdigest()}".encode()
    digest = hmac.new(secret.encode(), message, getattr(hashlib, algorithm)).hexdigest()
    return {"X-Key-Id": key_id, "X-Timestamp": ts, "X-Signature": f"{algorithm}={digest}"}


async def hmac_call(
    http: aiohttp.ClientSession, sandbox: SandboxProcess, method: str, path: str, body: bytes, headers: dict
) -> tuple[int, dict]:
    url = URL(f"{sandbox.url}{path}", encoded=True)  # send the path byte-for-byte as signed
    async with http.request(method, url, data=body or None, headers=headers) as response:
        return response.status, await response.json()


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
async def test_hmac_get_with_query(
    http: aiohttp.ClientSession, sandbox: SandboxProcess, algorithm: str
) -> None:
    path = "/secure/hmac/whoami?b=2&a=hello%20world"
    status, body = await hmac_call(http, sandbox, "GET", path, b"", sign("GET", path, algorithm=algorithm))
    assert status == 200
    assert body == {"scheme": "hmac", "principal": HMAC_KEY_ID, "algorithm": algorithm}


async def test_hmac_post_signs_the_body(http: aiohttp.ClientSession, sandbox: SandboxProcess) -> None:
    path = "/secure/hmac/whoami"
    payload = b'{"amount": 10}'
    status, _ = await hmac_call(http, sandbox, "POST", path, payload, sign("POST", path, payload))
    assert status == 200
    status, body = await hmac_call(
        http, sandbox, "POST", path, b'{"amount": 99}', sign("POST", path, payload)
    )
    assert (status, body["error"]) == (401, "invalid_signature")


@pytest.mark.parametrize("offset", [-301, 400], ids=["stale", "future"])
async def test_hmac_rejects_timestamps_outside_the_window(
    http: aiohttp.ClientSession, sandbox: SandboxProcess, offset: int
) -> None:
    # Signed when the test runs: parameters are built at collection, maybe minutes earlier.
    headers = sign("GET", "/secure/hmac/whoami", timestamp=int(time.time()) + offset)
    status, body = await hmac_call(http, sandbox, "GET", "/secure/hmac/whoami", b"", headers)
    assert (status, body["error"]) == (401, "stale_timestamp")


@pytest.mark.parametrize(
    ("make_headers", "error"),
    [
        (lambda: sign("GET", "/secure/hmac/whoami", key_id="other-key"), "unknown_key_id"),
        (lambda: sign("GET", "/secure/hmac/whoami", secret="wrong-secret"), "invalid_signature"),
        (lambda: sign("GET", "/secure/hmac/whoami?extra=1"), "invalid_signature"),
        (lambda: sign("POST", "/secure/hmac/whoami"), "invalid_signature"),
        (lambda: {**sign("GET", "/secure/hmac/whoami"), "X-Timestamp": "yesterday"}, "invalid_timestamp"),
        (lambda: sign("GET", "/secure/hmac/whoami", algorithm="md5"), "invalid_signature"),
        (lambda: {}, "missing_signature"),
    ],
    ids=[
        "unknown-key",
        "wrong-secret",
        "other-path",
        "other-method",
        "bad-ts",
        "md5",
        "none",
    ],
)
async def test_hmac_rejects(
    http: aiohttp.ClientSession,
    sandbox: SandboxProcess,
    make_headers: Callable[[], dict[str, str]],
    error: str,
) -> None:
    # Signed when the test runs: collection may be minutes earlier, beyond the 300 s window.
    headers = make_headers()
    status, body = await hmac_call(http, sandbox, "GET", "/secure/hmac/whoami", b"", headers)
    assert status == 401
    assert body["error"] == error
