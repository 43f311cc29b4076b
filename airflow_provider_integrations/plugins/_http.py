"""What every webhook route of the API-server app shares: a bounded body read and sending a verdict.

Kept apart from the routes so routers in other modules (``webhook_events``) can use it and still be
listed in ``plugins.webhooks.ROUTERS`` without an import cycle.
"""

from __future__ import annotations

import contextlib
from typing import Protocol

from fastapi import Request, Response

__all__ = ["read_at_most", "send_verdict"]


class _Verdict(Protocol):
    @property
    def status(self) -> int: ...
    @property
    def body(self) -> bytes: ...
    @property
    def headers(self) -> dict[str, str]: ...


async def read_at_most(request: Request, limit: int) -> bytes:
    """At most ``limit`` bytes of the body (read ``max_body_bytes + 1`` to detect an oversized one)."""
    # A chunked upload has no Content-Length: stop one chunk past the limit, never buffer the rest.
    chunks: list[bytes] = []
    size = 0
    async with contextlib.aclosing(request.stream()) as stream:
        async for chunk in stream:
            chunks.append(chunk)
            size += len(chunk)
            if size >= limit:
                break
    return b"".join(chunks)[:limit]


def send_verdict(verdict: _Verdict) -> Response:
    """The HTTP answer of a receiver's verdict."""
    return Response(content=verdict.body, status_code=verdict.status, headers=verdict.headers)
