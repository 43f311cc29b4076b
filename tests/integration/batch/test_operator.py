"""BatchApiOperator.execute() against the sandbox: inputs, XCom summary, policy failures, resume."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_integrations.http.batch_rules import BatchConfigError
from airflow_provider_integrations.operators.batch import BatchApiOperator, state_directory
from airflow_provider_integrations.operators.http import idempotency_key_for
from airflow_provider_integrations.sandbox.process import SandboxProcess
from tests.conftest import ConnFactory
from tests.integration.batch.conftest import read_outcomes

Stats = Callable[..., dict[str, Any]]


class FakeTI:
    def __init__(
        self, run_id: str = "manual__2025-01-01T00:00:00+00:00", map_index: int = -1, try_number: int = 1
    ) -> None:
        self.dag_id, self.task_id, self.run_id, self.map_index = "dag", "send", run_id, map_index
        self.try_number = try_number
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def ctx(ti: FakeTI) -> Any:
    """A task context with just the task instance (all the operator reads)."""
    return {"ti": ti}


@pytest.fixture
def conn(http_connection: ConnFactory, sandbox: SandboxProcess) -> str:
    return http_connection(
        f"batch_{uuid.uuid4().hex[:8]}", sandbox.url, retry_base_delay=0.01, circuit_failure_threshold=0
    )


def operator(conn: str, tmp_path: Path, **kwargs: Any) -> BatchApiOperator:
    values: dict[str, Any] = {
        "task_id": "send",
        "integration_http_conn_id": conn,
        "endpoint": "/batch",
        "state_dir": str(tmp_path),
        "batch_size": 10,
        "retry_base_delay": 0.01,
        "retry_max_delay": 0.02,
        **kwargs,
    }
    return BatchApiOperator(**values)


def items(n: int) -> list[dict[str, Any]]:
    return [{"id": f"o-{i}", "amount": i} for i in range(n)]


def test_a_retry_resumes_and_sends_nothing_again(
    conn: str, tmp_path: Path, key: str, batch_stats: Stats
) -> None:
    ti = FakeTI()
    op = operator(conn, tmp_path, items=items(50), query={"key": key, "transient": 0.2})
    summary = op.execute(ctx(ti))
    assert (summary["succeeded"], summary["failed"], summary["batches"]) == (50, 0, 5)
    assert ti.xcom["summary"] == summary
    directory = state_directory(tmp_path, ctx(ti))
    assert summary["outcomes_path"] == str(directory / "outcomes.jsonl")
    assert len(read_outcomes(directory / "outcomes.jsonl")) == 50
    sent = batch_stats(key, detail=True)
    prefix = idempotency_key_for(ctx(ti))
    assert all(k.startswith(f"{prefix}-") for k in sent["sends"]), "auto keys are derived from the TI"

    again = op.execute(ctx(FakeTI()))
    assert again["batches_resumed"] == 5 and again["requests"] == 0 and again["succeeded"] == 50
    assert batch_stats(key)["requests"] == sent["requests"]

    fresh = operator(conn, tmp_path, items=items(50), query={"key": key}, resume=False)
    summary = fresh.execute(ctx(FakeTI(try_number=2)))
    assert summary["requests"] == 5 and summary["batches_resumed"] == 0
    resent = batch_stats(key, detail=True)
    assert resent["duplicates"] == 50, "a fresh start sends every item again, under new keys"
    assert all(k.startswith(f"{prefix}-try2-") for k in set(resent["sends"]) - set(sent["sends"]))


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_items_from_a_file(conn: str, tmp_path: Path, key: str, suffix: str) -> None:
    path = tmp_path / f"items{suffix}"
    data = items(25)
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(i) + "\n" for i in data) + "\n")
    else:
        path.write_text(json.dumps(data))
    op = operator(
        conn, tmp_path, items_file=str(path), query={"key": key}, outcomes_path=str(tmp_path / "o.jsonl")
    )
    summary = op.execute(ctx(FakeTI()))
    assert summary["succeeded"] == 25 and summary["outcomes_path"] == str(tmp_path / "o.jsonl")
    assert [o["id"] for o in read_outcomes(tmp_path / "o.jsonl")] == [i["id"] for i in data]


def test_policy_violation_fails_with_the_counts(conn: str, tmp_path: Path, key: str) -> None:
    ti = FakeTI()
    op = operator(
        conn,
        tmp_path,
        items=items(100),
        query={"key": key, "permanent": 1.0},
        max_failed_ratio=0.05,
        concurrency=1,
    )
    with pytest.raises(AirflowFailException) as info:
        op.execute(ctx(ti))
    message = str(info.value)
    assert "10 of 100 items failed (10 permanently, 0 after 3 attempts)" in message
    assert "90 were not sent; the policy allows at most 0 failed items" in message
    assert "'invalid item (permanent)': 10" in message
    assert ti.xcom["summary"]["policy_violated"] is True and ti.xcom["summary"]["not_sent"] == 90


def test_tolerated_failures_succeed(conn: str, tmp_path: Path, key: str) -> None:
    op = operator(
        conn,
        tmp_path,
        items=items(200),
        query={"key": key, "permanent": 0.05},
        max_failed=None,
        max_failed_ratio=0.2,
    )
    summary = op.execute(ctx(FakeTI()))
    assert 0 < summary["failed_permanent"] <= 40 and not summary["policy_violated"]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"items": "not json"}, "items: expected a list, an XComArg or a JSON array string"),
        ({"items": {"id": 1}}, "items: expected a list of items, got dict"),
        ({"items": [{"id": 1}, {"id": 1}]}, "items[1]: expected a unique id"),
        ({"items_file": "/nonexistent/items.json"}, "items_file: expected a readable file"),
        ({"items": [{"id": 1}], "endpoint": "/status/401"}, "HTTP 401"),
    ],
)
def test_bad_input_fails_without_retries(
    conn: str, tmp_path: Path, kwargs: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(AirflowFailException, match=None) as info:
        operator(conn, tmp_path, **kwargs).execute(ctx(FakeTI()))
    assert fragment in str(info.value)


def test_bad_jsonl_line_is_named(conn: str, tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text('{"id": 1}\n{"id": \n')
    with pytest.raises(AirflowFailException, match="items_file line 2: expected a JSON value"):
        operator(conn, tmp_path, items_file=str(path)).execute(ctx(FakeTI()))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "items"),
        ({"items": [], "items_file": "x.json"}, "items"),
        ({"items": [], "item_rules": {"status": "a[?"}}, "item_rules.status"),
        ({"items": [], "max_failed_ratio": 2}, "max_failed_ratio"),
        ({"items": [], "batch_size": 0}, "batch_size"),
    ],
)
def test_construction_checks_arguments(tmp_path: Path, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(BatchConfigError) as info:
        operator("c", tmp_path, **kwargs)
    assert info.value.field == field


def test_state_directory_is_per_task_instance_and_safe(tmp_path: Path) -> None:
    a = state_directory(tmp_path, ctx(FakeTI("manual__2025/../x")))
    assert a.parent.parent.parent == tmp_path and ".." not in a.parts
    assert a == state_directory(tmp_path, ctx(FakeTI("manual__2025/../x")))
    assert a != state_directory(tmp_path, ctx(FakeTI("manual__2025_.._x")))
    mapped = state_directory(tmp_path, ctx(FakeTI("r", map_index=3)))
    assert mapped.name == "send.3"
