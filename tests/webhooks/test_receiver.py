"""The framework-neutral receiver core, driven directly with a real SQLite store (no HTTP)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from airflow_provider_integrations.sandbox.webhooks import PARTNER_WEBHOOK_SECRET
from airflow_provider_integrations.webhooks import (
    CallbackStore,
    Receiver,
    ReceiverConfig,
    SqliteCallbackStore,
    Verifier,
    new_callback_id,
)
from airflow_provider_integrations.webhooks.server import static_resolver
from airflow_provider_integrations.webhooks.verdict import AUDIT_LOGGER
from tests.webhooks.conftest import expired_registration, registration, signed

VERIFIERS = {"partner": Verifier.from_secrets([PARTNER_WEBHOOK_SECRET])}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CallbackStore]:
    async with SqliteCallbackStore(tmp_path / "cb.db") as opened:
        yield opened


@pytest.fixture
def receiver(store: CallbackStore) -> Receiver:
    return Receiver(store, static_resolver(VERIFIERS), ReceiverConfig(max_body_bytes=1000))


async def test_accepted_then_duplicate_with_one_audit_line_each(
    receiver: Receiver, store: CallbackStore, caplog: pytest.LogCaptureFixture
) -> None:
    reg = registration()
    await store.register(reg)
    body, headers = signed({"status": "succeeded", "token": "hunter2-in-body"})
    with caplog.at_level(logging.INFO, logger=AUDIT_LOGGER):
        first = await receiver.handle(reg.callback_id, headers, body)
        again = await receiver.handle(reg.callback_id, headers, body)
    assert (first.status, first.reason, again.status, again.reason) == (202, "accepted", 200, "duplicate")
    assert json.loads(first.body) == {"outcome": "accepted", "reason": "accepted"}
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == AUDIT_LOGGER]
    assert [line["verdict"] for line in lines] == ["accepted", "duplicate"]
    assert lines[0]["callback_id"] == reg.callback_id and lines[0]["webhook_id"] == headers["webhook-id"]
    assert lines[0]["latency_ms"] > 0 and lines[0]["body_bytes"] == len(body)
    logged = caplog.text
    for secret_or_body in ("hunter2", PARTNER_WEBHOOK_SECRET[6:], headers["webhook-signature"][3:]):
        assert secret_or_body not in logged
    delivery = await store.delivery(reg.callback_id)
    assert delivery is not None and delivery.payload["token"] == "hunter2-in-body"


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/json", 202),
        ("Application/JSON; charset=utf-8", 202),
        ("application/cloudevents+json", 202),
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("", 415),
        ("text/json+json", 415),
    ],
)
async def test_content_types(
    receiver: Receiver, store: CallbackStore, content_type: str, status: int
) -> None:
    reg = registration()
    await store.register(reg)
    body, headers = signed({"a": 1})
    headers["Content-Type"] = content_type
    assert (await receiver.handle(reg.callback_id, headers, body)).status == status


async def test_size_limit_is_inclusive(receiver: Receiver, store: CallbackStore) -> None:
    reg = registration()
    await store.register(reg)
    exact = b'{"p": "' + b"x" * (1000 - 9) + b'"}'
    assert len(exact) == 1000
    over, over_headers = signed(exact + b" ")
    verdict = await receiver.handle(reg.callback_id, over_headers, over)
    assert (verdict.status, verdict.reason) == (413, "body_too_large")
    body, headers = signed(exact)
    assert (await receiver.handle(reg.callback_id, headers, body)).status == 202


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "malformed_json"),
        (b'{"x": NaN}', "malformed_json"),
        (b"\xff\xfe\x00", "malformed_json"),
        (b"[" * 5000 + b"]" * 5000, "malformed_json"),  # deeper than the parser's recursion limit
        (b'{"status": 1}', "schema_violation"),
        (b'{"other": "x"}', "schema_violation"),
    ],
)
async def test_malformed_and_schema_violations_are_400_and_store_nothing(
    receiver: Receiver, store: CallbackStore, body: bytes, reason: str
) -> None:
    schema = {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}}
    reg = registration(schema=schema)
    await store.register(reg)
    receiver.config = ReceiverConfig(max_body_bytes=100_000)
    data, headers = signed(body)
    verdict = await receiver.handle(reg.callback_id, headers, data)
    assert (verdict.status, verdict.reason) == (400, reason)
    if reason == "schema_violation":
        assert "1" not in verdict.detail.replace("status", "")  # the rule and path, not the value
    assert await store.delivery(reg.callback_id) is None


async def test_unknown_expired_and_malformed_ids_are_404(receiver: Receiver, store: CallbackStore) -> None:
    expired = expired_registration()
    await store.register(expired)
    body, headers = signed({"a": 1})
    for callback_id, reason in (
        (new_callback_id(), "unknown_callback"),
        ("../../etc/passwd", "unknown_callback"),
        ("", "unknown_callback"),
        (expired.callback_id, "expired_callback"),
    ):
        verdict = await receiver.handle(callback_id, headers, body)
        assert (verdict.status, verdict.reason) == (404, reason)


async def test_cached_registration_still_expires(store: CallbackStore) -> None:
    clock = [time.time()]
    receiver = Receiver(store, static_resolver(VERIFIERS), clock=lambda: clock[0])
    reg = registration(ttl=60)
    await store.register(reg)
    body, headers = signed({"a": 1})
    probe = signed({"a": 1}, "whsec_" + "A" * 43 + "=")[1]
    assert (await receiver.handle(reg.callback_id, probe, body)).status == 401  # caches the registration
    clock[0] += 61
    verdict = await receiver.handle(reg.callback_id, headers, body)
    assert (verdict.status, verdict.reason) == (404, "expired_callback")


async def test_secret_resolution_failures(store: CallbackStore, caplog: pytest.LogCaptureFixture) -> None:
    reg = registration(secret_name="nobody_knows")
    await store.register(reg)
    body, headers = signed({"a": 1})
    unknown = await Receiver(store, static_resolver(VERIFIERS)).handle(reg.callback_id, headers, body)
    assert (unknown.status, unknown.reason) == (401, "unknown_secret")

    async def broken(name: str) -> Verifier | None:
        raise ConnectionError("secrets backend down, token=abc123")

    down = await Receiver(store, broken).handle(reg.callback_id, headers, body)
    assert (down.status, down.reason) == (503, "secret_unavailable")
    assert "abc123" not in caplog.text
    assert await store.delivery(reg.callback_id) is None


async def test_store_failure_is_503_never_an_exception(tmp_path: Path) -> None:
    store = SqliteCallbackStore(tmp_path / "cb.db")
    async with store:
        reg = registration()
        await store.register(reg)
    receiver = Receiver(store, static_resolver(VERIFIERS))  # the store is closed now
    body, headers = signed({"a": 1})
    verdict = await receiver.handle(reg.callback_id, headers, body)
    assert (verdict.status, verdict.reason) == (503, "store_unavailable")


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="max_body_bytes"):
        ReceiverConfig(max_body_bytes=0)
    with pytest.raises(ValueError, match="tolerance"):
        ReceiverConfig(tolerance=0)
