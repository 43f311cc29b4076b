"""``airflow connections`` round trip for ``integration_http`` with every auth scheme, real CLI processes.

One private Airflow home (its own SQLite database, so ``list`` and ``export`` see exactly these
connections):

1. ``add`` in URI form (basic) and JSON form (bearer); ``import`` of a JSON file with the other schemes
   and one connection with an invalid extra (Airflow stores it: neither ``add`` nor ``import`` runs the
   provider's validation);
2. ``export`` as JSON, YAML and ``.env`` (URI per line), in parallel;
3. ``import`` of both exports again under new ids (``yaml_*`` objects, ``uri_*`` URIs) from one YAML file;
4. ``test`` of every scheme's URI copy against the sandbox, with ``auth_check_path`` =
   ``/secure/<scheme>/whoami`` so that a success proves the credentials, plus ``test`` of the invalid one,
   which fails with the JSON path; and, at the same time, ``list --show-values``, which shows every
   connection and the copies equal to the originals.

Read-only commands run in parallel: each CLI call costs seconds of interpreter start-up.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import yaml
from airflow.sdk import Connection

from airflow_provider_integrations.hooks.http import config_from_connection
from airflow_provider_integrations.sandbox import auth as creds
from airflow_provider_integrations.sandbox.process import SandboxProcess

pytestmark = pytest.mark.slow

PARALLEL = 4
#: The sandbox's name for each auth scheme in ``/secure/<name>/whoami``.
WHOAMI = {
    "basic": "basic",
    "bearer": "bearer",
    "api_key": "api_key",
    "oauth2_client_credentials": "oauth2",
    "hmac": "hmac",
}
INVALID_EXTRA = {"auth_scheme": "none", "retry_on_statuses": [429, 700]}
INVALID_ERROR = "$.retry_on_statuses[1] = 700: expected an integer between 400 and 599"


@dataclass(frozen=True)
class Cli:
    """The real ``airflow`` executable against one private Airflow home."""

    env: Mapping[str, str]
    workdir: Path

    def command(self, *args: str) -> list[str]:
        return [str(Path(sys.executable).with_name("airflow")), *args]

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.many([list(args)], check=check)[0]

    def many(
        self, calls: Sequence[Sequence[str]], *, check: bool = True
    ) -> list[subprocess.CompletedProcess[str]]:
        """Run several CLI calls at once (at most ``PARALLEL``), results in call order."""

        def run(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                self.command(*args),
                env=dict(self.env),
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )

        with ThreadPoolExecutor(max_workers=min(PARALLEL, len(calls))) as pool:
            results = list(pool.map(run, calls))
        if check:
            for result in results:
                assert result.returncode == 0, (
                    f"airflow {' '.join(result.args[1:])} exited {result.returncode}:\n"
                    f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
                )
        return results


@pytest.fixture(scope="module")
def cli(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """A private Airflow home whose database is a copy of the session's, emptied of connections.

    Copying the migrated database saves an ``airflow db migrate`` (seconds of CPU).
    """
    home = tmp_path_factory.mktemp("cli-airflow-home")
    database = home / "airflow.db"
    shutil.copyfile(airflow_db / "airflow.db", database)
    with closing(sqlite3.connect(database)) as db, db:
        db.execute("DELETE FROM connection")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{database}",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
    }
    return Cli(env, home)


def scheme_connections(sandbox: SandboxProcess) -> dict[str, dict[str, Any]]:
    """``{auth_scheme: connection as JSON}``, each proving its credentials on the sandbox."""
    login = {
        "basic": creds.BASIC_USERNAME,
        "oauth2_client_credentials": creds.OAUTH_CLIENT_ID,
        "hmac": creds.HMAC_KEY_ID,
    }
    secret = {
        "basic": creds.BASIC_PASSWORD,
        "bearer": creds.BEARER_TOKEN,
        "api_key": creds.API_KEY,
        "oauth2_client_credentials": creds.OAUTH_CLIENT_SECRET,
        "hmac": creds.HMAC_SECRET,
    }
    specific: dict[str, dict[str, Any]] = {
        "api_key": {"auth_key_name": creds.API_KEY_HEADER, "auth_key_in": "header"},
        "oauth2_client_credentials": {"oauth2_endpoint": "/oauth/token", "oauth2_scopes": "items:read"},
        "hmac": {"hmac_algorithm": "sha512"},
    }
    conns: dict[str, dict[str, Any]] = {}
    for scheme in ["none", *WHOAMI]:
        extra: dict[str, Any] = {"scheme": "http", "auth_scheme": scheme, "retry_max_attempts": 2}
        if scheme in WHOAMI:
            extra["auth_check_path"] = f"/secure/{WHOAMI[scheme]}/whoami"
        conns[scheme] = {
            "conn_type": "integration_http",
            "description": f"sandbox, auth {scheme}",
            "host": "127.0.0.1",
            "port": sandbox.port,
            "schema": None,
            "login": login.get(scheme),
            "password": secret.get(scheme),
            "extra": {**extra, **specific.get(scheme, {})},
        }
    return conns


def basic_uri(conn: Mapping[str, Any]) -> str:
    """The documented URI syntax, written by hand: ``integration-http://login:password@host:port?extras``."""
    userinfo = f"{quote(conn['login'], safe='')}:{quote(conn['password'], safe='')}"
    return f"integration-http://{userinfo}@{conn['host']}:{conn['port']}?{urlencode(conn['extra'])}"


