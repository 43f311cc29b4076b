"""The SSE parser (pure): the WHATWG event-stream rules, and chunk boundaries anywhere."""

from __future__ import annotations

import itertools

import pytest

from airflow_provider_integrations.streaming import SseParser, StreamProtocolError


def parse(text: str | bytes, chunks: list[int] | None = None, parser: SseParser | None = None) -> list[tuple]:
    """Feed ``text`` cut at the ``chunks`` offsets; the events as (position, type, data)."""
    raw = text.encode() if isinstance(text, str) else text
    parser = parser or SseParser()
    cuts = [0, *(chunks or []), len(raw)]
    pieces = [raw[a:b] for a, b in itertools.pairwise(cuts)]
    events = [e for piece in pieces for e in parser.feed(piece, 1.0)]
    return [(e.position, e.type, e.data) for e in events]


def test_fields_in_any_order_and_the_canonical_fast_path() -> None:
    text = "id: 1\nevent: created\ndata: a\n\ndata: b\nid: 2\n\nevent: x\ndata: c\n\n"
    assert parse(text) == [("1", "created", "a"), ("2", "message", "b"), ("2", "x", "c")]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert parse('data: {"a":\ndata: 1}\ndata:\n\n') == [(None, "message", '{"a":\n1}\n')]


def test_one_leading_space_is_removed_and_no_more() -> None:
    assert parse("data:  two\n\ndata:none\n\n") == [(None, "message", " two"), (None, "message", "none")]


def test_comments_are_heartbeats_not_events() -> None:
    parser = SseParser()
    assert parse(": ping\n\n: ping\n: again\n\nid: 7\n: inline comment\ndata: x\n\n", parser=parser) == [
        ("7", "message", "x")
    ]
    assert parser.heartbeats == 4


def test_ids_persist_until_replaced_and_nul_ids_are_ignored() -> None:
    text = "id: 5\ndata: a\n\ndata: b\n\nid: 6\x00\ndata: c\n\nid\ndata: d\n\n"
    assert parse(text) == [
        ("5", "message", "a"),
        ("5", "message", "b"),
        ("5", "message", "c"),
        ("", "message", "d"),
    ]


def test_id_without_data_updates_the_last_id_but_dispatches_nothing() -> None:
    parser = SseParser("3")
    assert parse("id: 9\n\nevent: lonely\n\n", parser=parser) == []
    assert parser.last_id == "9"


def test_retry_sets_the_reconnect_delay_only_when_all_digits() -> None:
    parser = SseParser()
    parse("retry: 2500\n\nretry: soon\n\nretry: -1\n\n", parser=parser)
    assert parser.retry_ms == 2500


def test_unknown_fields_and_empty_event_names_are_ignored() -> None:
    assert parse("foo: bar\nevent:\ndata: x\n\n") == [(None, "message", "x")]


def test_an_incomplete_event_waits_for_its_blank_line() -> None:
    parser = SseParser()
    assert parse("id: 1\ndata: partial", parser=parser) == []
    assert parse("\n\n", parser=parser) == [("1", "message", "partial")]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_every_line_ending_and_every_chunk_boundary_give_the_same_events(newline: str) -> None:
    text = (
        f': hello{newline}{newline}id: 1{newline}event: é{newline}data: {{"ü": 1}}{newline}{newline}'
        f"data: two{newline}data: lines{newline}{newline}id: 3{newline}data: 3{newline}{newline}"
    )
    expected = [("1", "é", '{"ü": 1}'), ("1", "message", "two\nlines"), ("3", "message", "3")]
    raw = text.encode()
    assert parse(raw) == expected
    for cut in range(1, len(raw)):
        # One boundary anywhere: inside a CRLF, inside a two-byte UTF-8 character, inside a field name.
        assert parse(raw, [cut]) == expected, cut
    assert parse(raw, list(range(1, len(raw)))) == expected  # a byte at a time


def test_a_lone_cr_at_a_chunk_end_followed_by_data_is_a_line_end() -> None:
    assert parse(b"data: a\r\rdata: b\r", [8]) + parse(b"") == [(None, "message", "a")]


def test_an_event_without_a_blank_line_beyond_the_limit_is_a_protocol_error() -> None:
    parser = SseParser(max_event_bytes=1024)
    with pytest.raises(StreamProtocolError, match="max_line_bytes"):
        parser.feed(b"data: " + b"x" * 2000, 1.0)


def test_key_field_is_read_lazily_from_json_data() -> None:
    parser = SseParser(key_field="account")
    [event] = parser.feed(b'id: 4\ndata: {"account": 42, "v": 1}\n\n', 1.0)
    assert event._key is not None and event._key.__class__.__name__ == "Lazy"
    assert (event.key, event.position, event.json()["v"]) == ("42", "4", 1)
