"""Query-parameter parsing and JSON error helpers shared by the route modules.

Bad parameters become a 400 with a JSON body instead of a 500, so a test that
misuses the sandbox sees what it got wrong.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from typing import Any

from aiohttp import web


def json_error(
    status: int,
    error: str,
    description: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    body: dict[str, Any] = {"error": error}
    if description is not None:
        body["error_description"] = description
    body.update(extra)
    return web.json_response(body, status=status, headers=headers)


def bad_request(description: str) -> web.HTTPBadRequest:
    body = {"error": "invalid_request", "error_description": description}
    return web.HTTPBadRequest(text=json.dumps(body), content_type="application/json")


def int_param(
    request: web.Request,
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise bad_request(f"{name} must be >= {minimum}")
    if maximum is not None and value > maximum:
        raise bad_request(f"{name} must be <= {maximum}")
    return value


def float_param(
    request: web.Request,
    name: str,
    default: float,
    *,
    minimum: float = 0.0,
    maximum: float | None = None,
) -> float:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise bad_request(f"{name} must be a number, got {raw!r}") from None
    if math.isnan(value) or value < minimum:
        raise bad_request(f"{name} must be >= {minimum}")
    if maximum is not None and value > maximum:
        raise bad_request(f"{name} must be <= {maximum}")
    return value


def required_key(request: web.Request) -> str:
    key = request.query.get("key")
    if not key:
        raise bad_request("the 'key' query parameter is required so parallel tests do not share state")
    return key


def http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


def retry_after_headers(request: web.Request) -> dict[str, str]:
    """``Retry-After`` from ``?retry_after=N`` (delta seconds) or ``?retry_after_date=N`` (HTTP-date)."""
    if "retry_after" in request.query:
        return {"Retry-After": str(int_param(request, "retry_after", 0, minimum=0))}
    if "retry_after_date" in request.query:
        return {"Retry-After": http_date(int_param(request, "retry_after_date", 0, minimum=0))}
    return {}
