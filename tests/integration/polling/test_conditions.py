"""Conditions as data: evaluation semantics and errors that name the offending field (no I/O)."""

from __future__ import annotations

import json
import pickle
from typing import Any

import jmespath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_integrations.http.conditions import (
    ConditionError,
    _jmespath,
    compile_condition,
    describe,
    evaluate,
    explain,
    validate,
)

DOC = {
    "status": "done",
    "progress": 100,
    "flag": True,
    "count": 1,
    "message": "finished in 3 s",
    "items": [{"state": "closed"}, {"state": "closed"}],
    "error": None,
    "empty": [],
}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"jmespath": "status", "equals": "done"}, True),
        ({"jmespath": "status", "equals": "DONE"}, False),
        ({"jmespath": "status", "not_equals": "failed"}, True),
        ({"jmespath": "status", "in": ["done", "succeeded"]}, True),
        ({"jmespath": "status", "not_in": ["failed", "cancelled"]}, True),
        ({"jmespath": "progress", "gte": 100}, True),
        ({"jmespath": "progress", "gt": 100}, False),
        ({"jmespath": "progress", "lt": 100.5}, True),
        ({"jmespath": "status", "lte": 3}, False),  # a string is never ordered against a number
        ({"jmespath": "message", "matches": r"^finished in \d+ s$"}, True),
        ({"jmespath": "progress", "matches": "100"}, False),
        ({"jmespath": "error", "exists": False}, True),
        ({"jmespath": "missing.deeply", "exists": True}, False),
        ({"jmespath": "items[?state=='open'] | length(@) == `0`"}, True),
        ({"jmespath": "empty"}, False),  # JMESPath truthiness
        ({"jmespath": "progress"}, True),
        # No coercion: JSON true is not 1, "1" is not 1, but 1 is 1.0.
        ({"jmespath": "flag", "equals": 1}, False),
        ({"jmespath": "count", "equals": True}, False),
        ({"jmespath": "count", "equals": "1"}, False),
        ({"jmespath": "count", "equals": 1.0}, True),
        ({"jmespath": "count", "in": [True, 2]}, False),
        ({"json_schema": {"type": "object", "required": ["status", "items"]}}, True),
        ({"json_schema": {"properties": {"status": {"const": "failed"}}}}, False),
        ({"all": [{"jmespath": "status", "equals": "done"}, {"jmespath": "progress", "gte": 100}]}, True),
        ({"any": [{"jmespath": "status", "equals": "failed"}, {"jmespath": "flag"}]}, True),
        ({"not": {"jmespath": "status", "equals": "done"}}, False),
    ],
)
def test_evaluate(condition: dict[str, Any], expected: bool) -> None:
    assert evaluate(condition, DOC) is expected
    # Conditions are plain JSON: they survive the trigger's serialization unchanged.
    assert json.loads(json.dumps(condition)) == condition


def test_non_object_documents() -> None:
    assert evaluate({"jmespath": "@", "equals": "ok"}, "ok")
    assert not evaluate({"jmespath": "status", "equals": "done"}, None)
    assert evaluate({"jmespath": "length(@)", "equals": 2}, [1, 2])


@pytest.mark.parametrize(
    ("condition", "path", "fragment"),
    [
        ("status == done", "success_condition", "expected a JSON object"),
        ({}, "success_condition", "expected exactly one of"),
        ({"jmespath": "a", "json_schema": {}}, "success_condition", "found ['jmespath', 'json_schema']"),
        ({"jmespath": "status ==", "equals": 1}, "success_condition.jmespath", "invalid JMESPath"),
        ({"jmespath": ""}, "success_condition.jmespath", "non-empty"),
        ({"jmespath": "status", "equal": "done"}, "success_condition.equal", "did you mean 'equals'"),
        ({"jmespath": "s", "equals": 1, "in": [1]}, "success_condition", "at most one operator"),
        ({"jmespath": "s", "in": "done"}, "success_condition.in", "non-empty list"),
        ({"jmespath": "s", "gte": "100"}, "success_condition.gte", "expected a number"),
        ({"jmespath": "s", "matches": "("}, "success_condition.matches", "invalid regular expression"),
        ({"jmespath": "s", "exists": "yes"}, "success_condition.exists", "true or false"),
        ({"json_schema": {"type": "objekt"}}, "success_condition.json_schema.type", "invalid JSON Schema"),
        ({"json_schema": ["not", "a", "schema"]}, "success_condition.json_schema", "JSON Schema object"),
        ({"all": []}, "success_condition.all", "non-empty list"),
        (
            {"any": [{"jmespath": "a"}, {"jmespath": "b", "equls": 1}]},
            "success_condition.any[1].equls",
            "unknown operator",
        ),
        ({"not": {"jmespath": "a"}, "extra": 1}, "success_condition.extra", "unexpected key"),
    ],
)
def test_bad_conditions_name_the_field(condition: Any, path: str, fragment: str) -> None:
    with pytest.raises(ConditionError) as info:
        validate(condition, "success_condition")
    assert info.value.path == path
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError), "operators can catch it as a ValueError"
    clone = pickle.loads(pickle.dumps(info.value))
    assert str(clone) == str(info.value)


def test_compiled_predicate_is_reusable() -> None:
    done = compile_condition({"jmespath": "status", "in": ["done", "succeeded"]})
    assert [done({"status": s}) for s in ("queued", "done", "succeeded")] == [False, True, True]


def test_describe_and_explain_for_messages() -> None:
    failed = {"any": [{"jmespath": "status", "in": ["failed", "cancelled"]}, {"jmespath": "error"}]}
    assert describe(failed) == "any of (status in ['failed', 'cancelled']; error is truthy)"
    text = explain(failed, {"status": "failed", "error": {"code": "quota"}})
    assert "status in ['failed', 'cancelled'] (found \"failed\")" in text
    assert 'error is truthy (found {"code": "quota"})' in text
    assert explain({"jmespath": "big"}, {"big": "x" * 500}, limit=50).endswith("…)")
    assert describe({"not": {"json_schema": {}}}) == "not (matches the JSON Schema)"
    assert describe({"jmespath": "n", "gte": 3}) == "n >= 3"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abc"), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(doc=JSON, expression=st.sampled_from(["a", "a.b", "b.a.c", '"a".b', "a[0]", "a.b | length(@)"]))
def test_fast_field_paths_agree_with_jmespath(doc: Any, expression: str) -> None:
    """The dict-walk shortcut for plain field paths must answer exactly what JMESPath answers."""
    try:
        expected = jmespath.search(expression, doc)
    except jmespath.exceptions.JMESPathError:
        return  # e.g. length() of a number: the tree interpreter raises for both
    assert _jmespath(expression)(doc) == expected
