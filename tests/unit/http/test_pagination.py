"""Paginators driven with hand-built responses (no server)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from airflow_provider_integrations.http.client import Response
from airflow_provider_integrations.http.errors import PaginationError
from airflow_provider_integrations.http.pagination import PageRequest, paginator_from_spec
from airflow_provider_integrations.http.tracing import Timings


def page(doc: Any, headers: dict[str, str] | None = None) -> Response:
    hdrs = CIMultiDictProxy(CIMultiDict(headers or {}))
    return Response("GET", "https://api/x", 200, hdrs, json.dumps(doc).encode(), Timings(), 1)


def test_link_header_follows_rel_next_among_several_links() -> None:
    p = paginator_from_spec({"type": "link"})
    first = p.first("/items", {"per_page": 2})
    link = '<https://api/items?page=1>; rel="first", <https://api/items?page=2&per_page=2>; rel="next"'
    nxt = p.advance(first, page([1, 2], {"Link": link}))
    assert nxt == PageRequest("https://api/items?page=2&per_page=2", {})
    assert p.advance(nxt, page([3], {"Link": '<https://api/items?page=1>; rel="first"'})) is None
    assert p.items(page([3])) == [3]


def test_cursor_stops_on_null_and_detects_loops() -> None:
    p = paginator_from_spec({"type": "cursor", "cursor_path": "meta.next_cursor", "items_path": "data"})
    first = p.first("/c", {"limit": 10})
    second = p.advance(first, page({"data": [1], "meta": {"next_cursor": "abc"}}))
    assert second == PageRequest("/c", {"limit": 10, "cursor": "abc"})
    with pytest.raises(PaginationError, match="loop"):
        p.advance(second, page({"data": [2], "meta": {"next_cursor": "abc"}}))
    assert p.advance(first, page({"data": [], "meta": {"next_cursor": None}})) is None


def test_offset_uses_page_size_and_total() -> None:
    p = paginator_from_spec({"type": "offset", "limit": 2, "items_path": "items", "total_path": "total"})
    first = p.first("/o", {})
    assert first.params == {"offset": 0, "limit": 2}
    second = p.advance(first, page({"items": [1, 2], "total": 3}))
    assert second is not None and second.params["offset"] == 2
    assert p.advance(second, page({"items": [3], "total": 3})) is None
    exact = paginator_from_spec({"type": "offset", "limit": 2, "items_path": "items", "total_path": "total"})
    f = exact.first("/o", {})
    assert exact.advance(f, page({"items": [1, 2], "total": 2})) is None


def test_page_number_with_total_pages_and_max_pages() -> None:
    p = paginator_from_spec({"type": "page", "items_path": "results", "total_pages_path": "total_pages"})
    first = p.first("/p", {"per_page": 5})
    second = p.advance(first, page({"results": [1], "total_pages": 2}))
    assert second is not None and second.params == {"page": 2, "per_page": 5}
    assert p.advance(second, page({"results": [2], "total_pages": 2})) is None
    capped = paginator_from_spec({"type": "page", "items_path": "results", "max_pages": 1})
    assert capped.advance(capped.first("/p", {}), page({"results": [1]})) is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "scroll"}, "pagination.type = 'scroll'"),
        ({"type": "cursor"}, "invalid"),
        ({"type": "offset", "limit": 5, "bogus": 1}, "invalid"),
    ],
)
def test_bad_specs_name_the_problem(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        paginator_from_spec(spec)
