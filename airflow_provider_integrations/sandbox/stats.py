"""Request/connection accounting and the ``/stats`` endpoint tests assert against.

Counting happens in a middleware before routing, so requests that fail, time out
or hit unknown paths are still counted: a retry test must see every attempt.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from airflow_provider_integrations.sandbox.state import get_state

# Reading the stats must not change the request counters; a new TCP connection
# opened just to read them is still a real accepted connection, though.
_UNCOUNTED_PATHS = frozenset({"/stats"})


@web.middleware
async def counting_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = get_state(request)
    if request.path in _UNCOUNTED_PATHS:
        state.observe_connection(request.transport)
    else:
        state.record_request(request.transport, request.query.get("key") or None)
    return await handler(request)


async def stats(request: web.Request) -> web.Response:
    counters = get_state(request).counters
    key = request.query.get("key") or None
    key_stats: dict[str, Any] | None = None
    if key is not None:
        key_stats = {
            "name": key,
            "requests": counters.requests_by_key[key],
            "connections": counters.connections_by_key[key],
            "ratelimit": {
                "accepted": counters.ratelimit_accepted_by_key[key],
                "rejected": counters.ratelimit_rejected_by_key[key],
            },
        }
    body = {
        "total_requests": counters.total_requests,
        "connections": counters.connections,
        "tokens_issued": counters.tokens_issued,
        "idempotency_keys_seen": counters.idempotency_keys_seen,
        "ratelimit": {"accepted": counters.ratelimit_accepted, "rejected": counters.ratelimit_rejected},
        "key": key_stats,
    }
    return web.json_response(body)


async def reset_stats(request: web.Request) -> web.Response:
    get_state(request).reset_counters()
    return web.json_response({"reset": True})


def register(app: web.Application) -> None:
    app.middlewares.append(counting_middleware)
    app.router.add_get("/stats", stats)
    app.router.add_post("/control/reset-stats", reset_stats)
