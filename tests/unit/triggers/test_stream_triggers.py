"""StreamWindowTrigger and StreamEventTrigger without I/O: kwargs, identity, filtering, payloads."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest
from airflow.sdk import DAG, Asset, AssetWatcher

from airflow_provider_integrations.operators.streams import PostgresSink, StreamBatchOperator
from airflow_provider_integrations.streaming import Event, StreamConfigError, Window
from airflow_provider_integrations.triggers.stream_events import StreamEventTrigger
from airflow_provider_integrations.triggers.streams import StreamWindowTrigger

SSE = {"kind": "sse", "conn_id": "partner", "path": "/events", "key_field": "key"}


def event(seq: int, etype: str = "created", key: str = "k1", data: str | None = None) -> Event:
    return Event(str(seq), etype, data or json.dumps({"seq": seq, "total": seq * 10}), 1.0, key)


def roundtrip(trigger: Any) -> Any:
    classpath, kwargs = trigger.serialize()
    rebuilt = type(trigger)(**json.loads(json.dumps(kwargs)))
    assert rebuilt.serialize() == (classpath, kwargs)
    return rebuilt


def test_window_trigger_kwargs_round_trip() -> None:
    trigger = StreamWindowTrigger(
        source=SSE, window={"max_events": 10}, from_position="41", idle_timeout=5, carry={"windows": 2}
    )
    classpath, kwargs = roundtrip(trigger).serialize()
    assert classpath == "airflow_provider_integrations.triggers.streams.StreamWindowTrigger"
    assert kwargs["window"] == {"max_events": 10, "max_bytes": None, "max_seconds": None}
    assert kwargs["from_position"] == "41" and kwargs["carry"] == {"windows": 2}


def test_window_trigger_caps_windows_of_streams_that_cannot_be_replayed() -> None:
    notify = {"kind": "pg_notify", "conn_id": "pg", "channel": "orders"}
    trigger = StreamWindowTrigger(source=notify, window={"max_events": 1000}, max_inline_bytes=20_000)
    assert trigger.inline_only and trigger.effective_window().max_bytes == 20_000
    assert StreamWindowTrigger(source=SSE, window={"max_events": 9}).effective_window().max_bytes is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"window": {"max_events": 0}}, "window.max_events"),
        ({"window": {"max_events": 5}, "idle_timeout": 0}, "idle_timeout"),
        ({"window": {"max_events": 5}, "max_inline_bytes": -1}, "max_inline_bytes"),
    ],
)
def test_window_trigger_refuses_bad_settings(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(StreamConfigError) as caught:
        StreamWindowTrigger(source=SSE, **kwargs)
    assert caught.value.field == field


def test_event_trigger_kwargs_are_deterministic() -> None:
    one = StreamEventTrigger(
        {**SSE, "params": {"b": 1, "a": 2}}, event_types=["updated", "created", "created"]
    )
    two = StreamEventTrigger({"params": {"a": 2, "b": 1}, **SSE}, event_types=["created", "updated"])
    assert one.serialize() == two.serialize()
    assert roundtrip(one).serialize()[1]["event_types"] == ["created", "updated"]
    assert StreamEventTrigger.hash(*one.serialize()) == StreamEventTrigger.hash(*two.serialize())


def test_watchers_differing_only_in_filters_share_one_stream_and_one_checkpoint() -> None:
    base = StreamEventTrigger(SSE)
    filtered = StreamEventTrigger(SSE, event_types=["created"], condition={"jmespath": "total", "gte": 5})
    assert base.shared_stream_key() == filtered.shared_stream_key()
    assert base.consumer_name == filtered.consumer_name and base.consumer_name.startswith("se_")
    others = [
        StreamEventTrigger({**SSE, "path": "/other"}),
        StreamEventTrigger(SSE, consumer="mine"),
        StreamEventTrigger(SSE, per="window", window={"max_events": 5}),
        StreamEventTrigger(SSE, checkpoint_store="sqlite:///tmp/c.db"),
    ]
    keys = {base.shared_stream_key(), *(t.shared_stream_key() for t in others)}
    assert len(keys) == 5
    assert StreamEventTrigger(SSE, consumer="mine").consumer_name == "mine"


def test_filters_by_type_pattern_and_condition() -> None:
    trigger = StreamEventTrigger(SSE, event_types=["order.*"], condition={"jmespath": "total", "gte": 50})
    assert trigger.matches(event(5, "order.created")) and trigger.matches(event(9, "order.paid"))
    assert not trigger.matches(event(4, "order.created"))  # total 40
    assert not trigger.matches(event(9, "invoice.created"))
    assert not trigger.matches(event(9, "order.created", data="not json"))


def test_payloads_per_event_and_per_window() -> None:
    trigger = StreamEventTrigger(SSE, event_types=["created"], max_payload_bytes=100)
    assert trigger.payload(event(1, "deleted")) is None
    payload = trigger.payload(event(3))
    assert payload == {
        "stream": "sse:partner:/events", "position": "3", "type": "created", "key": "k1",
        "data": {"seq": 3, "total": 30}, "received_at": 1.0, "truncated": False,
    }  # fmt: skip
    big = trigger.payload(event(4, data=json.dumps({"pad": "x" * 200})))
    assert big is not None and big["data"] is None and big["truncated"]
    assert trigger.payload(event(5, data="plain text"))["data"] == "plain text"  # type: ignore[index]

    windowed = StreamEventTrigger(SSE, per="window", window={"max_events": 3}, event_types=["created"])
    window = Window([event(1), event(2, "deleted"), event(3)], 0.0, 1.0, "count")
    out = windowed.payload(window)
    assert out is not None and (out["count"], out["window_count"], out["last_position"]) == (2, 3, "3")
    assert [e["position"] for e in out["events"]] == ["1", "3"]
    assert windowed.payload(Window([event(2, "deleted")], 0.0, 1.0, "count")) is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"event_types": "created"}, "event_types"),
        ({"event_types": ["ok", ""]}, "event_types[1]"),
        ({"per": "window"}, "window"),
        ({"window": {"max_events": 5}}, "window"),
        ({"per": "batch"}, "per"),
        ({"checkpoint_store": "redis://x"}, "checkpoint_store"),
        ({"reopen_after": 0}, "reopen_after"),
    ],
)
def test_event_trigger_refuses_bad_settings(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(StreamConfigError) as caught:
        StreamEventTrigger(SSE, **kwargs)
    assert caught.value.field == field


def test_a_bad_condition_names_its_field() -> None:
    with pytest.raises(ValueError, match=r"condition\.equls|condition"):
        StreamEventTrigger(SSE, condition={"jmespath": "a", "equls": 1})


def test_the_event_trigger_is_accepted_by_an_asset_watcher() -> None:
    asset = Asset("orders", watchers=[AssetWatcher(name="w", trigger=StreamEventTrigger(SSE))])
    assert asset.watchers[0].trigger.serialize()[0].endswith("StreamEventTrigger")


def test_operator_validates_at_parse_time() -> None:
    with DAG("d", schedule=None, start_date=datetime(2025, 1, 1, tzinfo=timezone.utc)):
        for i, (kwargs, field) in enumerate(
            [
                ({"source": {**SSE, "kind": "x"}}, "source.kind"),
                ({"window": {"max_seconds": 0}}, "window.max_seconds"),
                ({"sink": "not callable"}, "sink"),
                ({"max_windows": 0}, "max_windows"),
                ({"checkpoint_store": "sqlite://x"}, "checkpoint_store"),
                ({"reread_timeout": 0}, "reread_timeout"),
            ]
        ):
            args: dict[str, Any] = {"source": SSE, "window": {"max_events": 5}, "sink": print, **kwargs}
            with pytest.raises(StreamConfigError) as caught:
                StreamBatchOperator(task_id=f"t{i}", **args)
            assert caught.value.field == field, kwargs
    for bad, field in [
        ({"columns": {}}, "sink.columns"),
        ({"columns": {"a": "$nope"}}, "sink.columns.a"),
        ({"columns": {"a": "a"}, "keys": ["b"]}, "sink.keys"),
    ]:
        with pytest.raises(StreamConfigError) as caught:
            PostgresSink(table="t", **bad)
        assert caught.value.field == field
