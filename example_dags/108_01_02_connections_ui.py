"""
# Creating connections in the Airflow UI

Most users meet a provider in **Admin -> Connections**. This DAG walks that path for an
`integration_http` connection to a partner API that uses OAuth2 client credentials, step by step, and
checks at run time what each step relies on: the form the provider declares, what the form saves, what
**Test** runs, what an edit keeps and what a delete removes. The same path is driven in a real browser
by `tests/ui/test_connections_form.py` (screenshots in `docs/screenshots/`).

## Navigate to connections

1. Sign in with a role that may manage connections (the simple auth manager's `op` or `admin`).
2. **Admin -> Connections** (`/connections`). The list shows the connections stored in the metadata
   database; connections from environment variables or a secrets backend work but are not listed.
3. **Add Connection** opens the form. Its *Connection Type* dropdown lists every installed type by its
   hook name: ours is **HTTP API (Integrations)**, next to the official provider's **HTTP**. A type that
   is missing means the provider is not installed where the API server runs, or the API server was not
   restarted after installing it (it caches the form metadata).

`navigate_to_connections` checks that the type is registered under that name, with a connection test,
and that the form metadata relabels the standard fields as below and hides none.

## Add new connection

| form field | enter | stored as |
|---|---|---|
| Connection ID | `partner_api_ui` | `conn_id` |
| Connection Type | HTTP API (Integrations) | `conn_type = integration_http` |
| Host or base URL | `api.partner.example` (here: the sandbox) | `host` |
| Port | empty for 443 (here: the sandbox's port) | `port` |
| Path prefix | e.g. `v1`; empty here | `schema` |
| Username / client ID / HMAC key ID | the OAuth2 client ID | `login` |
| Password / token / API key / client secret / HMAC secret | the client secret | `password` |
| *Extra Fields*: Scheme | `https` (empty means https; `http` for the local sandbox) | `extra.scheme` |
| Authentication | `oauth2_client_credentials` | `extra.auth_scheme` |
| OAuth2 token endpoint | `/oauth/token` | `extra.oauth2_endpoint` |
| OAuth2 scopes | `items:read` | `extra.oauth2_scopes` |
| Auth check path | `/secure/oauth2/whoami` | `extra.auth_check_path` |

The *Extra Fields* section is generated from the provider's `conn-fields`: one typed input per setting,
with its description; dropdowns for choices, number inputs bounded by the schema's minimum and maximum,
switches for booleans, a JSON editor for headers and status lists, text areas for PEM certificates and a
masked input for the client private key. *Extra Fields JSON* shows the same values as JSON. **Save**
stores **every** field under its own key (`extra.oauth2_scopes`, not `extra__integration_http__...`):
the ones you typed, the defaults of the others (`retry_max_attempts: 3`), and `null` for empty ones,
which the provider reads as "use the default". `add_new_connection` builds exactly that document and
validates it with the provider's JSON Schema.

## Test connection

Each row of the list has a **Test** button (enable it with `[core] test_connection = Enabled`; the
default, `Disabled`, greys it out). It calls `POST /api/v2/connections/test`: the API server exposes the
connection under a transient id and runs the hook's `test_connection()`, a layered diagnosis shown in a
notification. Success reads *Test Connection Successful - Connection OK: DNS ... | TCP ... | HTTP ...
(GET /health 200) | auth ... (oauth2_client_credentials accepted: GET /secure/oauth2/whoami 200)*;
a failure names the first broken layer and the field to fix, on one line: *Test Connection Failed - TCP
connect to 127.0.0.1:1 failed: Connection refused: check the Host and Port fields ...*. The stored
secrets are used as long as host and port are unchanged. `test_connection` runs the same code path.

## Edit existing

The pencil icon opens the form with the stored values. Secrets come back as `***`: the password, and
the extras whose names Airflow treats as sensitive; for `integration_http` that is the one secret
extra, `tls_client_private_key`. Fields left at `***` keep their stored value when you save, so you can
change the scopes without retyping the client secret; type over `***` to rotate it. Tasks that start
after the save see the new settings. A process that already used the connection (a triggerer, a
long-running task) keeps its parsed settings for up to `[integrations] connection_cache_ttl` seconds
(300 by default). `edit_existing` changes the scopes and checks both behaviours.

## Delete connections

The bin icon asks for confirmation (*Delete 1 connection ... Yes, Delete*); the row checkboxes delete
several at once. Tasks that name a deleted id fail with "The conn_id ... isn't defined", unless an
environment variable or secrets backend still defines it. `delete_connection` checks that the id no
longer resolves.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from airflow.sdk import DAG, Connection, task

from airflow_provider_integrations.get_provider_info import get_provider_info
from airflow_provider_integrations.hooks.http import CONFIGS, IntegrationHttpHook, config_from_connection

CONN_ID = "partner_api_ui"
# What the user types into Extra Fields (the sandbox's example connection supplies address and secrets).
ENTERED_EXTRAS = {
    "scheme": "http",
    "auth_scheme": "oauth2_client_credentials",
    "oauth2_endpoint": "/oauth/token",
    "oauth2_scopes": "items:read",
    "auth_check_path": "/secure/oauth2/whoami",
}
RELABELED = {
    "host": "Host or base URL",
    "schema": "Path prefix",
    "login": "Username / client ID / HMAC key ID",
    "password": "Password / token / API key / client secret / HMAC secret",
}


def connection_type() -> dict[str, Any]:
    (conn_type,) = get_provider_info()["connection-types"]
    return dict(conn_type)


def form_extra(**entered: Any) -> dict[str, Any]:
    """The ``extra`` the form saves: every typed field under its own key, defaults filled in."""
    fields = connection_type()["conn-fields"]
    assert set(entered) <= set(fields), f"not form fields: {set(entered) - set(fields)}"
    return {**{name: spec["schema"].get("default") for name, spec in fields.items()}, **entered}


def form_connection(conn_id: str = CONN_ID, **entered: Any) -> Connection:
    """The partner connection as saved by the form; address and credentials from the demo's sandbox."""
    sandbox = Connection.get("sandbox_oauth")
    return Connection(
        conn_id=conn_id,
        conn_type="integration_http",
        host=sandbox.host,
        port=sandbox.port,
        login=sandbox.login,
        password=sandbox.password,
        extra=json.dumps(form_extra(**{**ENTERED_EXTRAS, **entered})),
    )


