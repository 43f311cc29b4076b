"""
# Creating connections with the CLI

`airflow connections ...` manages the connections of the metadata database from a shell, a deployment
script or CI. This DAG checks at run time that every command line below describes a valid
`integration_http` connection, that the export formats read back the same, and that the demo's
connections of every auth scheme resolve and pass the connection test. The commands themselves run,
for every auth scheme, in `tests/ui/test_connections_cli.py`.

## airflow connections add

Three equivalent forms (they describe the `partner_api` connection of `add_three_forms`):

```bash
# URI form: one string, reserved characters percent-encoded
airflow connections add partner_api \\
    --conn-uri 'integration-http://svc-airflow:p%40ss%2Fw%3Ard@api.partner.example:8443/v1?auth_scheme=basic&retry_max_attempts=5'

# JSON form: no encoding, typed extras
airflow connections add partner_api --conn-json '{"conn_type": "integration_http",
    "host": "api.partner.example", "port": 8443, "schema": "v1", "login": "svc-airflow",
    "password": "p@ss/w:rd", "extra": {"auth_scheme": "basic", "retry_max_attempts": 5}}'

# one flag per field
airflow connections add partner_api --conn-type integration_http --conn-host api.partner.example \\
    --conn-port 8443 --conn-schema v1 --conn-login svc-airflow --conn-password 'p@ss/w:rd' \\
    --conn-extra '{"auth_scheme": "basic", "retry_max_attempts": 5}'
```

`add` refuses an id that exists (delete it first, or use `import --overwrite`). It does **not** run
the provider's validation: a typo in an extra is stored as is. Validate before or after adding:
`airflow connections test partner_api` (needs `[core] test_connection = Enabled`) checks the settings
first and fails with the JSON path of the mistake, e.g.
`Invalid connection settings: ... $.retry_on_statuses[1] = 700: expected an integer between 400 and 599`.
In CI, run the same validation on the file you are about to import (`validate_before_import`).

## airflow connections list

`airflow connections list -o json` prints ids and types of the connections in the metadata database;
`--show-values` adds the fields (`--hide-sensitive` masks the password and extras). Connections
defined by environment variables or a secrets backend, like this demo's `sandbox_*` connections, are not
listed, but `airflow connections get <id>` and `airflow connections test <id>` find them, because
they look up every backend as a task does (`get_and_test_each_scheme`). Note that `get -o json` prints
every value as a string; use `export` to read connections back faithfully.

## airflow connections export

```bash
airflow connections export connections.json       # {conn_id: {conn_type, host, ..., "extra": "<JSON>"}}
airflow connections export connections.yaml
airflow connections export connections.env        # conn_id=<URI> per line
airflow connections export connections.env --serialization-format json
```

The format follows the file extension (or `--file-format`). Only the metadata database is exported, and
passwords are written **in clear**: treat the file as a secret. `export_formats` produces the three
formats the way the CLI does.

## airflow connections import

`airflow connections import connections.yaml [--overwrite]` reads the same three formats. In JSON and
YAML a connection is an object (with `extra` as a JSON string or `extra_dejson` as an object) or a URI
string; in `.env` each line is `conn_id=URI`. Existing ids are skipped unless `--overwrite`. Like
`add`, `import` does not validate extras, so `validate_before_import` parses a file exactly as the
import does and runs the provider's validation on every connection: run it as a CI gate.

## Connection URI syntax

```
integration-http://[login[:password]@]host[:port][/path-prefix][?extra=value&...]
```

- The scheme is the connection type with `_` written as `-`.
- Percent-encode reserved characters in login and password (`@` -> `%40`, `/` -> `%2F`, `:` -> `%3A`,
  `?` -> `%3F`, `#` -> `%23`): `urllib.parse.quote(secret, safe="")`.
- The path is the *Path prefix* (`schema`); without a path Airflow stores an empty prefix.
- Query parameters are extras, as strings: the provider converts `5` and `false` to the types its
  schema expects. Extras that are objects or lists travel as `__extra__=<URL-encoded JSON>`, which is
  what `Connection.get_uri()` (and `export ... .env`) writes as soon as one extra is not a string.
- Quote the whole URI in the shell (`'...'`): `&` and `?` are special there.

`uri_syntax` checks each rule.
"""

