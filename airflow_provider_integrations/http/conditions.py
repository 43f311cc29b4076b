"""Conditions as data: when a polled document means "done", "failed" or "not yet".

A condition is a JSON-compatible mapping, so it travels inside a trigger's kwargs and a serialized DAG;
it is never a pickled or imported callable (the official ``HttpSensor``'s ``response_check`` forces the
blocking mode for exactly that reason). Forms::

    {"jmespath": "status", "equals": "done"}
    {"jmespath": "status", "in": ["failed", "cancelled"]}
    {"jmespath": "progress", "gte": 100}                 # also gt, lt, lte, not_equals, not_in
    {"jmespath": "message", "matches": "^finished"}      # re.search on a string
    {"jmespath": "finished_at", "exists": true}          # the expression found a non-null value
    {"jmespath": "items[?state=='open'] | length(@) == `0`"}   # no operator: JMESPath truthiness
    {"json_schema": {"type": "object", "required": ["result"]}}
    {"all": [...]}, {"any": [...]}, {"not": {...}}

JMESPath truthiness: ``null``, ``false``, ``""``, ``[]`` and ``{}`` are false; every number is true.
Comparisons never coerce: ``"1"`` does not equal ``1`` and ``true`` does not equal ``1``.

:func:`validate` checks a condition and raises :class:`ConditionError` naming the offending field
(``success_condition.any[1].in``); operators call it at construction. :func:`compile_condition` turns a
valid condition into a predicate once, so a poll costs one call, not a re-parse.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import jmespath
import jsonschema
from jmespath.exceptions import JMESPathError
from jmespath.visitor import TreeInterpreter

from airflow_provider_integrations.exceptions import IntegrationError

__all__ = [
    "ConditionError",
    "compile_condition",
    "describe",
    "evaluate",
    "explain",
    "shared_predicate",
    "validate",
]

Predicate = Callable[[Any], bool]

_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "gt": lambda found, expected: found > expected,
    "gte": lambda found, expected: found >= expected,
    "lt": lambda found, expected: found < expected,
    "lte": lambda found, expected: found <= expected,
}
_SYMBOLS = {"equals": "==", "not_equals": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
OPERATORS = ("equals", "not_equals", "in", "not_in", "gt", "gte", "lt", "lte", "matches", "exists")
_COMBINATORS = ("all", "any", "not")
_KINDS = ("jmespath", "json_schema", *_COMBINATORS)


class ConditionError(IntegrationError, ValueError):
    """A condition is malformed; ``path`` names the field (``success_condition.all[0].matches``)."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.path, self.problem))


def _hint(key: str, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same(found: Any, expected: Any) -> bool:
    # Python says True == 1; a partner's JSON does not.
    if isinstance(found, bool) or isinstance(expected, bool):
        return isinstance(found, bool) and isinstance(expected, bool) and found is expected
    if _is_number(found) and _is_number(expected):
        return bool(found == expected)
    return type(found) is type(expected) and bool(found == expected)


def _truthy(value: Any) -> bool:
    if value is None or value is False:
        return False
    if isinstance(value, (str, list, dict)):
        return len(value) > 0
    return True


@lru_cache(maxsize=256)
def _jmespath(expression: str) -> Callable[[Any], Any]:
    """A search function for ``expression``, built once (this runs on every poll of every trigger)."""
    ast = jmespath.compile(expression).parsed
    path = _field_path(ast)
    if path is not None:
        # Plain field paths ("status", "job.state") are most conditions: a dict walk with JMESPath's
        # semantics (null for a missing key or a non-object) instead of the tree interpreter.
        def walk(doc: Any) -> Any:
            for key in path:
                if not isinstance(doc, dict):
                    return None
                doc = doc.get(key)
            return doc

        return walk
    # jmespath's own search() builds a new interpreter per call; one per expression is enough.
    interpreter = TreeInterpreter()
    return lambda doc: interpreter.visit(ast, doc)


def _field_path(ast: Mapping[str, Any]) -> tuple[str, ...] | None:
    if ast["type"] == "field":
        return (ast["value"],)
    if ast["type"] == "subexpression":
        parts = [_field_path(child) for child in ast["children"]]
        if all(p is not None for p in parts):
            return tuple(key for p in parts if p is not None for key in p)
    return None


@lru_cache(maxsize=128)
def _schema_validator(schema_json: str) -> Any:
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def compile_condition(condition: Any, path: str = "condition") -> Predicate:
    """Validate ``condition`` and return ``predicate(document) -> bool``."""
    if not isinstance(condition, Mapping):
        raise ConditionError(path, f"expected a JSON object, got {type(condition).__name__}")
    kinds = [k for k in _KINDS if k in condition]
    if len(kinds) != 1:
        found = f"found {kinds}" if kinds else "found none"
        raise ConditionError(path, f"expected exactly one of {list(_KINDS)}, {found}")
    kind = kinds[0]
    if kind in ("all", "any"):
        _only(condition, path, {kind})
        parts = condition[kind]
        if not isinstance(parts, list) or not parts:
            raise ConditionError(f"{path}.{kind}", "expected a non-empty list of conditions")
        preds = [compile_condition(c, f"{path}.{kind}[{i}]") for i, c in enumerate(parts)]
        if kind == "all":
            return lambda doc: all(p(doc) for p in preds)
        return lambda doc: any(p(doc) for p in preds)
    if kind == "not":
        _only(condition, path, {"not"})
        inner = compile_condition(condition["not"], f"{path}.not")
        return lambda doc: not inner(doc)
    if kind == "json_schema":
        _only(condition, path, {"json_schema"})
        return _compile_schema(condition["json_schema"], f"{path}.json_schema")
    return _compile_jmespath(condition, path)


def _only(condition: Mapping[str, Any], path: str, allowed: set[str]) -> None:
    for key in condition:
        if key not in allowed:
            raise ConditionError(f"{path}.{key}", f"unexpected key next to {sorted(allowed)}")


def _compile_schema(schema: Any, path: str) -> Predicate:
    if not isinstance(schema, Mapping):
        raise ConditionError(path, f"expected a JSON Schema object, got {type(schema).__name__}")
    try:
        validator = _schema_validator(json.dumps(schema, sort_keys=True))
    except jsonschema.SchemaError as exc:
        where = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in exc.path)
        raise ConditionError(f"{path}{where}", f"invalid JSON Schema: {exc.message}") from None
    except (TypeError, ValueError) as exc:
        raise ConditionError(path, f"not JSON-serializable: {exc}") from None
    return lambda doc: bool(validator.is_valid(doc))


