"""``BatchApiOperator``: send many items to a partner's batch endpoint, with partial-failure handling and a
checkpoint that makes an Airflow retry resume where the last try stopped."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator, Context, conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_integrations.bridge import run_sync
from airflow_provider_integrations.exceptions import ConnectionConfigError
from airflow_provider_integrations.hooks.http import IntegrationHttpHook
from airflow_provider_integrations.http.batch import BatchRun, BatchSettings, BatchSummary
from airflow_provider_integrations.http.batch_rules import BatchConfigError, FailurePolicy, ItemRules
from airflow_provider_integrations.http.batch_store import BatchStore, CheckpointError
from airflow_provider_integrations.http.errors import FatalError, HttpError
from airflow_provider_integrations.operators.http import idempotency_key_for

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def default_state_root() -> Path:
    configured = conf.get("integrations", "batch_state_dir", fallback=None)
    if configured:
        return Path(configured).expanduser()
    return Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "batch_state"


def state_directory(root: Path, context: Context) -> Path:
    """One directory per task instance, the same on every try, so a retry finds the checkpoint."""
    ti = context["ti"]
    run = hashlib.sha256(ti.run_id.encode()).hexdigest()[:8]
    map_index = ti.map_index if ti.map_index is not None else -1
    task = ti.task_id if map_index < 0 else f"{ti.task_id}.{map_index}"
    parts = (ti.dag_id, f"{_UNSAFE.sub('_', ti.run_id)}-{run}", task)
    return root.joinpath(*(_UNSAFE.sub("_", p) for p in parts))


def load_items(items: Any, items_file: str | None) -> list[Any]:
    """The input items from a literal list, an upstream task's output, a JSON string or a file."""
    if items_file:
        path = Path(items_file)
        try:
            text = path.read_text()
        except OSError as exc:
            raise BatchConfigError("items_file", f"a readable file ({exc.strerror}: {path})") from None
        if path.suffix in (".jsonl", ".ndjson"):
            loaded = []
            for number, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    try:
                        loaded.append(json.loads(line))
                    except ValueError as exc:
                        raise BatchConfigError(f"items_file line {number}", f"a JSON value ({exc})") from None
            return loaded
        try:
            items = json.loads(text)
        except ValueError as exc:
            raise BatchConfigError("items_file", f"a JSON array of items ({exc})") from None
    elif isinstance(items, str):
        try:
            items = json.loads(items)
        except ValueError:
            raise BatchConfigError("items", "a list, an XComArg or a JSON array string") from None
    if not isinstance(items, (list, tuple)):
        raise BatchConfigError("items", f"a list of items, got {type(items).__name__}")
    return list(items)


