"""Fault injection: transient failures, rate limiting, slowness, resets and bad bodies.

Stateful faults are keyed by a client-chosen ``key`` query parameter so tests
running against one shared sandbox never consume each other's failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import socket
import struct
import time

from aiohttp import web

from airflow_provider_integrations.sandbox.params import (
    float_param,
    int_param,
    json_error,
    required_key,
    retry_after_headers,
)
from airflow_provider_integrations.sandbox.state import RateWindow, get_state

MAX_SLEEP_SECONDS = 120.0
MALFORMED_JSON_BODY = b'{"id": 1, "name": "trunc'


async def flaky(request: web.Request) -> web.Response:
    key = required_key(request)
    fail = int_param(request, "fail", 1, minimum=0)
    status = int_param(request, "status", 503, minimum=400, maximum=599)
    faults = get_state(request).faults
    faults.flaky_attempts[key] += 1
    attempt = faults.flaky_attempts[key]
    if attempt <= fail:
        return json_error(
            status,
            "injected_failure",
            f"failure {attempt} of {fail}",
            headers=retry_after_headers(request),
            attempt=attempt,
        )
    return web.json_response({"ok": True, "attempt": attempt})


def _rate_headers(limit: int, remaining: int, reset: int) -> dict[str, str]:
    # Both the IETF draft names and the de-facto X- names, since partners use either.
    values = {"Limit": str(limit), "Remaining": str(remaining), "Reset": str(reset)}
    headers = {f"RateLimit-{name}": value for name, value in values.items()}
    headers.update({f"X-RateLimit-{name}": value for name, value in values.items()})
    return headers


async def ratelimit(request: web.Request) -> web.Response:
    key = required_key(request)
    limit = int_param(request, "limit", 5, minimum=1)
    window = float_param(request, "window", 1.0, minimum=0.001, maximum=3600)
    state = get_state(request)
    now = time.monotonic()
    current = state.faults.rate_windows.get(key)
    if current is None or now >= current.started + window:
        current = state.faults.rate_windows[key] = RateWindow(started=now)
    # Rounded up so a client that waits exactly "Reset" seconds lands in the next window.
    reset = max(1, math.ceil(current.started + window - now))
    counters = state.counters
    if current.count >= limit:
        counters.ratelimit_rejected += 1
        counters.ratelimit_rejected_by_key[key] += 1
        headers = _rate_headers(limit, 0, reset)
        headers["Retry-After"] = str(reset)
        return web.json_response({"error": "rate_limited", "retry_after": reset}, status=429, headers=headers)
    current.count += 1
    counters.ratelimit_accepted += 1
    counters.ratelimit_accepted_by_key[key] += 1
    remaining = limit - current.count
    return web.json_response(
        {"ok": True, "remaining": remaining}, headers=_rate_headers(limit, remaining, reset)
    )


async def delay(request: web.Request) -> web.Response:
    seconds = float_param(request, "seconds", 1.0, maximum=MAX_SLEEP_SECONDS)
    await asyncio.sleep(seconds)
    return web.json_response({"slept": seconds})


async def slow_body(request: web.Request) -> web.StreamResponse:
    seconds = float_param(request, "seconds", 1.0, maximum=MAX_SLEEP_SECONDS)
    body = json.dumps({"slept": seconds, "data": "x" * 4096}).encode()
    head, tail = body[: len(body) // 2], body[len(body) // 2 :]
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = len(body)
    await response.prepare(request)
    try:
        await response.write(head)
        await asyncio.sleep(seconds)
        await response.write(tail)
        await response.write_eof()
    except ConnectionError:
        pass  # the client gave up (read timeout), which is the point of this endpoint
    return response


def _abort_with_rst(request: web.Request) -> None:
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # SO_LINGER 0 turns close() into a TCP RST, i.e. a real "connection reset by peer".
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def reset(request: web.Request) -> web.StreamResponse:
    key = required_key(request)
    count = int_param(request, "count", 1, minimum=0)
    faults = get_state(request).faults
    faults.reset_attempts[key] += 1
    attempt = faults.reset_attempts[key]
    if attempt > count:
        return web.json_response({"ok": True, "attempt": attempt})
    promised = b'{"items": [' + b'{"id": 0}, ' * 2000 + b"]}"
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = len(promised)
    await response.prepare(request)
    await response.write(promised[:512])
    # Let the client read the status line and first bytes so the failure is
    # genuinely mid-body rather than a refused request.
    await asyncio.sleep(0.05)
    _abort_with_rst(request)
    return response


async def malformed(request: web.Request) -> web.Response:
    return web.Response(body=MALFORMED_JSON_BODY, content_type="application/json")


def register(app: web.Application) -> None:
    app.router.add_route("*", "/flaky", flaky)
    app.router.add_get("/ratelimit", ratelimit)
    app.router.add_get("/delay", delay)
    app.router.add_get("/slow-body", slow_body)
    app.router.add_get("/reset", reset)
    app.router.add_get("/malformed", malformed)
