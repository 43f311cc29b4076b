"""The JSON Schema of ``integration_http`` extras: loading, validation and UI ``conn-fields``.

Airflow-free. ``integration_http.schema.json`` is the single source: the provider-info ``conn-fields``
(UI form) are generated from it by ``scripts/gen_provider_info.py``, and :func:`validate_extras` checks
extras against it before :mod:`.http_parse` applies the cross-field rules.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker  # type: ignore[import-untyped,unused-ignore]
from jsonschema.exceptions import ValidationError  # type: ignore[import-untyped,unused-ignore]

from airflow_provider_integrations.exceptions import ConnectionConfigError

__all__ = [
    "CONN_TYPE",
    "SCHEMA_FILE",
    "conn_fields",
    "conn_fields_from_schema",
    "describe",
    "format_path",
    "load_schema",
    "opaque_fields",
    "secret_fields",
    "validate_extras",
]

CONN_TYPE = "integration_http"
SCHEMA_FILE = "integration_http.schema.json"

# Keys of a property schema that the UI form understands (``provider.yaml.schema.json`` conn-fields).
_UI_SCHEMA_KEYS = (
    "type",
    "enum",
    "default",
    "format",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "pattern",
    "minLength",
    "maxLength",
    "items",
)
# The type error says the most, so it wins over sibling errors at the same path.
_KEYWORD_PRIORITY = ("type", "enum", "required", "minimum", "exclusiveMinimum", "maximum")
# Never echoed either: header values may carry credentials, and a PEM field may hold a pasted key.
_OPAQUE_FIELDS = frozenset({"default_headers", "tls_ca_bundle", "tls_client_cert"})
_INT_RE = re.compile(r"[+-]?\d+")
_NUMBER_RE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@cache
def load_schema() -> dict[str, Any]:
    """The schema document, read once from the package data. Do not mutate the result."""
    text = resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return schema


@cache
def _validator() -> Any:
    return Draft202012Validator(load_schema(), format_checker=FormatChecker())


def _properties() -> dict[str, dict[str, Any]]:
    props: dict[str, dict[str, Any]] = load_schema()["properties"]
    return props


def opaque_fields() -> frozenset[str]:
    """Extras whose values error messages never show: the secrets plus headers and PEM fields."""
    return secret_fields() | _OPAQUE_FIELDS


@cache
def secret_fields() -> frozenset[str]:
    """Extras whose values are secrets: exactly those the schema marks ``format: password``."""
    return frozenset(name for name, prop in _properties().items() if prop.get("format") == "password")


def conn_fields() -> dict[str, Any]:
    """Provider-info ``conn-fields`` for the packaged schema."""
    return conn_fields_from_schema(load_schema())


def conn_fields_from_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Provider-info ``conn-fields`` (label, description, UI schema) generated from ``schema``."""
    return {
        name: {"label": prop["title"], "description": prop["description"], "schema": _ui_schema(prop)}
        for name, prop in schema["properties"].items()
    }


