"""Pure decisions of the batch engine (http/batch_rules.py): classification, policy, progress."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_integrations.http.batch_rules import (
    BatchConfigError,
    FailurePolicy,
    ItemRules,
    Progress,
)

DEFAULT = ItemRules().compile()


@pytest.mark.parametrize(
    ("result", "kind", "reason"),
    [
        ({"id": 1, "status": "ok"}, "success", ""),
        ({"id": 1, "status": "retry", "error": "busy"}, "retriable", "busy"),
        ({"id": 1, "status": "rejected", "error": "bad sku"}, "permanent", "bad sku"),
        ({"id": 1, "status": "exploded"}, "permanent", "status 'exploded'"),
        ({"id": 1, "status": 201}, "success", ""),
        ({"id": 1, "status": 429}, "retriable", "status 429"),
        ({"id": 1, "status": 503, "error": {"code": "x"}}, "retriable", '{"code": "x"}'),
        ({"id": 1, "status": 422}, "permanent", "status 422"),
        ({"id": 1}, "permanent", "no usable status in the result (NoneType)"),
        ({"id": 1, "status": True}, "permanent", "status True"),
        ({"id": 1, "status": ["ok"]}, "permanent", "no usable status in the result (list)"),
    ],
)
def test_default_classification(result: dict[str, Any], kind: str, reason: str) -> None:
    verdict = DEFAULT.judge(result)
    assert (verdict.kind, verdict.reason) == (kind, reason)


def test_rules_as_data_with_jmespath() -> None:
    rules = ItemRules.from_mapping(
        {
            "item_id": "key.id",
            "results": "data.outcomes",
            "result_id": "ref",
            "status": "state.code",
            "error": "state.message",
            "success": ["DONE"],
            "retriable": ["LATER", 409],
        }
    ).compile()
    assert rules.item_id({"key": {"id": "a"}}) == "a"
    assert rules.results({"data": {"outcomes": [1]}}) == [1]
    assert rules.judge({"state": {"code": "DONE"}}).kind == "success"
    later = rules.judge({"state": {"code": "LATER", "message": "quota"}})
    assert (later.kind, later.status, later.reason) == ("retriable", "LATER", "quota")
    assert rules.judge({"state": {"code": 409}}).kind == "retriable", "listed beats the HTTP default"
    assert rules.judge({"state": {"code": "ok"}}).kind == "permanent", "only the listed values succeed"


@pytest.mark.parametrize(
    ("spec", "field", "expected"),
    [
        ({"sucess": ["ok"]}, "item_rules.sucess", "one of"),
        ({"success": "ok"}, "item_rules.success", "a list of strings or integers"),
        ({"success": [True]}, "item_rules.success", "a list of strings or integers"),
        ({"results": "data[?"}, "item_rules.results", "a valid JMESPath expression"),
        ({"status": ""}, "item_rules.status", "a non-empty JMESPath expression"),
        ({"success": ["ok"], "retriable": ["ok"]}, "item_rules.retriable", "no value also listed"),
        (["ok"], "item_rules", "a mapping"),
    ],
)
def test_bad_rules_name_the_field(spec: Any, field: str, expected: str) -> None:
    with pytest.raises(BatchConfigError) as info:
        ItemRules.from_mapping(spec)
    assert info.value.field == field and expected in str(info.value)


@pytest.mark.parametrize(
    ("policy", "total", "allowed"),
    [
        (FailurePolicy(), 1000, None),
        (FailurePolicy(max_failed=0), 1000, 0),
        (FailurePolicy(max_failed_ratio=0.01), 1000, 10),
        (FailurePolicy(max_failed_ratio=0.07), 100, 7),  # 0.07 * 100 is 7.000000000000001 in floats
        (FailurePolicy(max_failed=5, max_failed_ratio=0.01), 1000, 5),
        (FailurePolicy(max_failed=50, max_failed_ratio=0.01), 1000, 10),
    ],
)
def test_policy_takes_the_tighter_limit(policy: FailurePolicy, total: int, allowed: int | None) -> None:
    assert policy.allowed(total) == allowed
    if allowed is not None:
        assert not policy.violated(allowed, total) and policy.violated(allowed + 1, total)
        assert policy.describe(total) == f"at most {allowed} failed items"
    else:
        assert not policy.violated(total, total)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_failed": -1}, "max_failed"),
        ({"max_failed": 1.5}, "max_failed"),
        ({"max_failed_ratio": 1.5}, "max_failed_ratio"),
        ({"max_failed_ratio": True}, "max_failed_ratio"),
    ],
)
def test_bad_policy_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(BatchConfigError) as info:
        FailurePolicy(**kwargs)
    assert info.value.field == field


def test_progress_lines_at_intervals_with_rate_and_eta() -> None:
    progress = Progress(total=1000, done=200, started=100.0, interval=10.0)
    assert not progress.advance(100, now=105.0), "not due before the interval"
    assert progress.advance(100, now=110.0)
    # 200 items of this run in 10 s; the 200 resumed ones do not inflate the rate.
    assert progress.line(110.0, failed=3, retried=7) == (
        "400/1000 items (40.0%), 20 items/s, ETA 30 s; 3 failed, 7 retried"
    )
    assert not progress.advance(100, now=115.0), "the next line is due 10 s after the last one"
    assert progress.advance(0, now=120.0)


def test_progress_before_any_item() -> None:
    progress = Progress(total=10, done=0, started=5.0, interval=1.0)
    assert progress.line(5.0, 0, 0) == "0/10 items (0.0%), 0 items/s, ETA unknown; 0 failed, 0 retried"
