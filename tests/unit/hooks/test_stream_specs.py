"""Stream specs, window specs and checkpoint store URLs: validated at parse time, errors name the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_integrations.hooks.stream_checkpoints import DEFAULT_FILE, check_store_url, store_url
from airflow_provider_integrations.hooks.stream_windows import record, restore
from airflow_provider_integrations.hooks.streams import StreamSpec, window_from_spec, window_to_spec
from airflow_provider_integrations.streaming import Event, StreamConfigError, WindowSpec


def field_of(spec: Any) -> str:
    with pytest.raises(StreamConfigError) as caught:
        StreamSpec.from_spec(spec)
    return caught.value.field


SSE = {"kind": "sse", "conn_id": "partner", "path": "/events"}


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ("sse", "source"),
        ({"kind": "kafka", "conn_id": "c"}, "source.kind"),
        ({"kind": "sse", "path": "/x"}, "source.conn_id"),
        ({"kind": "sse", "conn_id": "c"}, "source.path"),
        ({"kind": "pg_notify", "conn_id": "c", "channel": ""}, "source.channel"),
        ({"kind": "pg_table", "conn_id": "c"}, "source.table"),
        ({**SSE, "position_field": "seq"}, "source.position_field"),  # SSE resumes by event id
        ({**SSE, "params": ["a"]}, "source.params"),
        ({**SSE, "params": {"when": object()}}, "source.params.when"),
        ({**SSE, "max_buffered": 0}, "source.max_buffered"),
        ({**SSE, "reconnect_delay": -1}, "source.reconnect_delay"),
        ({"kind": "websocket", "conn_id": "c", "path": "/ws", "heartbeat": 0}, "source.heartbeat"),
        ({"kind": "pg_table", "conn_id": "c", "table": "t", "start": "middle"}, "source.start"),
        ({"kind": "pg_table", "conn_id": "c", "table": "t", "batch_size": True}, "source.batch_size"),
        ({**SSE, "name": ""}, "source.name"),
    ],
)
def test_a_bad_spec_is_refused_naming_the_field(spec: Any, field: str) -> None:
    assert field_of(spec) == field


@pytest.mark.parametrize(
    ("group", "name"),
    [
        ("headers", "Authorization"),
        ("headers", "X-Api-Key"),
        ("params", "access_token"),
        ("params", "apikey"),
    ],
)
def test_credentials_are_refused_and_not_repeated(group: str, name: str) -> None:
    with pytest.raises(StreamConfigError) as caught:
        StreamSpec.from_spec({**SSE, group: {name: "s3cr3t-value"}})
    assert caught.value.field == f"source.{group}.{name}"
    assert "s3cr3t" not in str(caught.value) and "connection" in str(caught.value)


def test_the_plain_form_is_canonical_and_round_trips() -> None:
    spec = StreamSpec.from_spec(
        {"path": "/e", "params": {"b": 2, "a": 1}, "kind": "ndjson", "conn_id": "p", "position_field": "seq"}
    )
    plain = spec.to_spec()
    assert list(plain) == sorted(plain) and list(plain["params"]) == ["a", "b"]
    assert StreamSpec.from_spec(json.loads(json.dumps(plain))) == spec
    assert spec.stream_name == "ndjson:p:/e?a=1&b=2"
    assert StreamSpec.from_spec({**plain, "name": "orders"}).stream_name == "orders"


def test_replayable_sources() -> None:
    assert StreamSpec.from_spec(SSE).replayable_from(None)
    assert not StreamSpec.from_spec({"kind": "pg_notify", "conn_id": "c", "channel": "x"}).replayable_from(5)
    tail = StreamSpec.from_spec({"kind": "pg_table", "conn_id": "c", "table": "t", "start": "end"})
    assert not tail.replayable_from(None) and tail.replayable_from(10)


def test_window_specs() -> None:
    assert window_from_spec({"max_events": 5}) == WindowSpec(max_events=5)
    assert window_to_spec(WindowSpec(max_seconds=1.5)) == {
        "max_events": None,
        "max_bytes": None,
        "max_seconds": 1.5,
    }
    for bad, field in [
        ({}, "window.WindowSpec"),
        ({"max_event": 5}, "window.max_event"),
        ({"max_bytes": 0}, "window.max_bytes"),
    ]:
        with pytest.raises(StreamConfigError) as caught:
            window_from_spec(bad)
        assert caught.value.field == field


@pytest.mark.parametrize(
    "url",
    ["sqlite:///var/lib/af/c.db", "postgres_conn://warehouse", "postgres_conn://warehouse?schema=s&table=t"],
)
def test_checkpoint_store_urls(url: str) -> None:
    assert check_store_url(url) == url


@pytest.mark.parametrize(
    "url",
    ["sqlite://relative.db", "sqlite:///", "postgres_conn://", "postgres_conn://c?user=x", "postgresql://u@h/db",
     "postgres_conn://u:secret@c"],
)  # fmt: skip
def test_bad_checkpoint_store_urls_name_the_option_and_hide_passwords(url: str) -> None:
    with pytest.raises(StreamConfigError) as caught:
        check_store_url(url)
    assert caught.value.field == "[integrations] stream_checkpoints"
    assert "secret" not in str(caught.value)


def test_the_default_store_is_a_file_under_airflow_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.delenv("AIRFLOW__INTEGRATIONS__STREAM_CHECKPOINTS", raising=False)
    assert store_url() == f"sqlite:///{tmp_path}/{DEFAULT_FILE}"
    monkeypatch.setenv("AIRFLOW__INTEGRATIONS__STREAM_CHECKPOINTS", "postgres_conn://pg")
    assert store_url() == "postgres_conn://pg"
    with pytest.raises(StreamConfigError, match="checkpoint_store"):
        store_url("mysql://x")


@pytest.mark.parametrize("data", ["text é", b'{"a": 1}', b"\xff\x00binary"])
def test_events_survive_the_trip_through_json(data: str | bytes) -> None:
    event = Event(7, "created", data, 1700000000.5, "k1")
    back = restore(json.loads(json.dumps(record(event))))
    assert (back.position, back.type, back.data, back.received_at, back.key) == (
        7,
        "created",
        data,
        1700000000.5,
        "k1",
    )
