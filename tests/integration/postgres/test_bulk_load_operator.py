"""PostgresBulkLoadOperator: insert and upsert from rows, CSV and JSONL; bad rows fail atomically."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_integrations.operators.postgres import PostgresBulkLoadOperator
from tests.integration.postgres.conftest import sql

COLUMNS = ["id", "name", "amount", "day"]


class FakeTI:
    def __init__(self, xcoms: dict[str, Any] | None = None) -> None:
        self.xcoms = xcoms or {}

    def xcom_pull(self, task_ids: str) -> Any:
        return self.xcoms[task_ids]


def load(conn_id: str, table: str, context: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, int]:
    kwargs.setdefault("columns", COLUMNS)
    op = PostgresBulkLoadOperator(
        task_id=f"load_{uuid.uuid4().hex[:6]}", postgres_conn_id=conn_id, table=table, **kwargs
    )
    return op.execute(context or {"ti": FakeTI()})  # type: ignore[arg-type]


def contents(table: str) -> list[tuple[Any, ...]]:
    return sql(f"SELECT id, name, amount, day FROM {table} ORDER BY id")


ROWS = [
    [1, "ada", Decimal("10.50"), dt.date(2026, 1, 1)],
    [2, "bob", None, None],
    [3, "cy", Decimal("3"), dt.date(2026, 1, 3)],
]


def test_insert_rows(pg: str, table: str) -> None:
    assert load(pg, table, rows=ROWS) == {"inserted": 3, "updated": 0, "unchanged": 0}
    assert contents(table) == [tuple(r) for r in ROWS]


def test_upsert_rows_is_idempotent(pg: str, table: str) -> None:
    load(pg, table, rows=ROWS)
    changed = [
        {"id": 2, "name": "bob", "amount": Decimal("7.25")},  # missing key "day" loads NULL
        {"id": 4, "name": "dee", "amount": None, "day": dt.date(2026, 1, 4)},
        {"id": 1, "name": "ada", "amount": Decimal("10.50"), "day": dt.date(2026, 1, 1)},
    ]
    first = load(pg, table, rows=changed, mode="upsert", keys=["id"])
    assert first == {"inserted": 1, "updated": 1, "unchanged": 1}
    after = contents(table)
    assert after[1] == (2, "bob", Decimal("7.25"), None) and len(after) == 4
    assert load(pg, table, rows=changed, mode="upsert", keys=["id"]) == {
        "inserted": 0,
        "updated": 0,
        "unchanged": 3,
    }
    assert contents(table) == after


def test_rows_from_an_upstream_task_or_json_text(pg: str, table: str) -> None:
    # XCom carries JSON: dates and decimals arrive as strings and the server parses them.
    ti = FakeTI({"extract": [[1, "ada", "1.25", "2026-03-01"], {"id": 2, "name": "bob"}]})
    assert load(pg, table, {"ti": ti}, upstream_task_id="extract")["inserted"] == 2
    text = json.dumps([[3, "cy", 2.5, None]])
    assert load(pg, table, rows=text)["inserted"] == 1
    assert contents(table) == [
        (1, "ada", Decimal("1.25"), dt.date(2026, 3, 1)),
        (2, "bob", None, None),
        (3, "cy", Decimal("2.50"), None),
    ]


@pytest.mark.parametrize(
    ("rows", "fragment"),
    [
        ([[1, "a"]], "row 1 has 2 values, expected 4"),
        ([[1, "a", None, None], "oops"], "row 2: expected a list or a mapping, got str"),
        ("not json", "rows is a string but not JSON"),
        ({"id": 1}, "rows must be a list of rows, got dict"),
    ],
)
def test_malformed_rows_fail_before_loading(pg: str, table: str, rows: Any, fragment: str) -> None:
    with pytest.raises(AirflowFailException, match=fragment):
        load(pg, table, rows=rows)


def write_csv(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_insert_and_upsert_from_csv(pg: str, table: str, tmp_path: Path) -> None:
    # The header names the columns, in any order.
    first = write_csv(tmp_path / "a.csv", ["name,id,amount,day", "ada,1,10.5,2026-01-01", "bob,2,,"])
    assert load(pg, table, path=first)["inserted"] == 2
    second = write_csv(tmp_path / "b.csv", ["id,name,amount,day", "2,bob,7.25,", "3,cy,,2026-01-03"])
    assert load(pg, table, path=second, mode="upsert", keys=["id"]) == {
        "inserted": 1,
        "updated": 1,
        "unchanged": 0,
    }
    assert contents(table) == [
        (1, "ada", Decimal("10.50"), dt.date(2026, 1, 1)),
        (2, "bob", Decimal("7.25"), None),
        (3, "cy", None, dt.date(2026, 1, 3)),
    ]


def test_insert_and_upsert_from_jsonl(pg: str, table: str, tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(
        '{"id": 1, "name": "ada", "amount": 1.5}\n\n{"id": 2, "name": "bob", "day": "2026-02-01"}\n'
    )
    assert load(pg, table, path=str(path))["inserted"] == 2
    path.write_text('{"id": 2, "name": "bobby", "day": "2026-02-01"}\n{"id": 5, "name": "eve"}\n')
    assert load(pg, table, path=str(path), mode="upsert", keys=["id"]) == {
        "inserted": 1,
        "updated": 1,
        "unchanged": 0,
    }
    assert [r[:2] for r in contents(table)] == [(1, "ada"), (2, "bobby"), (5, "eve")]


@pytest.mark.parametrize("mode", ["insert", "upsert"])
def test_bad_python_row_names_row_and_column_and_commits_nothing(pg: str, table: str, mode: str) -> None:
    load(pg, table, rows=ROWS[:1])
    bad = [[10, "ok", Decimal(1), "2026-01-02"], [11, "bad", "ten", None], [12, "ok", None, None]]
    with pytest.raises(AirflowFailException) as info:
        load(pg, table, rows=bad, mode=mode, keys=["id"])
    message = str(info.value)
    assert "row 2" in message and "column 'amount'" in message and "nothing was committed" in message, message
    assert contents(table) == [tuple(ROWS[0])]


def test_null_in_a_not_null_column_names_row_and_column(pg: str, table: str) -> None:
    with pytest.raises(AirflowFailException) as info:
        load(pg, table, rows=[[1, "a", None, None], [2, "b", None, None], [3, None, None, None]])
    assert "row 3" in str(info.value) and "column 'name'" in str(info.value), str(info.value)
    assert contents(table) == []


@pytest.mark.parametrize("mode", ["insert", "upsert"])
def test_bad_csv_row_names_the_data_row(pg: str, table: str, tmp_path: Path, mode: str) -> None:
    path = write_csv(tmp_path / "bad.csv", ["id,name,amount,day", "1,a,1,", "2,b,x1,", "3,c,2,"])
    with pytest.raises(AirflowFailException) as info:
        load(pg, table, path=path, mode=mode, keys=["id"])
    assert "row 2" in str(info.value) and "column 'amount'" in str(info.value), str(info.value)
    assert contents(table) == []


def test_bad_jsonl_line_names_the_line(pg: str, table: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": 1, "name": "a"}\n{"id": 2, "name": "b", "day": "someday"}\n')
    with pytest.raises(AirflowFailException) as info:
        load(pg, table, path=str(path))
    assert "row 2" in str(info.value) and "column 'day'" in str(info.value), str(info.value)
    assert contents(table) == []


def test_csv_header_must_name_the_columns(pg: str, table: str, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "other.csv", ["id,title", "1,a"])
    with pytest.raises(AirflowFailException, match=r"header \['id', 'title'\] does not name the columns"):
        load(pg, table, path=path)


def test_unknown_table_fails_without_retries(pg: str) -> None:
    with pytest.raises(AirflowFailException, match="no_such_table_it"):
        load(pg, "no_such_table_it", rows=ROWS)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"rows": ROWS, "path": "x.csv"}, "exactly one of rows, path, upstream_task_id"),
        ({}, "exactly one of rows, path, upstream_task_id"),
        ({"rows": ROWS, "mode": "upsert"}, "upsert needs keys"),
        ({"rows": ROWS, "mode": "upsert", "keys": ["nope"]}, "upsert needs keys"),
        ({"rows": ROWS, "mode": "merge"}, "mode must be 'insert' or 'upsert'"),
    ],
)
def test_arguments_are_checked_at_parse_time(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        PostgresBulkLoadOperator(task_id="t", table="t", columns=COLUMNS, **kwargs)
