"""Regenerate provider metadata from its sources.

1. ``conn-fields`` of the ``integration_http`` connection type in ``provider.yaml`` from
   ``airflow_provider_integrations/connections/integration_http.schema.json`` (the rest of the file is
   hand-written and kept byte for byte);
2. ``airflow_provider_integrations/get_provider_info.py`` from ``provider.yaml``, as a pure literal
   formatted by ``ruff format``.

Both results are validated against Airflow's schemas before anything is written, because an invalid
``get_provider_info()`` breaks every ``import airflow``.

Usage: ``python scripts/gen_provider_info.py [--check] [--root DIR]``. ``--check`` writes nothing and
exits 1 with a diff when a file is out of date.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
SCHEMA_PATH = Path("airflow_provider_integrations/connections/integration_http.schema.json")
PROVIDER_YAML = Path("provider.yaml")
PROVIDER_INFO_PY = Path("airflow_provider_integrations/get_provider_info.py")
CONN_TYPE = "integration_http"
# provider.yaml keys that only matter for packaging and release, as in Airflow's own generator.
DEV_ONLY_KEYS = (
    "state",
    "lifecycle",
    "source-date-epoch",
    "versions",
    "build-system",
    "excluded-python-versions",
    "excluded-platforms",
    "extra-project-metadata",
)
HEADER = """\
# generated, do not edit: produced by scripts/gen_provider_info.py from provider.yaml
# (conn-fields come from connections/integration_http.schema.json).
# ruff: noqa: E501
from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    return """


def _conn_fields(root: Path) -> dict[str, Any]:
    # The generator logic comes from this checkout; the schema data from ``root``.
    sys.path.insert(0, str(REPO))
    from airflow_provider_integrations.connections.schema import conn_fields_from_schema

    schema = json.loads((root / SCHEMA_PATH).read_text(encoding="utf-8"))
    return conn_fields_from_schema(schema)


def splice_conn_fields(yaml_text: str, conn_fields: dict[str, Any]) -> str:
    """Replace the ``conn-fields:`` block of the one connection type, leaving every other line alone."""
    lines = yaml_text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if re.match(r"\s*conn-fields:", line)]
    if len(starts) != 1:
        raise SystemExit(f"{PROVIDER_YAML}: expected exactly one 'conn-fields:' key, found {len(starts)}")
    start = starts[0]
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > indent):
        end += 1
    # Keep blank lines that separate the block from the next key.
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    dumped = yaml.dump(
        {"conn-fields": conn_fields},
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=110 - indent,
        indent=2,
    )
    block = "".join(" " * indent + line + "\n" for line in dumped.splitlines())
    return "".join(lines[:start]) + block + "".join(lines[end:])


class _Dumper(yaml.SafeDumper):
    """Short scalar lists (``type``, ``enum``, defaults) on one line: ``[string, 'null']``."""

    def represent_list(self, data: list[Any]) -> yaml.Node:
        flow = all(not isinstance(item, dict | list) for item in data)
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _Dumper.represent_list)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def provider_info(provider: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in provider.items() if key not in DEV_ONLY_KEYS}


def render_provider_info(info: dict[str, Any], root: Path) -> str:
    source = HEADER + repr(info) + "\n"
    # ruff picks up the repository's settings (line length) from ``root``.
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(root / PROVIDER_INFO_PY), "-"],
        input=source,
        capture_output=True,
        text=True,
        cwd=root,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"ruff format failed:\n{result.stderr}")
    return result.stdout


def _airflow_schema(name: str) -> dict[str, Any] | None:
    # find_spec does not run airflow/__init__.py, which would load (possibly broken) provider info.
    spec = importlib.util.find_spec("airflow")
    if spec is None or not spec.submodule_search_locations:
        print(f"warning: apache-airflow not installed; {name} not checked", file=sys.stderr)
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / name
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


def validate(provider: dict[str, Any], info: dict[str, Any]) -> None:
    import jsonschema

    for name, data in (("provider.yaml.schema.json", provider), ("provider_info.schema.json", info)):
        schema = _airflow_schema(name)
        if schema is None:
            continue
        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(data), key=lambda e: list(e.path))
        if errors:
            where = "/".join(str(p) for p in errors[0].absolute_path) or "<root>"
            raise SystemExit(f"invalid against airflow/{name} at {where}: {errors[0].message}")


def generate(root: Path) -> dict[Path, str]:
    """Return the expected text of every generated file, keyed by path relative to ``root``."""
    yaml_text = splice_conn_fields((root / PROVIDER_YAML).read_text(encoding="utf-8"), _conn_fields(root))
    provider = yaml.safe_load(yaml_text)
    info = provider_info(provider)
    validate(provider, info)
    return {PROVIDER_YAML: yaml_text, PROVIDER_INFO_PY: render_provider_info(info, root)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a generated file is out of date")
    parser.add_argument("--root", type=Path, default=REPO, help="repository root (default: this checkout)")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    stale = []
    for rel, expected in generate(root).items():
        path = root / rel
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current == expected:
            continue
        stale.append(rel)
        if args.check:
            diff = difflib.unified_diff(
                current.splitlines(keepends=True),
                expected.splitlines(keepends=True),
                f"{rel} (current)",
                f"{rel} (generated)",
            )
            sys.stdout.writelines(diff)
        else:
            path.write_text(expected, encoding="utf-8")
            print(f"wrote {rel}")
    if args.check and stale:
        names = ", ".join(str(p) for p in stale)
        print(f"\n{names} out of date: run `python scripts/gen_provider_info.py`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
