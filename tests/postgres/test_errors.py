"""The one translation point: classification by SQLSTATE and exception type, against real server errors."""

from __future__ import annotations

import pickle

import asyncpg
import pytest

from airflow_provider_integrations.exceptions import IntegrationError
from airflow_provider_integrations.postgres import (
    PgDataError,
    PgError,
    PgPoolExhaustedError,
    PgRetriableError,
    translate,
)


async def server_error(admin: asyncpg.Connection, sql: str) -> asyncpg.PostgresError:
    with pytest.raises(asyncpg.PostgresError) as info:
        await admin.execute(sql)
    return info.value


@pytest.mark.parametrize(
    ("sql", "cls", "sqlstate"),
    [
        ("SELECT 1/0", PgDataError, "22012"),
        ("SELECT 'x'::int", PgDataError, "22P02"),
        ("SELEC 1", PgError, "42601"),
        ("SELECT * FROM no_such_table_anywhere", PgError, "42P01"),
        ("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40001'; END $$", PgRetriableError, "40001"),
        ("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40P01'; END $$", PgRetriableError, "40P01"),
        ("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '57P01'; END $$", PgRetriableError, "57P01"),
    ],
)
async def test_server_errors_by_sqlstate(
    admin: asyncpg.Connection, sql: str, cls: type, sqlstate: str
) -> None:
    err = translate(await server_error(admin, sql))
    assert type(err) is cls
    assert err.sqlstate == sqlstate
    assert f"[SQLSTATE {sqlstate}]" in str(err)
    assert isinstance(err, IntegrationError)
    assert err.retriable is (cls is PgRetriableError)


async def test_constraint_violation_carries_detail_and_column(admin: asyncpg.Connection, schema: str) -> None:
    await admin.execute(f'CREATE TABLE "{schema}".u (id int PRIMARY KEY, name text NOT NULL)')
    await admin.execute(f'INSERT INTO "{schema}".u VALUES (1, $1)', "a")
    dup = translate(await server_error(admin, f"INSERT INTO \"{schema}\".u VALUES (1, 'b')"))
    assert isinstance(dup, PgDataError) and dup.sqlstate == "23505"
    assert "Key (id)=(1) already exists" in str(dup)
    null = translate(await server_error(admin, f'INSERT INTO "{schema}".u VALUES (2, NULL)'))
    assert isinstance(null, PgDataError) and null.column == "name"


def test_os_and_timeout_errors_are_retriable() -> None:
    refused = translate(ConnectionRefusedError(111, "Connection refused"), context="connect to x")
    assert isinstance(refused, PgRetriableError)
    assert str(refused) == "connect to x: connection failed: Connection refused"
    assert isinstance(translate(TimeoutError()), PgRetriableError)


def test_other_exceptions_pass_through_unchanged() -> None:
    with pytest.raises(KeyError):
        translate(KeyError("mine"))
    err = PgError("already typed")
    assert translate(err) is err


@pytest.mark.parametrize(
    "err",
    [
        PgError("boom", sqlstate="42601"),
        PgRetriableError("again", sqlstate="40001"),
        PgPoolExhaustedError("reports", 4, 2.5, waiting=7),
        PgDataError("bad", sqlstate="22P02", row_number=3, column="n"),
    ],
)
def test_errors_survive_pickling(err: PgError) -> None:
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err)
    assert str(back) == str(err)
    assert back.sqlstate == err.sqlstate
    assert vars(back) == vars(err)


def test_data_error_names_row_and_column() -> None:
    err = PgDataError("not an integer", row_number=3, column="n")
    assert str(err) == "row 3, column 'n': not an integer"
    assert err.reason == "not an integer"
