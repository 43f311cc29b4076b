"""
# Request-response pattern

The simplest integration: send a request, wait for the answer, use it. Synchronous calls fit when the
partner answers within seconds; for long-running jobs use the polling or callback patterns instead.

## HTTP operators

`HttpRequestOperator` sends one request through an `integration_http` connection and pushes the parsed
answer to XCom. It covers most calls without Python code:

- `endpoint`, `method`, `query`, `headers`, `json` / `data` are templated;
- `response_schema` checks the answer against a JSON Schema (the partner's contract);
- `response_filter` (JMESPath) keeps only what downstream tasks need, and `max_xcom_bytes` stops a
  huge answer from reaching the metadata database;
- non-idempotent methods get an idempotency key derived from the task instance (`idempotency_key="auto"`),
  so a retried `POST` is recognised by the partner instead of being applied twice;
- fatal HTTP errors fail the task without Airflow retries, retriable ones (once the connection's own
  retries are exhausted) fail the try so Airflow can retry it.

`list_items`, `create_order` and `delete_order` show it; `verify_operators` checks their XComs.

## Request configuration

Base URL, authentication, default headers, timeouts and retries live in the connection; per request you
choose method, path, query, headers, body (`json=` sets `Content-Type: application/json`, `data=` sends
bytes or text as they are) and, if needed, a `timeout=` override. `request_configuration` sends a form
body and a JSON body to the sandbox's echo endpoint and checks what arrived.

## Response parsing

`hook.request()` returns a `Response`: `.status`, `.headers`, `.json()`, `.text`, `.attempts`, `.timings`
(time to first byte and total, in ms) and `.url` (secret-looking query values replaced by `***`, safe to
log). Invalid JSON raises `ResponseContractError` with an excerpt of the body, and a document that breaks
the expected schema (here: a partner release that renamed and retyped fields) raises it with the JSON
path of the violation. `response_parsing` shows each.

## Status code handling

The connection classifies every status once: 2xx/3xx are answers, 401/403 raise
`AuthenticationError`, 404/410 `NotFoundError`, other 4xx `ClientRequestError` (all fatal), 429
`RateLimitedError` and 5xx `ServerError` (retriable, retried by the connection first). Catch the typed
errors, never parse `str(exc)`. Pass `raise_for_status=False` when a status is an expected answer, such
as 404 for "does not exist yet". `status_code_handling` walks through the table.

## Content negotiation

Ask for a representation with `Accept`, say what you send with `Content-Type`, and decode the answer
according to the `Content-Type` the partner actually returned (it may ignore your `Accept`, and error
pages are often plain text). `content_negotiation` does this with a small `decode_body()` helper. Pin an
API version for every request of a connection with the `api_version_header` / `api_version` extras or
`default_headers`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow.sdk import DAG, get_current_context, task

from airflow_provider_integrations.hooks.http import IntegrationHttpHook
from airflow_provider_integrations.http.client import Response
from airflow_provider_integrations.http.contract import validate_document
from airflow_provider_integrations.http.errors import (
    AuthenticationError,
    ClientRequestError,
    HttpError,
    NotFoundError,
    RateLimitedError,
    ResponseContractError,
    ServerError,
)
from airflow_provider_integrations.operators.http import HttpRequestOperator

# The partner's documented record, as a JSON Schema.
RECORD_SCHEMA = {
    "type": "object",
    "required": ["id", "name", "amount"],
    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "amount": {"type": "number"}},
}
OFFSET_PAGE_SCHEMA = {
    "type": "object",
    "required": ["items", "total"],
    "properties": {"items": {"type": "array"}, "total": {"type": "integer"}},
}


def requests_seen(key: str) -> int:
    stats = IntegrationHttpHook("sandbox_api").request("GET", "/stats", params={"key": key}).json()
    return int(stats["key"]["requests"])


# [START howto_content_negotiation_decode]
def decode_body(response: Response) -> Any:
    """Decode by the Content-Type the partner sent, not by the one we asked for."""
    media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if media_type == "application/json" or media_type.endswith("+json"):
        return response.json()
    if media_type.startswith("text/"):
        return response.text
    return response.body


# [END howto_content_negotiation_decode]

with DAG(
    dag_id="108_05_01_request_response",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["reference", "patterns", "intermediate", "success"],
    doc_md=__doc__,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=1)},
) as dag:
    # [START howto_http_operator]
    list_items = HttpRequestOperator(
        task_id="list_items",
        integration_http_conn_id="sandbox_api",
        endpoint="/pages/offset",
        query={"offset": 0, "limit": 5},
        response_schema=OFFSET_PAGE_SCHEMA,
        response_filter="items[].{id: id, name: name}",
    )

    create_order = HttpRequestOperator(
        task_id="create_order",
        integration_http_conn_id="sandbox_api",
        method="POST",
        endpoint="/echo/orders",
        query={"source": "airflow", "run": "{{ run_id }}"},
        headers={"Accept": "application/json"},
        json={"sku": "A-1", "quantity": 2, "requested_by": "{{ dag.dag_id }}"},
        response_filter="{method: method, path: path, body: json, key: idempotency_key, query: query}",
    )

    delete_order = HttpRequestOperator(
        task_id="delete_order",
        integration_http_conn_id="sandbox_api",
        method="DELETE",
        endpoint="/status/204",
    )
    # [END howto_http_operator]

    @task
    def verify_operators(items: list[dict[str, Any]], order: dict[str, Any], deleted: Any) -> None:
        assert items == [{"id": n, "name": f"item-{n}"} for n in range(1, 6)], items

        ctx = get_current_context()
        assert order["method"] == "POST" and order["path"] == "/echo/orders", order
        assert order["query"] == {"source": "airflow", "run": ctx["run_id"]}, "templated query"
        assert order["body"] == {"sku": "A-1", "quantity": 2, "requested_by": ctx["dag"].dag_id}
        assert order["key"] and len(order["key"]) == 32, "POST gets an automatic idempotency key"

        assert deleted is None, "204 No Content pushes None"

    # [START howto_request_configuration]
    @task
    def request_configuration() -> dict[str, Any]:
        hook = IntegrationHttpHook("sandbox_api")

        form = "name=Ada+Lovelace&plan=pro"
        sent = hook.request(
            "PUT",
            "/echo/customers/42",
            params={"notify": "false"},
            data=form,
            headers={"Content-Type": "application/x-www-form-urlencoded", "X-Correlation-Id": "c-108"},
        ).json()
        assert sent["method"] == "PUT" and sent["path"] == "/echo/customers/42"
        assert sent["query"] == {"notify": "false"}
        received = {name.lower(): value for name, value in sent["headers"].items()}  # names are case-blind
        assert received["x-correlation-id"] == "c-108"
        assert sent["body_sha256"] == hashlib.sha256(form.encode()).hexdigest(), "data= is sent as is"

        posted = hook.request("POST", "/echo/customers", json={"name": "Ada"}, idempotency_key="cust-ada")
        echoed = posted.json()
        received = {name.lower(): value for name, value in echoed["headers"].items()}
        assert received["content-type"] == "application/json" and echoed["json"] == {"name": "Ada"}
        assert echoed["idempotency_key"] == "cust-ada"
        return {"form": sent["query"], "json": echoed["json"]}

    # [END howto_request_configuration]

    # [START howto_response_parsing]
    @task
    def response_parsing() -> dict[str, Any]:
        hook = IntegrationHttpHook("sandbox_api")

        response = hook.request("GET", "/drift", params={"version": 1, "token": "not-for-logs"})
        assert response.status == 200 and response.attempts == 1
        assert response.headers["Content-Type"].startswith("application/json")
        record = response.json()
        validate_document(record, RECORD_SCHEMA, response)
        assert response.text.startswith("{") and record["amount"] == 10.5
        assert response.timings.ttfb is not None and response.timings.total is not None
        assert "token=***" in response.url and "not-for-logs" not in response.url

        try:
            hook.request("GET", "/malformed").json()
        except ResponseContractError as exc:
            assert "not valid JSON" in str(exc) and exc.excerpt.startswith('{"id": 1'), exc
        else:
            raise AssertionError("a truncated body must not parse")

        drifted = hook.request("GET", "/drift", params={"version": 2})
        try:
            validate_document(drifted.json(), RECORD_SCHEMA, drifted)
        except ResponseContractError as exc:
            violation = str(exc)
            assert "$.id" in violation or "required property" in violation, violation
        else:
            raise AssertionError("a renamed field must break the contract")
        return {"record": record, "timings_ms": response.timings.as_dict(), "drift": violation}

    # [END howto_response_parsing]

    # [START howto_status_code_handling]
    @task
    def status_code_handling() -> dict[str, str]:
        hook = IntegrationHttpHook("sandbox_api")
        key = f"{get_current_context()['run_id']}:statuses"
        outcome: dict[str, str] = {}

        created = hook.request("POST", "/status/201", json={}, idempotency_key="create-1")
        outcome["201"] = f"answer {created.json()}"
        assert hook.request("GET", "/status/204").body == b""
        outcome["204"] = "answer without body"

        expected: dict[int, type[HttpError]] = {
            401: AuthenticationError,
            404: NotFoundError,
            409: ClientRequestError,
            429: RateLimitedError,
            503: ServerError,
        }
        for status, error_type in expected.items():
            try:
                hook.request("GET", f"/status/{status}", params={"key": f"{key}:{status}"})
            except HttpError as exc:
                assert type(exc) is error_type and exc.status == status, (status, exc)
                outcome[str(status)] = f"{type(exc).__name__} ({'retriable' if exc.retriable else 'fatal'})"
            else:
                raise AssertionError(f"{status} must raise")
        # Fatal statuses reach the partner once, retriable ones once per connection attempt.
        attempts = hook.get_config().retry.max_attempts
        assert requests_seen(f"{key}:404") == 1 and requests_seen(f"{key}:503") == attempts

        # When a status is an expected answer, handle it yourself.
        maybe = hook.request("GET", "/status/404", raise_for_status=False)
        customer = None if maybe.status == 404 else maybe.json()
        assert customer is None
        return outcome

    # [END howto_status_code_handling]

    # [START howto_content_negotiation]
    @task
    def content_negotiation() -> dict[str, Any]:
        hook = IntegrationHttpHook("sandbox_api")

        echoed = hook.request("GET", "/echo/report", headers={"Accept": "application/json"})
        body = decode_body(echoed)
        assert isinstance(body, dict)
        assert {k.lower(): v for k, v in body["headers"].items()}["accept"] == "application/json"

        # The partner's error pages are plain text, whatever we asked for.
        missing = hook.request(
            "GET", "/no-such-report", headers={"Accept": "application/json"}, raise_for_status=False
        )
        assert missing.status == 404 and missing.headers["Content-Type"].startswith("text/plain")
        text = decode_body(missing)
        assert isinstance(text, str) and "Not Found" in text
        return {"json_keys": sorted(body)[:3], "text": text}

    # [END howto_content_negotiation]

    verify_operators(list_items.output, create_order.output, delete_order.output)
    request_configuration()
    response_parsing()
    status_code_handling()
    content_negotiation()


if __name__ == "__main__":
    dag.test()
