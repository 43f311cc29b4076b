"""Stream source specs: a JSON-serializable description of a stream, turned into a source where it is read.

Triggers and deferred tasks can only carry plain data, so a stream is described by a spec, validated
when the DAG is parsed and built into a :mod:`~airflow_provider_integrations.streaming` source inside
the trigger or on the worker::

    {"kind": "sse", "conn_id": "partner_api", "path": "/orders/events", "key_field": "customer"}
    {"kind": "ndjson", "conn_id": "partner_api", "path": "/export", "position_field": "seq"}
    {"kind": "websocket", "conn_id": "partner_api", "path": "/ws", "position_field": "seq"}
    {"kind": "pg_notify", "conn_id": "warehouse", "channel": "orders"}
    {"kind": "pg_table", "conn_id": "warehouse", "table": "outbox", "notify_channel": "outbox"}

``conn_id`` names an ``integration_http`` connection (HTTP kinds) or a ``postgres`` connection; the other
keys are the keyword arguments of the source class (``params``, ``headers``, ``position_field``,
``batch_size``...) plus the :class:`~airflow_provider_integrations.streaming.StreamOptions` ones
(``max_buffered``, ``read_timeout``, ``max_failures``, ``chunk_size``, ``max_line_bytes``) and
``reconnect_delay`` / ``reconnect_max_delay`` (seconds). ``name`` names the stream in checkpoints;
by default it is built from the kind, connection, path/channel/table and query parameters.

Credentials never go into a spec: it is stored in clear in the DAG and in trigger rows. Headers or
query parameters named like a credential are refused; the connection carries auth.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args
from urllib.parse import urlencode

from airflow_provider_integrations.connections.http_config import HttpClientConfig, RetryPolicy
from airflow_provider_integrations.exceptions import MASKED
from airflow_provider_integrations.hooks.http import IntegrationHttpHook
from airflow_provider_integrations.hooks.postgres import AsyncPostgresHook
from airflow_provider_integrations.postgres.config import PgConfig
from airflow_provider_integrations.streaming import (
    NdjsonSource,
    PgNotifySource,
    PgTableTail,
    SseSource,
    StreamConfigError,
    StreamOptions,
    WebSocketSource,
    WindowSpec,
)
from airflow_provider_integrations.streaming.base import StreamSource

__all__ = [
    "SOURCE_KINDS",
    "SourceKind",
    "StreamSpec",
    "build_source",
    "window_from_spec",
    "window_to_spec",
]

SourceKind = Literal["sse", "ndjson", "websocket", "pg_notify", "pg_table"]
SOURCE_KINDS: Final[tuple[SourceKind, ...]] = get_args(SourceKind)

_HTTP: Final = ("params", "headers", "key_field")
#: Keyword arguments of each source class a spec may set (besides its locator).
SOURCE_OPTIONS: Final[dict[str, tuple[str, ...]]] = {
    "sse": _HTTP,
    "ndjson": (*_HTTP, "position_field", "resume_param", "event_type"),
    "websocket": (*_HTTP, "position_field", "hello", "resume_field", "heartbeat", "event_type"),
    "pg_notify": ("position_field", "key_field"),
    "pg_table": (
        "schema", "id_column", "timestamp_column", "data_column", "key_column", "type_column",
        "batch_size", "poll_interval", "notify_channel", "start", "settle",
    ),
}  # fmt: skip
LOCATORS: Final[dict[str, str]] = {
    "sse": "path",
    "ndjson": "path",
    "websocket": "path",
    "pg_notify": "channel",
    "pg_table": "table",
}
_STREAM_OPTIONS: Final = ("max_buffered", "read_timeout", "max_failures", "chunk_size", "max_line_bytes")
_RECONNECT: Final = ("reconnect_delay", "reconnect_max_delay")
_MAPPINGS: Final = ("params", "headers", "hello")
# Header names and query parameter names that carry credentials (substring match, lower case).
_SECRET_HINTS: Final = ("authorization", "cookie", "token", "secret", "password", "api-key", "api_key",
                        "apikey", "signature", "credential", "session")  # fmt: skip


def _field(name: str) -> str:
    return f"source.{name}"


def _json_value(value: Any, path: str) -> Any:
    """A copy of ``value`` with mapping keys sorted (deterministic kwargs), or an error naming ``path``."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise StreamConfigError(_field(path), "a finite number", value)
        return value
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise StreamConfigError(_field(path), "a JSON object with string keys", value)
        return {k: _json_value(value[k], f"{path}.{k}") for k in sorted(value)}
    if isinstance(value, list | tuple):
        return [_json_value(v, f"{path}[{i}]") for i, v in enumerate(value)]
    raise StreamConfigError(_field(path), "a JSON value (string, number, boolean, null, list, object)", value)


