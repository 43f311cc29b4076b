"""Status endpoints for polling tests, examples and the trigger-density benchmark.

- ``POST /status-jobs`` with ``{"states": [["queued", 0.5], ["running", 1.0], ["done", null]],
  "result": {...}, "faults": [[2, 503, null], [3, 429, 1]], "retry_after": null}`` creates a job whose
  state follows that timetable (seconds per state; the last state, or a ``null`` duration, is terminal).
  ``faults`` makes the Nth poll answer an error status (with an optional ``Retry-After``);
  ``retry_after`` adds a ``Retry-After`` header to every non-terminal answer.
- ``GET /status-jobs/{id}`` answers ``{"id", "status", "terminal", "elapsed", "polls", "result"}``
  (``result`` only once terminal) and counts the poll; ``GET /status-jobs/{id}/stats`` reads the
  count without adding to it.
- ``GET /poll-after?key=K&polls=N`` is the cheap counter variant: "pending" until the Nth request
  for ``K``, then ``final`` (default "done"). ``pending_status=404`` answers the pending polls with
  that status instead of 200 (what the official ``HttpSensorTrigger`` waits on).

:func:`create_poll_app` serves only the counter variant and counts TCP connections itself: the
benchmark's server, without the full sandbox's middleware.
"""

from __future__ import annotations

import time
import uuid
import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from airflow_provider_integrations.sandbox.params import bad_request, int_param, json_error

MAX_JOBS = 50_000
_FINALS = frozenset({"done", "failed", "cancelled"})


@dataclass
class StatusJob:
    id: str
    states: list[tuple[str, float | None]]
    result: Any
    faults: dict[int, tuple[int, float | None]]
    retry_after: float | None
    created: float = field(default_factory=time.monotonic)
    polls: int = 0

    def state(self) -> tuple[str, bool, float]:
        """(state, terminal, elapsed seconds) at this moment."""
        elapsed = time.monotonic() - self.created
        until = 0.0
        for index, (name, duration) in enumerate(self.states):
            if duration is None or index == len(self.states) - 1:
                return name, True, elapsed
            until += duration
            if elapsed < until:
                return name, False, elapsed
        raise AssertionError("unreachable: the last state is terminal")


@dataclass
class StatusState:
    jobs: dict[str, StatusJob] = field(default_factory=dict)
    poll_counts: Counter[str] = field(default_factory=Counter)
    # Only the light benchmark app counts connections here; the sandbox's stats middleware does it there.
    track_connections: bool = False
    connections: int = 0
    requests: int = 0
    _seen: weakref.WeakSet[Any] = field(default_factory=weakref.WeakSet)

    def observe(self, transport: Any) -> None:
        if transport is not None and transport not in self._seen:
            self._seen.add(transport)
            self.connections += 1


STATUS_KEY = web.AppKey("status_state", StatusState)


def _parse_states(raw: Any) -> list[tuple[str, float | None]]:
    if not isinstance(raw, list) or not raw:
        raise bad_request('"states" must be a non-empty list of [name, seconds or null]')
    states: list[tuple[str, float | None]] = []
    for i, item in enumerate(raw):
        ok = isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
        duration = item[1] if ok else None
        if not ok or not (duration is None or (isinstance(duration, (int, float)) and duration >= 0)):
            raise bad_request(f'"states[{i}]" must be [name, seconds >= 0 or null]')
        if duration is None and i != len(raw) - 1:
            raise bad_request(f'"states[{i}]": only the last state may have a null duration')
        states.append((item[0], None if duration is None else float(duration)))
    return states


def _parse_faults(raw: Any) -> dict[int, tuple[int, float | None]]:
    faults: dict[int, tuple[int, float | None]] = {}
    for i, item in enumerate(raw or []):
        valid = isinstance(item, list) and len(item) == 3
        if valid:
            poll, status, retry_after = item
            valid = isinstance(poll, int) and poll >= 1 and isinstance(status, int) and 400 <= status <= 599
            valid = valid and (retry_after is None or isinstance(retry_after, (int, float)))
        if not valid:
            raise bad_request(f'"faults[{i}]" must be [poll >= 1, status 400-599, retry_after or null]')
        faults[poll] = (status, retry_after)
    return faults


