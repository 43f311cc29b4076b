"""OAuth2 client-credentials: issue, client auth methods, expiry, revocation and TTL control."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiohttp
import pytest

from airflow_provider_integrations.sandbox import SandboxProcess
from airflow_provider_integrations.sandbox.auth import OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET

CLIENT_AUTH = {"Authorization": aiohttp.encode_basic_auth(OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET)}


@pytest.fixture(scope="module")
def short_ttl_sandbox() -> Iterator[SandboxProcess]:
    """Started with --token-ttl 1; its own process so revocation and TTL changes stay private."""
    with SandboxProcess(token_ttl=1) as process:
        yield process


async def fetch_token(
    http: aiohttp.ClientSession, base_url: str, form: dict[str, str] | None = None, **kwargs: object
) -> tuple[int, dict, dict[str, str]]:
    data = {"grant_type": "client_credentials", **(form or {})}
    async with http.post(f"{base_url}/oauth/token", data=data, **kwargs) as response:  # type: ignore[arg-type]
        return response.status, await response.json(), dict(response.headers)


async def whoami(http: aiohttp.ClientSession, base_url: str, token: str) -> tuple[int, dict, dict[str, str]]:
    headers = {"Authorization": f"Bearer {token}"}
    async with http.get(f"{base_url}/secure/oauth2/whoami", headers=headers) as response:
        return response.status, await response.json(), dict(response.headers)


async def tokens_issued(http: aiohttp.ClientSession, base_url: str) -> int:
    async with http.get(f"{base_url}/stats") as response:
        return (await response.json())["tokens_issued"]


async def test_client_secret_basic_issues_usable_token(
    http: aiohttp.ClientSession, sandbox: SandboxProcess
) -> None:
    before = await tokens_issued(http, sandbox.url)
    form = {"scope": "read  write", "audience": "https://api.example"}
    status, body, headers = await fetch_token(http, sandbox.url, form, headers=CLIENT_AUTH)
    assert status == 200
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "read write"
    assert len(body["access_token"]) >= 32
    assert headers["Cache-Control"] == "no-store"
    status, me, _ = await whoami(http, sandbox.url, body["access_token"])
    assert status == 200
    assert me == {
        "scheme": "oauth2",
        "principal": OAUTH_CLIENT_ID,
        "scope": "read write",
        "audience": "https://api.example",
    }
    assert await tokens_issued(http, sandbox.url) == before + 1


async def test_client_secret_post_issues_distinct_tokens(
    http: aiohttp.ClientSession, sandbox: SandboxProcess
) -> None:
    form = {"client_id": OAUTH_CLIENT_ID, "client_secret": OAUTH_CLIENT_SECRET}
    _, first, _ = await fetch_token(http, sandbox.url, form)
    _, second, _ = await fetch_token(http, sandbox.url, form)
    assert first["access_token"] != second["access_token"]
    assert first["scope"] is None
    for body in (first, second):
        assert (await whoami(http, sandbox.url, body["access_token"]))[0] == 200


@pytest.mark.parametrize(
    ("form", "kwargs", "www_authenticate"),
    [
        ({"client_id": OAUTH_CLIENT_ID, "client_secret": "wrong"}, {}, False),
        ({}, {}, False),
        ({}, {"headers": {"Authorization": aiohttp.encode_basic_auth(OAUTH_CLIENT_ID, "wrong")}}, True),
        (
            {},
            {"headers": {"Authorization": aiohttp.encode_basic_auth("someone-else", OAUTH_CLIENT_SECRET)}},
            True,
        ),
    ],
    ids=["post-wrong-secret", "no-client", "basic-wrong-secret", "basic-wrong-id"],
)
async def test_invalid_client(
    http: aiohttp.ClientSession, sandbox: SandboxProcess, form: dict, kwargs: dict, www_authenticate: bool
) -> None:
    status, body, headers = await fetch_token(http, sandbox.url, form, **kwargs)
    assert (status, body["error"]) == (401, "invalid_client")
    assert ("WWW-Authenticate" in headers) is www_authenticate


async def test_wrong_or_missing_grant_type(http: aiohttp.ClientSession, sandbox: SandboxProcess) -> None:
    status, body, _ = await fetch_token(http, sandbox.url, {"grant_type": "password"}, headers=CLIENT_AUTH)
    assert (status, body["error"]) == (400, "unsupported_grant_type")
    async with http.post(f"{sandbox.url}/oauth/token", data={"scope": "x"}, headers=CLIENT_AUTH) as response:
        assert response.status == 400
        assert (await response.json())["error"] == "invalid_request"


async def test_token_expires_server_side(
    http: aiohttp.ClientSession, short_ttl_sandbox: SandboxProcess
) -> None:
    _, body, _ = await fetch_token(http, short_ttl_sandbox.url, headers=CLIENT_AUTH)
    assert body["expires_in"] == 1
    assert (await whoami(http, short_ttl_sandbox.url, body["access_token"]))[0] == 200
    await asyncio.sleep(1.1)
    status, error, headers = await whoami(http, short_ttl_sandbox.url, body["access_token"])
    assert status == 401
    assert error["error"] == "invalid_token"
    assert "expired" in error["error_description"]
    assert 'error="invalid_token"' in headers["WWW-Authenticate"]


async def test_revoke_invalidates_issued_tokens(
    http: aiohttp.ClientSession, short_ttl_sandbox: SandboxProcess
) -> None:
    url = short_ttl_sandbox.url
    async with http.post(f"{url}/control/token-ttl", json={"seconds": 60}) as response:
        assert await response.json() == {"token_ttl": 60}
    try:
        _, old, _ = await fetch_token(http, url, headers=CLIENT_AUTH)
        assert old["expires_in"] == 60
        assert (await whoami(http, url, old["access_token"]))[0] == 200
        async with http.post(f"{url}/control/revoke-tokens") as response:
            assert (await response.json())["revoked"] >= 1
        status, error, _ = await whoami(http, url, old["access_token"])
        assert (status, error["error"]) == (401, "invalid_token")
        # The refresh-once-on-401 path: a freshly fetched token works again.
        _, new, _ = await fetch_token(http, url, headers=CLIENT_AUTH)
        assert (await whoami(http, url, new["access_token"]))[0] == 200
    finally:
        async with http.post(f"{url}/control/token-ttl", json={"seconds": 1}) as response:
            assert response.status == 200


@pytest.mark.parametrize("payload", [{"seconds": -1}, {"seconds": "10"}, {"minutes": 1}, [1]])
async def test_token_ttl_control_validates(
    http: aiohttp.ClientSession, short_ttl_sandbox: SandboxProcess, payload: object
) -> None:
    async with http.post(f"{short_ttl_sandbox.url}/control/token-ttl", json=payload) as response:
        assert response.status == 400


async def test_two_client_auth_methods_at_once_are_rejected(
    http: aiohttp.ClientSession, sandbox: SandboxProcess
) -> None:
    form = {"client_id": OAUTH_CLIENT_ID, "client_secret": OAUTH_CLIENT_SECRET}
    status, body, _ = await fetch_token(http, sandbox.url, form, headers=CLIENT_AUTH)
    assert (status, body["error"]) == (400, "invalid_request")
