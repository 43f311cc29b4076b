"""The integration_http JSON Schema, extras validation and the generated UI conn-fields."""

from __future__ import annotations

import importlib.util
import json
import pickle
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator, Draft202012Validator

from airflow_provider_integrations.connections.schema import (
    conn_fields,
    load_schema,
    secret_fields,
    validate_extras,
)
from airflow_provider_integrations.exceptions import (
    MASKED,
    MISSING,
    ConnectionConfigError,
    IntegrationError,
)

PROPS: dict[str, dict[str, Any]] = load_schema()["properties"]


def airflow_schema(name: str) -> dict[str, Any]:
    spec = importlib.util.find_spec("airflow")
    assert spec is not None and spec.submodule_search_locations
    path = Path(next(iter(spec.submodule_search_locations))) / name
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def test_schema_is_valid_draft_2020_12_and_closed() -> None:
    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize("name", list(PROPS))
def test_every_property_is_documented_nullable_and_its_default_valid(name: str) -> None:
    prop = PROPS[name]
    assert prop["title"] and prop["description"]
    assert isinstance(prop["type"], list) and "null" in prop["type"]
    if "enum" in prop:
        assert None in prop["enum"], "the UI sends null for an unset dropdown"
    # Null (the UI's "unset") and the default must both pass the property's own schema.
    Draft202012Validator(prop).validate(None)
    if "default" in prop:
        Draft202012Validator(prop).validate(prop["default"])


def test_secret_fields_are_exactly_the_password_formatted_ones() -> None:
    assert secret_fields() == {"tls_client_private_key"}
    assert {n for n, p in PROPS.items() if p.get("format") == "password"} == secret_fields()


def test_conn_fields_follow_the_schema_and_airflows_strict_provider_yaml_schema() -> None:
    fields = conn_fields()
    assert list(fields) == list(PROPS)
    for name, field in fields.items():
        assert field["label"] == PROPS[name]["title"]
        assert field["description"] == PROPS[name]["description"]
        assert field["schema"]["type"] == PROPS[name]["type"]
        assert None not in field["schema"].get("enum", [])
        assert field["schema"].get("default") == PROPS[name].get("default")
        assert field["schema"].get("format") == PROPS[name].get("format")
    strict = airflow_schema("provider.yaml.schema.json")
    conn_fields_schema = strict["properties"]["connection-types"]["items"]["properties"]["conn-fields"]
    Draft7Validator(conn_fields_schema).validate(fields)
    assert fields["retry_on_statuses"]["schema"]["items"] == {
        "type": "integer",
        "minimum": 400,
        "maximum": 599,
    }
    assert fields["tls_ca_bundle"]["schema"]["format"] == "multiline"
    assert fields["retry_max_attempts"]["schema"] | {} == {
        "type": ["integer", "null"],
        "default": 3,
        "minimum": 1,
        "maximum": 20,
    }


def test_conn_fields_returns_a_fresh_copy() -> None:
    conn_fields()["retry_on_statuses"]["schema"]["default"].append(999)
    assert 999 not in conn_fields()["retry_on_statuses"]["schema"]["default"]
    assert 999 not in PROPS["retry_on_statuses"]["default"]


@pytest.mark.parametrize("extra", [{}, dict.fromkeys(PROPS), dict.fromkeys(PROPS, "  ")])
def test_empty_null_and_blank_values_mean_defaults(extra: dict[str, Any]) -> None:
    result = validate_extras(extra)
    assert list(result) == list(PROPS)
    assert result == {name: prop.get("default") for name, prop in PROPS.items()}


def test_defaults_are_not_shared_between_calls() -> None:
    validate_extras({})["retry_on_statuses"].append(418)
    assert validate_extras({})["retry_on_statuses"] == [429, 500, 502, 503, 504]