def _ui_schema(prop: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in _UI_SCHEMA_KEYS:
        if key not in prop:
            continue
        value = prop[key]
        if key == "enum":
            # The UI renders null as a literal "null" option; clearing the dropdown already sends null.
            value = [v for v in value if v is not None]
        elif key == "items":
            value = _ui_schema(value)
        out[key] = copy.deepcopy(value)
    return out


def validate_extras(extra: Mapping[str, Any], *, conn_id: str | None = None) -> dict[str, Any]:
    """Validate extras and return every property, with ``None``/absent replaced by its default.

    Strings are stripped and an empty string counts as unset. Strings standing for numbers, booleans,
    arrays or objects (URI-style ``?retry_max_attempts=5``) are converted first. Raises
    :class:`ConnectionConfigError` for the first unknown key, else for the first schema violation in
    schema property order.
    """
    if not isinstance(extra, Mapping):
        raise ConnectionConfigError("$", f"a JSON object, not {_type_name(extra)}", conn_id=conn_id)
    props = _properties()
    for key in extra:
        if key not in props:
            # Never echo the value: a misspelt secret key still holds a secret.
            path, hint = format_path([str(key)]), _unknown_key_hint(str(key), props)
            raise ConnectionConfigError(path, "a known key", problem=hint, conn_id=conn_id)
    data = {key: _coerce(value, props[key]) for key, value in extra.items()}
    errors = list(_validator().iter_errors(data))
    if errors:
        raise _to_config_error(min(errors, key=_error_order), conn_id)
    result: dict[str, Any] = {}
    for name, prop in props.items():
        value = data.get(name)
        if value is None:
            value = copy.deepcopy(prop.get("default"))
        elif "integer" in prop["type"] and isinstance(value, float):
            # JSON Schema accepts 3.0 as an integer; the dataclasses want an int.
            value = int(value)
        result[name] = value
    return result


def _unknown_key_hint(key: str, props: Mapping[str, Any]) -> str:
    # Airflow 2 forms stored extras as ``extra__<conn_type>__<name>``; the 3.x UI uses the bare name.
    bare = key.removeprefix(f"extra__{CONN_TYPE}__")
    lowered = {name.lower(): name for name in props}
    match = lowered.get(bare.lower().replace("-", "_")) or next(
        iter(difflib.get_close_matches(bare, list(props), n=1, cutoff=0.6)), None
    )
    if match:
        return f"unknown key; did you mean {match!r}?"
    return f"unknown key; not an extra of {CONN_TYPE} (see {SCHEMA_FILE})"


def _coerce(value: Any, prop: Mapping[str, Any]) -> Any:
    """Normalise one raw value; anything unconvertible is returned for the schema to reject."""
    if not isinstance(value, str):
        return value
    value = value.strip()
    types = prop["type"]
    if not value:
        return None
    if "string" in types:
        return value
    if "boolean" in types and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if "integer" in types and _INT_RE.fullmatch(value):
        return int(value)
    if "number" in types and _NUMBER_RE.fullmatch(value):
        number = float(value)
        return int(number) if _INT_RE.fullmatch(value) else number
    if "array" in types or "object" in types:
        try:
            return json.loads(value)
        except ValueError:
            pass
        if "array" in types and all(_INT_RE.fullmatch(p.strip()) for p in value.split(",")):
            return [int(p) for p in value.split(",")]
    return value


def _error_order(error: ValidationError) -> tuple[Any, ...]:
    path = list(error.absolute_path)
    names = list(_properties())
    top = names.index(path[0]) if path and path[0] in names else -1
    keyword = str(error.validator)
    priority = _KEYWORD_PRIORITY.index(keyword) if keyword in _KEYWORD_PRIORITY else len(_KEYWORD_PRIORITY)
    steps = [(1, 0, p) if isinstance(p, str) else (0, p, "") for p in path]
    return (top, steps, priority, keyword)


def _to_config_error(error: ValidationError, conn_id: str | None) -> ConnectionConfigError:
    path: list[str | int] = list(error.absolute_path)
    if "propertyNames" in error.schema_path:
        # jsonschema reports a bad key at its parent object; point at the key, which is no secret.
        path.append(str(error.instance))
        secret = False
    else:
        secret = bool(path) and path[0] in opaque_fields()
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    return ConnectionConfigError(
        format_path(path), describe(schema), value=error.instance, secret=secret, conn_id=conn_id
    )


def format_path(path: list[str | int]) -> str:
    """JSON path of an element of the extras: ``$.a``, ``$.a[1]``, ``$.a['X-Key']``."""
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER_RE.fullmatch(part):
            out += f".{part}"
        else:
            out += "[" + repr(part) + "]"
    return out


def describe(schema: Mapping[str, Any]) -> str:
    """Human text for what ``schema`` accepts ("an integer between 1 and 20")."""
    if "x-expected" in schema:
        return str(schema["x-expected"])
    if "enum" in schema:
        return "one of " + ", ".join(repr(v) for v in schema["enum"] if v is not None)
    raw = schema.get("type", [])
    types = [t for t in ([raw] if isinstance(raw, str) else raw) if t != "null"]
    kind = types[0] if len(types) == 1 else None
    if kind in ("integer", "number"):
        noun = "an integer" if kind == "integer" else "a number"
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and high is not None:
            return f"{noun} between {low} and {high}"
        if "exclusiveMinimum" in schema:
            return f"{noun} > {schema['exclusiveMinimum']}"
        if low is not None:
            return f"{noun} >= {low}"
        return noun
    simple = {"boolean": "true or false", "object": "a JSON object", "array": "a JSON array"}
    if kind in simple:
        return simple[kind]
    if kind == "string":
        return "a non-empty string" if schema.get("minLength") else "a string"
    return " or ".join(types) or "a valid value"


def _type_name(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else type(value).__name__)
