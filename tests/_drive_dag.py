"""Child process of the real-triggerer tests: ``dag.test()`` one DAG file, leaving deferrals to a real
``airflow triggerer`` that shares the metadata database.

``dag.test()`` runs a deferred task's trigger inline unless told otherwise; here the trigger rows stay in
the database, the triggerer runs them, and the test loop resumes the task once the triggerer has fired
its event (``python -m tests._drive_dag PATH``; prints one JSON line with the states).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REPORT_MARKER = "@@drive_dag@@ "


def main(path: Path) -> int:
    import airflow.sdk.definitions.dag as dag_module
    from airflow.dag_processing.dagbag import DagBag

    run_task = dag_module._run_task

    def without_inline_trigger(*, ti: Any, task: Any, run_triggerer: bool = False) -> Any:
        return run_task(ti=ti, task=task, run_triggerer=False)

    dag_module._run_task = without_inline_trigger
    bag = DagBag(dag_folder=str(path))
    if bag.import_errors:
        raise ImportError(next(iter(bag.import_errors.values())))
    dag = bag.dags[path.stem]
    dag_run = dag.test()
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}
    report = {"state": str(getattr(dag_run.state, "value", dag_run.state)), "tasks": states}
    print(REPORT_MARKER + json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]).resolve()))