def _compile_jmespath(condition: Mapping[str, Any], path: str) -> Predicate:
    expression = condition["jmespath"]
    if not isinstance(expression, str) or not expression.strip():
        raise ConditionError(f"{path}.jmespath", "expected a non-empty JMESPath expression")
    try:
        search = _jmespath(expression)
    except JMESPathError as exc:
        raise ConditionError(
            f"{path}.jmespath", f"invalid JMESPath expression {expression!r}: {exc}"
        ) from None
    ops = [k for k in condition if k != "jmespath"]
    for key in ops:
        if key not in OPERATORS:
            raise ConditionError(
                f"{path}.{key}", f"unknown operator{_hint(key, OPERATORS)}; expected one of {list(OPERATORS)}"
            )
    if len(ops) > 1:
        raise ConditionError(path, f"expected at most one operator, got {ops}; combine with 'all'")
    if not ops:
        return lambda doc: _truthy(search(doc))
    op = ops[0]
    expected = condition[op]
    where = f"{path}.{op}"
    if op == "equals":
        return lambda doc: _same(search(doc), expected)
    if op == "not_equals":
        return lambda doc: not _same(search(doc), expected)
    if op in ("in", "not_in"):
        if not isinstance(expected, list) or not expected:
            raise ConditionError(where, "expected a non-empty list of values")
        choices = list(expected)
        if op == "in":
            return lambda doc: any(_same(search(doc), c) for c in choices)
        return lambda doc: not any(_same(search(doc), c) for c in choices)
    if op in _COMPARISONS:
        if not _is_number(expected):
            raise ConditionError(where, f"expected a number, got {expected!r}")
        compare = _COMPARISONS[op]

        def ordered(doc: Any) -> bool:
            found = search(doc)
            return _is_number(found) and compare(found, expected)

        return ordered
    if op == "matches":
        if not isinstance(expected, str):
            raise ConditionError(where, f"expected a regular expression string, got {expected!r}")
        try:
            pattern = re.compile(expected)
        except re.error as exc:
            raise ConditionError(where, f"invalid regular expression {expected!r}: {exc}") from None

        def matches(doc: Any) -> bool:
            found = search(doc)
            return isinstance(found, str) and pattern.search(found) is not None

        return matches
    # exists
    if not isinstance(expected, bool):
        raise ConditionError(where, f"expected true or false, got {expected!r}")
    return lambda doc: (search(doc) is not None) is expected


def shared_predicate(condition: Any, path: str = "condition") -> Predicate:
    """:func:`compile_condition`, memoised by the condition's JSON text: equal conditions share one
    predicate, so ten thousand triggers of one task hold one, not ten thousand closures."""
    try:
        key = json.dumps(condition, sort_keys=True)
    except (TypeError, ValueError):
        return compile_condition(condition, path)
    return _shared(key, path)


@lru_cache(maxsize=512)
def _shared(key: str, path: str) -> Predicate:
    return compile_condition(json.loads(key), path)


def validate(condition: Any, path: str = "condition") -> None:
    """Raise :class:`ConditionError` if ``condition`` is malformed."""
    compile_condition(condition, path)


def evaluate(condition: Any, document: Any) -> bool:
    """Whether ``document`` (parsed JSON) satisfies ``condition``; compile once for repeated use."""
    return compile_condition(condition)(document)


def describe(condition: Mapping[str, Any]) -> str:
    """A short human form: ``status in ['failed', 'cancelled']``."""
    if "all" in condition or "any" in condition:
        kind = "all" if "all" in condition else "any"
        return f"{kind} of ({'; '.join(describe(c) for c in condition[kind])})"
    if "not" in condition:
        return f"not ({describe(condition['not'])})"
    if "json_schema" in condition:
        return "matches the JSON Schema"
    expression = condition["jmespath"]
    for op in OPERATORS:
        if op in condition:
            symbol = _SYMBOLS.get(op, op.replace("_", " "))
            return f"{expression} {symbol} {condition[op]!r}"
    return f"{expression} is truthy"


def explain(condition: Mapping[str, Any], document: Any, limit: int = 200) -> str:
    """:func:`describe` plus what each JMESPath expression found in ``document`` (for failure messages)."""
    if "all" in condition or "any" in condition:
        kind = "all" if "all" in condition else "any"
        return f"{kind} of ({'; '.join(explain(c, document, limit) for c in condition[kind])})"
    if "not" in condition:
        return f"not ({explain(condition['not'], document, limit)})"
    if "json_schema" in condition:
        return describe(condition)
    found = json.dumps(_jmespath(condition["jmespath"])(document), default=str)
    if len(found) > limit:
        found = found[: limit - 1] + "…"
    return f"{describe(condition)} (found {found})"
