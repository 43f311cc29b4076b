"""Root of the provider's error tree.

Airflow-free on purpose: parsers, clients and tests raise and catch these without importing Airflow.
HTTP errors subclass :class:`IntegrationError` in ``http.errors``.
"""

from __future__ import annotations

import json
from typing import Any, Final

__all__ = ["MASKED", "MISSING", "ConnectionConfigError", "IntegrationError"]

#: Shown instead of the value of a secret field.
MASKED: Final = "***"


class _Missing:
    """Marks "no value to show" (absent field, unknown key), distinct from an explicit ``null``."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        # A singleton keeps ``value is MISSING`` true across pickling.
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


class IntegrationError(Exception):
    """Base class of every error raised by this provider."""


class ConnectionConfigError(IntegrationError, ValueError):
    """A connection's standard fields or extras are invalid.

    ``path`` is a JSON path into the extras (``$.retry_max_attempts``, ``$.retry_on_statuses[1]``) or the
    name of a standard field (``host``, ``port``, ``schema``, ``login``, ``password``). ``value`` is the
    offending value, :data:`MASKED` for secrets, or :data:`MISSING` when there is nothing to show.
    """

    def __init__(
        self,
        path: str,
        expected: str,
        *,
        value: Any = MISSING,
        secret: bool = False,
        conn_id: str | None = None,
        conn_type: str = "integration_http",
        problem: str | None = None,
    ) -> None:
        self.path = path
        self.expected = expected
        # Masked at construction so no later formatting (str, repr, logging, pickling) can leak it.
        self.value = MASKED if secret and value is not MISSING else value
        self.conn_id = conn_id
        self.conn_type = conn_type
        # Replaces "expected ..." in the message when the value is not the issue (unknown key).
        self.problem = problem
        super().__init__(self._format())

    def _format(self) -> str:
        where = f"{self.conn_type} connection" + (f" {self.conn_id!r}" if self.conn_id else "")
        shown = "" if self.value is MISSING else f" = {_show(self.value)}"
        return f"{where}: {self.path}{shown}: {self.problem or 'expected ' + self.expected}"

    def with_conn_id(self, conn_id: str | None) -> ConnectionConfigError:
        """Return a copy naming ``conn_id`` (validators deeper down do not know it)."""
        return _rebuild({**self._state(), "conn_id": conn_id})

    def _state(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "expected": self.expected,
            "value": self.value,
            "conn_id": self.conn_id,
            "conn_type": self.conn_type,
            "problem": self.problem,
        }

    def __reduce__(self) -> tuple[Any, ...]:
        # Exceptions pickle as ``cls(*args)`` by default, which does not fit the keyword-only signature.
        return (_rebuild, (self._state(),))


def _rebuild(state: dict[str, Any]) -> ConnectionConfigError:
    state = dict(state)
    return ConnectionConfigError(state.pop("path"), state.pop("expected"), **state)


def _show(value: Any, limit: int = 80) -> str:
    text = repr(value) if isinstance(value, str) else _json_like(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_like(value: Any) -> str:
    # Users write extras as JSON, so echo true/false/null rather than Python's spelling.
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=False)
    except (TypeError, ValueError):
        return repr(value)
