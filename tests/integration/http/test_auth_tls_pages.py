"""Auth schemes, OAuth2 token lifecycle, TLS/mTLS and the four pagination kinds against the sandbox."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from airflow_provider_integrations.connections.http_config import AuthConfig, HttpClientConfig, TlsConfig
from airflow_provider_integrations.http import errors
from airflow_provider_integrations.http.pagination import paginator_from_spec
from airflow_provider_integrations.http.sessions import lease_client
from airflow_provider_integrations.sandbox import auth as creds
from airflow_provider_integrations.sandbox.certs import TlsMaterial, generate_tls_material
from airflow_provider_integrations.sandbox.process import SandboxProcess

Make = Callable[..., HttpClientConfig]

GOOD = {
    "basic": AuthConfig(scheme="basic", login="demo", secret="demo-password"),
    "bearer": AuthConfig(scheme="bearer", secret="sandbox-token"),
    "api_key": AuthConfig(scheme="api_key", secret="sandbox-api-key"),
    "api_key_query": AuthConfig(
        scheme="api_key", secret="sandbox-api-key", api_key_name="api_key", api_key_in="query"
    ),
    "oauth2": AuthConfig(
        scheme="oauth2_client_credentials",
        login="sandbox-client",
        secret="sandbox-secret",
        oauth2_token_url="/oauth/token",
        oauth2_scopes=("items:read",),
        oauth2_audience="sandbox-api",
    ),
    "oauth2_post": AuthConfig(
        scheme="oauth2_client_credentials",
        login="sandbox-client",
        secret="sandbox-secret",
        oauth2_token_url="/oauth/token",
        oauth2_client_auth="client_secret_post",
    ),
    "hmac": AuthConfig(scheme="hmac", login="sandbox-key", secret="sandbox-hmac-secret"),
    "hmac512": AuthConfig(
        scheme="hmac", login="sandbox-key", secret="sandbox-hmac-secret", hmac_algorithm="sha512"
    ),
}
ROUTE = {"api_key_query": "api_key", "oauth2_post": "oauth2", "hmac512": "hmac"}


def test_fixture_credentials_match_the_sandbox() -> None:
    assert creds.BEARER_TOKEN == "sandbox-token" and creds.HMAC_SECRET == "sandbox-hmac-secret"


@pytest.mark.parametrize("name", sorted(GOOD))
async def test_each_scheme_is_accepted_for_get_and_signed_post(make_config: Make, name: str) -> None:
    scheme = ROUTE.get(name, name)
    async with lease_client(make_config(auth=GOOD[name])) as api:
        got = await api.request("GET", f"/secure/{scheme}/whoami", params={"q": "a b"})
        posted = await api.request("POST", f"/secure/{scheme}/whoami", json={"n": 1}, idempotency_key="k")
    assert got.json()["scheme"] == scheme and posted.status == 200


@pytest.mark.parametrize("name", ["basic", "bearer", "api_key", "hmac", "oauth2"])
async def test_wrong_secret_is_an_authentication_error(make_config: Make, name: str) -> None:
    from dataclasses import replace

    bad = replace(GOOD[name], secret="wrong-secret")
    async with lease_client(make_config(auth=bad)) as api:
        with pytest.raises(errors.AuthenticationError) as info:
            await api.request("GET", f"/secure/{name}/whoami")
    assert "wrong-secret" not in str(info.value) and not info.value.retriable


async def post_control(
    sandbox: SandboxProcess, path: str, body: dict[str, object] | None = None
) -> dict[str, object]:
    async with aiohttp.ClientSession() as s, s.post(f"{sandbox.url}{path}", json=body or {}) as r:
        return await r.json()  # type: ignore[no-any-return]


async def test_oauth2_one_token_for_concurrent_calls_and_one_refresh_on_401(
    make_config: Make, sandbox: SandboxProcess
) -> None:
    before = (await post_stats(sandbox))["tokens_issued"]
    async with lease_client(make_config(auth=GOOD["oauth2"], name="oauth-concurrency")) as api:
        answers = await asyncio.gather(*(api.request("GET", "/secure/oauth2/whoami") for _ in range(25)))
        assert {a.json()["audience"] for a in answers} == {"sandbox-api"}
        assert (await post_stats(sandbox))["tokens_issued"] == before + 1
        await post_control(sandbox, "/control/revoke-tokens")
        again = await api.request("GET", "/secure/oauth2/whoami")
        assert again.status == 200 and again.attempts == 1
        assert (await post_stats(sandbox))["tokens_issued"] == before + 2


async def post_stats(sandbox: SandboxProcess) -> dict[str, int]:
    async with aiohttp.ClientSession() as s, s.get(f"{sandbox.url}/stats") as r:
        return await r.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("spec", "path", "params"),
    [
        ({"type": "link"}, "/pages/link", {"per_page": 10}),
        (
            {"type": "cursor", "cursor_path": "meta.next_cursor", "items_path": "data"},
            "/pages/cursor",
            {"limit": 10},
        ),
        ({"type": "offset", "limit": 10, "items_path": "items", "total_path": "total"}, "/pages/offset", {}),
        (
            {"type": "page", "items_path": "results", "total_pages_path": "total_pages"},
            "/pages/page",
            {"per_page": 10},
        ),
    ],
)
async def test_pagination_walks_every_item_once(
    make_config: Make, spec: dict[str, object], path: str, params: dict[str, int]
) -> None:
    paginator = paginator_from_spec(spec)
    ids: list[int] = []
    async with lease_client(make_config()) as api:
        async for page in api.paginate(paginator, path, params=params):
            ids.extend(item["id"] for item in paginator.items(page))
    assert ids == list(range(1, 96))
    assert paginator.pages == 10


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({"type": "link"}, "/pages/link"),
        ({"type": "cursor", "cursor_path": "meta.next_cursor"}, "/pages/cursor"),
    ],
)
async def test_pagination_loop_is_detected(make_config: Make, spec: dict[str, object], path: str) -> None:
    async with lease_client(make_config()) as api:
        with pytest.raises(errors.PaginationError, match="loop"):
            async for _ in api.paginate(paginator_from_spec(spec), path, params={"loop": 1}):
                pass


def tls_config(material: TlsMaterial, **kw: object) -> TlsConfig:
    return TlsConfig(ca_bundle_pem=material.ca_cert_pem, **kw)  # type: ignore[arg-type]


async def test_tls_verifies_with_the_private_ca(
    make_config: Make, sandbox_tls: SandboxProcess, tls_material: TlsMaterial
) -> None:
    config = make_config(base_url=sandbox_tls.url, tls=tls_config(tls_material), detailed_timings=True)
    async with lease_client(config) as api:
        response = await api.request("GET", "/health")
        again = await api.request("GET", "/health")
    assert response.status == 200
    assert response.timings.connect is not None  # a new TLS connection (no DNS: the host is an IP)
    assert again.timings.connect is None, "the second call reuses the pooled connection"
    assert again.timings.ttfb is not None and again.timings.total is not None
    assert again.timings.total >= again.timings.ttfb


async def test_tls_without_the_ca_fails_verification_fatally(
    make_config: Make, sandbox_tls: SandboxProcess
) -> None:
    async with lease_client(make_config(base_url=sandbox_tls.url)) as api:
        with pytest.raises(errors.TlsVerificationError, match="certificate verify failed"):
            await api.request("GET", "/health")


async def test_tls_verify_off_and_min_version(
    make_config: Make, sandbox_tls: SandboxProcess, tls_material: TlsMaterial
) -> None:
    async with lease_client(make_config(base_url=sandbox_tls.url, tls=TlsConfig(verify=False))) as api:
        assert (await api.request("GET", "/health")).status == 200
    strict = tls_config(tls_material, min_version="TLSv1.3")
    async with lease_client(make_config(base_url=sandbox_tls.url, tls=strict)) as api:
        assert (await api.request("GET", "/health")).status == 200


async def test_mtls_needs_the_client_certificate(
    make_config: Make, sandbox_mtls: SandboxProcess, tls_material: TlsMaterial
) -> None:
    with_cert = tls_config(
        tls_material, client_cert_pem=tls_material.client_cert_pem, client_key_pem=tls_material.client_key_pem
    )
    async with lease_client(make_config(base_url=sandbox_mtls.url, tls=with_cert)) as api:
        assert (await api.request("GET", "/health")).status == 200
    async with lease_client(make_config(base_url=sandbox_mtls.url, tls=tls_config(tls_material))) as api:
        with pytest.raises(errors.TransportError):
            await api.request("GET", "/health")


async def test_expired_server_certificate_is_rejected(make_config: Make, tmp_path: Path) -> None:
    expired = generate_tls_material(tmp_path, expired=True)
    with SandboxProcess(tls=expired) as proc:
        async with lease_client(make_config(base_url=proc.url, tls=tls_config(expired))) as api:
            with pytest.raises(errors.TlsVerificationError, match="expired"):
                await api.request("GET", "/health")