from __future__ import annotations

import json
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from airflow.sdk import DAG, Connection, task

from airflow_provider_integrations.exceptions import ConnectionConfigError
from airflow_provider_integrations.hooks.http import IntegrationHttpHook, config_from_connection

# The command lines of the docstring, as data.
PARTNER_URI = (
    "integration-http://svc-airflow:p%40ss%2Fw%3Ard@api.partner.example:8443/v1"
    "?auth_scheme=basic&retry_max_attempts=5"
)
PARTNER_JSON = {
    "conn_type": "integration_http",
    "host": "api.partner.example",
    "port": 8443,
    "schema": "v1",
    "login": "svc-airflow",
    "password": "p@ss/w:rd",
    "extra": {"auth_scheme": "basic", "retry_max_attempts": 5},
}
PARTNER_FLAGS = {
    "conn_type": "integration_http",
    "host": "api.partner.example",
    "port": 8443,
    "schema": "v1",
    "login": "svc-airflow",
    "password": "p@ss/w:rd",
    "extra": '{"auth_scheme": "basic", "retry_max_attempts": 5}',
}
# The demo's connections, one per auth scheme, with the path that proves the credentials.
SANDBOX_BY_SCHEME = {
    "none": ("sandbox_api", None),
    "basic": ("sandbox_basic", "/secure/basic/whoami"),
    "bearer": ("sandbox_bearer", "/secure/bearer/whoami"),
    "api_key": ("sandbox_api_key", "/secure/api_key/whoami"),
    "oauth2_client_credentials": ("sandbox_oauth", "/secure/oauth2/whoami"),
    "hmac": ("sandbox_hmac", "/secure/hmac/whoami"),
}


def export_json(conns: list[Connection]) -> str:
    """``airflow connections export x.json``: one object per id, ``extra`` kept as its JSON string."""
    fields = ("conn_type", "description", "login", "password", "host", "port", "schema", "extra")
    return json.dumps({c.conn_id: {f: getattr(c, f) for f in fields} for c in conns}, indent=2)


