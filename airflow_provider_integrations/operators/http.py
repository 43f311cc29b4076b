"""``HttpRequestOperator``: one call (or a paginated walk) to an ``integration_http`` API."""

from __future__ import annotations

import hashlib
import json as jsonlib
from collections.abc import Mapping, Sequence
from typing import Any

import jmespath
from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_integrations.bridge import run_sync
from airflow_provider_integrations.connections.http_config import IDEMPOTENT_METHODS, Timeouts
from airflow_provider_integrations.exceptions import ConnectionConfigError
from airflow_provider_integrations.hooks.http import IntegrationHttpHook
from airflow_provider_integrations.http.contract import validate_document
from airflow_provider_integrations.http.errors import FatalError, HttpError
from airflow_provider_integrations.http.pagination import paginator_from_spec


def idempotency_key_for(context: Context) -> str:
    """Stable across Airflow retries of one task instance, so the partner can recognise a repeat."""
    ti = context["ti"]
    raw = f"{ti.dag_id}:{ti.task_id}:{ti.run_id}:{ti.map_index}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


class HttpRequestOperator(BaseOperator):
    """Send a request through an ``integration_http`` connection and return the parsed response.

    :param endpoint: path under the connection's base URL (templated).
    :param method: HTTP method (templated).
    :param query: query parameters (templated).
    :param json: JSON body (templated).
    :param data: raw body, bytes or str (templated).
    :param headers: extra headers (templated).
    :param response_schema: JSON Schema every response document must satisfy (the API contract);
        a mismatch fails the task with the JSON path of the first violation.
    :param pagination: ``{"type": "link"|"cursor"|"offset"|"page", ...}``; the output is then the list of
        all items of all pages.
    :param response_filter: JMESPath expression applied to the output before it goes to XCom.
    :param idempotency_key: ``"auto"`` (default) sends a key derived from the task instance with
        non-idempotent methods, so retries are safe; ``None`` sends none; any other string is sent as is.
    :param timeout: total seconds for one attempt, overriding the connection's total timeout.
    :param max_xcom_bytes: fail instead of pushing a larger output to XCom.
    """

    template_fields: Sequence[str] = (
        "endpoint",
        "method",
        "query",
        "json",
        "data",
        "headers",
        "idempotency_key",
    )
    template_fields_renderers = {"json": "json", "headers": "json", "query": "json"}
    ui_color = "#dbeafe"

    def __init__(
        self,
        *,
        endpoint: str = "",
        method: str = "GET",
        integration_http_conn_id: str = IntegrationHttpHook.default_conn_name,
        query: Mapping[str, Any] | None = None,
        json: Any = None,
        data: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        response_schema: Mapping[str, Any] | None = None,
        pagination: Mapping[str, Any] | None = None,
        response_filter: str | None = None,
        idempotency_key: str | None = "auto",
        timeout: float | None = None,
        max_xcom_bytes: int = 1_048_576,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.endpoint, self.method = endpoint, method
        self.integration_http_conn_id = integration_http_conn_id
        self.query, self.json, self.data, self.headers = query, json, data, headers
        self.response_schema = response_schema
        self.pagination = pagination
        self.response_filter = response_filter
        self.idempotency_key = idempotency_key
        self.timeout = timeout
        self.max_xcom_bytes = max_xcom_bytes
        if pagination is not None:
            paginator_from_spec(pagination)  # fail at parse time, not at run time
        if response_filter is not None:
            jmespath.compile(response_filter)

    def execute(self, context: Context) -> Any:
        key = self.idempotency_key
        if key == "auto":
            key = None if self.method.upper() in IDEMPOTENT_METHODS else idempotency_key_for(context)
        hook = IntegrationHttpHook(self.integration_http_conn_id)
        try:
            output = run_sync(self._call(hook, key))
        except (FatalError, ConnectionConfigError) as exc:
            # Retrying cannot fix a 4xx, a broken contract or a bad connection: skip Airflow's retries.
            raise AirflowFailException(str(exc)) from None
        except HttpError as exc:
            raise AirflowException(f"{exc} (retries of the connection exhausted)") from None
        if self.response_filter is not None:
            output = jmespath.search(self.response_filter, output)
        size = len(jsonlib.dumps(output, default=str).encode())
        if self.do_xcom_push and size > self.max_xcom_bytes:
            raise AirflowFailException(
                f"output is {size} bytes, above max_xcom_bytes={self.max_xcom_bytes}: select fields with "
                "response_filter, raise max_xcom_bytes, or set do_xcom_push=False"
            )
        return output

    async def _call(self, hook: IntegrationHttpHook, key: str | None) -> Any:
        kwargs: dict[str, Any] = {
            "params": self.query,
            "json": self.json,
            "data": self.data,
            "headers": self.headers,
            "idempotency_key": key,
        }
        if self.timeout is not None:
            base = (await hook.aget_config()).timeouts
            kwargs["timeout"] = Timeouts(connect=base.connect, read=base.read, total=self.timeout)
        async with hook.client() as api:
            if self.pagination is None:
                response = await api.request(self.method, self.endpoint, **kwargs)
                self.log.info(
                    "%s %s -> %d in %s", response.method, response.url, response.status, response.timings
                )
                if not response.body:
                    return None
                ctype = response.headers.get("Content-Type", "")
                doc = response.json() if "json" in ctype else response.text
                if self.response_schema is not None:
                    validate_document(doc, self.response_schema, response)
                return doc
            paginator = paginator_from_spec(self.pagination)
            items: list[Any] = []
            async for page in api.paginate(paginator, self.endpoint, method=self.method, **kwargs):
                if self.response_schema is not None:
                    validate_document(page.json(), self.response_schema, page)
                items.extend(paginator.items(page))
            self.log.info(
                "%s %s: %d items from %d pages", self.method, self.endpoint, len(items), paginator.pages
            )
            return items
