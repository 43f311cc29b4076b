"""One collection served in the four pagination styles partner APIs commonly use.

Items are a pure function of their index, so a client walking any style can be
checked against ``make_item`` without the server keeping per-walk state.
``?loop=1`` (link and cursor styles) hands out the same "next" forever, which is
how a buggy partner looks to a client that lacks loop detection.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

from aiohttp import web

from airflow_provider_integrations.sandbox.params import bad_request, int_param

DEFAULT_TOTAL = 95
MAX_TOTAL = 1_000_000
MAX_PAGE_SIZE = 1000


def make_item(index: int) -> dict[str, Any]:
    return {"id": index, "name": f"item-{index}", "value": index * 10}


def _slice(total: int, offset: int, limit: int) -> list[dict[str, Any]]:
    return [make_item(i) for i in range(offset + 1, min(total, offset + limit) + 1)]


def _total(request: web.Request) -> int:
    return int_param(request, "total", DEFAULT_TOTAL, minimum=0, maximum=MAX_TOTAL)


def _looping(request: web.Request) -> bool:
    return request.query.get("loop", "") in ("1", "true", "yes")


def encode_cursor(offset: int) -> str:
    # Opaque on purpose: clients must pass it back verbatim, never compute it.
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = decoded.partition(":")
        offset = int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad_request(f"invalid cursor {cursor!r}") from None
    if prefix != "offset" or offset < 0:
        raise bad_request(f"invalid cursor {cursor!r}")
    return offset


async def link_pages(request: web.Request) -> web.Response:
    total = _total(request)
    per_page = int_param(request, "per_page", 10, minimum=1, maximum=MAX_PAGE_SIZE)
    page = int_param(request, "page", 1, minimum=1)
    last_page = max(1, math.ceil(total / per_page))
    base = request.url

    def page_url(number: int) -> str:
        return str(base.update_query(page=str(number), per_page=str(per_page)))

    links = [f'<{page_url(1)}>; rel="first"', f'<{page_url(last_page)}>; rel="last"']
    if _looping(request):
        links.insert(0, f'<{page_url(2)}>; rel="next"')
    elif page < last_page:
        links.insert(0, f'<{page_url(page + 1)}>; rel="next"')
    if 1 < page <= last_page + 1:
        links.append(f'<{page_url(page - 1)}>; rel="prev"')
    headers = {"Link": ", ".join(links), "X-Total-Count": str(total)}
    return web.json_response(_slice(total, (page - 1) * per_page, per_page), headers=headers)


async def cursor_pages(request: web.Request) -> web.Response:
    total = _total(request)
    limit = int_param(request, "limit", 10, minimum=1, maximum=MAX_PAGE_SIZE)
    raw_cursor = request.query.get("cursor")
    offset = decode_cursor(raw_cursor) if raw_cursor else 0
    if _looping(request):
        next_cursor: str | None = encode_cursor(limit)
    elif offset + limit < total:
        next_cursor = encode_cursor(offset + limit)
    else:
        next_cursor = None
    return web.json_response({"data": _slice(total, offset, limit), "meta": {"next_cursor": next_cursor}})


async def offset_pages(request: web.Request) -> web.Response:
    total = _total(request)
    offset = int_param(request, "offset", 0, minimum=0)
    limit = int_param(request, "limit", 10, minimum=1, maximum=MAX_PAGE_SIZE)
    body = {"items": _slice(total, offset, limit), "total": total, "offset": offset, "limit": limit}
    return web.json_response(body)


async def numbered_pages(request: web.Request) -> web.Response:
    total = _total(request)
    page = int_param(request, "page", 1, minimum=1)
    per_page = int_param(request, "per_page", 10, minimum=1, maximum=MAX_PAGE_SIZE)
    body = {
        "results": _slice(total, (page - 1) * per_page, per_page),
        "page": page,
        "per_page": per_page,
        "total_pages": math.ceil(total / per_page),
        "total": total,
    }
    return web.json_response(body)


def register(app: web.Application) -> None:
    app.router.add_get("/pages/link", link_pages)
    app.router.add_get("/pages/cursor", cursor_pages)
    app.router.add_get("/pages/offset", offset_pages)
    app.router.add_get("/pages/page", numbered_pages)
