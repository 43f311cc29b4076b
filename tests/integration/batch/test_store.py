"""The crash-safe files (http/batch_store.py): what survives a crash at each point of a commit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_integrations.http.batch_store import BatchStore, CheckpointError
from tests.integration.batch.conftest import read_outcomes


def outcome(item: int, batch: int, ok: bool = True, attempts: int = 1) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": item, "batch": batch, "attempts": attempts}
    if ok:
        doc["outcome"] = "succeeded"
    else:
        doc |= {"outcome": "failed", "retriable": False, "error": "bad"}
    return doc


def paths(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "state" / "outcomes.jsonl", tmp_path / "state" / "checkpoint"


async def test_commit_then_resume_counts_acknowledged_batches(tmp_path: Path) -> None:
    outcomes, checkpoint = paths(tmp_path)
    with BatchStore(outcomes, checkpoint) as store:
        assert store.open("fp").acked == frozenset()
        await store.commit(0, [outcome(0, 0), outcome(1, 0, ok=False)])
        await store.commit(2, [outcome(4, 2, attempts=3)])
    assert checkpoint.read_text().splitlines()[1:] == ["0", "2"]
    with BatchStore(outcomes, checkpoint) as store:
        resumed = store.open("fp")
    assert resumed.acked == {0, 2}
    t = resumed.tally
    assert (t.succeeded, t.failed_permanent, t.failed_retriable, t.retried) == (2, 1, 0, 1)
    assert t.reasons == {"bad": 1}


async def test_outcomes_of_an_unacknowledged_batch_are_dropped(tmp_path: Path) -> None:
    outcomes, checkpoint = paths(tmp_path)
    with BatchStore(outcomes, checkpoint) as store:
        store.open("fp")
        await store.commit(0, [outcome(0, 0)])
    # A crash after step 1 of a commit: batch 1's outcomes are on disk, its acknowledgement is not;
    # and a torn line from a write cut short.
    with outcomes.open("a") as f:
        f.write(json.dumps(outcome(1, 1)) + "\n" + '{"id": 2, "ba')
    with BatchStore(outcomes, checkpoint) as store:
        resumed = store.open("fp")
        assert resumed.acked == {0} and resumed.tally.succeeded == 1
        assert read_outcomes(outcomes) == [outcome(0, 0)]
        await store.commit(1, [outcome(1, 1)])
    assert [o["id"] for o in read_outcomes(outcomes)] == [0, 1], "exactly one line per item"


async def test_a_torn_acknowledgement_does_not_count(tmp_path: Path) -> None:
    outcomes, checkpoint = paths(tmp_path)
    with BatchStore(outcomes, checkpoint) as store:
        store.open("fp")
        await store.commit(0, [outcome(0, 0)])
        await store.commit(1, [outcome(1, 1)])
    checkpoint.write_bytes(checkpoint.read_bytes()[:-1])  # "1\n" lost its newline: not durable
    with BatchStore(outcomes, checkpoint) as store:
        assert store.open("fp").acked == {0}
    assert [o["id"] for o in read_outcomes(outcomes)] == [0]
    assert checkpoint.read_text().endswith("\n0\n")


async def test_outcomes_without_a_checkpoint_are_not_trusted(tmp_path: Path) -> None:
    outcomes, checkpoint = paths(tmp_path)
    outcomes.parent.mkdir(parents=True)
    outcomes.write_text(json.dumps(outcome(0, 0)) + "\n")
    with BatchStore(outcomes, checkpoint) as store:
        assert store.open("fp").acked == frozenset()
    assert outcomes.read_text() == ""


async def test_other_input_is_refused_and_fresh_starts_over(tmp_path: Path) -> None:
    outcomes, checkpoint = paths(tmp_path)
    with BatchStore(outcomes, checkpoint) as store:
        store.open("fp-a")
        await store.commit(0, [outcome(0, 0)])
    with pytest.raises(CheckpointError, match="written for other input items"):
        BatchStore(outcomes, checkpoint).open("fp-b")
    with BatchStore(outcomes, checkpoint) as store:
        assert store.open("fp-b", fresh=True).acked == frozenset()
    assert outcomes.read_text() == "" and json.loads(checkpoint.read_text())["fingerprint"] == "fp-b"


async def test_commit_before_open_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="open"):
        await BatchStore(*paths(tmp_path)).commit(0, [])
