"""Quoting of SQL identifiers: table, schema, column and channel names are never pasted in raw.

asyncpg has the same helper, but it is private (``asyncpg.utils._quote_ident``).
"""

from __future__ import annotations

from collections.abc import Iterable


def quote_ident(name: str) -> str:
    """``name`` as a double-quoted identifier, case kept: ``we"ird`` -> ``"we""ird"``."""
    if not name or "\x00" in name:
        raise ValueError(f"invalid SQL identifier {name!r}")
    return '"' + name.replace('"', '""') + '"'


def qualified(table: str, schema: str | None = None) -> str:
    """``"schema"."table"``, or ``"table"`` resolved through the ``search_path``."""
    return f"{quote_ident(schema)}.{quote_ident(table)}" if schema else quote_ident(table)


def column_list(columns: Iterable[str]) -> str:
    return ", ".join(quote_ident(c) for c in columns)
