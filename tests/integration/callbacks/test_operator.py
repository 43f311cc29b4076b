"""``WaitForCallbackOperator``: argument checks at DAG parse time, the mapping of the wait's event to the
task's outcome, and ``dag.test()`` runs against the sandbox partner and the standalone receiver."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_integrations.http.conditions import ConditionError
from airflow_provider_integrations.operators.webhooks import WaitForCallbackOperator
from airflow_provider_integrations.sandbox.connections import as_environment, example_connections
from airflow_provider_integrations.sandbox.process import SandboxProcess
from airflow_provider_integrations.triggers.webhooks import CallbackEvent
from airflow_provider_integrations.webhooks import WebhookConfigError
from tests.examples.conftest import RUNNER

DAGS = Path(__file__).resolve().parent / "dags"


def operator(**kw: Any) -> WaitForCallbackOperator:
    return WaitForCallbackOperator(task_id="wait", secret_conn_id=kw.pop("secret_conn_id", "partner"), **kw)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"secret_conn_id": "no spaces allowed"}, WebhookConfigError, r"^secret_conn_id = "),
        ({"payload_schema": {"type": "objekt"}}, WebhookConfigError, r"^payload_schema: expected a valid"),
        (
            {"failure_condition": {"jmespath": "status", "equls": 1}},
            ConditionError,
            r"^failure_condition\.equls",
        ),
        ({"wait_timeout": 0}, ValueError, r"wait_timeout must be > 0"),
    ],
)
def test_bad_arguments_fail_the_dag_import_naming_the_argument(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        operator(**kwargs)


def event(status: str, **kw: Any) -> CallbackEvent:
    base: CallbackEvent = {
        "status": "success",
        "callback_id": "c" * 43,
        "webhook_id": None,
        "payload": None,
        "received_at": None,
        "reason": "",
        "error_type": None,
        "waited": 1.0,
    }
    return {**base, "status": status, **kw}  # type: ignore[typeddict-item]


@pytest.mark.parametrize(
    ("status", "extra", "error", "match"),
    [
        (
            "failure",
            {"reason": "quota exceeded"},
            AirflowException,
            "the partner reported a failure: quota exceeded",
        ),
        ("timeout", {}, AirflowException, "no callback within 60 s; the URL has expired"),
        ("error", {"error_type": "CallbackNotFoundError", "reason": "gone"}, AirflowFailException, "gone"),
    ],
)
def test_events_map_to_task_outcomes(
    status: str, extra: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match) as caught:
        operator(wait_timeout=60).execute_complete({}, event(status, **extra))  # type: ignore[arg-type]
    # A partner failure and a timeout are retriable (a retry starts anew); an error is not.
    assert isinstance(caught.value, AirflowFailException) == (status == "error")


@pytest.fixture(scope="module")
def webhook_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with RUNNER.webhook_receiver(tmp_path_factory.mktemp("webhooks")) as env:
        yield env


@pytest.mark.slow
def test_mapped_retried_and_worker_waits_under_dag_test(
    airflow_db: Path, sandbox: SandboxProcess, webhook_env: dict[str, str]
) -> None:
    env = {**os.environ, **as_environment(example_connections(sandbox.url)), **webhook_env}
    env["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS)
    result = RUNNER.run_one(DAGS / "callback_cases.py", env)
    tail = "\n".join(result.output.splitlines()[-60:])
    assert result.status == "success", f"{result.note}\n{tail}"
    # Try 1 timed out at its own deadline; the retry then succeeded.
    assert "no callback within 2 s" in result.output, tail
