"""Security acceptance over a running standalone receiver (a child process), for each store.

Every case asserts the documented status, that nothing was stored, and that the server still answers.
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from airflow_provider_integrations.sandbox.webhooks import FORGED_WEBHOOK_SECRET
from airflow_provider_integrations.webhooks import CallbackStore, DeliveryOutcome, new_callback_id
from tests.webhooks.conftest import (
    NEW_SECRET,
    OLD_SECRET,
    ReceiverProcess,
    expired_registration,
    registration,
    signed,
)

Served = tuple[str, str, ReceiverProcess]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        yield session


async def post(
    http: aiohttp.ClientSession, served: Served, callback_id: str, body: Any, headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{served[2].url}/callbacks/{callback_id}", data=body, headers=headers) as response:
        return response.status, await response.json()


async def assert_rejected(
    http: aiohttp.ClientSession,
    served: Served,
    store: CallbackStore,
    callback_id: str,
    body: Any,
    headers: dict[str, str],
    status: int,
    reason: str,
) -> None:
    got, doc = await post(http, served, callback_id, body, headers)
    assert (got, doc["reason"]) == (status, reason)
    assert await store.delivery(callback_id) is None  # nothing stored
    assert served[2].health()["status"] == "ok"  # and the server still answers


async def fresh(store: CallbackStore, **kw: Any) -> str:
    reg = registration(**kw)
    await store.register(reg)
    return reg.callback_id


async def test_forged_signature(
    http: aiohttp.ClientSession, served: Served, served_store: CallbackStore
) -> None:
    cid = await fresh(served_store)
    body, headers = signed({"status": "succeeded"})
    headers["webhook-signature"] = "v1," + base64.b64encode(b"\x00" * 32).decode()
    await assert_rejected(http, served, served_store, cid, body, headers, 401, "no_valid_signature")
    # A valid signature of another body does not carry over either.
    _, other = signed(
        {"status": "other"}, webhook_id=headers["webhook-id"], timestamp=int(headers["webhook-timestamp"])
    )
    headers["webhook-signature"] = other["webhook-signature"]
    await assert_rejected(http, served, served_store, cid, body, headers, 401, "no_valid_signature")


async def test_wrong_secret(http: aiohttp.ClientSession, served: Served, served_store: CallbackStore) -> None:
    cid = await fresh(served_store)
    body, headers = signed({"status": "succeeded"}, FORGED_WEBHOOK_SECRET)
    await assert_rejected(http, served, served_store, cid, body, headers, 401, "no_valid_signature")
    # The secret of another registration does not open this one.
    body, headers = signed({"status": "succeeded"}, NEW_SECRET)
    await assert_rejected(http, served, served_store, cid, body, headers, 401, "no_valid_signature")


async def test_rotated_secret_old_and_new_both_valid(
    http: aiohttp.ClientSession, served: Served, served_store: CallbackStore
) -> None:
    for secret in (OLD_SECRET, NEW_SECRET):
        cid = await fresh(served_store, secret_name="rotating")
        body, headers = signed({"signed_with": secret[:10]}, secret)
        assert (await post(http, served, cid, body, headers))[0] == 202
        delivery = await served_store.delivery(cid)
        assert delivery is not None and delivery.payload == {"signed_with": secret[:10]}


@pytest.mark.parametrize(("offset", "reason"), [(-301, "stale_timestamp"), (301, "future_timestamp")])
async def test_stale_and_future_timestamps(
    http: aiohttp.ClientSession, served: Served, served_store: CallbackStore, offset: int, reason: str
) -> None:
    cid = await fresh(served_store)
    body, headers = signed({"status": "succeeded"}, timestamp=int(time.time()) + offset)
    await assert_rejected(http, served, served_store, cid, body, headers, 401, reason)


async def test_replayed_id(http: aiohttp.ClientSession, served: Served, served_store: CallbackStore) -> None:
    cid = await fresh(served_store)
    body, headers = signed({"n": 1})
    assert (await post(http, served, cid, body, headers))[0] == 202
    assert await post(http, served, cid, body, headers) == (
        200,
        {"outcome": "duplicate", "reason": "duplicate"},
    )
    # The same id re-signed over another body (a replay with a swapped payload) changes nothing.
    body2, headers2 = signed({"n": 2}, webhook_id=headers["webhook-id"])
    assert (await post(http, served, cid, body2, headers2))[0] == 200
    delivery = await served_store.delivery(cid)
    assert delivery is not None and delivery.payload == {"n": 1}
    assert served[2].health()["status"] == "ok"


async def test_oversized_body(
    http: aiohttp.ClientSession, served: Served, served_store: CallbackStore
) -> None:
    cid = await fresh(served_store)
    big = json.dumps({"blob": "x" * (1024 * 1024)}).encode()
    body, headers = signed(big)
    await assert_rejected(http, served, served_store, cid, io.BytesIO(body), headers, 413, "body_too_large")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the server stops reading at the limit
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    await assert_rejected(http, served, served_store, cid, chunks(), headers, 413, "body_too_large")


async def test_malformed_json(
    http: aiohttp.ClientSession, served: Served, served_store: CallbackStore
) -> None:
    cid = await fresh(served_store)
    body, headers = signed(b'{"status": "succeeded",')
    await assert_rejected(http, served, served_store, cid, body, headers, 400, "malformed_json")


async def test_schema_violation(
    http: aiohttp.ClientSession, served: Served, served_store: CallbackStore
) -> None:
    cid = await fresh(served_store, schema={"type": "object", "required": ["status"]})
    body, headers = signed({"state": "done"})
    await assert_rejected(http, served, served_store, cid, body, headers, 400, "schema_violation")


async def test_wrong_content_type(
    http: aiohttp.ClientSession, served: Served, served_store: CallbackStore
) -> None:
    cid = await fresh(served_store)
    body, headers = signed({"status": "succeeded"})
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    await assert_rejected(http, served, served_store, cid, body, headers, 415, "unsupported_content_type")


async def test_unknown_callback_id(
    http: aiohttp.ClientSession, served: Served, served_store: CallbackStore
) -> None:
    body, headers = signed({"status": "succeeded"})
    await assert_rejected(
        http, served, served_store, new_callback_id(), body, headers, 404, "unknown_callback"
    )


async def test_expired_callback(
    http: aiohttp.ClientSession, served: Served, served_store: CallbackStore
) -> None:
    reg = expired_registration()
    await served_store.register(reg)
    body, headers = signed({"status": "succeeded"})
    await assert_rejected(http, served, served_store, reg.callback_id, body, headers, 404, "expired_callback")
    assert await served_store.deliver(reg.callback_id, "direct", b"{}") is DeliveryOutcome.EXPIRED


async def test_audit_lines_name_ids_and_verdicts_but_no_secret_or_body(
    http: aiohttp.ClientSession, served: Served, served_store: CallbackStore
) -> None:
    cid = await fresh(served_store)
    body, headers = signed({"marker": "body-must-not-be-logged"})
    await post(http, served, cid, body, headers)
    proc = served[2]
    line = next(a for a in reversed(proc.audit_lines()) if a["callback_id"] == cid)
    assert (
        line["webhook_id"] == headers["webhook-id"]
        and line["verdict"] == "accepted"
        and line["status"] == 202
    )
    assert line["latency_ms"] > 0
    text = proc.stderr_text()
    assert "body-must-not-be-logged" not in text
    assert headers["webhook-signature"][3:] not in text
    for secret in (OLD_SECRET, NEW_SECRET):
        assert secret[6:] not in text


async def test_other_routes_and_methods_are_plain_4xx(http: aiohttp.ClientSession, served: Served) -> None:
    base = served[2].url
    for method, path, status in (
        ("GET", f"/callbacks/{new_callback_id()}", 405),
        ("POST", "/callbacks/", 404),
        ("POST", "/other", 404),
    ):
        async with http.request(method, base + path) as response:
            assert response.status == status
