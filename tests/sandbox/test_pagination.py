"""The four pagination styles walked to the end, plus loop mode and bad parameters."""

from __future__ import annotations

import aiohttp
import pytest

from airflow_provider_integrations.sandbox import SandboxProcess

EXPECTED_IDS = list(range(1, 96))
MAX_PAGES = 50  # safety net so a broken server cannot hang the test


def assert_items(items: list[dict], ids: list[int]) -> None:
    assert [item["id"] for item in items] == ids
    expected = [{"id": i, "name": f"item-{i}", "value": i * 10} for i in ids]
    assert items == expected


async def test_link_header_walk(http: aiohttp.ClientSession, sandbox: SandboxProcess) -> None:
    url: str | None = f"{sandbox.url}/pages/link?per_page=10&page=1"
    items: list[dict] = []
    pages = 0
    last_link = None
    while url is not None and pages < MAX_PAGES:
        async with http.get(url) as response:
            assert response.status == 200
            items.extend(await response.json())
            last_link = str(response.links["last"]["url"])
            next_link = response.links.get("next")
            url = str(next_link["url"]) if next_link else None
            if url is not None:
                assert url.startswith(f"{sandbox.url}/pages/link?"), "Link targets must be absolute"
            current = str(response.url)
        pages += 1
    assert pages == 10
    assert current == last_link
    assert_items(items, EXPECTED_IDS)


async def test_cursor_walk(http: aiohttp.ClientSession, sandbox: SandboxProcess) -> None:
    params = {"limit": "10"}
    items: list[dict] = []
    cursors: list[str] = []
    for _ in range(MAX_PAGES):
        async with http.get(f"{sandbox.url}/pages/cursor", params=params) as response:
            body = await response.json()
        items.extend(body["data"])
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            break
        cursors.append(cursor)
        params["cursor"] = cursor
    assert_items(items, EXPECTED_IDS)
    assert len(set(cursors)) == len(cursors) == 9
    assert not any(c.isdigit() for c in cursors), "cursors are opaque, not bare offsets"


async def test_offset_walk(http: aiohttp.ClientSession, sandbox: SandboxProcess) -> None:
    items: list[dict] = []
    offset = 0
    for _ in range(MAX_PAGES):
        params = {"offset": str(offset), "limit": "10"}
        async with http.get(f"{sandbox.url}/pages/offset", params=params) as response:
            body = await response.json()
        assert body["total"] == 95
        items.extend(body["items"])
        offset += len(body["items"])
        if offset >= body["total"]:
            break
    assert_items(items, EXPECTED_IDS)


async def test_page_number_walk(http: aiohttp.ClientSession, sandbox: SandboxProcess) -> None:
    items: list[dict] = []
    page = 1
    total_pages = None
    while page < MAX_PAGES:
        params = {"page": str(page), "per_page": "10"}
        async with http.get(f"{sandbox.url}/pages/page", params=params) as response:
            body = await response.json()
        assert body["page"] == page
        total_pages = body["total_pages"]
        items.extend(body["results"])
        if page >= total_pages:
            break
        page += 1
    assert total_pages == 10
    assert_items(items, EXPECTED_IDS)


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/pages/offset", {"offset": "5", "limit": "10", "total": "7"}, "items"),
        ("/pages/page", {"page": "2", "per_page": "5", "total": "7"}, "results"),
        ("/pages/cursor", {"limit": "10", "total": "2"}, "data"),
    ],
)
async def test_total_override(
    http: aiohttp.ClientSession, sandbox: SandboxProcess, path: str, params: dict, field: str
) -> None:
    async with http.get(f"{sandbox.url}{path}", params=params) as response:
        body = await response.json()
    expected = {"/pages/offset": [6, 7], "/pages/page": [6, 7], "/pages/cursor": [1, 2]}[path]
    assert_items(body[field], expected)


async def test_empty_collection(http: aiohttp.ClientSession, sandbox: SandboxProcess) -> None:
    async with http.get(f"{sandbox.url}/pages/link", params={"total": "0"}) as response:
        assert await response.json() == []
        assert "next" not in response.links
    async with http.get(f"{sandbox.url}/pages/cursor", params={"total": "0"}) as response:
        assert await response.json() == {"data": [], "meta": {"next_cursor": None}}


async def test_link_loop_mode_repeats_next(http: aiohttp.ClientSession, sandbox: SandboxProcess) -> None:
    async with http.get(f"{sandbox.url}/pages/link", params={"loop": "1", "page": "1"}) as response:
        first_next = str(response.links["next"]["url"])
    async with http.get(first_next) as response:
        second_next = str(response.links["next"]["url"])
    assert second_next == first_next
    # Even the last page claims there is more.
    async with http.get(f"{sandbox.url}/pages/link", params={"loop": "1", "page": "10"}) as response:
        assert str(response.links["next"]["url"]) == first_next


async def test_cursor_loop_mode_repeats_cursor(http: aiohttp.ClientSession, sandbox: SandboxProcess) -> None:
    async with http.get(f"{sandbox.url}/pages/cursor", params={"loop": "1"}) as response:
        cursor = (await response.json())["meta"]["next_cursor"]
    async with http.get(f"{sandbox.url}/pages/cursor", params={"loop": "1", "cursor": cursor}) as response:
        assert (await response.json())["meta"]["next_cursor"] == cursor


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/pages/cursor", {"cursor": "not-a-cursor!"}),
        ("/pages/link", {"per_page": "0"}),
        ("/pages/page", {"page": "abc"}),
        ("/pages/offset", {"offset": "-1"}),
        ("/pages/offset", {"limit": "100000"}),
    ],
)
async def test_invalid_parameters(
    http: aiohttp.ClientSession, sandbox: SandboxProcess, path: str, params: dict
) -> None:
    async with http.get(f"{sandbox.url}{path}", params=params) as response:
        assert response.status == 400
        assert (await response.json())["error"] == "invalid_request"
