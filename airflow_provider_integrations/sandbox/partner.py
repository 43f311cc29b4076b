"""A B2B trading partner for exchange examples: format negotiation both ways, settlements announced by
signed webhook events, and signed export manifests.

- ``OPTIONS /partner/exchanges/{exchange}/orders``: 204 with ``Accept-Post: text/csv, application/json``
  (the partner's preference first).
- ``POST /partner/exchanges/{exchange}/orders``: our orders as ``text/csv`` (header
  ``order_id,sku,quantity,amount``) or ``application/json`` (``{"orders": [...]}``); 415 with
  ``Accept-Post`` for anything else, 400 for a malformed body. 202 ``{"exchange", "format", "received",
  "total"}``. A later post replaces the exchange's orders.
- ``GET /partner/exchanges/{exchange}/statement``: what the partner settles, as ``text/csv`` or
  ``application/json`` chosen from ``Accept`` (q-values and wildcards honoured; JSON without ``Accept``),
  ``Vary: Accept``; 406 ``{"error": "not_acceptable", "supported": [...]}`` when neither is acceptable;
  404 before any orders. Like a real partner's, it differs from what it received: the first order is
  missing (:data:`IN_TRANSIT`), the second carries a handling fee (:data:`HANDLING_FEE`), and a rebate
  line ``ADJ-<exchange>`` (:data:`REBATE`) is added. CSV answers carry ``X-Statement-Total``.
- ``POST /partner/exchanges/{exchange}/publish`` ``{"notify_url", "size": N, "mode": "normal"|"twice",
  "delay": s}``: 202 ``{"job_id", "webhook_id", "settlement_id", "export"}``; after ``delay`` the partner
  POSTs a ``settlement.ready`` event to ``notify_url``, signed like the callbacks of ``webhooks.py``
  (``twice``: the same ``webhook-id`` again, as a retry). ``GET /partner/jobs/{job_id}`` shows the attempts.
- ``GET /partner/exports/{name}/manifest?size=N``: the ``/files`` manifest of the export (name, size,
  sha256, etag...), with ``webhook-id``/``webhook-timestamp``/``webhook-signature`` headers over its body,
  so a downloader can check that the checksum really comes from the partner.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from airflow_provider_integrations.sandbox import files
from airflow_provider_integrations.sandbox.params import bad_request, json_error
from airflow_provider_integrations.sandbox.webhooks import PARTNER_KEY, PARTNER_SIGNER, PartnerJob, start_job

CSV, JSON = "text/csv", "application/json"
#: Request and response formats, the partner's preference first.
FORMATS = (CSV, JSON)
COLUMNS = ("order_id", "sku", "quantity", "amount")
IN_TRANSIT = 0  # index of the order the statement leaves out
HANDLING_FEE = Decimal("0.35")
REBATE = Decimal("-12.50")
MAX_ORDERS = 10_000
MAX_EXCHANGES = 1_000


@dataclass
class ExchangeState:
    orders: dict[str, list[dict[str, str]]] = field(default_factory=dict)


EXCHANGE_KEY = web.AppKey("partner_exchange_state", ExchangeState)


@dataclass
class SettlementJob(PartnerJob):
    """A partner job whose message is a ``settlement.ready`` event instead of a job result."""

    event: dict[str, Any] = field(default_factory=dict)

    def message(self) -> bytes:
        return json.dumps(self.event).encode()


def negotiate(accept: str | None, offered: tuple[str, ...] = FORMATS) -> str | None:
    """The offered type ``accept`` ranks highest (ties: the partner's order); ``None``: none acceptable."""
    if not accept or not accept.strip():
        return JSON
    ranges: list[tuple[str, float]] = []
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        ranges.append((media.lower(), q))

    def quality(media_type: str) -> float:
        main = media_type.split("/", maxsplit=1)[0]
        # The most specific range decides: type/subtype, then type/*, then */*.
        for pattern in (media_type, f"{main}/*", "*/*"):
            found = [q for media, q in ranges if media == pattern]
            if found:
                return max(found)
        return 0.0

    best = max(offered, key=lambda m: (quality(m), -offered.index(m)))
    return best if quality(best) > 0 else None


def _amount(raw: Any, where: str) -> Decimal:
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise bad_request(f"{where}: amount must be a decimal number, got {raw!r}") from None
    if not value.is_finite():
        raise bad_request(f"{where}: amount must be finite")
    return value.quantize(Decimal("0.01"))


def _clean(rows: list[Any]) -> list[dict[str, str]]:
    if len(rows) > MAX_ORDERS:
        raise bad_request(f"at most {MAX_ORDERS} orders per exchange")
    orders = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or set(COLUMNS) - set(row):
            raise bad_request(f"order {i}: expected the fields {list(COLUMNS)}")
        quantity = str(row["quantity"]).strip()
        if not quantity.isdigit():
            raise bad_request(f"order {i}: quantity must be a non-negative integer")
        orders.append(
            {
                "order_id": str(row["order_id"]),
                "sku": str(row["sku"]),
                "quantity": quantity,
                "amount": str(_amount(row["amount"], f"order {i}")),
            }
        )
    return orders


def _total(lines: list[dict[str, str]]) -> str:
    return str(sum((Decimal(line["amount"]) for line in lines), Decimal("0.00")))


async def accepted_formats(request: web.Request) -> web.Response:
    return web.Response(status=204, headers={"Accept-Post": ", ".join(FORMATS), "Allow": "OPTIONS, POST"})


async def receive_orders(request: web.Request) -> web.Response:
    exchange = request.match_info["exchange"]
    media_type = request.content_type.lower()
    raw = await request.read()
    if media_type == CSV:
        try:
            rows: list[Any] = list(csv.DictReader(io.StringIO(raw.decode("utf-8"))))
        except (UnicodeDecodeError, csv.Error):
            raise bad_request("the body must be UTF-8 CSV with a header line") from None
    elif media_type == JSON:
        try:
            doc = json.loads(raw)
        except ValueError:
            raise bad_request("the body must be JSON") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("orders"), list):
            raise bad_request('expected {"orders": [...]}')
        rows = doc["orders"]
    else:
        return json_error(
            415,
            "unsupported_media_type",
            f"send one of {list(FORMATS)}",
            headers={"Accept-Post": ", ".join(FORMATS)},
        )
    orders = _clean(rows)
    state = request.app[EXCHANGE_KEY]
    if len(state.orders) >= MAX_EXCHANGES and exchange not in state.orders:
        del state.orders[next(iter(state.orders))]
    state.orders[exchange] = orders
    body = {"exchange": exchange, "format": media_type, "received": len(orders), "total": _total(orders)}
    return web.json_response(body, status=202)


