"""A batch endpoint with per-item partial failures, for the batch operator's tests, example and benchmark.

``POST /batch?key=K`` with ``{"items": [{"id": ..., ...}, ...]}`` answers
``{"results": [{"id": ..., "status": "ok" | "retry" | "rejected", "attempt": n, "error": ...}]}``:
200 when every item is ok, 207 (Multi-Status) otherwise. What happens to an item is a pure function of
its id, so a test knows every outcome in advance:

- ``permanent=R``: a fraction R of the ids is always ``rejected``;
- ``transient=R``: another fraction R answers ``retry`` to its first ``transient_failures`` (default 1)
  attempts, then ``ok``;
- ``seed=S`` picks a different (still deterministic) selection.

Request-level faults: ``throttle_every=N`` answers every Nth request of key K with 429 and
``Retry-After: retry_after`` (default 1) without touching its items; ``delay=S`` sleeps before answering
(crash tests need batches in flight). A repeated ``Idempotency-Key`` replays the first answer without
applying the items again, as a partner that supports idempotent retries does.

``GET /batch/stats?key=K`` counts what arrived: ``requests``, ``replays``, ``throttled``,
``items_received``, ``distinct_items``, ``ok_distinct``, ``rejected_distinct``, ``duplicates`` (items
received again after they had a final answer: a correct client never sends those) and ``max_in_flight``
(most requests inside their ``delay`` at once, i.e. the client's concurrency). ``&detail=1`` adds
``received`` (item id -> times received) and ``sends`` (idempotency key -> requests, replays included).
``DELETE /batch/stats?key=K`` forgets K. Ids are compared as strings.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from airflow_provider_integrations.sandbox.params import (
    bad_request,
    float_param,
    int_param,
    json_error,
    required_key,
)

MAX_KEYS = 1_000
MAX_ITEMS_PER_REQUEST = 10_000
_SCALE = float(2**64)


@dataclass
class BatchKeyState:
    requests: int = 0
    replays: int = 0
    throttled: int = 0
    duplicates: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    received: Counter[str] = field(default_factory=Counter)
    finals: dict[str, str] = field(default_factory=dict)
    sends: Counter[str] = field(default_factory=Counter)
    stored: dict[str, tuple[int, bytes]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        finals = Counter(self.finals.values())
        return {
            "requests": self.requests,
            "replays": self.replays,
            "throttled": self.throttled,
            "items_received": sum(self.received.values()),
            "distinct_items": len(self.received),
            "ok_distinct": finals["ok"],
            "rejected_distinct": finals["rejected"],
            "duplicates": self.duplicates,
            "max_in_flight": self.max_in_flight,
        }


BATCH_KEY = web.AppKey("batch_state", dict[str, BatchKeyState])


@dataclass(frozen=True)
class Faults:
    permanent: float
    transient: float
    transient_failures: int
    seed: str

    def status(self, item_id: str, attempt: int) -> str:
        digest = hashlib.blake2b(f"{self.seed}:{item_id}".encode(), digest_size=8).digest()
        draw = int.from_bytes(digest, "big") / _SCALE
        if draw < self.permanent:
            return "rejected"
        if draw < self.permanent + self.transient and attempt <= self.transient_failures:
            return "retry"
        return "ok"


def _faults(request: web.Request) -> Faults:
    permanent = float_param(request, "permanent", 0.0, maximum=1.0)
    transient = float_param(request, "transient", 0.0, maximum=1.0)
    if permanent + transient > 1.0:
        raise bad_request("permanent + transient must be <= 1")
    failures = int_param(request, "transient_failures", 1, minimum=1)
    return Faults(permanent, transient, failures, request.query.get("seed", ""))


def _item_ids(body: Any) -> list[tuple[Any, str]]:
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise bad_request('body must be {"items": [{"id": ...}, ...]}')
    if len(items) > MAX_ITEMS_PER_REQUEST:
        raise bad_request(f"at most {MAX_ITEMS_PER_REQUEST} items per request")
    ids = []
    for i, item in enumerate(items):
        raw = item.get("id") if isinstance(item, dict) else None
        if isinstance(raw, bool) or not isinstance(raw, (str, int)):
            raise bad_request(f"items[{i}].id must be a string or an integer")
        ids.append((raw, str(raw)))
    return ids


def _state(request: web.Request, key: str) -> BatchKeyState:
    states = request.app[BATCH_KEY]
    state = states.get(key)
    if state is None:
        if len(states) >= MAX_KEYS:
            del states[next(iter(states))]  # oldest first: long benchmarks must not grow without bound
        state = states[key] = BatchKeyState()
    return state


async def batch(request: web.Request) -> web.Response:
    key = required_key(request)
    faults = _faults(request)
    throttle_every = int_param(request, "throttle_every", 0, minimum=0)
    delay = float_param(request, "delay", 0.0, maximum=30.0)
    try:
        body = await request.json()
    except ValueError:
        raise bad_request("body must be JSON") from None
    ids = _item_ids(body)
    state = _state(request, key)
    state.requests += 1
    idempotency_key = request.headers.get("Idempotency-Key")
    if idempotency_key:
        state.sends[idempotency_key] += 1
        stored = state.stored.get(idempotency_key)
        if stored is not None:
            state.replays += 1
            return web.Response(body=stored[1], status=stored[0], content_type="application/json")
    if delay:
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            await asyncio.sleep(delay)
        finally:
            state.in_flight -= 1
    if throttle_every and state.requests % throttle_every == 0:
        state.throttled += 1
        retry_after = int_param(request, "retry_after", 1, minimum=0)
        headers = {"Retry-After": str(retry_after)}
        return json_error(429, "rate_limited", "batch throttled, items not applied", headers=headers)
    results = []
    for raw, item_id in ids:
        if item_id in state.finals:
            state.duplicates += 1
        state.received[item_id] += 1
        attempt = state.received[item_id]
        status = faults.status(item_id, attempt)
        result: dict[str, Any] = {"id": raw, "status": status, "attempt": attempt}
        if status == "retry":
            result["error"] = "temporarily unavailable, retry later"
        else:
            # The first final answer counts: a re-sent rejected item stays rejected, an ok one stays ok.
            state.finals.setdefault(item_id, status)
            if status == "rejected":
                result["error"] = "invalid item (permanent)"
        results.append(result)
    code = 200 if all(r["status"] == "ok" for r in results) else 207
    payload = json.dumps({"results": results}, separators=(",", ":")).encode()
    if idempotency_key:
        state.stored[idempotency_key] = (code, payload)
    return web.Response(body=payload, status=code, content_type="application/json")


async def stats(request: web.Request) -> web.Response:
    key = required_key(request)
    states = request.app[BATCH_KEY]
    if request.method == "DELETE":
        return web.json_response({"forgotten": states.pop(key, None) is not None})
    state = states.get(key) or BatchKeyState()
    body = state.summary()
    if request.query.get("detail") == "1":
        body["received"] = dict(state.received)
        body["sends"] = dict(state.sends)
    return web.json_response(body)


def register(app: web.Application) -> None:
    app[BATCH_KEY] = {}
    app.router.add_post("/batch", batch)
    app.router.add_get("/batch/stats", stats)
    app.router.add_delete("/batch/stats", stats)
