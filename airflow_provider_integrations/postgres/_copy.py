"""What the bulk loaders share: the target's column catalog and the mapping of a failed COPY to the row.

A server-side COPY error names the record in its ``context`` diagnostic field (``COPY t, line 3,
column b: "x"``); the line is the record number within the data we sent, which each loader maps back to
its caller's row or file line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from airflow_provider_integrations.postgres.errors import PgDataError, PgError, describe, translate
from airflow_provider_integrations.postgres.ident import qualified

_LINE = re.compile(r", line (\d+)")


@dataclass(frozen=True, slots=True)
class TableColumn:
    name: str
    type: str  # as format_type() spells it, usable in DDL and casts: "character varying(3)"
    not_null: bool


async def table_columns(conn: Any, table: str, schema: str | None) -> dict[str, TableColumn]:
    """The table's live columns in order; a missing table raises :class:`PgError` (42P01)."""
    rows = await conn.fetch(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull"
        " FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped"
        " ORDER BY a.attnum",
        qualified(table, schema),
    )
    return {r["attname"]: TableColumn(r["attname"], r["type"], r["attnotnull"]) for r in rows}


def check_columns(
    available: dict[str, TableColumn], columns: Sequence[str], table: str, schema: str | None
) -> list[TableColumn]:
    missing = [c for c in columns if c not in available]
    if missing:
        raise PgError(
            f"table {qualified(table, schema)} has no column {missing[0]!r}; it has {', '.join(available)}",
            sqlstate="42703",
        )
    if len(set(columns)) != len(columns):
        raise PgError(f"duplicate column in {list(columns)!r}")
    return [available[c] for c in columns]


def copy_count(status: str) -> int:
    """Rows loaded, from the command tag ``COPY 200000``."""
    return int(status.rsplit(" ", 1)[-1])


def copy_error(exc: Exception, columns: Sequence[str], to_row: Callable[[int], int] | None = None) -> PgError:
    """Translate a failed COPY, naming the caller's row (``to_row`` maps the record number) and column."""
    error = translate(exc)
    if not isinstance(exc, asyncpg.PostgresError):
        return error
    context = str(exc.context or "")
    match = _LINE.search(context)
    column = exc.column_name or _column_in(context, columns)
    if match is None and column is None:
        return error
    record = int(match.group(1)) if match else None
    row = to_row(record) if to_row and record is not None else record
    return PgDataError(describe(exc), sqlstate=exc.sqlstate, row_number=row, column=column)


def _column_in(context: str, columns: Sequence[str]) -> str | None:
    # "COPY t, line 2, column c" (binary) or "..., column c: "value"" (text/CSV). Matching the known
    # names, longest first, copes with column names that contain commas, colons or spaces.
    for name in sorted(columns, key=len, reverse=True):
        marker = f", column {name}"
        at = context.find(marker)
        if at >= 0 and context[at + len(marker) : at + len(marker) + 1] in ("", ":"):
            return name
    return None
