"""Auth strategies as pure objects: headers, query, signatures, token cache and refresh."""

from __future__ import annotations

import asyncio
import hashlib
import hmac

from yarl import URL

from airflow_provider_integrations.connections.http_config import AuthConfig
from airflow_provider_integrations.http.auth import (
    ApiKeyAuth,
    BasicAuth,
    HmacAuth,
    OAuth2ClientCredentials,
    OutgoingRequest,
    build_auth,
)


def req(method: str = "GET", url: str = "https://api/x?a=1", body: bytes | None = None) -> OutgoingRequest:
    return OutgoingRequest(method, URL(url), {}, body)


async def test_basic_and_api_key() -> None:
    r = req()
    await BasicAuth("demo", "demo-password").apply(r)
    assert r.headers["Authorization"] == "Basic ZGVtbzpkZW1vLXBhc3N3b3Jk"
    q = req()
    await ApiKeyAuth("k1", "api_key", "query").apply(q)
    assert q.url.query["api_key"] == "k1" and q.url.query["a"] == "1"
    h = req()
    await ApiKeyAuth("k1", "X-API-Key", "header").apply(h)
    assert h.headers == {"X-API-Key": "k1"}


async def test_hmac_signs_method_path_query_timestamp_and_body() -> None:
    auth = HmacAuth("kid", "s3cret", "sha256", clock=lambda: 1700000000.5)
    r = req("POST", "https://api/v1/items?b=2", b'{"x":1}')
    await auth.apply(r)
    message = "POST\n/v1/items?b=2\n1700000000\n" + hashlib.sha256(b'{"x":1}').hexdigest()
    expected = hmac.new(b"s3cret", message.encode(), "sha256").hexdigest()
    assert r.headers == {"X-Key-Id": "kid", "X-Timestamp": "1700000000", "X-Signature": f"sha256={expected}"}


async def test_oauth2_token_cached_refreshed_before_expiry_and_on_401() -> None:
    now = [0.0]
    fetched: list[int] = []

    async def fetch() -> tuple[str, float]:
        fetched.append(1)
        await asyncio.sleep(0.01)
        return f"tok{len(fetched)}", 100.0

    auth = OAuth2ClientCredentials(fetch, clock=lambda: now[0])
    requests = [req() for _ in range(20)]
    await asyncio.gather(*(auth.apply(r) for r in requests))
    assert len(fetched) == 1, "concurrent callers share one token fetch"
    assert {r.headers["Authorization"] for r in requests} == {"Bearer tok1"}
    now[0] = 89.0  # 10% early refresh: the token counts as expired after 90 s
    r = req()
    await auth.apply(r)
    assert r.headers["Authorization"] == "Bearer tok1"
    now[0] = 91.0
    await auth.apply(r)
    assert r.headers["Authorization"] == "Bearer tok2"
    assert auth.refresh_on_401(r) is True
    await auth.apply(r)
    assert r.headers["Authorization"] == "Bearer tok3"
    stale = req()
    stale.credential = "tok-old"
    auth.refresh_on_401(stale)  # a stale token's 401 must not throw away the fresh one
    await auth.apply(req())
    assert len(fetched) == 3


def test_build_auth_chooses_by_scheme() -> None:
    assert build_auth(AuthConfig()).scheme == "none"
    assert build_auth(AuthConfig(scheme="hmac", login="k", secret="s")).scheme == "hmac"
    assert build_auth(AuthConfig(scheme="bearer", secret="t")).scheme == "bearer"
