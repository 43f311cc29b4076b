"""Plain REST behaviours: health, echo with idempotency replay, arbitrary statuses,
schema drift and large bodies."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from aiohttp import web

from airflow_provider_integrations.sandbox.params import (
    bad_request,
    int_param,
    json_error,
    retry_after_headers,
)
from airflow_provider_integrations.sandbox.state import StoredResponse, get_state

MAX_LARGE_BYTES = 64 * 1024 * 1024

# Statuses that must not carry a body (RFC 9110 6.4.1).
_BODYLESS = {204, 304}

DRIFT_VERSIONS: dict[int, dict[str, Any]] = {
    1: {"id": 1, "name": "x", "amount": 10.5},
    # Same record after an unannounced partner release: renamed and retyped fields.
    2: {"id": "1", "title": "x", "amount_cents": 1050},
}


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _multi_to_dict(items: Any) -> dict[str, Any]:
    """Collapse a multidict: single values stay strings, repeated keys become lists."""
    result: dict[str, Any] = {}
    for key, value in items:
        if key in result:
            previous = result[key]
            result[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            result[key] = value
    return result


async def echo(request: web.Request) -> web.Response:
    state = get_state(request)
    body = await request.read()
    body_sha256 = hashlib.sha256(body).hexdigest()
    idempotency_key = request.headers.get("Idempotency-Key")
    fingerprint = f"{request.method} {request.path} {body_sha256}"
    if idempotency_key:
        stored = state.idempotency.get(idempotency_key)
        if stored is not None:
            if stored.fingerprint != fingerprint:
                # Stripe rejects a reused key with different parameters rather than
                # replaying a response that does not belong to this request.
                return json_error(422, "idempotency_key_reused", "key was used with a different request")
            replay = {**stored.body, "replayed": True}
            return web.json_response(replay, status=stored.status, headers={"Idempotent-Replayed": "true"})
    try:
        parsed = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        parsed = None
    payload: dict[str, Any] = {
        "method": request.method,
        "path": request.path,
        "raw_path": request.raw_path,
        "query": _multi_to_dict(request.query.items()),
        "headers": {k: ", ".join(request.headers.getall(k)) for k in request.headers},
        "json": parsed,
        "body_size": len(body),
        "body_sha256": body_sha256,
        # Unique per generated response, so a replay is distinguishable from a re-execution.
        "request_id": uuid.uuid4().hex,
        "idempotency_key": idempotency_key,
        "replayed": False,
    }
    if idempotency_key:
        state.idempotency[idempotency_key] = StoredResponse(fingerprint, 200, payload)
        state.counters.idempotency_keys_seen += 1
    return web.json_response(payload)


async def status(request: web.Request) -> web.StreamResponse:
    try:
        code = int(request.match_info["code"])
    except ValueError:
        raise bad_request("status code must be an integer") from None
    if not 200 <= code <= 599:
        raise bad_request("status code must be between 200 and 599")
    headers = retry_after_headers(request)
    if code in _BODYLESS:
        return web.Response(status=code, headers=headers)
    return web.json_response({"status": code}, status=code, headers=headers)


async def drift(request: web.Request) -> web.Response:
    version = int_param(request, "version", 1)
    if version not in DRIFT_VERSIONS:
        raise bad_request(f"version must be one of {sorted(DRIFT_VERSIONS)}")
    return web.json_response(DRIFT_VERSIONS[version])


async def large(request: web.Request) -> web.Response:
    size = int_param(request, "bytes", 1024 * 1024, minimum=0, maximum=MAX_LARGE_BYTES)
    envelope = b'{"data": ""}'
    padding = b"x" * max(0, size - len(envelope))
    return web.Response(body=b'{"data": "' + padding + b'"}', content_type="application/json")


def register(app: web.Application) -> None:
    app.router.add_get("/health", health)
    app.router.add_route("*", "/echo", echo)
    app.router.add_route("*", "/echo/{tail:.*}", echo)
    app.router.add_route("*", "/status/{code}", status)
    app.router.add_get("/drift", drift)
    app.router.add_get("/large", large)