async def create_job(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        raise bad_request("body must be a JSON object") from None
    if not isinstance(body, dict):
        raise bad_request("body must be a JSON object")
    retry_after = body.get("retry_after")
    if retry_after is not None and not isinstance(retry_after, (int, float)):
        raise bad_request('"retry_after" must be a number or null')
    job = StatusJob(
        id=uuid.uuid4().hex,
        states=_parse_states(body.get("states")),
        result=body.get("result"),
        faults=_parse_faults(body.get("faults")),
        retry_after=retry_after,
    )
    jobs = request.app[STATUS_KEY].jobs
    if len(jobs) >= MAX_JOBS:
        del jobs[next(iter(jobs))]  # oldest first: long benchmarks must not grow without bound
    jobs[job.id] = job
    return web.json_response({"id": job.id, "url": f"/status-jobs/{job.id}"}, status=201)


def _job(request: web.Request) -> StatusJob:
    job = request.app[STATUS_KEY].jobs.get(request.match_info["id"])
    if job is None:
        raise web.HTTPNotFound(text='{"error": "unknown job"}', content_type="application/json")
    return job


def _retry_after_header(seconds: float | None) -> dict[str, str] | None:
    return None if seconds is None else {"Retry-After": str(max(0, round(seconds)))}


async def get_job(request: web.Request) -> web.Response:
    job = _job(request)
    job.polls += 1
    fault = job.faults.get(job.polls)
    if fault is not None:
        status, retry_after = fault
        headers = _retry_after_header(retry_after)
        return json_error(status, "injected_failure", f"poll {job.polls}", headers=headers)
    name, terminal, elapsed = job.state()
    body = {
        "id": job.id,
        "status": name,
        "terminal": terminal,
        "elapsed": round(elapsed, 3),
        "polls": job.polls,
        "result": job.result if terminal else None,
    }
    return web.json_response(body, headers=None if terminal else _retry_after_header(job.retry_after))


async def job_stats(request: web.Request) -> web.Response:
    job = _job(request)
    name, terminal, _ = job.state()
    return web.json_response({"id": job.id, "polls": job.polls, "status": name, "terminal": terminal})


async def poll_after(request: web.Request) -> web.Response:
    state = request.app[STATUS_KEY]
    if state.track_connections:
        state.observe(request.transport)
        state.requests += 1
    key = request.query.get("key")
    if not key:
        raise bad_request("the 'key' query parameter is required")
    needed = int_param(request, "polls", 1, minimum=1)
    state.poll_counts[key] += 1
    poll = state.poll_counts[key]
    if poll < needed:
        pending_status = int_param(request, "pending_status", 200, minimum=200, maximum=599)
        return web.json_response({"key": key, "status": "pending", "poll": poll}, status=pending_status)
    final = request.query.get("final", "done")
    if final not in _FINALS:
        raise bad_request(f"final must be one of {sorted(_FINALS)}")
    return web.json_response({"key": key, "status": final, "poll": poll, "result": {"polls": poll}})


async def connections(request: web.Request) -> web.Response:
    state = request.app[STATUS_KEY]
    body = {"connections": state.connections, "requests": state.requests, "keys": len(state.poll_counts)}
    if request.method == "DELETE":
        state.connections = state.requests = 0
        state._seen = weakref.WeakSet()
        state.poll_counts.clear()
    return web.json_response(body)


def register(app: web.Application) -> None:
    app[STATUS_KEY] = StatusState()
    app.router.add_post("/status-jobs", create_job)
    app.router.add_get("/status-jobs/{id}", get_job)
    app.router.add_get("/status-jobs/{id}/stats", job_stats)
    app.router.add_get("/poll-after", poll_after)


def create_poll_app() -> web.Application:
    """Only ``/poll-after``, ``/health`` and ``/_connections`` (GET counts, DELETE also resets).

    ``/_connections`` answers distinct TCP connections and ``/poll-after`` requests since the last reset.
    """
    app = web.Application()
    app[STATUS_KEY] = StatusState(track_connections=True)
    app.router.add_get("/poll-after", poll_after)
    app.router.add_route("*", "/_connections", connections)
    app.router.add_get("/health", health)
    return app


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})