@contextmanager
def stored(conn: Connection) -> Iterator[str]:
    """Make ``conn`` resolvable by its id for the block, as saving it in the UI does for every task."""
    name = f"AIRFLOW_CONN_{conn.conn_id.upper()}"
    os.environ[name] = conn.get_uri()
    try:
        yield conn.conn_id
    finally:
        os.environ.pop(name, None)
        CONFIGS.invalidate(conn.conn_id)


with DAG(
    dag_id="108_01_02_connections_ui",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["reference", "core", "beginner", "success"],
    doc_md=__doc__,
) as dag:
    # [START howto_connection_ui_navigate]
    @task
    def navigate_to_connections() -> dict[str, str]:
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

        info = ProvidersManagerTaskRuntime().hooks["integration_http"]
        assert info is not None, "integration_http is not registered: is the provider installed?"
        assert info.hook_name == "HTTP API (Integrations)", info.hook_name  # the dropdown entry
        assert info.connection_testable, "the Test button needs the hook's test_connection()"

        behaviour = connection_type()["ui-field-behaviour"]
        assert behaviour["relabeling"] == RELABELED, behaviour["relabeling"]
        assert behaviour["hidden-fields"] == [], "every standard field is used by some auth scheme"
        return {"Connection Type": info.hook_name, **behaviour["relabeling"]}

    # [END howto_connection_ui_navigate]

    # [START howto_connection_ui_add]
    @task
    def add_new_connection() -> dict[str, Any]:
        conn = form_connection()
        extra = json.loads(conn.extra or "{}")
        fields = connection_type()["conn-fields"]
        assert set(extra) == set(fields), "the form saves every typed field"
        assert extra["retry_max_attempts"] == 3 and extra["oauth2_audience"] is None

        # The provider validates the saved document with its JSON Schema; null means "default".
        config = config_from_connection(conn)
        assert config.base_url == f"http://{conn.host}:{conn.port}"
        assert config.auth.scheme == "oauth2_client_credentials"
        assert config.auth.oauth2_token_url == f"{config.base_url}/oauth/token"
        assert config.auth.oauth2_scopes == ("items:read",)
        return {"base_url": config.base_url, "stored_extra_keys": len(extra)}

    # [END howto_connection_ui_add]

    # [START howto_connection_ui_test]
    @task
    def test_connection() -> dict[str, str]:
        # What POST /api/v2/connections/test does: the connection under a transient id, then
        # Connection.test_connection(), which calls IntegrationHttpHook.test_connection().
        with stored(form_connection("ui_test_transient")) as conn_id:
            ok, success = Connection.get(conn_id).test_connection()
        assert ok, success
        assert success.startswith("Connection OK: DNS"), success
        assert "oauth2_client_credentials accepted: GET /secure/oauth2/whoami 200" in success, success

        refused = Connection(
            conn_id="ui_test_refused",
            conn_type="integration_http",
            host="127.0.0.1",
            port=1,
            extra=json.dumps(form_extra(scheme="http")),
        )
        with stored(refused) as conn_id:
            ok, failure = Connection.get(conn_id).test_connection()
        assert not ok and "\n" not in failure, failure
        assert failure.startswith("TCP connect to 127.0.0.1:1 failed: Connection refused"), failure
        assert "check the Host and Port fields" in failure, failure
        return {"success": success, "failure": failure}

    # [END howto_connection_ui_test]

    # [START howto_connection_ui_edit]
    @task
    def edit_existing() -> dict[str, Any]:
        from airflow_provider_integrations.connections.schema import secret_fields

        # Masked as *** in the edit form: the password and the secret extras (by name).
        assert secret_fields() == {"tls_client_private_key"}

        original = form_connection()
        with stored(original) as conn_id:
            hook = IntegrationHttpHook(conn_id)
            assert hook.request("GET", "/secure/oauth2/whoami").json()["scope"] == "items:read"

            # Save with wider scopes; the client secret stays what was stored (it was left at ***).
            edited = form_connection(oauth2_scopes="items:read items:write")
            assert edited.password == original.password
            os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = edited.get_uri()

            # This process parsed the connection already: it keeps the old settings until the
            # cache expires ([integrations] connection_cache_ttl); a new task would see the edit.
            assert hook.get_config().auth.oauth2_scopes == ("items:read",)
            CONFIGS.invalidate(conn_id)
            assert hook.get_config().auth.oauth2_scopes == ("items:read", "items:write")
            whoami = IntegrationHttpHook(conn_id).request("GET", "/secure/oauth2/whoami").json()
        assert whoami["scope"] == "items:read items:write", whoami
        return {"scope": whoami["scope"], "principal": whoami["principal"]}

    # [END howto_connection_ui_edit]

    # [START howto_connection_ui_delete]
    @task
    def delete_connection() -> str:
        from airflow.sdk.exceptions import AirflowNotFoundException

        with stored(form_connection()) as conn_id:
            assert Connection.get(conn_id).conn_type == "integration_http"
        # Deleted: nothing defines the id any more.
        try:
            Connection.get(conn_id)
        except AirflowNotFoundException as exc:
            return str(exc)
        raise AssertionError(f"{conn_id} still resolves after the delete")

    # [END howto_connection_ui_delete]

    (
        navigate_to_connections()
        >> add_new_connection()
        >> test_connection()
        >> edit_existing()
        >> delete_connection()
    )


if __name__ == "__main__":
    dag.test()
