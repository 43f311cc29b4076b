"""A worker killed mid-run resumes from the checkpoint and sends no acknowledged batch again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from airflow_provider_integrations.sandbox.batch import Faults
from airflow_provider_integrations.sandbox.process import SandboxProcess
from tests.integration.batch import _crash_child as child
from tests.integration.batch.conftest import read_outcomes

ROOT = Path(__file__).resolve().parents[3]
BATCHES = child.ITEMS // child.BATCH_SIZE


def start(sandbox: SandboxProcess, key: str, state: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.Popen(
        [sys.executable, child.__file__, sandbox.url, key, str(state)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def acknowledged(state: Path) -> set[int]:
    lines = (state / "checkpoint").read_text().split("\n")
    return {int(line) for line in lines[1:-1]}  # header first; a torn last entry is not durable


def sends_of(stats: dict[str, Any], batch: int) -> dict[str, int]:
    return {k: n for k, n in stats["sends"].items() if k.startswith(f"crash-{batch}-")}


def test_sigkill_mid_run_then_resume(
    sandbox: SandboxProcess, key: str, tmp_path: Path, batch_stats: Callable[..., dict[str, Any]]
) -> None:
    proc = start(sandbox, key, tmp_path)
    assert proc.stdout is not None
    try:
        seen = 0
        while seen < 5:  # wait for five acknowledgements, then kill without warning
            line = proc.stdout.readline()
            assert line.startswith("acked "), f"child ended early: {line!r}"
            seen += 1
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL

    acked = acknowledged(tmp_path)
    assert 5 <= len(acked) < BATCHES, "killed mid-run, after some acknowledgements"
    before = batch_stats(key, detail=True)

    rerun = start(sandbox, key, tmp_path)
    out, _ = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, out[-2000:]
    summary = json.loads(out.splitlines()[-1].removeprefix("summary "))
    after = batch_stats(key, detail=True)

    # No acknowledged batch reached the partner again, not even as a replayed idempotent request.
    for batch in acked:
        assert sends_of(after, batch) == sends_of(before, batch), batch
        ids = [f"item-{i}" for i in range(batch * child.BATCH_SIZE, (batch + 1) * child.BATCH_SIZE)]
        assert all(after["received"][i] == before["received"][i] for i in ids), batch
    assert summary["batches_resumed"] == len(acked)
    assert acknowledged(tmp_path) == set(range(BATCHES))

    # Every item has exactly one final outcome, and it is the partner's.
    lines = read_outcomes(tmp_path / "outcomes.jsonl")
    counts = Counter(o["id"] for o in lines)
    assert len(counts) == child.ITEMS and set(counts.values()) == {1}
    faults = Faults(0.05, 0.2, 1, "")
    for o in lines:
        rejected = faults.status(o["id"], 1) == "rejected"
        assert o["outcome"] == ("failed" if rejected else "succeeded"), o
    assert summary["succeeded"] + summary["failed"] == child.ITEMS and summary["not_sent"] == 0
    # Batches in flight at the kill were sent again under the same idempotency keys, so the partner
    # applied no item twice.
    assert after["duplicates"] == 0 and after["ok_distinct"] == summary["succeeded"]