def statement_lines(exchange: str, orders: list[dict[str, str]]) -> list[dict[str, str]]:
    """What the partner settles for ``orders`` (see the module docstring for the deliberate deviations)."""
    lines = [dict(order) for i, order in enumerate(orders) if i != IN_TRANSIT]
    if len(orders) > 1:
        fee = lines[0]
        fee["amount"] = str(Decimal(fee["amount"]) + HANDLING_FEE)
    lines.append({"order_id": f"ADJ-{exchange}", "sku": "REBATE", "quantity": "1", "amount": str(REBATE)})
    return lines


async def statement(request: web.Request) -> web.Response:
    exchange = request.match_info["exchange"]
    orders = request.app[EXCHANGE_KEY].orders.get(exchange)
    if orders is None:
        return json_error(404, "unknown_exchange", "no orders were received for this exchange")
    chosen = negotiate(request.headers.get("Accept"))
    if chosen is None:
        return json_error(406, "not_acceptable", "no acceptable representation", supported=list(FORMATS))
    lines = statement_lines(exchange, orders)
    headers = {"Vary": "Accept"}
    if chosen == JSON:
        body = {"exchange": exchange, "currency": "EUR", "lines": lines, "total": _total(lines)}
        return web.json_response(body, headers=headers)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(lines)
    headers["X-Statement-Total"] = _total(lines)
    return web.Response(text=out.getvalue(), content_type=CSV, headers=headers)


async def publish(request: web.Request) -> web.Response:
    exchange = request.match_info["exchange"]
    orders = request.app[EXCHANGE_KEY].orders.get(exchange)
    if orders is None:
        return json_error(404, "unknown_exchange", "no orders were received for this exchange")
    try:
        doc = await request.json()
    except ValueError:
        raise bad_request("the body must be JSON") from None
    notify_url = doc.get("notify_url") if isinstance(doc, dict) else None
    if not isinstance(notify_url, str) or not notify_url.startswith(("http://", "https://")):
        raise bad_request('"notify_url" must be an http(s) URL')
    mode = doc.get("mode", "normal")
    if mode not in ("normal", "twice"):
        raise bad_request('"mode" must be "normal" or "twice"')
    size, delay = doc.get("size", 1024 * 1024), doc.get("delay", 0.2)
    if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= 64 * 1024 * 1024:
        raise bad_request('"size" must be a number of bytes up to 64 MiB')
    if not isinstance(delay, (int, float)) or isinstance(delay, bool) or not 0 <= delay <= 60:
        raise bad_request('"delay" must be a number of seconds up to 60')
    settlement_id = f"stl_{uuid.uuid4().hex[:12]}"
    export = f"settlement-{exchange}.zip"
    lines = statement_lines(exchange, orders)
    event = {
        "type": "settlement.ready",
        "timestamp": datetime.now(timezone.utc).isoformat(),
        "data": {
            "exchange": exchange,
            "settlement_id": settlement_id,
            "export": export,
            "size": size,
            "manifest": f"/partner/exports/{export}/manifest?size={size}",
            "download": f"/files/{export}?size={size}",
            "lines": len(lines),
            "total": _total(lines),
        },
    }
    job = SettlementJob(uuid.uuid4().hex, notify_url, mode, float(delay), None, event=event)
    start_job(request.app[PARTNER_KEY], job)
    body = {
        "job_id": job.job_id,
        "webhook_id": job.webhook_id,
        "settlement_id": settlement_id,
        "export": export,
    }
    return web.json_response(body, status=202)


async def signed_manifest(request: web.Request) -> web.Response:
    # The /files manifest itself, so checksum and ETag are the ones the download will see.
    response = await files.manifest(request)
    assert isinstance(response.body, bytes)
    response.headers.update(PARTNER_SIGNER.headers(response.body))
    return response


def register(app: web.Application) -> None:
    app[EXCHANGE_KEY] = ExchangeState()
    app.router.add_route("OPTIONS", "/partner/exchanges/{exchange}/orders", accepted_formats)
    app.router.add_post("/partner/exchanges/{exchange}/orders", receive_orders)
    app.router.add_get("/partner/exchanges/{exchange}/statement", statement)
    app.router.add_post("/partner/exchanges/{exchange}/publish", publish)
    app.router.add_get("/partner/exports/{name}/manifest", signed_manifest)
