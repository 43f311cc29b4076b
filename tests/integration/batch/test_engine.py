"""The batch engine (http/batch.py) against the sandbox process: outcomes, retries, policy, limits."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_integrations.connections.http_config import HttpClientConfig, RateLimit
from airflow_provider_integrations.http.batch import BatchRun, BatchSettings, BatchSummary
from airflow_provider_integrations.http.batch_rules import BatchConfigError, FailurePolicy, ItemRules
from airflow_provider_integrations.http.batch_store import BatchStore
from airflow_provider_integrations.http.errors import AuthenticationError, ResponseContractError
from airflow_provider_integrations.http.sessions import lease_client
from airflow_provider_integrations.sandbox.batch import Faults
from tests.integration.batch.conftest import read_outcomes

Stats = Callable[..., dict[str, Any]]
MakeConfig = Callable[..., HttpClientConfig]


def items(n: int) -> list[dict[str, Any]]:
    return [{"id": i, "sku": f"SKU-{i}", "qty": i % 7} for i in range(n)]


async def run(
    config: HttpClientConfig,
    tmp_path: Path,
    data: list[Any],
    *,
    policy: FailurePolicy | None = None,
    rules: ItemRules | None = None,
    **settings: Any,
) -> BatchSummary:
    values: dict[str, Any] = {"retry_base_delay": 0.01, "retry_max_delay": 0.02, **settings}
    store = BatchStore(tmp_path / "outcomes.jsonl", tmp_path / "checkpoint")
    async with lease_client(config) as api:
        return await BatchRun(api, data, BatchSettings(**values), store, policy=policy, rules=rules).run()


async def test_every_item_has_one_outcome_matching_the_partner(
    make_config: MakeConfig, tmp_path: Path, key: str, batch_stats: Stats
) -> None:
    query = {"key": key, "permanent": 0.05, "transient": 0.2}
    summary = await run(
        make_config(), tmp_path, items(1000), endpoint="/batch", query=query, batch_size=64, concurrency=4
    )
    faults = Faults(0.05, 0.2, 1, "")
    expected = Counter(faults.status(str(i), 1) for i in range(1000))
    assert summary["total"] == 1000 and summary["batches"] == 16 and summary["not_sent"] == 0
    assert summary["failed_permanent"] == expected["rejected"] and summary["failed_retriable"] == 0
    assert summary["succeeded"] == expected["ok"] + expected["retry"]
    assert summary["retried"] == expected["retry"]
    assert summary["failure_reasons"] == {"invalid item (permanent)": expected["rejected"]}
    # One request per batch, plus one retry round for each batch that had a transient item.
    assert 16 < summary["requests"] <= 32

    lines = read_outcomes(tmp_path / "outcomes.jsonl")
    assert sorted(o["id"] for o in lines) == list(range(1000)), "exactly one line per item"
    for o in lines:
        first = faults.status(str(o["id"]), 1)
        assert o["batch"] == o["id"] // 64
        assert o["outcome"] == ("failed" if first == "rejected" else "succeeded")
        assert o["attempts"] == (2 if first == "retry" else 1)
        assert o["result"]["id"] == o["id"], "the partner's per-item result is kept"
    stats = batch_stats(key)
    assert stats["duplicates"] == 0 and stats["distinct_items"] == 1000
    assert stats["ok_distinct"] == summary["succeeded"]
    assert stats["items_received"] == 1000 + expected["retry"]


async def test_retriable_items_give_up_after_max_attempts(
    make_config: MakeConfig, tmp_path: Path, key: str, batch_stats: Stats
) -> None:
    query = {"key": key, "transient": 0.3, "transient_failures": 5}
    summary = await run(
        make_config(), tmp_path, items(200), endpoint="/batch", query=query, batch_size=50, max_attempts=3
    )
    expected = sum(Faults(0, 0.3, 5, "").status(str(i), 1) == "retry" for i in range(200))
    assert summary["failed_retriable"] == expected and summary["failed_permanent"] == 0
    failed = [o for o in read_outcomes(tmp_path / "outcomes.jsonl") if o["outcome"] == "failed"]
    assert {o["attempts"] for o in failed} == {3}
    assert all(o["retriable"] and o["error"].endswith("(attempts exhausted)") for o in failed)
    assert batch_stats(key)["items_received"] == 200 + 2 * expected


async def test_policy_stops_sending_once_exceeded(
    make_config: MakeConfig, tmp_path: Path, key: str, batch_stats: Stats
) -> None:
    # Every item is rejected: the first batch already breaks "at most 5 failed items".
    query = {"key": key, "permanent": 1.0}
    summary = await run(
        make_config(),
        tmp_path,
        items(1000),
        policy=FailurePolicy(max_failed=5),
        endpoint="/batch",
        query=query,
        batch_size=10,
        concurrency=1,
    )
    assert summary["policy_violated"] and summary["policy"] == "at most 5 failed items"
    assert summary["failed"] == 10 and summary["not_sent"] == 990 and summary["requests"] == 1
    assert batch_stats(key)["items_received"] == 10


async def test_concurrency_is_bounded(
    make_config: MakeConfig, tmp_path: Path, key: str, batch_stats: Stats
) -> None:
    query = {"key": key, "delay": 0.05}
    await run(
        make_config(), tmp_path, items(120), endpoint="/batch", query=query, batch_size=10, concurrency=3
    )
    assert batch_stats(key)["max_in_flight"] == 3


async def test_connection_rate_limit_applies(
    make_config: MakeConfig, tmp_path: Path, key: str, batch_stats: Stats
) -> None:
    config = make_config(rate_limit=RateLimit(per_second=20, burst=1))
    started = time.monotonic()
    await run(
        config, tmp_path, items(100), endpoint="/batch", query={"key": key}, batch_size=10, concurrency=8
    )
    # Ten requests at 20/s with a burst of one: at least nine intervals of 50 ms.
    assert time.monotonic() - started >= 0.45
    assert batch_stats(key)["requests"] == 10


async def test_throttled_requests_are_retried_with_the_same_idempotency_key(
    make_config: MakeConfig, tmp_path: Path, key: str, batch_stats: Stats
) -> None:
    query = {"key": key, "throttle_every": 3, "retry_after": 0}
    summary = await run(
        make_config(),
        tmp_path,
        items(100),
        endpoint="/batch",
        query=query,
        batch_size=10,
        concurrency=1,
        idempotency_prefix="run-1",
    )
    assert summary["succeeded"] == 100 and summary["requests"] == 10, "429s are the connection's business"
    stats = batch_stats(key, detail=True)
    assert stats["throttled"] == 4 and stats["requests"] == 14 and stats["duplicates"] == 0
    assert sorted(stats["sends"]) == sorted(f"run-1-{b}-0" for b in range(10))


async def test_whole_request_failures(make_config: MakeConfig, tmp_path: Path, key: str) -> None:
    # A 503 for every request: each is one failed attempt of all its items.
    summary = await run(
        make_config(),
        tmp_path / "a",
        items(20),
        endpoint=f"/status/503?key={key}",
        batch_size=10,
        max_attempts=2,
    )
    assert summary["failed_retriable"] == 20
    assert next(iter(summary["failure_reasons"])).startswith("request failed: HTTP 503")
    # A 422 rejects the batch's items permanently.
    summary = await run(make_config(), tmp_path / "b", items(20), endpoint="/status/422", batch_size=10)
    assert summary["failed_permanent"] == 20 and summary["requests"] == 2


async def test_fatal_errors_stop_the_run(make_config: MakeConfig, tmp_path: Path) -> None:
    with pytest.raises(AuthenticationError):
        await run(make_config(), tmp_path / "a", items(20), endpoint="/status/401", batch_size=10)
    with pytest.raises(ResponseContractError, match="no list of per-item results at 'data'"):
        await run(
            make_config(),
            tmp_path / "b",
            items(20),
            rules=ItemRules(results="data"),
            endpoint="/batch?key=contract",
            batch_size=10,
        )


async def test_items_missing_from_the_answer_are_retried(make_config: MakeConfig, tmp_path: Path) -> None:
    # The echo endpoint answers with the request, so no per-item result matches: every item is "missing".
    summary = await run(
        make_config(),
        tmp_path,
        items(5),
        rules=ItemRules(results="json.items", result_id="nope"),
        endpoint="/echo",
        batch_size=5,
        max_attempts=2,
    )
    assert summary["failed_retriable"] == 5 and summary["requests"] == 2
    assert summary["failure_reasons"] == {"no result for this item in the response (attempts exhausted)": 5}


@pytest.mark.parametrize(
    ("data", "field", "expected"),
    [
        ([{"id": 1}, {"id": 1}], "items[1]", "a unique id, but 1 appears before"),
        ([{"id": 1}, {"id": "1"}], "items[1]", "a unique id"),
        ([{"id": 1}, {"sku": "x"}], "items[1]", "an object with a string or integer id"),
        ([7], "items[0]", "an object with a string or integer id"),
    ],
)
async def test_bad_items_are_refused_before_sending(
    make_config: MakeConfig, tmp_path: Path, data: list[Any], field: str, expected: str
) -> None:
    with pytest.raises(BatchConfigError) as info:
        await run(make_config(), tmp_path, data, endpoint="/batch")
    assert info.value.field == field and expected in str(info.value)
    assert not (tmp_path / "checkpoint").exists(), "nothing is written for refused input"


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"concurrency": True}, "concurrency"),
        ({"retry_base_delay": -1}, "retry_base_delay"),
        ({"items_field": ""}, "items_field"),
        ({"extra_body": {"items": []}}, "extra_body"),
    ],
)
def test_bad_settings_name_the_field(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(BatchConfigError) as info:
        BatchSettings(endpoint="/batch", **settings)
    assert info.value.field == field


async def test_progress_is_logged(
    make_config: MakeConfig, tmp_path: Path, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="airflow_provider_integrations.http.batch")
    await run(
        make_config(),
        tmp_path,
        items(30),
        endpoint="/batch",
        query={"key": key},
        batch_size=10,
        progress_interval=0,
    )
    lines = [r.getMessage() for r in caplog.records if "items/s" in r.getMessage()]
    assert [line.split(" items")[0] for line in lines] == ["10/30", "20/30", "30/30", "Finished: 30/30"], (
        lines
    )
    assert (
        lines[-1].startswith("Finished: 30/30 items (100.0%)") and "ETA 0 s; 0 failed, 0 retried" in lines[-1]
    )
