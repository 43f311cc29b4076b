"""Child process of the real-triggerer tests: mark a deferred task instance failed the way the UI does.

The UI sends ``PATCH /api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}`` with
``{"new_state": "failed"}``; this sends the same request to the real API application in-process
(``fastapi.testclient``), against the metadata database the triggerer and ``dag.test()`` share. The
simple auth manager is told to treat everyone as admin (``[core] simple_auth_manager_all_admins``).
``python -m tests.integration.jobs.mark_failed DAG_ID TASK_ID``; prints the answer as one JSON line.
"""

from __future__ import annotations

import json
import os
import sys

MARKER = "@@mark_failed@@ "


def main(dag_id: str, task_id: str) -> int:
    os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] = "True"
    from airflow.api_fastapi.app import create_app
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from fastapi.testclient import TestClient
    from sqlalchemy import select

    with create_session() as session:
        run_id = session.scalars(
            select(TaskInstance.run_id).where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.task_id == task_id,
                TaskInstance.state == TaskInstanceState.DEFERRED,
            )
        ).one()
    with TestClient(create_app("core")) as client:
        response = client.patch(
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}", json={"new_state": "failed"}
        )
    print(MARKER + json.dumps({"status": response.status_code, "body": response.json()}), flush=True)
    return 0 if response.status_code == 200 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
