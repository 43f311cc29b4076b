"""Pagination strategies: each decides the next request from the current page, without I/O.

``paginator_from_spec({"type": "cursor", ...})`` builds one from plain data, so operators and
triggers can carry pagination as serializable config.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jmespath

from airflow_provider_integrations.http.errors import PaginationError

if TYPE_CHECKING:
    from airflow_provider_integrations.http.client import Response

_LINK = re.compile(r"<([^>]*)>\s*;([^,]*)")
_REL = re.compile(r'rel\s*=\s*"?([^";]+)"?', re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PageRequest:
    path: str
    params: dict[str, Any] = field(default_factory=dict)

    def token(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        return self.path, tuple(sorted((k, str(v)) for k, v in self.params.items()))


class Paginator(ABC):
    """Base strategy: subclasses implement :meth:`next_request`; :meth:`advance` adds loop detection."""

    kind = ""

    def __init__(self, items_path: str | None = None, max_pages: int | None = None) -> None:
        self._items = jmespath.compile(items_path) if items_path else None
        self.max_pages = max_pages
        self._seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        self.pages = 0

    def first(self, path: str, params: dict[str, Any]) -> PageRequest:
        self._seen.clear()
        self.pages = 0
        request = PageRequest(path, self.initial_params(params))
        self._seen.add(request.token())
        return request

    def initial_params(self, params: dict[str, Any]) -> dict[str, Any]:
        return params

    def items(self, response: Response) -> list[Any]:
        doc = response.json()
        found = self._items.search(doc) if self._items else doc
        if found is None:
            return []
        return found if isinstance(found, list) else [found]

    def advance(self, current: PageRequest, response: Response) -> PageRequest | None:
        self.pages += 1
        if self.max_pages is not None and self.pages >= self.max_pages:
            return None
        nxt = self.next_request(current, response)
        if nxt is None:
            return None
        token = nxt.token()
        if token in self._seen:
            raise PaginationError(
                f"{self.kind} pagination loop: page {self.pages + 1} would repeat an earlier request",
                method=response.method,
                url=response.url,
            )
        self._seen.add(token)
        return nxt

    @abstractmethod
    def next_request(self, current: PageRequest, response: Response) -> PageRequest | None: ...


class LinkHeaderPaginator(Paginator):
    """RFC 8288 ``Link: <url>; rel="next"``; the next URL carries its own query."""

    kind = "link"

    def next_request(self, current: PageRequest, response: Response) -> PageRequest | None:
        for header in response.headers.getall("Link", []):
            for target, attrs in _LINK.findall(header):
                rel = _REL.search(attrs)
                if rel and "next" in rel.group(1).lower().split():
                    return PageRequest(target, {})
        return None


class CursorPaginator(Paginator):
    kind = "cursor"

    def __init__(
        self, cursor_path: str, cursor_param: str = "cursor", items_path: str | None = None, **kw: Any
    ) -> None:
        super().__init__(items_path, **kw)
        self._cursor = jmespath.compile(cursor_path)
        self.cursor_param = cursor_param

    def next_request(self, current: PageRequest, response: Response) -> PageRequest | None:
        cursor = self._cursor.search(response.json())
        if cursor in (None, ""):
            return None
        return PageRequest(current.path, {**current.params, self.cursor_param: cursor})


class OffsetPaginator(Paginator):
    """Stops on a short page, or when ``offset`` reaches the total found at ``total_path``."""

    kind = "offset"

    def __init__(
        self,
        limit: int,
        offset_param: str = "offset",
        limit_param: str = "limit",
        items_path: str | None = None,
        total_path: str | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(items_path, **kw)
        self.limit, self.offset_param, self.limit_param = limit, offset_param, limit_param
        self._total = jmespath.compile(total_path) if total_path else None

    def initial_params(self, params: dict[str, Any]) -> dict[str, Any]:
        return {self.offset_param: 0, self.limit_param: self.limit, **params}

    def next_request(self, current: PageRequest, response: Response) -> PageRequest | None:
        count = len(self.items(response))
        offset = int(current.params.get(self.offset_param, 0)) + count
        if count < self.limit or count == 0:
            return None
        if self._total is not None and offset >= int(self._total.search(response.json()) or 0):
            return None
        return PageRequest(current.path, {**current.params, self.offset_param: offset})


class PageNumberPaginator(Paginator):
    """Stops on an empty page, or after the page count found at ``total_pages_path``."""

    kind = "page"

    def __init__(
        self,
        page_param: str = "page",
        start: int = 1,
        items_path: str | None = None,
        total_pages_path: str | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(items_path, **kw)
        self.page_param, self.start = page_param, start
        self._total_pages = jmespath.compile(total_pages_path) if total_pages_path else None

    def initial_params(self, params: dict[str, Any]) -> dict[str, Any]:
        return {self.page_param: self.start, **params}

    def next_request(self, current: PageRequest, response: Response) -> PageRequest | None:
        page = int(current.params.get(self.page_param, self.start))
        if not self.items(response):
            return None
        if self._total_pages is not None and page >= int(self._total_pages.search(response.json()) or 0):
            return None
        return PageRequest(current.path, {**current.params, self.page_param: page + 1})


_KINDS: dict[str, type[Paginator]] = {
    "link": LinkHeaderPaginator,
    "cursor": CursorPaginator,
    "offset": OffsetPaginator,
    "page": PageNumberPaginator,
}


def paginator_from_spec(spec: Mapping[str, Any]) -> Paginator:
    """``{"type": "link"|"cursor"|"offset"|"page", **options}`` -> a fresh paginator."""
    options = dict(spec)
    kind = options.pop("type", None)
    if kind not in _KINDS:
        raise ValueError(f"pagination.type = {kind!r}: expected one of {sorted(_KINDS)}")
    try:
        return _KINDS[kind](**options)
    except TypeError as exc:
        raise ValueError(f"pagination options for type {kind!r} are invalid: {exc}") from None