with DAG(
    dag_id="108_01_03_connections_cli",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    catchup=False,
    tags=["reference", "core", "intermediate", "success"],
    doc_md=__doc__,
) as dag:
    # [START howto_connection_cli_add]
    @task
    def add_three_forms() -> str:
        forms = {
            "--conn-uri": Connection.from_uri(PARTNER_URI, conn_id="partner_api"),
            "--conn-json": Connection.from_json(json.dumps(PARTNER_JSON), conn_id="partner_api"),
            "--conn-<field>": Connection(conn_id="partner_api", **PARTNER_FLAGS),
        }
        configs = {form: config_from_connection(conn) for form, conn in forms.items()}
        config = configs["--conn-json"]
        assert all(c == config for c in configs.values()), "the three forms must describe one connection"
        assert config.base_url == "https://api.partner.example:8443/v1"
        assert (config.auth.scheme, config.auth.login) == ("basic", "svc-airflow")
        assert config.auth.secret == "p@ss/w:rd" and config.retry.max_attempts == 5
        return config.base_url

    # [END howto_connection_cli_add]

    # [START howto_connection_cli_uri]
    @task
    def uri_syntax() -> str:
        password = "p@ss/w:rd?#"
        encoded = quote(password, safe="")
        assert encoded == "p%40ss%2Fw%3Ard%3F%23"
        uri = f"integration-http://svc-airflow:{encoded}@api.partner.example"
        conn = Connection.from_uri(
            f"{uri}?auth_scheme=basic&retry_max_attempts=5&tls_verify=false", conn_id="x"
        )
        assert conn.conn_type == "integration_http" and conn.password == password
        assert conn.schema == "", "no path: an empty path prefix"
        config = config_from_connection(conn)
        assert (config.retry.max_attempts, config.tls.verify) == (5, False), "query strings converted"

        # A list or object extra is written as __extra__=<JSON> by get_uri() (and export .env).
        typed = Connection(
            conn_id="x",
            conn_type="integration_http",
            host="api.partner.example",
            extra=json.dumps({"retry_on_statuses": [429, 503], "default_headers": {"Accept": "text/csv"}}),
        )
        written = typed.get_uri()
        assert "__extra__=" in written, written
        back = Connection.from_uri(written, conn_id="x")
        assert config_from_connection(back).retry.retry_on_statuses == frozenset({429, 503})
        return written

    # [END howto_connection_cli_uri]

    # [START howto_connection_cli_get_and_test]
    @task
    def get_and_test_each_scheme() -> dict[str, str]:
        # `airflow connections get/test <id>` resolve ids like a task: env vars and secrets backends too.
        results = {}
        for scheme, (conn_id, auth_check_path) in SANDBOX_BY_SCHEME.items():
            conn = Connection.get(conn_id)
            assert conn.extra_dejson.get("auth_scheme", "none") == scheme, conn_id
            ok, message = IntegrationHttpHook(conn_id).test_connection()
            assert ok, f"{conn_id}: {message}"
            if auth_check_path:
                # The Test proves the credentials only with an auth check path; here we call it ourselves.
                response = IntegrationHttpHook(conn_id).request("GET", auth_check_path)
                assert response.status == 200, (conn_id, response.status)
            results[scheme] = message
        return results

    # [END howto_connection_cli_get_and_test]

    # [START howto_connection_cli_export]
    @task
    def export_formats() -> dict[str, int]:
        from airflow.secrets.local_filesystem import load_connections_dict

        conns = [Connection.get(conn_id) for conn_id, _ in SANDBOX_BY_SCHEME.values()]
        by_id = {c.conn_id: c for c in conns}
        files = {
            "connections.json": export_json(conns),
            "connections.yaml": yaml.safe_dump(json.loads(export_json(conns))),
            "connections.env": "".join(f"{c.conn_id}={c.get_uri()}\n" for c in conns),
        }
        sizes = {}
        with tempfile.TemporaryDirectory() as tmp:
            for name, text in files.items():
                path = Path(tmp) / name
                path.write_text(text)
                sizes[name] = len(text)
                # Read back the way `airflow connections import` does: the same settings.
                for conn_id, back in load_connections_dict(str(path)).items():
                    assert config_from_connection(back) == config_from_connection(by_id[conn_id]), name
        return sizes

    # [END howto_connection_cli_export]

    # [START howto_connection_cli_import]
    @task
    def validate_before_import() -> dict[str, Any]:
        from airflow.secrets.local_filesystem import load_connections_dict

        candidate = {
            "partner_api": PARTNER_JSON,
            "partner_api_v2": {**PARTNER_JSON, "extra": {"retry_on_statuses": [429, 700]}},
            "partner_api_uri": PARTNER_URI,
        }
        rejected = {}
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "connections.yaml"
            path.write_text(yaml.safe_dump(candidate))
            for conn_id, conn in load_connections_dict(str(path)).items():
                try:
                    config_from_connection(conn)
                except ConnectionConfigError as exc:
                    assert PARTNER_JSON["password"] not in str(exc), "errors never echo secrets"
                    rejected[conn_id] = str(exc)
        assert list(rejected) == ["partner_api_v2"], rejected
        assert "$.retry_on_statuses[1] = 700" in rejected["partner_api_v2"], rejected
        return rejected

    # [END howto_connection_cli_import]

    (
        add_three_forms()
        >> uri_syntax()
        >> [get_and_test_each_scheme(), export_formats(), validate_before_import()]
    )


if __name__ == "__main__":
    dag.test()
