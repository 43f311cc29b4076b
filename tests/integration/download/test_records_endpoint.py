"""The sandbox's ``/records`` endpoint serves incremental extraction: ``updated_since`` + keyset pages."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from airflow_provider_integrations.connections.http_config import HttpClientConfig
from airflow_provider_integrations.http import errors
from airflow_provider_integrations.http.client import HttpClient
from airflow_provider_integrations.http.pagination import CursorPaginator
from airflow_provider_integrations.http.sessions import lease_client
from tests.integration.download.conftest import MakeConfig


async def extract(api: HttpClient, dataset: str, since: str | None, limit: int = 7) -> list[dict[str, Any]]:
    paginator = CursorPaginator("meta.next_cursor", items_path="data")
    params: dict[str, Any] = {"limit": limit} | ({"updated_since": since} if since else {})
    return [
        item
        async for page in api.paginate(paginator, f"/records/{dataset}", params=params)
        for item in paginator.items(page)
    ]


async def change(api: HttpClient, dataset: str, new: int = 0, update: list[int] | None = None) -> Any:
    body = {"new": new, "update": update or []}
    return (await api.request("POST", f"/records/{dataset}", json=body)).json()


@pytest.fixture
def config(make_config: MakeConfig) -> HttpClientConfig:
    return make_config()


async def test_second_extraction_gets_only_what_changed_after_the_watermark(config: HttpClientConfig) -> None:
    dataset = uuid.uuid4().hex
    async with lease_client(config) as api:
        assert (await change(api, dataset, new=30))["created"] == list(range(1, 31))
        first = await extract(api, dataset, None)
        assert [r["id"] for r in first] == list(range(1, 31))
        watermark = max(r["updated_at"] for r in first)

        await change(api, dataset, new=4, update=[3, 17])
        second = await extract(api, dataset, watermark)
        assert [r["id"] for r in second] == [31, 32, 33, 34, 3, 17]
        assert [r["amount"] for r in second if r["id"] in (3, 17)] == [31, 171]
        assert await extract(api, dataset, max(r["updated_at"] for r in second)) == []

        stats = (await api.request("GET", f"/records/{dataset}/stats")).json()
    assert stats == {"requests": 5 + 1 + 1, "served": 30 + 6}, "30 in 5 pages of 7, then 6 in one, then 0"


async def test_changes_during_a_walk_neither_repeat_nor_shift_pages(config: HttpClientConfig) -> None:
    dataset = uuid.uuid4().hex
    async with lease_client(config) as api:
        await change(api, dataset, new=10)
        paginator = CursorPaginator("meta.next_cursor", items_path="data")
        seen: list[int] = []
        async for page in api.paginate(paginator, f"/records/{dataset}", params={"limit": 4}):
            seen += [r["id"] for r in paginator.items(page)]
            if len(seen) == 4:
                await change(api, dataset, update=[1, 2])  # already read: they move to the end
    assert seen == [*range(1, 11), 1, 2]


async def test_bad_parameters_and_unknown_datasets(config: HttpClientConfig) -> None:
    async with lease_client(config) as api:
        with pytest.raises(errors.NotFoundError):
            await api.request("GET", f"/records/{uuid.uuid4().hex}")
        await change(api, "bad-params", new=1)
        with pytest.raises(errors.ClientRequestError) as info:
            await api.request("GET", "/records/bad-params", params={"updated_since": "yesterday"})
        assert "updated_since must be an ISO 8601 timestamp" in info.value.excerpt
        with pytest.raises(errors.ClientRequestError) as info:
            await api.request("GET", "/records/bad-params", params={"updated_since": "2026-01-01T00:00:00"})
        assert "UTC offset" in info.value.excerpt
        with pytest.raises(errors.ClientRequestError) as info:
            await api.request("GET", "/records/bad-params", params={"cursor": "garbage!"})
        assert "invalid cursor" in info.value.excerpt
        with pytest.raises(errors.ClientRequestError) as info:
            await change(api, "bad-params", update=[99])
        assert "unknown ids [99]" in info.value.excerpt