def _check_no_credentials(options: Mapping[str, Any]) -> None:
    for group in ("headers", "params"):
        for name in options.get(group) or {}:
            lowered = name.lower()
            if any(hint in lowered for hint in _SECRET_HINTS):
                raise StreamConfigError(
                    _field(f"{group}.{name}"),
                    "no credentials in a stream spec (it is stored in clear): set the connection's "
                    "authentication instead",
                    MASKED,
                )


@dataclass(frozen=True)
class StreamSpec:
    """A validated stream spec; build it with :meth:`from_spec`, store it with :meth:`to_spec`."""

    kind: SourceKind
    conn_id: str
    locator: str
    options: Mapping[str, Any]
    name: str | None = None

    @classmethod
    def from_spec(cls, spec: StreamSpec | Mapping[str, Any]) -> StreamSpec:
        """Validate ``spec`` (no I/O); errors are :class:`StreamConfigError` naming ``source.<field>``."""
        if isinstance(spec, StreamSpec):
            return spec
        if not isinstance(spec, Mapping):
            raise StreamConfigError("source", "a stream spec (a mapping with 'kind' and 'conn_id')", spec)
        kind = spec.get("kind")
        if kind not in SOURCE_KINDS:
            raise StreamConfigError(_field("kind"), f"one of {', '.join(SOURCE_KINDS)}", kind)
        conn_id = spec.get("conn_id")
        if not isinstance(conn_id, str) or not conn_id.strip():
            raise StreamConfigError(_field("conn_id"), "the id of the connection to read from", conn_id)
        where = LOCATORS[kind]
        locator = spec.get(where)
        if not isinstance(locator, str) or (not locator and where != "path"):
            raise StreamConfigError(_field(where), f"a string (the {where} of a {kind} stream)", locator)
        name = spec.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise StreamConfigError(_field("name"), "a non-empty stream name, or null", name)
        allowed = (*SOURCE_OPTIONS[kind], *_STREAM_OPTIONS, *_RECONNECT)
        options: dict[str, Any] = {}
        for key in sorted(spec):
            if key in ("kind", "conn_id", where, "name"):
                continue
            if key not in allowed:
                raise StreamConfigError(_field(key), f"one of the {kind} options: {', '.join(allowed)}", key)
            value = _json_value(spec[key], key)
            if key in _MAPPINGS and value is not None and not isinstance(value, dict):
                raise StreamConfigError(_field(key), "a JSON object", value)
            options[key] = value
        _check_no_credentials(options)
        built = cls(kind, conn_id.strip(), locator, options, name)
        # The source's own constructor checks the values; placeholder settings, so no lookup and no I/O.
        built._make(PgConfig() if built.is_postgres else HttpClientConfig(base_url="http://spec.invalid"))
        return built

    def to_spec(self) -> dict[str, Any]:
        """The plain-data form (keys sorted): what operators template and triggers serialize."""
        out: dict[str, Any] = {"conn_id": self.conn_id, "kind": self.kind, LOCATORS[self.kind]: self.locator}
        out.update(self.options)
        if self.name is not None:
            out["name"] = self.name
        return {k: out[k] for k in sorted(out)}

    @property
    def is_postgres(self) -> bool:
        return self.kind in ("pg_notify", "pg_table")

    @property
    def stream_name(self) -> str:
        """The stream's name in checkpoints: ``name``, or kind, connection, locator and parameters."""
        if self.name is not None:
            return self.name
        params = self.options.get("params")
        query = f"?{urlencode(sorted(params.items()))}" if params else ""
        return f"{self.kind}:{self.conn_id}:{self.locator}{query}"

    def replayable_from(self, position: object) -> bool:
        """Whether the events after ``position`` can be read again, identically, later.

        NOTIFY is never replayed; a table tail starting at the table's end has no position to replay
        from until it has read an event.
        """
        if self.kind == "pg_notify":
            return False
        return not (position is None and self.kind == "pg_table" and self.options.get("start") == "end")

    def digest(self) -> str:
        """Canonical JSON text of the spec (stable across processes, unlike ``hash()``)."""
        return json.dumps(self.to_spec(), sort_keys=True, separators=(",", ":"))

    def _stream_options(self) -> StreamOptions:
        values = {k: self.options[k] for k in _STREAM_OPTIONS if k in self.options}
        delays = {k: self.options[k] for k in _RECONNECT if self.options.get(k) is not None}
        if delays:
            for key, delay in delays.items():
                if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
                    raise StreamConfigError(_field(key), "seconds >= 0", delay)
            base = float(delays.get("reconnect_delay", 0.5))
            values["backoff"] = RetryPolicy(
                base_delay=base, max_delay=float(delays.get("reconnect_max_delay", 30.0))
            )
        try:
            return StreamOptions(**values)
        except StreamConfigError as exc:
            raise StreamConfigError(_field(exc.field), exc.expected, self.options.get(exc.field)) from None

    def _make(self, config: HttpClientConfig | PgConfig) -> StreamSource:
        """The source of this spec over its connection's parsed ``config``; no I/O."""
        kwargs = {k: self.options[k] for k in SOURCE_OPTIONS[self.kind] if k in self.options}
        kwargs.update(name=self.stream_name, options=self._stream_options())
        try:
            if isinstance(config, PgConfig):
                if self.kind == "pg_notify":
                    return PgNotifySource(config, self.locator, **kwargs)
                return PgTableTail(config, self.locator, **kwargs)
            if self.kind == "sse":
                return SseSource(config, self.locator, **kwargs)
            if self.kind == "ndjson":
                return NdjsonSource(config, self.locator, **kwargs)
            return WebSocketSource(config, self.locator, **kwargs)
        except StreamConfigError as exc:
            field = LOCATORS[self.kind] if exc.field in ("path", "channel", "table") else exc.field
            value = self.options.get(field, self.locator)
            raise StreamConfigError(_field(field), exc.expected, value) from None


