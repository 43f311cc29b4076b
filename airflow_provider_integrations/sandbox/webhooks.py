"""A partner that answers asynchronously: it accepts a job and later calls the job's callback URL back,
signed the Standard Webhooks way with :data:`PARTNER_WEBHOOK_SECRET`.

- ``POST /partner/jobs`` with ``{"callback_url": "http://.../callbacks/<id>", "mode": "normal",
  "delay": 0.5, "result": {...}}`` answers 202 ``{"job_id", "mode", "webhook_id"}``; after ``delay``
  seconds the partner POSTs the callback. ``mode``:

  * ``normal``: once, ``{"job_id", "status": "succeeded", "result"}``;
  * ``twice``: the same message twice (same ``webhook-id``, fresh timestamp and signature, as a
    Standard Webhooks retry does);
  * ``late``: once, with a ``webhook-timestamp`` :data:`LATE_BY_SECONDS` in the past, as when a message
    sat in the partner's queue beyond the receiver's tolerance;
  * ``forged``: once, signed with :data:`FORGED_WEBHOOK_SECRET` instead of the shared secret;
  * ``failure``: once, ``{"job_id", "status": "failed", "reason": FAILURE_REASON}``;
  * ``never``: accepts the job and never calls.
- ``GET /partner/jobs/{job_id}?wait=5``: ``{"job_id", "mode", "done", "attempts": [{"status", "webhook_id",
  "error"}]}``; ``wait`` holds the answer up to that many seconds until every attempt was made.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from airflow_provider_integrations.sandbox.params import bad_request, float_param, json_error
from airflow_provider_integrations.webhooks.signing import Signer

#: The secret the partner and the receiver share (public on purpose, like the other sandbox credentials).
PARTNER_WEBHOOK_SECRET = "whsec_C9ODV6yMsYZbSEiZo6njW+EVstpZg3iL2y5kJ78r+jY="
#: What ``forged`` signs with: a well-formed secret the receiver does not know.
FORGED_WEBHOOK_SECRET = "whsec_bOvToKzyb7Kt7XnajoeP6wPQXrU4FAuYA6mLDSXJvVE="
MODES = ("normal", "twice", "late", "forged", "failure", "never")
LATE_BY_SECONDS = 600
FAILURE_REASON = "partner job failed: quota exceeded"
MAX_DELAY_SECONDS = 300.0
MAX_JOBS = 10_000
CALLBACK_TIMEOUT_SECONDS = 10.0


@dataclass
class PartnerJob:
    job_id: str
    callback_url: str
    mode: str
    delay: float
    result: Any
    webhook_id: str = field(default_factory=lambda: f"msg_{uuid.uuid4().hex}")
    attempts: list[dict[str, Any]] = field(default_factory=list)
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    def view(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "mode": self.mode,
            "webhook_id": self.webhook_id,
            "done": self.finished.is_set(),
            "attempts": self.attempts,
        }

    def message(self) -> bytes:
        if self.mode == "failure":
            doc = {"job_id": self.job_id, "status": "failed", "reason": FAILURE_REASON}
        else:
            doc = {"job_id": self.job_id, "status": "succeeded", "result": self.result}
        return json.dumps(doc).encode()


@dataclass
class PartnerState:
    jobs: dict[str, PartnerJob] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    session: aiohttp.ClientSession | None = None


PARTNER_KEY = web.AppKey("partner_webhooks_state", PartnerState)
#: Signs every partner message (callbacks, events, manifests) with :data:`PARTNER_WEBHOOK_SECRET`.
PARTNER_SIGNER = Signer.from_secrets([PARTNER_WEBHOOK_SECRET])
_FORGER = Signer.from_secrets([FORGED_WEBHOOK_SECRET])


def _parse_job(body: Any) -> PartnerJob:
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    url = body.get("callback_url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise bad_request('"callback_url" must be an http(s) URL')
    mode = body.get("mode", "normal")
    if mode not in MODES:
        raise bad_request(f'"mode" must be one of {list(MODES)}')
    delay = body.get("delay", 0.0)
    if not isinstance(delay, (int, float)) or isinstance(delay, bool) or not 0 <= delay <= MAX_DELAY_SECONDS:
        raise bad_request(f'"delay" must be a number of seconds between 0 and {MAX_DELAY_SECONDS:g}')
    result = body.get("result", {"rows": 42})
    return PartnerJob(uuid.uuid4().hex, url, mode, float(delay), result)


def start_job(state: PartnerState, job: PartnerJob) -> None:
    """Keep ``job`` and call its URL back, as its mode says, in a task the app's cleanup cancels."""
    state.jobs[job.job_id] = job
    task = asyncio.get_running_loop().create_task(_call_back(state, job))
    state.tasks.add(task)
    task.add_done_callback(state.tasks.discard)


async def _call_back(state: PartnerState, job: PartnerJob) -> None:
    try:
        await asyncio.sleep(job.delay)
        sends = {"never": 0, "twice": 2}.get(job.mode, 1)
        for _ in range(sends):
            await _send(state, job)
    finally:
        job.finished.set()


async def _send(state: PartnerState, job: PartnerJob) -> None:
    assert state.session is not None
    body = job.message()
    signer = _FORGER if job.mode == "forged" else PARTNER_SIGNER
    timestamp = int(time.time()) - (LATE_BY_SECONDS if job.mode == "late" else 0)
    headers = signer.headers(body, webhook_id=job.webhook_id, timestamp=timestamp)
    headers["Content-Type"] = "application/json"
    attempt: dict[str, Any] = {"status": None, "webhook_id": job.webhook_id, "error": None}
    try:
        async with state.session.post(job.callback_url, data=body, headers=headers) as response:
            attempt["status"] = response.status
            await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        attempt["error"] = type(exc).__name__
    job.attempts.append(attempt)


async def submit(request: web.Request) -> web.Response:
    state = request.app[PARTNER_KEY]
    try:
        body = await request.json()
    except ValueError:
        raise bad_request("the body must be JSON") from None
    job = _parse_job(body)
    if len(state.jobs) >= MAX_JOBS:
        state.jobs.pop(next(iter(state.jobs)))
    start_job(state, job)
    return web.json_response(
        {"job_id": job.job_id, "mode": job.mode, "webhook_id": job.webhook_id}, status=202
    )


async def show(request: web.Request) -> web.Response:
    job = request.app[PARTNER_KEY].jobs.get(request.match_info["job_id"])
    if job is None:
        return json_error(404, "unknown_job")
    wait = float_param(request, "wait", 0.0, maximum=60.0)
    if wait:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(job.finished.wait(), wait)
    return web.json_response(job.view())


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    state = app[PARTNER_KEY]
    state.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CALLBACK_TIMEOUT_SECONDS))
    try:
        yield
    finally:
        for task in list(state.tasks):
            task.cancel()
        await asyncio.gather(*state.tasks, return_exceptions=True)
        await state.session.close()


def register(app: web.Application) -> None:
    app[PARTNER_KEY] = PartnerState()
    app.cleanup_ctx.append(_lifecycle)
    app.router.add_post("/partner/jobs", submit)
    app.router.add_get("/partner/jobs/{job_id}", show)
