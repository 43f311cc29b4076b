"""
# Partner data exchange

A B2B exchange with a distributor, one settlement cycle per run: we send our orders, the partner settles
them on its side and announces the settlement with a signed webhook event, we fetch the settlement file
and statement, reconcile them against our books, and check every step against the partner's SLA. The
sandbox plays the partner (`sandbox/partner.py`); the standalone webhook receiver that `run_examples.py`
starts plays our DMZ endpoint.

## Partner API integration and format negotiation

Formats are negotiated in both directions instead of hard-coded. `push_orders` asks the partner which
request bodies it takes (`OPTIONS` answers `Accept-Post: text/csv, application/json`) and sends the first
one we also speak: CSV, less than half the size of the same 40 orders as JSON. `fetch_statement` states
what it can read, in order of preference (`Accept: text/csv, application/json;q=0.5`), and parses by the
`Content-Type` that came back. An `Accept` the partner cannot serve gets 406 with the supported list,
which the task shows first: a partner that drops CSV one day fails loudly, not with a parse error.

## Partner notifications: webhook events

The partner announces each settlement with a `settlement.ready` event, signed Standard Webhooks style,
posted to `{webhook_base_url}/events/partner_webhook` (the source is named like the partner's signing
connection). The receiver verifies it, answers 202 only once it is stored in the event log, and answers
the partner's retry of the same `webhook-id` with 200: this run asks the partner to send every
notification twice, and the settlement still arrives once. In production the **`PARTNER_SETTLEMENTS`
asset's `AssetWatcher`** turns each such event into an asset event that starts the DAGs scheduled on it
(`schedule=[PARTNER_SETTLEMENTS]`), with the event in `triggering_asset_events[...].extra["payload"]`.
`dag.test()` runs no watchers, so `await_settlement` runs the same trigger code inline
(`WebhookEventTrigger.run()`, narrowed to this run's settlement id by a condition) and times it.

## Secure file exchange

The settlement file comes with a manifest (size, SHA-256, ETag) that the partner signs with the same key
as its webhooks. `download_settlement` verifies that signature with the keys of the `partner_webhook`
connection before trusting the checksum, then streams the file with `IntegrationHttpHook.download`,
which writes to a `.part` file and renames it only once size and SHA-256 match the signed manifest.

## SLA monitoring

Each step measures what the partner's SLA promises: order intake and statement latency, the time from
our settlement request to its notification, and the download. `sla_report` prints measured against
promised and fails the run on a breach, naming the step.

## Reconciliation

`reconcile` compares the partner's statement with our ledger line by line and by total, and reports
every difference: orders the partner has not settled, amounts that differ, and lines we never sent. The
totals gap must equal the sum of the reported differences, so nothing goes unexplained. The sandbox
partner leaves one order in transit, adds a handling fee to another and books a volume rebate: three
differences, found and explained.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import shutil
import tempfile
import time
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Asset, AssetWatcher, get_current_context, task

from airflow_provider_integrations.hooks.http import IntegrationHttpHook
from airflow_provider_integrations.hooks.webhook_events import event_url
from airflow_provider_integrations.hooks.webhooks import WebhookHook
from airflow_provider_integrations.triggers.webhook_events import WebhookEventTrigger

API = "sandbox_api"
PARTNER = "partner_webhook"  # the partner's signing connection, and the source of its events
ORDERS, EXPORT_SIZE = 40, 4_000_000
COLUMNS = ["order_id", "sku", "quantity", "amount"]
#: What the partner promises, in seconds (generous: the demo shares two CPUs with Airflow).
SLA = {"order_intake": 5.0, "statement": 5.0, "notification": 20.0, "download": 20.0}

# [START howto_webhook_event_asset_watcher]
PARTNER_SETTLEMENTS = Asset(
    name="partner_settlements",
    uri="sandbox://partner/settlements",
    watchers=[
        AssetWatcher(
            name="partner_settlement_ready",
            trigger=WebhookEventTrigger(source=PARTNER, event_types=["settlement.ready"]),
        )
    ],
)
# [END howto_webhook_event_asset_watcher]


def exchange_id() -> str:
    return hashlib.sha1(get_current_context()["run_id"].encode()).hexdigest()[:10]


def run_folder() -> Path:
    folder = Path(tempfile.gettempdir()) / f"partner_exchange_{exchange_id()}"
    folder.mkdir(exist_ok=True)
    return folder


def as_csv(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def total(rows: list[dict[str, str]]) -> Decimal:
    return sum((Decimal(r["amount"]) for r in rows), Decimal("0.00"))


with DAG(
    dag_id="108_10_05_partner_exchange",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["reference", "real-world", "intermediate", "success"],
    doc_md=__doc__,
) as dag:

    @task
    def our_ledger() -> list[dict[str, str]]:
        """Stand-in for our order system: this cycle's orders, amounts as decimal strings."""
        seed = int(exchange_id(), 16)
        return [
            {
                "order_id": f"ORD-{exchange_id()}-{i:03d}",
                "sku": f"SKU-{(seed + i) % 7}",
                "quantity": str(1 + (seed + i) % 5),
                "amount": str(Decimal(100 + (seed * i) % 9000) / 4),
            }
            for i in range(1, ORDERS + 1)
        ]

    # [START howto_negotiate_request_format]
    @task
    def push_orders(ledger: list[dict[str, str]]) -> dict[str, Any]:
        hook, exchange = IntegrationHttpHook(API), exchange_id()
        path = f"/partner/exchanges/{exchange}/orders"
        offered = [t.strip() for t in hook.request("OPTIONS", path).headers["Accept-Post"].split(",")]
        ours = {
            "text/csv": lambda: as_csv(ledger),
            "application/json": lambda: json.dumps({"orders": ledger}),
        }
        chosen = next((media for media in offered if media in ours), None)
        assert chosen is not None, f"the partner takes only {offered}; we send {list(ours)}"
        body = ours[chosen]()
        started = time.perf_counter()
        answer = hook.request("POST", path, data=body, headers={"Content-Type": chosen}).json()
        seconds = time.perf_counter() - started
        assert answer["received"] == len(ledger) and Decimal(answer["total"]) == total(ledger), answer
        print(f"sent {len(ledger)} orders as {chosen} ({len(body):,} bytes); the partner confirmed {answer}")
        return {"exchange": exchange, "format": chosen, "bytes": len(body), "seconds": seconds}

    # [END howto_negotiate_request_format]

    # [START howto_partner_notification_event]
    @task
    def request_settlement(pushed: dict[str, Any]) -> dict[str, Any]:
        """Ask the partner to settle now and notify us; it sends the notification twice (a retry)."""
        notify = event_url(PARTNER)  # {webhook_base_url}/events/partner_webhook
        body = {"notify_url": notify, "mode": "twice", "delay": 0.2, "size": EXPORT_SIZE}
        answer = IntegrationHttpHook(API).request(
            "POST", f"/partner/exchanges/{pushed['exchange']}/publish", json=body
        )
        return {**answer.json(), "requested_at": time.time()}

    @task
    def await_settlement(requested: dict[str, Any]) -> dict[str, Any]:
        # The watcher's trigger, narrowed to this settlement; the triggerer would run it the same way.
        trigger = WebhookEventTrigger(
            source=PARTNER,
            event_types=["settlement.ready"],
            condition={"jmespath": "data.settlement_id", "equals": requested["settlement_id"]},
            consumer=f"exchange-{requested['settlement_id']}",
        )

        async def first_event() -> dict[str, Any]:
            events = trigger.run()
            try:
                event = await asyncio.wait_for(anext(events), SLA["notification"])
            finally:
                await events.aclose()
            return dict(event.payload)

        notice = asyncio.run(first_event())
        latency = datetime.fromisoformat(notice["received_at"]).timestamp() - requested["requested_at"]
        job = IntegrationHttpHook(API).request(
            "GET", f"/partner/jobs/{requested['job_id']}", params={"wait": 10}
        )
        deliveries = [attempt["status"] for attempt in job.json()["attempts"]]
        assert deliveries == [202, 200], f"the retry must be answered as a duplicate: {deliveries}"
        print(
            f"settlement {notice['payload']['data']} announced in {latency:.2f} s (deliveries {deliveries})"
        )
        return {**notice["payload"]["data"], "event_id": notice["event_id"], "seconds": latency}

    # [END howto_partner_notification_event]

    # [START howto_signed_download]
    @task
    def download_settlement(notice: dict[str, Any]) -> dict[str, Any]:
        hook, name, size = IntegrationHttpHook(API), notice["export"], notice["size"]
        manifest = hook.request("GET", f"/partner/exports/{name}/manifest", params={"size": size})
        # Only a manifest signed with the partner's key vouches for the checksum.
        verifier = asyncio.run(WebhookHook().averifier(PARTNER))
        assert verifier is not None, f"connection {PARTNER!r} holds no webhook key"
        verifier.verify(manifest.headers, manifest.body)
        expected = manifest.json()
        result = hook.download(
            f"/files/{name}",
            run_folder() / name,
            params={"size": size},
            checksum=f"sha256:{expected['sha256']}",
            expected_size=expected["size"],
        )
        assert (
            result.digest == f"sha256:{expected['sha256']}" and not (run_folder() / f"{name}.part").exists()
        )
        print(f"{name}: {result.size:,} bytes, {result.digest}, signed manifest verified")
        return result.as_dict()

    # [END howto_signed_download]

    # [START howto_negotiate_response_format]
    @task
    def fetch_statement(pushed: dict[str, Any]) -> dict[str, Any]:
        hook = IntegrationHttpHook(API)
        path = f"/partner/exchanges/{pushed['exchange']}/statement"
        refused = hook.request("GET", path, headers={"Accept": "application/xml"}, raise_for_status=False)
        assert refused.status == 406, refused.status
        print(f"application/xml is not offered; the partner supports {refused.json()['supported']}")
        started = time.perf_counter()
        response = hook.request("GET", path, headers={"Accept": "text/csv, application/json;q=0.5"})
        seconds = time.perf_counter() - started
        media_type = response.headers["Content-Type"].split(";")[0].strip()
        if media_type == "text/csv":
            lines = list(csv.DictReader(io.StringIO(response.text)))
            declared = Decimal(response.headers["X-Statement-Total"])
        elif media_type == "application/json":
            doc = response.json()
            lines, declared = doc["lines"], Decimal(doc["total"])
        else:
            raise ValueError(f"the partner answered {media_type}, which we did not ask for")
        assert total(lines) == declared, f"the statement's lines add up to {total(lines)}, not {declared}"
        return {"format": media_type, "lines": lines, "total": str(declared), "seconds": seconds}

    # [END howto_negotiate_response_format]

    # [START howto_reconcile]
    @task
    def reconcile(ledger: list[dict[str, str]], statement: dict[str, Any]) -> dict[str, Any]:
        ours = {r["order_id"]: Decimal(r["amount"]) for r in ledger}
        theirs = {r["order_id"]: Decimal(r["amount"]) for r in statement["lines"]}
        differences = (
            [{"order_id": o, "kind": "not settled", "delta": str(-ours[o])} for o in ours if o not in theirs]
            + [
                {"order_id": o, "kind": "amount differs", "delta": str(theirs[o] - ours[o])}
                for o in ours
                if o in theirs and theirs[o] != ours[o]
            ]
            + [{"order_id": o, "kind": "not ours", "delta": str(theirs[o])} for o in theirs if o not in ours]
        )
        gap = Decimal(statement["total"]) - total(ledger)
        explained = sum((Decimal(d["delta"]) for d in differences), Decimal("0.00"))
        for d in differences:
            print(f"  {d['order_id']:<24} {d['kind']:<15} {Decimal(d['delta']):>10}")
        print(f"ours {total(ledger)}, partner {statement['total']}: gap {gap}, explained {explained}")
        assert gap == explained, "every cent of the gap is explained by a listed difference"
        kinds = sorted(d["kind"] for d in differences)
        assert kinds == ["amount differs", "not ours", "not settled"], kinds  # the sandbox's deviations
        matched = sum(1 for o in ours if theirs.get(o) == ours[o])
        return {"matched": matched, "differences": differences, "gap": str(gap)}

    # [END howto_reconcile]

    # [START howto_sla_report]
    @task
    def sla_report(
        pushed: dict[str, Any], notice: dict[str, Any], download: dict[str, Any], statement: dict[str, Any]
    ) -> dict[str, Any]:
        measured = {
            "order_intake": pushed["seconds"],
            "statement": statement["seconds"],
            "notification": notice["seconds"],
            "download": download["seconds"],
        }
        breaches = [step for step, seconds in measured.items() if seconds > SLA[step]]
        for step, seconds in measured.items():
            flag = "  BREACH" if step in breaches else ""
            print(f"  {step:<14} {seconds:7.2f} s  (SLA {SLA[step]:.0f} s){flag}")
        assert not breaches, f"SLA breached: {breaches}"
        return {"measured": measured, "sla": SLA}

    # [END howto_sla_report]

    @task
    def make_folder() -> str:
        return str(run_folder())

    @task
    def remove_folder(folder: str) -> None:
        shutil.rmtree(folder, ignore_errors=True)

    folder = make_folder()
    ledger = our_ledger()
    pushed = push_orders(ledger)
    notice = await_settlement(request_settlement(pushed))
    downloaded = download_settlement(notice)
    statement = fetch_statement(pushed)
    reconciled = reconcile(ledger, statement)
    report = sla_report(pushed, notice, downloaded, statement)
    folder >> downloaded
    [reconciled, report] >> remove_folder(folder).as_teardown(setups=folder)


if __name__ == "__main__":
    dag.test()
