"""Provider registration: generated metadata, Airflow's schemas, the CLI, the UI form and redaction."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from airflow_provider_integrations.connections.schema import conn_fields, load_schema, secret_fields
from airflow_provider_integrations.get_provider_info import get_provider_info

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "scripts" / "gen_provider_info.py"
SCHEMA_REL = Path("airflow_provider_integrations/connections/integration_http.schema.json")
INFO_REL = Path("airflow_provider_integrations/get_provider_info.py")
PROPS: dict[str, Any] = load_schema()["properties"]


def airflow_schema(name: str) -> dict[str, Any]:
    spec = importlib.util.find_spec("airflow")
    assert spec is not None and spec.submodule_search_locations
    schema: dict[str, Any] = json.loads(
        (Path(next(iter(spec.submodule_search_locations))) / name).read_text()
    )
    return schema


def provider_yaml() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "provider.yaml").read_text())
    return data


def run_generator(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GENERATOR), *args], capture_output=True, text=True, check=False, timeout=120
    )


# --- generated files -------------------------------------------------------------------------------------


def test_generated_files_are_up_to_date() -> None:
    result = run_generator("--check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_detects_drift_and_regeneration_fixes_it(tmp_path: Path) -> None:
    for rel in (Path("provider.yaml"), Path("pyproject.toml"), SCHEMA_REL, INFO_REL):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, tmp_path / rel)
    assert run_generator("--check", "--root", str(tmp_path)).returncode == 0

    schema = json.loads((tmp_path / SCHEMA_REL).read_text())
    schema["properties"]["pool_size"]["title"] = "Pool size (drifted)"
    (tmp_path / SCHEMA_REL).write_text(json.dumps(schema, indent=2))
    drift = run_generator("--check", "--root", str(tmp_path))
    assert drift.returncode == 1
    assert "Pool size (drifted)" in drift.stdout
    assert "provider.yaml" in drift.stderr and "get_provider_info.py" in drift.stderr
    assert (tmp_path / "provider.yaml").read_text() == (ROOT / "provider.yaml").read_text(), "--check wrote"

    fixed = run_generator("--root", str(tmp_path))
    assert fixed.returncode == 0, fixed.stderr
    assert run_generator("--check", "--root", str(tmp_path)).returncode == 0
    # Only the conn-fields block changed; the hand-written rest of provider.yaml is kept.
    before = (ROOT / "provider.yaml").read_text().splitlines()
    after = (tmp_path / "provider.yaml").read_text().splitlines()
    assert [a for a, b in zip(before, after, strict=True) if a != b] == [
        "        label: Connection pool size"
    ]

    info = (tmp_path / INFO_REL).read_text().replace("HTTP API (Integrations)", "Edited by hand", 1)
    (tmp_path / INFO_REL).write_text(info)
    hand_edit = run_generator("--check", "--root", str(tmp_path))
    assert hand_edit.returncode == 1 and "get_provider_info.py" in hand_edit.stderr


def test_generated_module_is_a_plain_literal() -> None:
    source = (ROOT / INFO_REL).read_text()
    assert source.startswith("# generated, do not edit")
    assert "import" not in source.split("def get_provider_info", 1)[1]


# --- Airflow's schemas ---------------------------------------------------------------------------------


def test_get_provider_info_validates_against_airflows_runtime_schema() -> None:
    Draft7Validator(airflow_schema("provider_info.schema.json")).validate(get_provider_info())


def test_provider_yaml_validates_against_airflows_strict_schema() -> None:
    Draft7Validator(airflow_schema("provider.yaml.schema.json")).validate(provider_yaml())


def test_provider_info_matches_provider_yaml_and_the_distribution() -> None:
    info, source = get_provider_info(), provider_yaml()
    dev_only = {"state", "source-date-epoch", "versions"}
    assert info == {k: v for k, v in source.items() if k not in dev_only}
    assert info["package-name"] == importlib.metadata.distribution("airflow-provider-integrations").name
    assert source["versions"] == [importlib.metadata.version("airflow-provider-integrations")]
    (conn_type,) = info["connection-types"]
    assert conn_type["conn-fields"] == conn_fields()
    assert conn_type["ui-field-behaviour"]["relabeling"]["schema"] == "Path prefix"
    assert info["config"]["integrations"]["options"]["connection_cache_ttl"]["default"] == "300"


def test_config_default_is_visible_through_airflow_conf() -> None:
    from airflow.configuration import conf

    assert conf.getint("integrations", "connection_cache_ttl") == 300


# --- the CLI (a fresh AIRFLOW_HOME, no `db migrate`) -----------------------------------------------------


@pytest.fixture(scope="module")
def cli_output(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("airflow-home")
    env = {**os.environ, "AIRFLOW_HOME": str(home)}
    env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)
    exe = str(Path(sys.executable).with_name("airflow"))
    # Started together: each CLI run spends ~2-3 s importing Airflow.
    procs = {
        cmd: subprocess.Popen(
            [exe, "providers", cmd, "-o", "json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for cmd in ("list", "hooks", "widgets")
    }
    out = {}
    for cmd, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=180)
        assert proc.returncode == 0, stderr
        out[cmd] = json.loads(stdout)
    yield out


@pytest.mark.slow
def test_cli_lists_the_provider(cli_output: dict[str, Any]) -> None:
    (row,) = [r for r in cli_output["list"] if r["package_name"] == "airflow-provider-integrations"]
    assert row["version"] == "0.1.0"


@pytest.mark.slow
def test_cli_lists_the_hook(cli_output: dict[str, Any]) -> None:
    (row,) = [r for r in cli_output["hooks"] if r["connection_type"] == "integration_http"]
    assert row == {
        "connection_type": "integration_http",
        "class": "airflow_provider_integrations.hooks.http.IntegrationHttpHook",
        "conn_id_attribute_name": "integration_http_conn_id",
        "package_name": "airflow-provider-integrations",
        "hook_name": "HTTP API (Integrations)",
    }


@pytest.mark.slow
def test_cli_lists_one_widget_per_extra(cli_output: dict[str, Any]) -> None:
    ours = {
        r["connection_parameter_name"]: r
        for r in cli_output["widgets"]
        if r["connection_parameter_name"].startswith("extra__integration_http__")
    }
    assert set(ours) == {f"extra__integration_http__{name}" for name in PROPS}
    assert ours["extra__integration_http__tls_client_private_key"]["field_type"] == ["string", "null"]
    assert {r["class"] for r in ours.values()} == {
        "airflow_provider_integrations.hooks.http.IntegrationHttpHook"
    }


# --- the UI form and redaction --------------------------------------------------------------------------


def test_ui_hook_meta_builds_the_form_without_masking_defaults() -> None:
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    (meta,) = [m for m in HookMetaService.hook_meta_data() if m.connection_type == "integration_http"]
    data = meta.model_dump()
    assert data["hook_name"] == "HTTP API (Integrations)"
    assert data["standard_fields"]["url_schema"]["title"] == "Path prefix"
    assert data["standard_fields"]["password"]["title"].startswith("Password / token")
    assert list(data["extra_fields"]) == list(PROPS)
    # hook_meta masks the default of a field whose *name* looks secret; the UI would then save "***".
    assert {n: f["value"] for n, f in data["extra_fields"].items()} == {
        n: p.get("default") for n, p in PROPS.items()
    }
    assert data["extra_fields"]["tls_client_private_key"]["schema"]["format"] == "password"


def test_exactly_the_secret_fields_are_redacted_by_name() -> None:
    from airflow.sdk._shared.secrets_masker import redact, should_hide_value_for_key

    assert should_hide_value_for_key("password")
    hidden = {name for name in PROPS if should_hide_value_for_key(name)}
    assert hidden == secret_fields() == {"tls_client_private_key"}
    assert {n for n, p in PROPS.items() if p.get("format") == "password"} == hidden
    extras = {name: f"value-of-{name}" for name in PROPS}
    assert redact(extras) == {**extras, "tls_client_private_key": "***"}


@pytest.mark.parametrize("name", ["api_key_name", "api_key_in", "oauth2_token_url"])
def test_why_some_extras_avoid_the_obvious_names(name: str) -> None:
    # These would be masked everywhere (even the value "header" in task logs), so the schema uses
    # auth_key_name, auth_key_in and oauth2_endpoint instead.
    from airflow.sdk._shared.secrets_masker import should_hide_value_for_key

    assert should_hide_value_for_key(name)
    assert name not in PROPS