def comparable(conn: Mapping[str, Any]) -> dict[str, Any]:
    """An exported connection with ``extra`` parsed and the port as an int, for equality checks."""
    out = dict(conn)
    extra = out.get("extra")
    out["extra"] = json.loads(extra) if isinstance(extra, str) else extra
    out["port"] = int(out["port"]) if out.get("port") is not None else None
    return out


def test_connections_cli_round_trip(cli: Cli, sandbox: SandboxProcess) -> None:
    conns = scheme_connections(sandbox)
    ids = {scheme: f"cli_{scheme}" for scheme in conns}

    # 1. add (URI form, then JSON form) and import (the other schemes and an invalid extra).
    added = cli("connections", "add", ids["basic"], "--conn-uri", basic_uri(conns["basic"]))
    assert f"Successfully added `conn_id`={ids['basic']}" in added.stdout
    as_json = {**conns["bearer"], "extra": json.dumps(conns["bearer"]["extra"])}
    added = cli("connections", "add", ids["bearer"], "--conn-json", json.dumps(as_json))
    assert f"Successfully added `conn_id`={ids['bearer']}" in added.stdout
    assert creds.BEARER_TOKEN not in added.stdout

    seed = {
        ids[scheme]: {**{k: v for k, v in conn.items() if k != "extra"}, "extra_dejson": conn["extra"]}
        for scheme, conn in conns.items()
        if scheme not in ("basic", "bearer")
    }
    seed["cli_invalid"] = {
        "conn_type": "integration_http",
        "host": "127.0.0.1",
        "port": sandbox.port,
        "extra_dejson": {"scheme": "http", **INVALID_EXTRA},
    }
    seed_file = cli.workdir / "seed.json"
    seed_file.write_text(json.dumps(seed, indent=2))
    imported = cli("connections", "import", str(seed_file))
    for conn_id in seed:
        assert f"Imported connection {conn_id}" in imported.stdout, imported.stdout

    # 2. export in three formats (read-only: in parallel).
    exports = {fmt: cli.workdir / f"exported.{fmt}" for fmt in ("json", "yaml", "env")}
    cli.many([["connections", "export", str(path)] for path in exports.values()])
    every_id = sorted([*ids.values(), "cli_invalid"])

    exported_json = {k: comparable(v) for k, v in json.loads(exports["json"].read_text()).items()}
    exported_yaml = {k: comparable(v) for k, v in yaml.safe_load(exports["yaml"].read_text()).items()}
    assert sorted(exported_json) == every_id
    assert exported_yaml == exported_json
    for scheme, conn in conns.items():
        got = exported_json[ids[scheme]]
        if scheme == "basic":
            # A URI carries no description, and Airflow reads its missing path as schema "".
            assert (got["description"], got["schema"]) == (None, "")
            got = {**got, "description": conn["description"], "schema": None}
        assert got == conn, scheme
    uris = dict(line.split("=", 1) for line in exports["env"].read_text().splitlines() if line)
    assert sorted(uris) == every_id
    assert all(uri.startswith("integration-http://") for uri in uris.values()), uris

    # 3. import the exports again under new ids, in one YAML file: the YAML export's objects as
    #    ``yaml_*`` and the .env export's URIs as ``uri_*`` (a file may mix both forms).
    copies = {
        **{
            f"yaml_{k.removeprefix('cli_')}": v
            for k, v in yaml.safe_load(exports["yaml"].read_text()).items()
        },
        **{f"uri_{k.removeprefix('cli_')}": v for k, v in uris.items()},
    }
    copies_file = cli.workdir / "copies.yaml"
    copies_file.write_text(yaml.safe_dump(copies))
    imported = cli("connections", "import", str(copies_file))
    assert imported.stdout.count("Imported connection") == len(copies), imported.stdout

    # 4. test every scheme's URI copy and the invalid connection, and list everything.
    tested_ids = [f"uri_{scheme}" for scheme in conns] + ["cli_invalid"]
    *tests, listed = cli.many(
        [["connections", "test", conn_id, "-v"] for conn_id in tested_ids]
        + [["connections", "list", "--show-values", "-o", "json"]],
        check=False,
    )
    for conn_id, result in zip(tested_ids, tests, strict=True):
        output = result.stdout + result.stderr
        if conn_id == "cli_invalid":
            assert result.returncode == 1, output
            assert "Connection failed!" in output and INVALID_ERROR in output, output
            continue
        scheme = conn_id.removeprefix("uri_")
        assert result.returncode == 0 and "Connection success!" in output, f"{conn_id}:\n{output}"
        assert "Connection OK: DNS" in output and "GET /health 200" in output, output
        if scheme in WHOAMI:
            assert f"{scheme} accepted: GET /secure/{WHOAMI[scheme]}/whoami 200" in output, output
        for secret in filter(None, [conns[scheme]["password"]]):
            assert secret not in output, f"{conn_id} printed its secret"

    assert listed.returncode == 0, listed.stderr
    # ``list -o json`` prints every value as a string; ``get_uri`` still carries each connection whole.
    everything = {c["conn_id"]: c for c in json.loads(listed.stdout)}
    assert sorted(everything) == sorted([*every_id, *copies]), sorted(everything)
    assert {c["conn_type"] for c in everything.values()} == {"integration_http"}
    for scheme in conns:
        original = everything[ids[scheme]]["get_uri"]
        assert everything[f"yaml_{scheme}"]["get_uri"] == original, scheme
        # The URI copy differs in form (no description, query strings): the same settings.
        assert config_of(everything[f"uri_{scheme}"]["get_uri"]) == config_of(original), scheme


def config_of(uri: str) -> Any:
    return config_from_connection(Connection.from_uri(uri, conn_id="copy"))
