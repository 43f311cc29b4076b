"""``POST /events/{source}`` on the running standalone receiver (a child process), for each store."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from airflow_provider_integrations.sandbox.webhooks import FORGED_WEBHOOK_SECRET, PARTNER_WEBHOOK_SECRET
from airflow_provider_integrations.webhooks import CallbackStore, Verifier
from airflow_provider_integrations.webhooks.event_receiver import EventReceiver
from airflow_provider_integrations.webhooks.events import EventLog, event_log_for
from airflow_provider_integrations.webhooks.server import static_resolver
from airflow_provider_integrations.webhooks.store.events_sqlite import SqliteEventLog
from tests.webhooks.conftest import NEW_SECRET, OLD_SECRET, ReceiverProcess, signed

Served = tuple[str, str, ReceiverProcess]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        yield session


@pytest.fixture
async def events(served_store: CallbackStore) -> AsyncIterator[EventLog]:
    """The test's own handle on the event log the receiver process appends to."""
    async with event_log_for(served_store) as log:
        yield log


def event(kind: str = "order.created", **data: Any) -> dict[str, Any]:
    return {"type": kind, "timestamp": "2025-01-01T00:00:00Z", "data": data}


async def post(
    http: aiohttp.ClientSession, served: Served, source: str, body: Any, headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{served[2].url}/events/{source}", data=body, headers=headers) as response:
        return response.status, await response.json()


async def test_accepted_then_duplicate_with_one_audit_line_each(
    http: aiohttp.ClientSession, served: Served, events: EventLog
) -> None:
    before = await events.last_seq("partner")
    body, headers = signed(event(order=1, secret_note="do-not-log"))
    assert await post(http, served, "partner", body, headers) == (
        202,
        {"outcome": "accepted", "reason": "accepted", "seq": before + 1},
    )
    # A retry: the same webhook-id, signed afresh.
    retry, retry_headers = signed(event(order=1, secret_note="do-not-log"), webhook_id=headers["webhook-id"])
    again, answer = await post(http, served, "partner", retry, retry_headers)
    assert (again, answer["outcome"], answer["seq"]) == (200, "duplicate", before + 1)
    stored = await events.read("partner", before)
    assert [(e.webhook_id, e.type, e.payload["data"]["order"]) for e in stored] == [
        (headers["webhook-id"], "order.created", 1)
    ]
    audit = [a for a in served[2].audit_lines() if a.get("webhook_id") == headers["webhook-id"]]
    assert [(a["event"], a["source"], a["status"], a["verdict"], a["seq"]) for a in audit] == [
        ("webhook_event", "partner", 202, "accepted", before + 1),
        ("webhook_event", "partner", 200, "duplicate", before + 1),
    ]
    assert "do-not-log" not in served[2].stderr_text()


async def test_rejections_store_nothing_and_the_server_keeps_answering(
    http: aiohttp.ClientSession, served: Served, events: EventLog
) -> None:
    before = await events.last_seq("partner")
    good, headers = signed(event())
    forged_body, forged = signed(event(), FORGED_WEBHOOK_SECRET)
    untyped, untyped_headers = signed({"data": {"no": "type"}})
    broken, broken_headers = signed(b"{not json")
    cases: list[tuple[str, Any, dict[str, str], int, str]] = [
        ("nobody", good, headers, 404, "unknown_source"),
        ("bad%20source", good, headers, 404, "unknown_source"),
        ("partner", forged_body, forged, 401, "no_valid_signature"),
        ("partner", good, headers | {"Content-Type": "text/plain"}, 415, "unsupported_content_type"),
        ("partner", untyped, untyped_headers, 400, "missing_event_type"),
        ("partner", broken, broken_headers, 400, "malformed_json"),
        # BytesIO: aiohttp warns about large raw bytes bodies.
        ("partner", io.BytesIO(b"x" * (1024 * 1024 + 1)), signed(b"{}")[1], 413, "body_too_large"),
    ]
    for source, body, hdrs, status, reason in cases:
        got, doc = await post(http, served, source, body, hdrs)
        assert (got, doc["reason"]) == (status, reason), source
        assert served[2].health()["status"] == "ok"
    assert await events.last_seq("partner") == before


async def test_a_rotated_secret_accepts_old_and_new_keys(
    http: aiohttp.ClientSession, served: Served, events: EventLog
) -> None:
    before = await events.last_seq("rotating")
    for secret in (OLD_SECRET, NEW_SECRET):
        body, headers = signed(event(key=secret[:10]), secret)
        assert (await post(http, served, "rotating", body, headers))[0] == 202
    assert await events.last_seq("rotating") == before + 2


async def test_secret_and_store_failures_are_503_never_an_exception(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(name: str) -> Verifier | None:
        raise RuntimeError("vault down")

    log = SqliteEventLog(tmp_path / "events.db")
    await log.open()
    body, headers = signed(event())
    with caplog.at_level(logging.WARNING):
        verdict = await EventReceiver(log, broken).handle("partner", headers, body)
    assert (verdict.status, verdict.reason) == (503, "secret_unavailable")
    assert PARTNER_WEBHOOK_SECRET not in caplog.text
    receiver = EventReceiver(log, static_resolver({"partner": Verifier.from_secrets(PARTNER_WEBHOOK_SECRET)}))
    assert (await receiver.handle("partner", headers, body)).status == 202
    await log.close()
    body, headers = signed(event(), webhook_id=f"msg_{uuid.uuid4().hex}")
    verdict = await receiver.handle("partner", headers, body)
    assert (verdict.status, verdict.reason) == (503, "store_unavailable")
    assert json.loads(verdict.body) == {"outcome": "unavailable", "reason": "store_unavailable"}
