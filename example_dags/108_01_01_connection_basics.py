"""
# Connection basics

An Airflow **connection** is a named set of settings for reaching one external system. DAG code only
names the connection id (`sandbox_basic`); where the settings live (UI, CLI, environment variable,
secrets backend) and what the secrets are stay out of the DAG file.

This DAG reads the example connections of the local sandbox API and checks, task by task, what each
part of a connection means.

## Connection components (host, port, login, password)

| field      | `integration_http` meaning                                                 |
|------------|-----------------------------------------------------------------------------|
| `conn_type`| which hook and UI form handle it (`integration_http`)                        |
| `host`     | host name, or a full URL such as `https://api.example.com/v1`                |
| `port`     | optional TCP port                                                            |
| `schema`   | for HTTP: the path prefix of the API (`v1`), not a database schema           |
| `login`    | user name / OAuth2 client id / HMAC key id, depending on the auth scheme     |
| `password` | the secret: password, bearer token, API key, client secret or signing key    |

`inspect_components` reads them with `BaseHook.get_connection()` and proves they work together by
calling `/secure/basic/whoami`, which answers with the login it authenticated.

## Connection URI format

One string carries every field, handy for environment variables:

```
AIRFLOW_CONN_PARTNER_API='integration-http://svc-airflow:p%40ss%2Fw%3Ard@api.partner.example:8443/v1?__extra__=%7B...%7D'
```

The scheme is the connection type with `_` written as `-`; reserved characters in login and password
must be percent-encoded; the path is `schema`; extras go in the query (`__extra__` holds them as JSON when
they are not all strings). The JSON form (`{"conn_type": ..., "host": ..., "extra": {...}}`) is accepted
in the same places and needs no encoding, which is why the demo runner exports the example connections
that way. `uri_format` builds a connection in code, round-trips it through `get_uri()` /
`Connection.from_uri()`, and shows which base URL the provider derives from it.

## Connection types

The `conn_type` selects the hook class the provider registered (`ProvidersManagerTaskRuntime().hooks`),
the form the UI shows (the provider's `conn-fields`) and what `Connection.get_hook()` returns.
`connection_types` checks all three for `integration_http`.

## Extra JSON field

Everything that does not fit the standard fields goes into `extra`, a JSON object: auth scheme,
timeouts, retry policy, circuit breaker, TLS material, health-check paths. The provider validates it
against a JSON Schema, fills in defaults for omitted keys, and reports mistakes with a JSON path
(`$.retry_max_attempts`) instead of failing somewhere deep in a request. `extra_field` shows the parsed
values, the defaults and two rejected extras.

## Access in tasks

- Jinja: `{{ conn.<conn_id>.host }}`, `{{ conn.<conn_id>.extra_dejson.<key> }}` in any templated field.
- Python: `BaseHook.get_connection(conn_id)` or `Connection.get(conn_id)` inside a running task
  (never at module level: the DAG file is parsed often and must not do I/O).
- Hooks and operators: pass the id (`IntegrationHttpHook("sandbox_basic")`,
  `HttpRequestOperator(integration_http_conn_id="sandbox_basic", ...)`); they look the connection up when
  the task runs and cache the parsed settings per process.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from airflow.sdk import DAG, BaseHook, Connection, task

from airflow_provider_integrations.connections.http_config import HttpClientConfig
from airflow_provider_integrations.connections.http_parse import parse_http_connection
from airflow_provider_integrations.exceptions import ConnectionConfigError
from airflow_provider_integrations.hooks.http import IntegrationHttpHook, config_from_connection


def parse(host: str, extra: dict[str, Any] | None) -> HttpClientConfig:
    """Validate connection fields the way the hook does, without looking anything up."""
    return parse_http_connection(
        conn_id="example", host=host, port=None, schema=None, login=None, password=None, extra=extra
    )


with DAG(
    dag_id="108_01_01_connection_basics",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["reference", "core", "beginner", "success"],
    doc_md=__doc__,
) as dag:
    # [START howto_connection_components]
    @task
    def inspect_components() -> dict[str, Any]:
        conn = BaseHook.get_connection("sandbox_basic")
        assert conn.conn_type == "integration_http"
        assert conn.host and isinstance(conn.port, int)
        assert conn.login and conn.password, "basic auth needs both login and password"

        # The hook turns the fields into one base URL; the scheme comes from the extras.
        config = IntegrationHttpHook("sandbox_basic").get_config()
        assert config.base_url == f"{conn.extra_dejson['scheme']}://{conn.host}:{conn.port}"

        # The sandbox echoes the user it authenticated: login and password really travel together.
        whoami = IntegrationHttpHook("sandbox_basic").request("GET", "/secure/basic/whoami").json()
        assert whoami == {"scheme": "basic", "principal": conn.login}, whoami

        # Never return or log the password: XComs and logs are readable by every DAG author.
        return {"conn_type": conn.conn_type, "host": conn.host, "port": conn.port, "login": conn.login}

    # [END howto_connection_components]

    # [START howto_connection_uri]
    @task
    def uri_format() -> str:
        partner = Connection(
            conn_id="partner_api",
            conn_type="integration_http",
            host="api.partner.example",
            port=8443,
            schema="v1",
            login="svc-airflow",
            password="p@ss/w:rd?#",
            extra=json.dumps({"auth_scheme": "basic", "retry_max_attempts": 5}),
        )
        uri = partner.get_uri()
        assert uri.startswith("integration-http://svc-airflow:"), uri
        assert partner.password not in uri, "reserved characters must be percent-encoded"

        back = Connection.from_uri(uri, conn_id="partner_api")
        assert (back.conn_type, back.host, back.port, back.schema) == (
            "integration_http",
            "api.partner.example",
            8443,
            "v1",
        )
        assert (back.login, back.password) == (partner.login, partner.password)
        assert back.extra_dejson == {"auth_scheme": "basic", "retry_max_attempts": 5}
        assert json.loads(partner.as_json())["extra"] == back.extra_dejson

        config = config_from_connection(back)
        assert config.base_url == "https://api.partner.example:8443/v1"
        assert config.retry.max_attempts == 5
        # The URI embeds the password: only the part after the credentials may reach XCom.
        return uri.split("@", 1)[1]

    # [END howto_connection_uri]

    # [START howto_connection_types]
    @task
    def connection_types() -> list[str]:
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

        from airflow_provider_integrations.get_provider_info import get_provider_info

        info = ProvidersManagerTaskRuntime().hooks["integration_http"]
        assert info is not None, "the provider's connection type is not registered"
        assert info.hook_class_name == f"{IntegrationHttpHook.__module__}.{IntegrationHttpHook.__qualname__}"
        assert info.connection_id_attribute_name == "integration_http_conn_id"

        # Connection.get_hook() picks the hook class from conn_type.
        hook = BaseHook.get_connection("sandbox_api").get_hook()
        assert isinstance(hook, IntegrationHttpHook)

        # The UI form lists these extras as typed fields.
        (conn_type,) = get_provider_info()["connection-types"]
        fields = sorted(conn_type["conn-fields"])
        assert {"auth_scheme", "connect_timeout", "retry_max_attempts", "tls_ca_bundle"} <= set(fields)
        return fields

    # [END howto_connection_types]

    # [START howto_connection_extra]
    @task
    def extra_field() -> dict[str, Any]:
        conn = BaseHook.get_connection("sandbox_oauth")
        extra = conn.extra_dejson
        assert extra["auth_scheme"] == "oauth2_client_credentials"

        config = IntegrationHttpHook("sandbox_oauth").get_config()
        assert config.auth.oauth2_scopes == tuple(extra["oauth2_scopes"].split())
        assert config.retry.base_delay == extra["retry_base_delay"]

        # Omitted keys (no timeouts here) get the provider's defaults, as with no extras at all.
        defaults = parse("api.example.com", extra=None)
        assert not {"connect_timeout", "read_timeout", "total_timeout"} & set(extra)
        assert config.timeouts == defaults.timeouts

        rejected = {}
        for bad_extra in ({"retry_max_atempts": 3}, {"retry_max_attempts": "five"}):
            try:
                parse("api.example.com", extra=bad_extra)
            except ConnectionConfigError as exc:
                rejected[exc.path] = str(exc)
            else:
                raise AssertionError(f"{bad_extra} was accepted")
        assert set(rejected) == {"$.retry_max_atempts", "$.retry_max_attempts"}
        assert "did you mean 'retry_max_attempts'" in rejected["$.retry_max_atempts"]
        return {
            "scopes": list(config.auth.oauth2_scopes),
            "timeouts": str(defaults.timeouts),
            "rejected": rejected,
        }

    # [END howto_connection_extra]

    # [START howto_connection_access_in_tasks]
    @task
    def access_in_task(host: str, auth_scheme: str) -> dict[str, Any]:
        # ``host`` and ``auth_scheme`` arrive rendered from {{ conn.sandbox_basic.* }} templates.
        conn = Connection.get("sandbox_basic")
        assert host == conn.host and auth_scheme == conn.extra_dejson["auth_scheme"] == "basic"

        hook = IntegrationHttpHook("sandbox_basic")
        response = hook.request("GET", "/secure/basic/whoami")
        assert response.status == 200 and response.json()["principal"] == conn.login
        return {"status": response.status, "url": response.url, "attempts": response.attempts}

    # [END howto_connection_access_in_tasks]

    components = inspect_components()
    components >> [uri_format(), connection_types(), extra_field()]
    components >> access_in_task(
        host="{{ conn.sandbox_basic.host }}",
        auth_scheme="{{ conn.sandbox_basic.extra_dejson.auth_scheme }}",
    )


if __name__ == "__main__":
    dag.test()
