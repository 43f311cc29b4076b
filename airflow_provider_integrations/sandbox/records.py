"""A changing collection for incremental extraction: ``updated_since`` filtering with keyset pagination.

- ``POST /records/{dataset}`` with ``{"new": N, "update": [ids]}`` creates N records and touches the
  listed ones (a new ``updated_at`` and ``amount``), the way activity at a partner looks between two
  extractions. It answers ``{"created": [ids], "updated": [ids], "total": n}``.
- ``GET /records/{dataset}?updated_since=<ISO 8601>&limit=L&cursor=C`` answers the records with
  ``updated_at`` strictly after ``updated_since`` (all without it), ordered by ``(updated_at, id)``, as
  ``{"data": [...], "meta": {"next_cursor": str | null}}``. The cursor is the last (updated_at, id) of
  the page (keyset), so records changing during a walk neither repeat nor shift a page.
- ``GET /records/{dataset}/stats`` answers ``{"requests", "served"}`` (records sent in all pages).

``updated_at`` values are wall-clock UTC and strictly increasing within a dataset, so a client's
watermark (the largest ``updated_at`` it has seen) is exact; an unknown dataset answers 404.
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from airflow_provider_integrations.sandbox.params import bad_request, int_param

MAX_DATASETS = 1000
MAX_RECORDS = 100_000
MAX_PAGE_SIZE = 1000


@dataclass
class Dataset:
    records: dict[int, dict[str, Any]] = field(default_factory=dict)
    last_ts: float = 0.0
    requests: int = 0
    served: int = 0

    def stamp(self) -> str:
        # Strictly increasing even within one clock tick: a watermark must never tie with a later change.
        self.last_ts = max(time.time(), self.last_ts + 1e-6)
        return datetime.fromtimestamp(self.last_ts, timezone.utc).isoformat(timespec="microseconds")


RECORDS_KEY = web.AppKey("records_state", dict[str, Dataset])


def _parse_time(raw: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"{name} must be an ISO 8601 timestamp, got {raw!r}") from None
    if value.tzinfo is None:
        raise bad_request(f"{name} must carry a UTC offset (e.g. 2026-01-01T00:00:00+00:00), got {raw!r}")
    return value


def encode_cursor(updated_at: str, record_id: int) -> str:
    return base64.urlsafe_b64encode(f"{updated_at}|{record_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, record_id = raw.partition("|")
        return _parse_time(stamp, "cursor"), int(record_id)
    except (binascii.Error, UnicodeDecodeError, ValueError, web.HTTPBadRequest):
        raise bad_request(f"invalid cursor {cursor!r}") from None


async def change(request: web.Request) -> web.Response:
    name = request.match_info["dataset"]
    try:
        body = await request.json()
    except ValueError:
        raise bad_request("body must be a JSON object") from None
    new = body.get("new", 0) if isinstance(body, dict) else None
    update = body.get("update", []) if isinstance(body, dict) else None
    if not isinstance(new, int) or isinstance(new, bool) or new < 0:
        raise bad_request('"new" must be an integer >= 0')
    if not isinstance(update, list) or not all(isinstance(i, int) for i in update):
        raise bad_request('"update" must be a list of record ids')
    datasets = request.app[RECORDS_KEY]
    if name not in datasets and len(datasets) >= MAX_DATASETS:
        del datasets[next(iter(datasets))]
    dataset = datasets.setdefault(name, Dataset())
    unknown = [i for i in update if i not in dataset.records]
    if unknown:
        raise bad_request(f'"update" names unknown ids {unknown[:10]}')
    if len(dataset.records) + new > MAX_RECORDS:
        raise bad_request(f"a dataset holds at most {MAX_RECORDS} records")
    created = []
    for _ in range(new):
        record_id = len(dataset.records) + 1
        dataset.records[record_id] = {
            "id": record_id,
            "name": f"record-{record_id}",
            "amount": record_id * 10,
            "updated_at": dataset.stamp(),
        }
        created.append(record_id)
    for record_id in update:
        record = dataset.records[record_id]
        record["amount"] += 1
        record["updated_at"] = dataset.stamp()
    body = {"created": created, "updated": update, "total": len(dataset.records)}
    return web.json_response(body, status=201)


def _dataset(request: web.Request) -> Dataset:
    dataset = request.app[RECORDS_KEY].get(request.match_info["dataset"])
    if dataset is None:
        raise web.HTTPNotFound(text='{"error": "unknown dataset"}', content_type="application/json")
    return dataset


async def listing(request: web.Request) -> web.Response:
    dataset = _dataset(request)
    limit = int_param(request, "limit", 100, minimum=1, maximum=MAX_PAGE_SIZE)
    since_raw = request.query.get("updated_since")
    since = _parse_time(since_raw, "updated_since") if since_raw else None
    cursor_raw = request.query.get("cursor")
    after = _decode_cursor(cursor_raw) if cursor_raw else None
    rows = sorted(
        ((datetime.fromisoformat(r["updated_at"]), r["id"], r) for r in dataset.records.values()),
        key=lambda row: (row[0], row[1]),
    )
    selected = [
        row
        for row in rows
        if (since is None or row[0] > since) and (after is None or (row[0], row[1]) > after)
    ]
    page = selected[:limit]
    next_cursor = encode_cursor(page[-1][2]["updated_at"], page[-1][1]) if len(selected) > limit else None
    dataset.requests += 1
    dataset.served += len(page)
    return web.json_response({"data": [dict(r) for _, _, r in page], "meta": {"next_cursor": next_cursor}})


async def stats(request: web.Request) -> web.Response:
    dataset = _dataset(request)
    return web.json_response({"requests": dataset.requests, "served": dataset.served})


def register(app: web.Application) -> None:
    app[RECORDS_KEY] = {}
    app.router.add_post("/records/{dataset}", change)
    app.router.add_get("/records/{dataset}", listing)
    app.router.add_get("/records/{dataset}/stats", stats)
