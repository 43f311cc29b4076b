"""Typed streaming errors.

::

    IntegrationError
    └── StreamError                  a stream failed; ``stream`` names it, ``position`` is the last one read
        ├── StreamConfigError        a source, window or store was given an invalid argument (also ValueError)
        ├── StreamProtocolError      the server broke the stream's format (oversized line, no position field)
        ├── StreamGaveUpError        ``attempts`` connection attempts failed in a row; ``__cause__``: the last
        └── CheckpointError          a checkpoint could not be loaded or committed

Transport failures keep their own types while a source retries them (``http.errors.RetriableError``,
``postgres.errors.PgRetriableError``); fatal ones (``AuthenticationError``, ``NotFoundError``, a
``PgError`` that is not retriable) reach the consumer unchanged, so callers classify them as elsewhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_integrations.exceptions import IntegrationError

if TYPE_CHECKING:
    from airflow_provider_integrations.streaming.events import Position

__all__ = [
    "CheckpointError",
    "StreamConfigError",
    "StreamError",
    "StreamGaveUpError",
    "StreamProtocolError",
]


class StreamError(IntegrationError):
    def __init__(self, message: str, *, stream: str = "", position: Position | None = None) -> None:
        super().__init__(message)
        self.stream = stream
        self.position = position

    def __str__(self) -> str:
        where = f"stream {self.stream!r}" if self.stream else ""
        if self.position is not None:
            where += f"{' ' if where else ''}at position {self.position!r}"
        return f"{where}: {self.args[0]}" if where else str(self.args[0])

    def __reduce__(self) -> tuple[object, ...]:
        # Exceptions pickle as ``cls(*args)``, which does not fit the keyword-only signatures here.
        return (_restore, (type(self), self.args, self.__dict__))


class StreamConfigError(StreamError, ValueError):
    """``field`` names the argument; the message says what was expected."""

    def __init__(self, field: str, expected: str, value: object, *, stream: str = "") -> None:
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        super().__init__(f"{field} = {shown}: expected {expected}", stream=stream)
        self.field = field
        self.expected = expected


class StreamProtocolError(StreamError):
    pass


class StreamGaveUpError(StreamError):
    def __init__(self, message: str, *, attempts: int, stream: str = "", position: Position | None = None):
        super().__init__(message, stream=stream, position=position)
        self.attempts = attempts


class CheckpointError(StreamError):
    pass


def _restore(cls: type[StreamError], args: tuple[object, ...], state: dict[str, object]) -> StreamError:
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc
