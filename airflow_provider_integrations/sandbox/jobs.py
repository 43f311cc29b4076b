"""A partner's async-jobs API: submit, status, results, cancel, with counters tests assert on.

- ``POST /jobs`` with ``{"duration": 1.0, "queued": 0.0, "outcome": "succeeded", "results": 25,
  "retry_after": null, "faults": [[2, 503, null]], "hold": false, "tag": "t1"}`` creates a job:
  "queued", then "running" for ``duration`` seconds, then ``outcome`` ("succeeded" or "failed"). ``hold``
  keeps it "running" until ``POST /jobs/{id}/finish``. ``faults`` and ``retry_after`` work as for
  ``/status-jobs`` (:mod:`.status`). A repeated ``Idempotency-Key`` answers the job it created first
  (200, ``Idempotent-Replayed: true``) instead of creating another; the same key with another body is a 422.
- ``GET /jobs/{id}``: ``{"id", "state", "polls"}``, counted per job.
- ``GET /jobs/{id}/results?cursor=0&limit=10``: ``{"items": [{"n": 0, "job": id}, ...], "next_cursor"}``;
  409 until the job succeeded.
- ``POST /jobs/{id}/cancel``: 202 ``{"id", "state": "cancelled"}``; 409 when the job already ended.
- ``POST /jobs/{id}/finish`` with ``{"outcome": "succeeded"}``: ends a held job (test control).
- ``GET /jobs-stats?tag=t1``: ``{"submit_requests", "submissions", "cancels", "jobs": [...]}`` for one tag:
  submit requests received, jobs actually created, cancel requests received.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from airflow_provider_integrations.sandbox.params import bad_request, int_param, json_error
from airflow_provider_integrations.sandbox.status import StatusJob, _parse_faults, _retry_after_header

MAX_JOBS = 10_000
OUTCOMES = frozenset({"succeeded", "failed"})
_TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


@dataclass
class SandboxJob:
    # The timetable, faults and Retry-After of a status job; cancel and finish override its state.
    timeline: StatusJob
    tag: str
    results: int
    fingerprint: str
    ended_as: str | None = None
    cancels: int = 0

    @property
    def id(self) -> str:
        return self.timeline.id

    def state(self) -> str:
        return self.ended_as or self.timeline.state()[0]

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state(), "polls": self.timeline.polls, "cancels": self.cancels}


@dataclass
class JobsState:
    jobs: dict[str, SandboxJob] = field(default_factory=dict)
    by_key: dict[str, str] = field(default_factory=dict)
    submit_requests: Counter[str] = field(default_factory=Counter)
    submissions: Counter[str] = field(default_factory=Counter)
    cancels: Counter[str] = field(default_factory=Counter)


JOBS_KEY = web.AppKey("jobs_state", JobsState)


def _number(body: dict[str, Any], name: str, default: float) -> float:
    value = body.get(name, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        raise bad_request(f'"{name}" must be a number >= 0')
    return float(value)


def _new_job(body: dict[str, Any], fingerprint: str) -> SandboxJob:
    outcome = body.get("outcome", "succeeded")
    if outcome not in OUTCOMES:
        raise bad_request(f'"outcome" must be one of {sorted(OUTCOMES)}')
    results = body.get("results", 0)
    if not isinstance(results, int) or isinstance(results, bool) or results < 0:
        raise bad_request('"results" must be an integer >= 0')
    tag = body.get("tag", "")
    if not isinstance(tag, str):
        raise bad_request('"tag" must be a string')
    retry_after = body.get("retry_after")
    if retry_after is not None and not isinstance(retry_after, (int, float)):
        raise bad_request('"retry_after" must be a number or null')
    running = math.inf if body.get("hold") else _number(body, "duration", 1.0)
    timeline = StatusJob(
        id=uuid.uuid4().hex,
        states=[("queued", _number(body, "queued", 0.0)), ("running", running), (outcome, None)],
        result=None,
        faults=_parse_faults(body.get("faults")),
        retry_after=retry_after,
    )
    return SandboxJob(timeline, tag, results, fingerprint)


def _created(job: SandboxJob, status: int, headers: dict[str, str] | None = None) -> web.Response:
    body = {"id": job.id, "state": job.state(), "url": f"/jobs/{job.id}"}
    return web.json_response(body, status=status, headers=headers)


async def submit(request: web.Request) -> web.Response:
    raw = await request.read()
    try:
        body = await request.json() if raw else {}
    except ValueError:
        raise bad_request("body must be a JSON object") from None
    if not isinstance(body, dict):
        raise bad_request("body must be a JSON object")
    state = request.app[JOBS_KEY]
    tag = body.get("tag", "") if isinstance(body.get("tag", ""), str) else ""
    state.submit_requests[tag] += 1
    fingerprint = hashlib.sha256(raw).hexdigest()
    key = request.headers.get("Idempotency-Key")
    if key and key in state.by_key:
        known = state.jobs.get(state.by_key[key])
        if known is not None:
            if known.fingerprint != fingerprint:
                return json_error(422, "idempotency_key_reused", "key was used with a different job body")
            return _created(known, 200, {"Idempotent-Replayed": "true"})
    job = _new_job(body, fingerprint)
    if len(state.jobs) >= MAX_JOBS:
        del state.jobs[next(iter(state.jobs))]  # oldest first: long runs must not grow without bound
    state.jobs[job.id] = job
    state.submissions[job.tag] += 1
    if key:
        state.by_key[key] = job.id
    return _created(job, 201)


def _job(request: web.Request) -> SandboxJob:
    job = request.app[JOBS_KEY].jobs.get(request.match_info["id"])
    if job is None:
        raise web.HTTPNotFound(text='{"error": "unknown job"}', content_type="application/json")
    return job


async def status(request: web.Request) -> web.Response:
    job = _job(request)
    timeline = job.timeline
    timeline.polls += 1
    fault = timeline.faults.get(timeline.polls)
    if fault is not None:
        code, retry_after = fault
        headers = _retry_after_header(retry_after)
        return json_error(code, "injected_failure", f"poll {timeline.polls}", headers=headers)
    state = job.state()
    body = {"id": job.id, "state": state, "polls": timeline.polls}
    pending = state not in _TERMINAL
    return web.json_response(body, headers=_retry_after_header(timeline.retry_after) if pending else None)


async def results(request: web.Request) -> web.Response:
    job = _job(request)
    if job.state() != "succeeded":
        return json_error(409, "not_ready", f"job is {job.state()}")
    start = int_param(request, "cursor", 0, minimum=0)
    limit = int_param(request, "limit", 10, minimum=1, maximum=1000)
    end = min(start + limit, job.results)
    items = [{"n": n, "job": job.id} for n in range(start, end)]
    return web.json_response({"items": items, "next_cursor": str(end) if end < job.results else None})


async def cancel(request: web.Request) -> web.Response:
    job = _job(request)
    state = request.app[JOBS_KEY]
    state.cancels[job.tag] += 1
    job.cancels += 1
    current = job.state()
    if current in _TERMINAL:
        return json_error(409, "already_ended", f"job is {current}")
    job.ended_as = "cancelled"
    return web.json_response({"id": job.id, "state": "cancelled"}, status=202)


async def finish(request: web.Request) -> web.Response:
    job = _job(request)
    body = await request.json() if await request.read() else {}
    outcome = body.get("outcome", "succeeded") if isinstance(body, dict) else None
    if outcome not in OUTCOMES:
        raise bad_request(f'"outcome" must be one of {sorted(OUTCOMES)}')
    if job.state() not in _TERMINAL:
        job.ended_as = outcome
    return web.json_response(job.view())


async def stats(request: web.Request) -> web.Response:
    state = request.app[JOBS_KEY]
    tag = request.query.get("tag", "")
    return web.json_response(
        {
            "submit_requests": state.submit_requests[tag],
            "submissions": state.submissions[tag],
            "cancels": state.cancels[tag],
            "jobs": [job.view() for job in state.jobs.values() if job.tag == tag],
        }
    )


def register(app: web.Application) -> None:
    app[JOBS_KEY] = JobsState()
    app.router.add_post("/jobs", submit)
    app.router.add_get("/jobs/{id}", status)
    app.router.add_get("/jobs/{id}/results", results)
    app.router.add_post("/jobs/{id}/cancel", cancel)
    app.router.add_post("/jobs/{id}/finish", finish)
    app.router.add_get("/jobs-stats", stats)
