"""The example DAGs: they import cleanly, follow the house rules, do no I/O at import, and run green.

The end-to-end tests go through ``scripts/run_examples.py``'s :func:`run_one` (``dag.test()`` in a child
process against the sandbox), exactly like the demo, so each DAG's own assertions are what is tested.
"""

from __future__ import annotations

import importlib.util
import socket
import textwrap
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DAG, BaseHook, Connection

from tests.examples.conftest import RUNNER

EXAMPLES_DIR: Path = RUNNER.EXAMPLES_DIR
DAG_FILES = sorted(p for p in EXAMPLES_DIR.glob("*.py") if not p.name.startswith("_"))
NUMBERED = RUNNER.discover()


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


@pytest.fixture(scope="module")
def dagbag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(EXAMPLES_DIR))


# -- static checks ----------------------------------------------------------------------------------


def test_examples_exist() -> None:
    assert NUMBERED, f"no example DAG matches {RUNNER.DEFAULT_GLOB} in {EXAMPLES_DIR}"


def test_dagbag_has_no_import_errors_or_warnings(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    # Deprecated import paths and the like surface here.
    assert dagbag.captured_warnings == {}


@pytest.mark.parametrize("path", DAG_FILES, ids=_ids(DAG_FILES))
def test_dag_follows_the_example_rules(dagbag: Any, path: Path) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    dags = [dag for dag in dagbag.dags.values() if Path(dag.fileloc) == path]
    assert [dag.dag_id for dag in dags] == [path.stem], "one DAG per file, dag_id == file stem"
    (dag,) = dags
    assert dag.tags, "tags are required"
    assert dag.doc_md and dag.doc_md.strip(), "doc_md (the module docstring) is required"
    # The scheduler and dag.test() both serialize the DAG; operators with bad template_fields fail here.
    DagSerialization.serialize_dag(dag)


@pytest.mark.parametrize("path", DAG_FILES, ids=_ids(DAG_FILES))
def test_dag_file_does_no_io_at_import(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"{path.name} does I/O at import time")

    for name in ("connect", "connect_ex", "sendto"):
        monkeypatch.setattr(socket.socket, name, refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(BaseHook, "get_connection", classmethod(refuse))
    monkeypatch.setattr(Connection, "get", classmethod(refuse))

    spec = importlib.util.spec_from_file_location(f"io_check_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert any(isinstance(value, DAG) for value in vars(module).values())


# -- the runner's own logic -------------------------------------------------------------------------


def test_requires_is_read_without_importing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    example = tmp_path / "108_99_99_needs_postgres.py"
    example.write_text('import does_not_exist\nREQUIRES = ["PostgreSQL"]\n')
    assert RUNNER.declared_requirements(example) == ["postgresql"]

    with socket.socket() as probe:  # a port that is certainly closed: bound, never listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        monkeypatch.setitem(RUNNER.SERVERS, "postgresql", ("PostgreSQL", "127.0.0.1", port))
        result = RUNNER.run_one(example, {})
    assert (result.status, result.note) == ("skipped", f"needs PostgreSQL at 127.0.0.1:{port}")


def test_failure_note_names_the_task_that_failed_the_run() -> None:
    output = textwrap.dedent(
        """\
        [DAG TEST] starting task_id=tolerated map_index=-1
        Traceback (most recent call last):
          File "x.py", line 1, in tolerated
        airflow.sdk.exceptions.AirflowFailException: expected
        [DAG TEST] starting task_id=check map_index=-1
        Traceback (most recent call last):
          File "x.py", line 2, in check
        AssertionError: 3 != 4
        """
    )
    assert RUNNER.failure_note(output, {"culprits": ["check"]}) == "check: AssertionError: 3 != 4"
    assert RUNNER.failure_note(output, None).startswith("airflow.sdk.exceptions.AirflowFailException")


def test_table_lists_every_result() -> None:
    results = [
        RUNNER.Result("108_a", Path("a.py"), "success", 9.87, "3 tasks"),
        RUNNER.Result("108_b", Path("b.py"), "skipped", 0.0, "needs PostgreSQL at 127.0.0.1:5432"),
    ]
    table = RUNNER.format_table(results).splitlines()
    assert table[0].split() == ["DAG", "id", "result", "duration", "note"]
    assert table[2].split() == ["108_a", "success", "9.9", "s", "3", "tasks"]
    assert "needs PostgreSQL at 127.0.0.1:5432" in table[3]


# -- end to end -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_failing_dag_is_reported_with_its_error(tmp_path: Path, example_env: dict[str, str]) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    broken = dags / "108_00_00_broken.py"
    broken.write_text(
        textwrap.dedent(
            """\
            from datetime import datetime, timezone
            from airflow.sdk import DAG, task

            with DAG("108_00_00_broken", schedule=None, start_date=datetime(2025, 1, 1, tzinfo=timezone.utc)):
                @task
                def fine() -> int:
                    return 1

                @task
                def check(value: int) -> None:
                    assert value == 2, f"expected 2, got {value}"

                check(fine())
            """
        )
    )
    env = {**example_env, "AIRFLOW__CORE__DAGS_FOLDER": str(dags)}
    result = RUNNER.run_one(broken, env)
    assert result.status == "failed", result.output[-3000:]
    assert result.note == "check: AssertionError: expected 2, got 1", result.note


@pytest.mark.slow
@pytest.mark.parametrize("path", NUMBERED, ids=_ids(NUMBERED))
def test_example_runs_green_against_the_sandbox(path: Path, example_env: dict[str, str]) -> None:
    result = RUNNER.run_one(path, example_env)
    if result.status == "skipped":
        pytest.skip(result.note)
    tail = "\n".join(result.output.splitlines()[-80:])
    assert result.status == "success", f"{result.note}\n--- last lines of the run ---\n{tail}"