async def build_source(spec: StreamSpec) -> StreamSource:
    """Resolve the spec's connection (cached per process) and return its source, not yet opened."""
    if spec.is_postgres:
        return spec._make(await AsyncPostgresHook(spec.conn_id).aget_config())
    return spec._make(await IntegrationHttpHook(spec.conn_id).aget_config())


_WINDOW_FIELDS: Final = ("max_events", "max_bytes", "max_seconds")


def window_from_spec(value: WindowSpec | Mapping[str, Any], field: str = "window") -> WindowSpec:
    """A :class:`WindowSpec` from itself or ``{"max_events": .., "max_bytes": .., "max_seconds": ..}``."""
    if isinstance(value, WindowSpec):
        return value
    if not isinstance(value, Mapping):
        raise StreamConfigError(field, f"a WindowSpec or a mapping of {', '.join(_WINDOW_FIELDS)}", value)
    unknown = sorted(set(value) - set(_WINDOW_FIELDS))
    if unknown:
        raise StreamConfigError(f"{field}.{unknown[0]}", f"one of {', '.join(_WINDOW_FIELDS)}", unknown[0])
    try:
        return WindowSpec(**{k: value[k] for k in _WINDOW_FIELDS if k in value})
    except StreamConfigError as exc:
        raise StreamConfigError(f"{field}.{exc.field}", exc.expected, value.get(exc.field)) from None


def window_to_spec(window: WindowSpec) -> dict[str, Any]:
    """The plain-data form of ``window`` (what triggers serialize)."""
    return {k: getattr(window, k) for k in _WINDOW_FIELDS}
