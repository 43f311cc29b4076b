"""``PostgresBulkLoadOperator``: COPY rows (XCom, a CSV/JSONL file, or an upstream task) into a table."""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal, cast

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_integrations.bridge import run_sync
from airflow_provider_integrations.exceptions import ConnectionConfigError
from airflow_provider_integrations.hooks.postgres import AsyncPostgresHook
from airflow_provider_integrations.postgres.bulk import copy_csv, copy_jsonl, upsert_records
from airflow_provider_integrations.postgres.errors import PgDataError, PgError, PgRetriableError, translate
from airflow_provider_integrations.postgres.ident import column_list, qualified, quote_ident
from airflow_provider_integrations.postgres.pool import PgPool

FILE_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


class _Pinned:
    """One connection posing as a pool, so the loaders run inside the caller's transaction."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        try:
            yield self._conn
        except Exception as exc:
            raise translate(exc) from exc


class PostgresBulkLoadOperator(BaseOperator):
    """Insert or upsert rows into a PostgreSQL table through COPY, atomically.

    Give exactly one source:

    - ``rows``: a list of rows (sequences in ``columns`` order, or mappings keyed by column; a missing
      key loads NULL), e.g. ``extract.output``; a string is parsed as JSON
      (``"{{ ti.xcom_pull('extract') | tojson }}"``);
    - ``path``: a ``.csv`` file whose header names ``columns``, or a ``.jsonl`` file of objects;
    - ``upstream_task_id``: the task whose return value holds the rows.

    Every source reaches the server as text that it parses as the target column's type, so JSON from
    XCom (dates and decimals as strings) loads like Python values (``str()`` of a ``date`` or
    ``Decimal``); a list loads into a ``json``/``jsonb`` column, not an array. A rejected row fails the
    task without retries, naming the row and column, and nothing is committed; re-running an upsert
    leaves the same table.

    :param mode: ``insert`` (COPY) or ``upsert`` (COPY into a staging table, then
        ``INSERT ... ON CONFLICT (keys) DO UPDATE``, one transaction).
    :param keys: the columns of a unique constraint, for ``upsert``.
    :return: ``{"inserted": n, "updated": m, "unchanged": k}``.
    """

    template_fields: Sequence[str] = ("table", "rows", "path")
    template_fields_renderers = {"rows": "json"}
    ui_color = "#dcfce7"

    def __init__(
        self,
        *,
        table: str,
        columns: Sequence[str],
        postgres_conn_id: str = AsyncPostgresHook.default_conn_name,
        mode: Literal["insert", "upsert"] = "insert",
        keys: Sequence[str] | None = None,
        rows: Any = None,
        path: str | None = None,
        upstream_task_id: str | None = None,
        schema: str | None = None,
        pool_options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.table, self.columns, self.schema = table, list(columns), schema
        self.postgres_conn_id = postgres_conn_id
        self.mode, self.keys = mode, list(keys or [])
        self.rows, self.path, self.upstream_task_id = rows, path, upstream_task_id
        self.pool_options = dict(pool_options or {})
        if mode not in ("insert", "upsert"):
            raise ValueError(f"mode must be 'insert' or 'upsert', got {mode!r}")
        if not self.columns:
            raise ValueError("columns must name at least one column")
        if mode == "upsert" and (not self.keys or not set(self.keys) <= set(self.columns)):
            raise ValueError(f"upsert needs keys, a subset of columns {self.columns}; got {self.keys}")
        if sum(x is not None for x in (rows, path, upstream_task_id)) != 1:
            raise ValueError("give exactly one of rows, path, upstream_task_id")

    def execute(self, context: Context) -> dict[str, int]:
        hook = AsyncPostgresHook(self.postgres_conn_id, pool_options=self.pool_options)
        target = qualified(self.table, self.schema)
        source: str | list[str]
        if self.path is not None:
            fmt = FILE_FORMATS.get(Path(self.path).suffix.lower())
            if fmt is None:
                raise AirflowFailException(f"path {self.path!r}: expected one of {sorted(FILE_FORMATS)}")
            if fmt == "csv":
                self._check_header(self.path)
            source = self.path
        else:
            fmt, source = "jsonl", self._lines(context)
        try:
            result = run_sync(self._load(hook, fmt, source))
        except PgDataError as exc:
            where = f"row {exc.row_number}" if exc.row_number is not None else "a row"
            column = f", column {exc.column!r}" if exc.column else ""
            raise AirflowFailException(
                f"{self.mode} into {target} rejected {where}{column}: {exc.reason}; nothing was committed"
            ) from None
        except PgRetriableError as exc:
            raise AirflowException(f"{self.mode} into {target} failed: {exc}") from None
        except (PgError, ConnectionConfigError) as exc:
            raise AirflowFailException(f"{self.mode} into {target} failed: {exc}") from None
        self.log.info("%s into %s: %s", self.mode, target, result)
        return result

    def _lines(self, context: Context) -> list[str]:
        """The rows as JSON lines: COPY then sends text that the server parses as the column types, so
        XCom's JSON (dates as strings) loads as well as Python values do."""
        rows = self.rows
        if self.upstream_task_id is not None:
            rows = context["ti"].xcom_pull(task_ids=self.upstream_task_id)
        if isinstance(rows, str):
            try:
                rows = json.loads(rows)
            except ValueError:
                raise AirflowFailException("rows is a string but not JSON: render it with | tojson") from None
        if not isinstance(rows, Sequence) or isinstance(rows, (str, bytes)):
            raise AirflowFailException(f"rows must be a list of rows, got {type(rows).__name__}")
        lines = []
        for number, row in enumerate(rows, 1):
            if isinstance(row, Mapping):
                doc = {c: row.get(c) for c in self.columns}
            elif isinstance(row, Sequence) and not isinstance(row, (str, bytes)):
                if len(row) != len(self.columns):
                    raise AirflowFailException(
                        f"row {number} has {len(row)} values, expected {len(self.columns)} ({self.columns})"
                    )
                doc = dict(zip(self.columns, row, strict=True))
            else:
                raise AirflowFailException(
                    f"row {number}: expected a list or a mapping, got {type(row).__name__}"
                )
            # Decimal, dates, UUIDs: their str() is the server's input syntax.
            lines.append(json.dumps(doc, default=str))
        return lines

    def _check_header(self, path: str) -> None:
        with open(path, newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), [])
        if sorted(header) != sorted(self.columns):
            raise AirflowFailException(f"{path}: header {header} does not name the columns {self.columns}")

    async def _load(self, hook: AsyncPostgresHook, fmt: str, source: str | list[str]) -> dict[str, int]:
        async with hook.pool() as pool:
            if self.mode == "insert":
                n = await self._copy(pool, self.table, self.schema, fmt, source)
                return {"inserted": n, "updated": 0, "unchanged": 0}
            # The core upserts typed Python rows: let the server parse the text into a staging table of
            # the target's types, read the typed rows back and upsert them, all in one transaction.
            staging = "_bulk_stage"
            async with pool.connection() as conn, conn.transaction():
                # Only the loaded columns, with the target's types and no constraints: NOT NULL and the
                # like are checked by the upsert, which names the row.
                await conn.execute(
                    f"CREATE TEMP TABLE {quote_ident(staging)} ON COMMIT DROP AS SELECT "
                    f"{column_list(self.columns)} FROM {qualified(self.table, self.schema)} WITH NO DATA"
                )
                pinned = cast(PgPool, _Pinned(conn))
                await self._copy(pinned, staging, None, fmt, source)
                rows = await conn.fetch(f"SELECT {column_list(self.columns)} FROM {quote_ident(staging)}")
                result = await upsert_records(
                    pinned, self.table, self.columns, [tuple(r) for r in rows], self.keys, schema=self.schema
                )
                return {"inserted": result.inserted, "updated": result.updated, "unchanged": result.unchanged}

    async def _copy(
        self, pool: PgPool, table: str, schema: str | None, fmt: str, source: str | list[str]
    ) -> int:
        if fmt == "csv":
            assert isinstance(source, str)
            return await copy_csv(pool, table, source, schema=schema)
        return await copy_jsonl(pool, table, source, self.columns, schema=schema)
