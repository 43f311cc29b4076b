"""Events, options, the error tree and the source protocol (no I/O)."""

from __future__ import annotations

import pickle

import pytest

from airflow_provider_integrations.connections.http_config import HttpClientConfig
from airflow_provider_integrations.exceptions import IntegrationError
from airflow_provider_integrations.postgres import PgConfig
from airflow_provider_integrations.streaming import (
    CheckpointError,
    Event,
    NdjsonSource,
    PgNotifySource,
    PgTableTail,
    Source,
    SseSource,
    StreamConfigError,
    StreamError,
    StreamGaveUpError,
    StreamOptions,
    StreamProtocolError,
    WebSocketSource,
)
from airflow_provider_integrations.streaming.events import LAZY, JsonFields


def test_json_positions_and_keys_are_parsed_once_and_only_when_asked() -> None:
    fields = JsonFields("seq", "account")
    event = Event(LAZY, "t", b'{"seq": 7, "account": 12}', 0.0, LAZY, fields)
    assert event._pos is LAZY and event._key is LAZY  # nothing parsed on construction
    assert event.position == 7
    assert event.key == "12" and event.json() is event.json()


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"seq": true}', "'seq'"),
        (b"{}", "'seq'"),
    ],
)
def test_a_missing_or_malformed_position_is_a_protocol_error(data: bytes, match: str) -> None:
    event = Event(LAZY, "t", data, 0.0, None, JsonFields("seq"))
    with pytest.raises(StreamProtocolError, match=match):
        _ = event.position


def test_size_counts_utf8_bytes() -> None:
    assert Event(1, "t", b"abc", 0.0).size == 3
    assert Event(1, "t", "héllo", 0.0).size == 6
    assert "position=1" in repr(Event(1, "t", "x" * 500, 0.0))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_buffered": 0}, "max_buffered"),
        ({"max_buffered": True}, "max_buffered"),
        ({"read_timeout": 0}, "read_timeout"),
        ({"max_failures": 0}, "max_failures"),
        ({"chunk_size": 10}, "chunk_size"),
        ({"max_line_bytes": "big"}, "max_line_bytes"),
    ],
)
def test_options_name_the_bad_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(StreamConfigError) as caught:
        StreamOptions(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError) and f"{field} = " in str(caught.value)


def test_error_tree_and_pickling() -> None:
    assert issubclass(StreamError, IntegrationError)
    for error in (
        StreamProtocolError("bad line", stream="s", position=3),
        StreamGaveUpError("gave up", attempts=4, stream="s", position="9"),
        StreamConfigError("heartbeat", "seconds > 0", -1, stream="s"),
        CheckpointError("cannot commit", stream="s"),
    ):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error) and copy.__dict__ == error.__dict__
    assert str(StreamProtocolError("bad", stream="s", position=3)) == "stream 's' at position 3: bad"


def test_every_source_follows_the_protocol_and_checks_its_arguments() -> None:
    http = HttpClientConfig(base_url="http://127.0.0.1:9")
    pg = PgConfig(database="test")
    sources = [
        SseSource(http, "/s"),
        NdjsonSource(http, "/n"),
        WebSocketSource(http, "/w"),
        PgNotifySource(pg, "ch"),
        PgTableTail(pg, "outbox"),
    ]
    assert all(isinstance(source, Source) for source in sources)
    assert [s.name for s in sources[:2]] == ["http://127.0.0.1:9/s", "http://127.0.0.1:9/n"]
    assert sources[3].name == "postgres@127.0.0.1:5432/test#ch"
    assert "secret" not in SseSource(HttpClientConfig(base_url="http://u:secret@h:1"), "/s").name
    with pytest.raises(StreamConfigError, match="config"):
        SseSource({"base_url": "http://x"}, "/s")  # type: ignore[arg-type]
    with pytest.raises(StreamConfigError, match="heartbeat"):
        WebSocketSource(http, "/w", heartbeat=0)
    with pytest.raises(StreamConfigError, match="channel"):
        PgNotifySource(pg, "")
    with pytest.raises(StreamConfigError, match="from_position"):
        SseSource(http, "/s").open(1.5)  # type: ignore[arg-type]


async def test_reading_before_start_says_how_to_start() -> None:
    source = SseSource(HttpClientConfig(base_url="http://127.0.0.1:9"), "/s")
    with pytest.raises(StreamError, match=r"async with source\.open"):
        await source.read_batch()
