"""
# Connection testing patterns

A connection that parses is not a connection that works: DNS may not resolve, a firewall may drop the
port, a certificate may not be trusted, a token may have been rotated. This DAG validates and tests
connections the way a platform team would, and raises an alert when one is broken.

## Test connection in the UI

Admin -> Connections -> *Test* calls `POST /api/v2/connections/test`, which runs the hook's
`test_connection()` in the API server (enable it with `[core] test_connection = Enabled`; the CLI
equivalent is `airflow connections test <conn_id>`). For `integration_http` that is a layered diagnosis:
DNS, TCP, TLS (certificate subject and expiry), an HTTP `GET` of the *health check path* and, when an
*auth check path* is set, an authenticated `GET` that proves the credentials are accepted. The first
failing layer ends the test with a one-line reason and what to fix. `ui_test_equivalent` runs the same
code path through `Connection.test_connection()`.

## Programmatic testing

`IntegrationHttpHook(conn_id).test_connection()` returns `(ok, message)`, so any task, script or CI job
can test a connection without the UI. `health_check` does this for each monitored connection.

## Health check DAGs

`health_check` is mapped over the monitored connection ids (one task instance per connection, so one
broken connection never hides the others), `summarize` collects the results. Schedule such a DAG every
few minutes, before the business DAGs that depend on the partner. Two of the monitored connections here
are broken on purpose (`broken_auth` carries a wrong token, `broken_tls` does not trust the sandbox's
private CA) so that the alert path below really runs.

## Alert on failures

`enforce_health` fails with `AirflowFailException` (no retries: retrying does not fix a wrong token) when
any connection is unhealthy. Its `on_failure_callback` builds the alert from the task context; in a
deployment it would post it to a chat or paging system, here it records it as an XCom. The final task,
`verify_alert`, runs whatever happened (`trigger_rule=all_done`) and checks that the callback fired with
the right connections. Drop it in production: there the failed `enforce_health` *is* the signal.

## Automated validation

`validate_settings` checks connection *settings* without any network I/O: every monitored connection
must parse against the provider's JSON Schema, and a connection file about to be deployed is rejected
with the JSON path of the mistake (`$.retry_max_attempts`). Run the same check in CI on your secrets
backend's export so that a typo never reaches a worker.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Any

from airflow.sdk import DAG, Connection, Context, TriggerRule, task
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_integrations.exceptions import ConnectionConfigError
from airflow_provider_integrations.hooks.http import IntegrationHttpHook, config_from_connection

HEALTHY = ["sandbox_api", "sandbox_bearer", "sandbox_oauth", "sandbox_tls"]
BROKEN = {"broken_auth": "auth bearer rejected", "broken_tls": "certificate verify failed"}
MONITORED = [*HEALTHY, *BROKEN]

# A connection about to be deployed, with a typo a reviewer could miss.
CANDIDATE_CONNECTION = {
    "conn_type": "integration_http",
    "host": "https://api.partner.example/v2",
    "password": "token-from-the-vault",
    "extra": {"auth_scheme": "bearer", "retry_max_attempts": 0},
}


# [START howto_connection_alert_callback]
def alert_on_unhealthy_connections(context: Context) -> None:
    """Build the alert a pager or chat webhook would receive; here it is kept as an XCom."""
    alert = {
        "dag_id": context["dag"].dag_id,
        "run_id": context["run_id"],
        "task_id": context["ti"].task_id,
        "error": str(context["exception"]),
    }
    context["ti"].xcom_push(key="alert", value=alert)


# [END howto_connection_alert_callback]

with DAG(
    dag_id="108_01_05_connection_testing",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["reference", "patterns", "intermediate", "success"],
    doc_md=__doc__,
) as dag:
    # [START howto_connection_validate_settings]
    @task
    def validate_settings() -> dict[str, str]:
        for conn_id in MONITORED:
            IntegrationHttpHook(conn_id).get_config()  # raises ConnectionConfigError on bad settings

        candidate = Connection.from_json(json.dumps(CANDIDATE_CONNECTION), conn_id="partner_v2")
        try:
            config_from_connection(candidate)
        except ConnectionConfigError as exc:
            assert exc.path == "$.retry_max_attempts", exc.path
            assert "token-from-the-vault" not in str(exc), "errors must never echo secrets"
            return {"partner_v2": str(exc)}
        raise AssertionError("an invalid connection passed validation")

    # [END howto_connection_validate_settings]

    # [START howto_connection_ui_test]
    @task
    def ui_test_equivalent() -> str:
        # What the UI's Test button and `airflow connections test` run: hook.test_connection().
        ok, message = Connection.get("sandbox_api").test_connection()
        assert ok and message.startswith("Connection OK: DNS"), message
        ok, message = Connection.get("broken_port").test_connection()
        assert not ok and "TCP connect to 127.0.0.1:1 failed: Connection refused" in message, message
        return message

    # [END howto_connection_ui_test]

    # [START howto_connection_health_check]
    @task
    def health_check(conn_id: str) -> dict[str, Any]:
        t0 = time.perf_counter()
        ok, message = IntegrationHttpHook(conn_id).test_connection()
        return {
            "conn_id": conn_id,
            "ok": ok,
            "message": message,
            "ms": round((time.perf_counter() - t0) * 1000, 1),
        }

    @task
    def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
        by_id = {r["conn_id"]: r for r in results}
        assert sorted(by_id) == sorted(MONITORED)
        for conn_id in HEALTHY:
            assert by_id[conn_id]["ok"], by_id[conn_id]["message"]
        assert "TLS" in by_id["sandbox_tls"]["message"] and "expires" in by_id["sandbox_tls"]["message"]
        assert "bearer accepted" in by_id["sandbox_bearer"]["message"], "the auth check path must be probed"
        for conn_id, reason in BROKEN.items():
            assert not by_id[conn_id]["ok"] and reason in by_id[conn_id]["message"], by_id[conn_id]
        return {
            "healthy": [r["conn_id"] for r in results if r["ok"]],
            "unhealthy": {r["conn_id"]: r["message"] for r in results if not r["ok"]},
        }

    # [END howto_connection_health_check]

    # [START howto_connection_enforce_health]
    @task(on_failure_callback=alert_on_unhealthy_connections, retries=0)
    def enforce_health(summary: dict[str, Any]) -> None:
        unhealthy = summary["unhealthy"]
        if unhealthy:
            details = "; ".join(f"{conn_id}: {message}" for conn_id, message in sorted(unhealthy.items()))
            raise AirflowFailException(f"{len(unhealthy)} connection(s) unhealthy: {details}")

    # [END howto_connection_enforce_health]

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def verify_alert(**context: Any) -> dict[str, Any]:
        ti = context["ti"]
        states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id], task_ids=["enforce_health"])
        assert states[ti.run_id]["enforce_health"] == "failed", states
        alert = ti.xcom_pull(task_ids="enforce_health", key="alert")
        assert alert is not None, "on_failure_callback did not run"
        assert alert["task_id"] == "enforce_health" and alert["run_id"] == ti.run_id
        assert all(conn_id in alert["error"] for conn_id in BROKEN), alert
        assert not any(conn_id in alert["error"] for conn_id in HEALTHY), alert
        return alert

    checks = health_check.expand(conn_id=MONITORED)
    validate_settings() >> ui_test_equivalent() >> checks
    enforce_health(summarize(checks)) >> verify_alert()


if __name__ == "__main__":
    dag.test()