class BatchApiOperator(BaseOperator):
    """Send items in batches to an ``integration_http`` API and record every item's outcome.

    Items come from ``items`` (a list, an upstream task's output such as ``make_items()``, or a JSON
    string) or from ``items_file`` (a JSON array, or JSON Lines for ``.jsonl``/``.ndjson``). Each item is
    a JSON object with a unique id (``item_rules["item_id"]``, default ``id``). A literal list is rendered
    as a template like any templated argument (every string goes through Jinja), so pass large inputs
    through an upstream task or a file.

    :param endpoint: path of the batch endpoint (templated).
    :param method: HTTP method (default POST).
    :param query: query parameters of every request (templated).
    :param extra_body: fields sent next to the item list in every request body (templated).
    :param items_field: body key of the item list (default ``items``).
    :param batch_size: items per request.
    :param concurrency: requests in flight at once; the connection's rate limit applies on top.
    :param item_rules: where the per-item results are and what their statuses mean, see
        :class:`~airflow_provider_integrations.http.batch_rules.ItemRules`.
    :param max_attempts: attempts per item for retriable per-item results (backoff in between:
        ``retry_base_delay`` doubling up to ``retry_max_delay``, with jitter).
    :param max_failed: fail the task when more items fail than this (default 0: any failure fails it).
    :param max_failed_ratio: fail the task when a larger fraction of items fails; the tighter of the two
        applies, ``None`` for both tolerates any number.
    :param progress_interval: seconds between progress lines (done/total, rate, ETA).
    :param state_dir: root of the checkpoint directories (templated); default ``[integrations]
        batch_state_dir`` or ``$AIRFLOW_HOME/batch_state``. Use storage every worker sees when a retry may
        run on another machine.
    :param outcomes_path: the JSONL file of item outcomes (templated); default ``outcomes.jsonl`` in the
        task instance's state directory.
    :param resume: ``False`` discards the checkpoint and outcomes of earlier tries and sends everything
        again (with ``idempotency_key="auto"`` under keys that include the try number).
    :param idempotency_key: ``"auto"`` derives a key prefix from the task instance (the same on every
        try), so a partner that honours ``Idempotency-Key`` applies a re-sent request once; ``None``
        sends none (the connection then does not repeat a failed POST by itself); any other string is
        used as the prefix.

    The summary (:class:`~airflow_provider_integrations.http.batch.BatchSummary`) is the task's return
    value; it is also pushed under the XCom key ``summary`` before a policy violation fails the task.
    """

    template_fields: Sequence[str] = (
        "endpoint",
        "items",
        "items_file",
        "query",
        "extra_body",
        "state_dir",
        "outcomes_path",
        "idempotency_key",
    )
    template_fields_renderers = {"query": "json", "extra_body": "json"}
    ui_color = "#e0e7ff"

    def __init__(
        self,
        *,
        endpoint: str,
        items: Any = None,
        items_file: str | None = None,
        integration_http_conn_id: str = IntegrationHttpHook.default_conn_name,
        method: str = "POST",
        query: Mapping[str, Any] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        items_field: str = "items",
        batch_size: int = 100,
        concurrency: int = 4,
        item_rules: Mapping[str, Any] | None = None,
        max_attempts: int = 3,
        retry_base_delay: float = 0.5,
        retry_max_delay: float = 30.0,
        max_failed: int | None = 0,
        max_failed_ratio: float | None = None,
        progress_interval: float = 30.0,
        state_dir: str | None = None,
        outcomes_path: str | None = None,
        resume: bool = True,
        idempotency_key: str | None = "auto",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (items is None) == (items_file is None):
            raise BatchConfigError("items", "exactly one of items or items_file")
        self.endpoint, self.method = endpoint, method
        self.items, self.items_file = items, items_file
        self.integration_http_conn_id = integration_http_conn_id
        self.query, self.extra_body, self.items_field = query, extra_body, items_field
        self.batch_size, self.concurrency = batch_size, concurrency
        self.item_rules = item_rules
        self.max_attempts = max_attempts
        self.retry_base_delay, self.retry_max_delay = retry_base_delay, retry_max_delay
        self.max_failed, self.max_failed_ratio = max_failed, max_failed_ratio
        self.progress_interval = progress_interval
        self.state_dir, self.outcomes_path = state_dir, outcomes_path
        self.resume = resume
        self.idempotency_key = idempotency_key
        # Fail at parse time, not on a worker: everything not templated is checked here.
        self._rules = ItemRules.from_mapping(item_rules)
        self._policy = FailurePolicy(max_failed, max_failed_ratio)
        self._settings("", None, None)

    def _settings(self, endpoint: str, prefix: str | None, extra_body: Any) -> BatchSettings:
        return BatchSettings(
            endpoint=endpoint,
            method=self.method.upper(),
            batch_size=self.batch_size,
            concurrency=self.concurrency,
            items_field=self.items_field,
            extra_body=extra_body,
            query=self.query,
            max_attempts=self.max_attempts,
            retry_base_delay=self.retry_base_delay,
            retry_max_delay=self.retry_max_delay,
            progress_interval=self.progress_interval,
            idempotency_prefix=prefix,
        )

    def execute(self, context: Context) -> BatchSummary:
        prefix = self.idempotency_key
        if prefix == "auto":
            prefix = idempotency_key_for(context)
            if not self.resume:
                # A fresh start is new requests: with the same keys the partner would replay old answers.
                prefix += f"-try{context['ti'].try_number}"
        directory = state_directory(Path(self.state_dir) if self.state_dir else default_state_root(), context)
        store = BatchStore(self.outcomes_path or directory / "outcomes.jsonl", directory / "checkpoint")
        hook = IntegrationHttpHook(self.integration_http_conn_id)
        try:
            items = load_items(self.items, self.items_file)
            settings = self._settings(self.endpoint, prefix, self.extra_body)
            self.log.info(
                "Sending %d items to %s in batches of %d, concurrency %d; checkpoint in %s",
                len(items),
                self.endpoint,
                settings.batch_size,
                settings.concurrency,
                directory,
            )
            summary = run_sync(self._run(hook, items, settings, store))
        except (FatalError, ConnectionConfigError, BatchConfigError, CheckpointError) as exc:
            # Retrying cannot fix bad input, a foreign checkpoint or a rejected credential.
            raise AirflowFailException(str(exc)) from None
        except HttpError as exc:
            raise AirflowException(f"{exc} (retries of the connection exhausted)") from None
        context["ti"].xcom_push(key="summary", value=summary)
        self.log.info(
            "%d items: %d succeeded, %d failed (%d permanently, %d after all attempts), %d not sent; "
            "%d requests, %d batches resumed; outcomes in %s",
            summary["total"],
            summary["succeeded"],
            summary["failed"],
            summary["failed_permanent"],
            summary["failed_retriable"],
            summary["not_sent"],
            summary["requests"],
            summary["batches_resumed"],
            summary["outcomes_path"],
        )
        if summary["policy_violated"]:
            raise AirflowFailException(
                f"{summary['failed']} of {summary['total']} items failed ({summary['failed_permanent']} "
                f"permanently, {summary['failed_retriable']} after {self.max_attempts} attempts) and "
                f"{summary['not_sent']} were not sent; the policy allows {summary['policy']}. "
                f"Most frequent reasons: {summary['failure_reasons']}. Outcomes: {summary['outcomes_path']}"
            )
        return summary

    async def _run(
        self, hook: IntegrationHttpHook, items: list[Any], settings: BatchSettings, store: BatchStore
    ) -> BatchSummary:
        async with hook.client() as api:
            run = BatchRun(api, items, settings, store, rules=self._rules, policy=self._policy, log=self.log)
            return await run.run(fresh=not self.resume)
