"""The sandbox's trading partner (``sandbox/partner.py``): format negotiation both ways, its signed
export manifest, and ``settlement.ready`` events it sends to a running receiver, once per webhook-id."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from airflow_provider_integrations.sandbox import SandboxProcess
from airflow_provider_integrations.sandbox.partner import HANDLING_FEE, REBATE, negotiate
from airflow_provider_integrations.sandbox.webhooks import PARTNER_WEBHOOK_SECRET
from airflow_provider_integrations.webhooks import CallbackStore, Verifier
from airflow_provider_integrations.webhooks.events import event_log_for
from tests.webhooks.conftest import ReceiverProcess

Served = tuple[str, str, ReceiverProcess]
ORDERS = [
    {"order_id": f"ORD-{i}", "sku": f"SKU-{i % 3}", "quantity": str(i), "amount": f"{i * 10}.50"}
    for i in range(1, 6)
]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, "application/json"),
        ("*/*", "text/csv"),  # a tie goes to the partner's preference
        ("application/json", "application/json"),
        ("text/csv;q=0.5, application/json;q=0.9", "application/json"),
        ("text/*, application/json;q=0.1", "text/csv"),
        ("application/xml", None),
        ("text/csv;q=0, application/*;q=0.2", "application/json"),
    ],
)
def test_negotiate(accept: str | None, chosen: str | None) -> None:
    assert negotiate(accept) == chosen


def as_csv(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


async def push(http: aiohttp.ClientSession, sandbox: SandboxProcess, exchange: str, **kw: Any) -> Any:
    async with http.post(f"{sandbox.url}/partner/exchanges/{exchange}/orders", **kw) as response:
        return response.status, response.headers, await response.json()


async def test_orders_in_either_format_and_the_statement_in_the_negotiated_one(
    http: aiohttp.ClientSession, sandbox: SandboxProcess
) -> None:
    exchange = uuid.uuid4().hex[:8]
    async with http.options(f"{sandbox.url}/partner/exchanges/{exchange}/orders") as response:
        assert (response.status, response.headers["Accept-Post"]) == (204, "text/csv, application/json")
    status, headers, doc = await push(
        http, sandbox, exchange, data=b"<orders/>", headers={"Content-Type": "a/xml"}
    )
    assert (status, doc["error"], headers["Accept-Post"]) == (
        415,
        "unsupported_media_type",
        "text/csv, application/json",
    )
    status, _, doc = await push(http, sandbox, exchange, json={"orders": ORDERS})
    assert (status, doc["format"], doc["received"], doc["total"]) == (202, "application/json", 5, "152.50")
    csv_body = as_csv(ORDERS)
    status, _, doc = await push(http, sandbox, exchange, data=csv_body, headers={"Content-Type": "text/csv"})
    assert (status, doc["format"], doc["received"]) == (202, "text/csv", 5)
    status, _, doc = await push(
        http, sandbox, exchange, data="order_id\nx\n", headers={"Content-Type": "text/csv"}
    )
    assert status == 400

    url = f"{sandbox.url}/partner/exchanges/{exchange}/statement"
    async with http.get(url, headers={"Accept": "application/json"}) as response:
        assert response.headers["Vary"] == "Accept"
        statement = await response.json()
    ids = [line["order_id"] for line in statement["lines"]]
    assert ids == ["ORD-2", "ORD-3", "ORD-4", "ORD-5", f"ADJ-{exchange}"]  # ORD-1 still in transit
    assert Decimal(statement["lines"][0]["amount"]) == Decimal("20.50") + HANDLING_FEE
    expected_total = Decimal("152.50") - Decimal("10.50") + HANDLING_FEE + REBATE
    assert Decimal(statement["total"]) == expected_total
    async with http.get(url, headers={"Accept": "text/csv, application/json;q=0.5"}) as response:
        assert response.content_type == "text/csv"
        rows = list(csv.DictReader(io.StringIO(await response.text())))
        assert Decimal(response.headers["X-Statement-Total"]) == expected_total
    assert rows == statement["lines"]
    async with http.get(url, headers={"Accept": "application/xml"}) as response:
        assert (response.status, (await response.json())["supported"]) == (
            406,
            ["text/csv", "application/json"],
        )


async def test_signed_manifest_is_the_files_manifest(
    http: aiohttp.ClientSession, sandbox: SandboxProcess
) -> None:
    async with http.get(f"{sandbox.url}/partner/exports/s.zip/manifest", params={"size": "4096"}) as response:
        body = await response.read()
        headers = dict(response.headers)
    message = Verifier.from_secrets([PARTNER_WEBHOOK_SECRET]).verify(headers, body)
    assert message.webhook_id
    async with http.get(f"{sandbox.url}/files/s.zip/manifest", params={"size": "4096"}) as response:
        assert await response.json() == json.loads(body)


async def test_a_settlement_event_reaches_the_event_log_once(
    http: aiohttp.ClientSession, sandbox: SandboxProcess, served: Served, served_store: CallbackStore
) -> None:
    exchange = uuid.uuid4().hex[:8]
    assert (await push(http, sandbox, exchange, json={"orders": ORDERS}))[0] == 202
    request = {"notify_url": f"{served[2].url}/events/partner", "mode": "twice", "delay": 0.05, "size": 2048}
    async with http.post(f"{sandbox.url}/partner/exchanges/{exchange}/publish", json=request) as response:
        assert response.status == 202
        published = await response.json()
    async with http.get(
        f"{sandbox.url}/partner/jobs/{published['job_id']}", params={"wait": "20"}
    ) as response:
        view = await response.json()
    assert [a["status"] for a in view["attempts"]] == [202, 200]  # the retry was a duplicate
    async with event_log_for(served_store) as log:
        events = [
            e for e in await log.read("partner", 0, limit=1000) if e.webhook_id == published["webhook_id"]
        ]
    assert len(events) == 1 and events[0].type == "settlement.ready"
    data = events[0].payload["data"]
    assert (data["settlement_id"], data["export"], data["lines"]) == (
        published["settlement_id"],
        f"settlement-{exchange}.zip",
        5,
    )
    assert data["manifest"] == f"/partner/exports/settlement-{exchange}.zip/manifest?size=2048"