def test_uri_style_strings_are_converted() -> None:
    # AIRFLOW_CONN_X='integration-http://host?retry_max_attempts=5&...' gives every extra as a string.
    result = validate_extras(
        {
            "retry_max_attempts": "5",
            "retry_base_delay": "0.25",
            "retry_max_delay": "7",
            "retry_jitter": "False",
            "tls_verify": "TRUE",
            "retry_on_statuses": "429, 503",
            "default_headers": '{"Accept": "application/json"}',
            "pool_size": 10.0,
        }
    )
    assert result["retry_max_attempts"] == 5
    assert result["retry_base_delay"] == 0.25
    assert result["retry_max_delay"] == 7
    assert result["retry_jitter"] is False
    assert result["tls_verify"] is True
    assert result["retry_on_statuses"] == [429, 503]
    assert result["default_headers"] == {"Accept": "application/json"}
    assert result["pool_size"] == 10 and isinstance(result["pool_size"], int)


def test_unconvertible_strings_are_reported_as_given() -> None:
    with pytest.raises(ConnectionConfigError) as info:
        validate_extras({"retry_jitter": "yes please"})
    assert info.value.path == "$.retry_jitter"
    assert info.value.value == "yes please"
    assert "expected true or false" in str(info.value)


def test_message_format() -> None:
    with pytest.raises(ConnectionConfigError) as info:
        validate_extras({"retry_max_attempts": 0}, conn_id="my_api")
    err = info.value
    assert str(err) == (
        "integration_http connection 'my_api': $.retry_max_attempts = 0: expected an integer between 1 and 20"
    )
    assert (err.path, err.value, err.expected, err.conn_id) == (
        "$.retry_max_attempts",
        0,
        "an integer between 1 and 20",
        "my_api",
    )
    assert isinstance(err, IntegrationError) and isinstance(err, ValueError)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("retry_max_attemps", "$.retry_max_attemps: unknown key; did you mean 'retry_max_attempts'?"),
        ("Read-Timeout", "$['Read-Timeout']: unknown key; did you mean 'read_timeout'?"),
        (
            "tls_client_privat_key",
            "$.tls_client_privat_key: unknown key; did you mean 'tls_client_private_key'?",
        ),
        ("extra__integration_http__pool_size", "unknown key; did you mean 'pool_size'?"),
        ("srv_lookup", "$.srv_lookup: unknown key; not an extra of integration_http"),
    ],
)
def test_unknown_keys_suggest_the_closest_and_never_echo_the_value(key: str, message: str) -> None:
    with pytest.raises(ConnectionConfigError) as info:
        validate_extras({"pool_size": 5, key: "hunter2-secret"}, conn_id="c")
    assert message in str(info.value)
    assert info.value.value is MISSING
    assert "hunter2" not in str(info.value)


def test_unknown_keys_are_reported_before_invalid_values() -> None:
    with pytest.raises(ConnectionConfigError) as info:
        validate_extras({"retry_max_attempts": 0, "pool_sise": 1})
    assert info.value.path == "$.pool_sise"


def test_the_first_error_in_schema_order_wins_deterministically() -> None:
    extra = {"pool_size": 0, "retry_on_statuses": [200, "x"], "scheme": "ftp", "connect_timeout": -1}
    paths = set()
    for _ in range(5):
        with pytest.raises(ConnectionConfigError) as info:
            validate_extras(dict(reversed(list(extra.items()))))
        paths.add(info.value.path)
    assert paths == {"$.scheme"}
    with pytest.raises(ConnectionConfigError) as info:
        validate_extras({"retry_on_statuses": [429, "x", 700]})
    assert info.value.path == "$.retry_on_statuses[1]"


@pytest.mark.parametrize("extra", [[1, 2], "text", 5])
def test_non_object_extras(extra: Any) -> None:
    with pytest.raises(ConnectionConfigError) as info:
        validate_extras(extra)
    assert info.value.path == "$"
    assert "expected a JSON object" in str(info.value)


def test_error_pickles_and_can_be_renamed() -> None:
    err = ConnectionConfigError("$.tls_client_private_key", "PEM text", value="k", secret=True)
    assert err.value == MASKED
    clone = pickle.loads(pickle.dumps(err))
    assert (clone.path, clone.value, clone.expected, str(clone)) == (err.path, MASKED, err.expected, str(err))
    named = err.with_conn_id("other")
    assert named.conn_id == "other" and "'other'" in str(named) and named.value == MASKED
    missing = pickle.loads(pickle.dumps(ConnectionConfigError("host", "a host name")))
    assert missing.value is MISSING
    assert str(missing) == "integration_http connection: host: expected a host name"
