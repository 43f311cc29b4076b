"""Run the numbered example DAGs end to end against the local sandbox and print a result table.

::

    .venv/bin/python scripts/run_examples.py                  # every example_dags/108_*.py
    .venv/bin/python scripts/run_examples.py --only 108_04    # names containing 108_04 (or a glob)
    .venv/bin/python scripts/run_examples.py --jobs 2         # two DAGs at a time

What it sets up, once per invocation:

- the sandbox partner API as two real child processes, plain HTTP and HTTPS (certificates from a throw-away
  CA), plus a "silent firewall" port that never completes a TCP handshake;
- the standalone webhook receiver as a child process (SQLite callback store, payloads encrypted at rest),
  which the partner's callbacks reach; ``[integrations] webhook_*`` settings point tasks at it;
- the example connections (``sandbox/connections.py``) as ``AIRFLOW_CONN_*`` environment variables, the way a
  deployment would use a secrets backend;
- a temporary ``AIRFLOW_HOME`` with SQLite, migrated once with ``airflow db migrate``. Each DAG then gets
  its own copy of that database, so parallel runs never contend for the SQLite write lock.

Each DAG runs through ``dag.test()`` in its own process (``run_examples.py --one PATH``), so examples
cannot share connection caches, circuit breakers or event loops. An example that needs a database server
declares it with a module-level ``REQUIRES = ["postgresql"]`` (read with :mod:`ast`, never imported); it is
skipped when nothing answers on the server's port.

The functions are importable: ``tests/examples`` runs each DAG through :func:`run_one` as well.
Exit status: 1 if any DAG failed, else 0.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_DIR = ROOT / "example_dags"
DEFAULT_GLOB = "108_*.py"
DEFAULT_TIMEOUT = 300.0
# The child prints one line starting with this marker; everything else it prints is log output.
RESULT_MARKER = "@@run_examples result@@ "

#: ``REQUIRES`` names -> (label, host, port) of the server that must answer.
SERVERS: dict[str, tuple[str, str, int]] = {
    "postgresql": ("PostgreSQL", "127.0.0.1", 5432),
    "mariadb": ("MariaDB", "127.0.0.1", 3306),
    "mysql": ("MariaDB", "127.0.0.1", 3306),
}

Status = Literal["success", "failed", "skipped"]


@dataclass(frozen=True)
class Result:
    """Outcome of one example DAG; ``output`` is everything its process printed."""

    dag_id: str
    path: Path
    status: Status
    duration: float
    note: str = ""
    output: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "failed"


# -- discovery and requirements ---------------------------------------------------------------------


def discover(only: str | None = None, directory: Path = EXAMPLES_DIR) -> list[Path]:
    """Example files in name order; ``only`` is a glob or a substring of the file name."""
    paths = sorted(directory.glob(DEFAULT_GLOB))
    if only:
        paths = [p for p in paths if fnmatch.fnmatch(p.name, only) or only in p.name]
    return paths


def declared_requirements(path: Path) -> list[str]:
    """The module-level ``REQUIRES`` list of a DAG file, read without importing it."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in tree.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        if any(isinstance(t, ast.Name) and t.id == "REQUIRES" for t in targets):
            found = ast.literal_eval(value)
            if not isinstance(found, (list, tuple)) or not all(isinstance(x, str) for x in found):
                raise ValueError(f"{path.name}: REQUIRES must be a list of strings, got {found!r}")
            return [x.lower() for x in found]
    return []


def server_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def skip_reason(path: Path) -> str | None:
    """Why ``path`` cannot run here (a required server is down), or ``None``."""
    for name in declared_requirements(path):
        if name not in SERVERS:
            raise ValueError(f"{path.name}: REQUIRES names unknown server {name!r}; known: {sorted(SERVERS)}")
        label, host, port = SERVERS[name]
        if not server_answers(host, port):
            return f"needs {label} at {host}:{port}"
    return None


# -- environment ------------------------------------------------------------------------------------


class Blackhole:
    """A local port that never completes a TCP handshake, like a firewall that silently drops packets.

    A listening socket whose accept queue is full makes the kernel drop new SYNs, so clients see a
    connect *timeout* (a rejecting firewall gives "connection refused" instead). Nothing is ever
    accepted, so no thread is needed.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.bind((host, 0))
        self._server.listen(0)
        self._fillers: list[socket.socket] = []
        for _ in range(3):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            filler.setblocking(False)
            with suppress(BlockingIOError):
                filler.connect(self._server.getsockname())
            self._fillers.append(filler)

    @property
    def url(self) -> str:
        host, port = self._server.getsockname()
        return f"http://{host}:{port}"

    def close(self) -> None:
        for sock in [*self._fillers, self._server]:
            sock.close()

    def __enter__(self) -> Blackhole:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


@contextmanager
def sandbox_connections(workdir: Path) -> Iterator[dict[str, str]]:
    """Start the sandboxes and yield the ``AIRFLOW_CONN_*`` variables of every example connection."""
    from airflow_provider_integrations.sandbox import SandboxProcess, generate_tls_material
    from airflow_provider_integrations.sandbox.connections import as_environment, example_connections

    tls = generate_tls_material(workdir / "tls")
    with ExitStack() as stack:
        plain = stack.enter_context(SandboxProcess())
        secure = stack.enter_context(SandboxProcess(tls=tls))
        blackhole = stack.enter_context(Blackhole())
        conns = example_connections(plain.url, secure.url, tls, blackhole_url=blackhole.url)
        yield as_environment(conns)


#: ``secret_conn_id`` of the example callbacks: the receiver verifies them with the partner's secret.
WEBHOOK_SECRET_NAME = "partner_webhook"


@contextmanager
def webhook_receiver(workdir: Path) -> Iterator[dict[str, str]]:
    """Start the standalone webhook receiver; yield the settings that point example tasks at it.

    Its audit log goes to ``webhook-receiver.log`` in ``workdir``. The partner's secret is also exported
    as the ``partner_webhook`` connection, which the API-server plugin would read instead.
    """
    from airflow_provider_integrations.sandbox.webhooks import PARTNER_WEBHOOK_SECRET
    from airflow_provider_integrations.webhooks import generate_payload_key
    from airflow_provider_integrations.webhooks.server import READY_PREFIX

    store, key = f"sqlite:///{workdir / 'integrations_webhooks.db'}", generate_payload_key()
    cmd = [sys.executable, "-m", "airflow_provider_integrations.webhooks", "serve", "--port", "0"]
    cmd += ["--store", store, "--secret-env", f"{WEBHOOK_SECRET_NAME}=PARTNER_WEBHOOK_SECRET"]
    cmd += ["--encryption-key-env", "WEBHOOK_PAYLOAD_KEY", "--cleanup-interval", "0"]
    env = {**os.environ, "PARTNER_WEBHOOK_SECRET": PARTNER_WEBHOOK_SECRET, "WEBHOOK_PAYLOAD_KEY": key}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    log_path = workdir / "webhook-receiver.log"
    with (
        log_path.open("wb") as log,
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=log, text=True) as proc,
    ):
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()  # the one ready line; EOF if the receiver died
            if not line.startswith(READY_PREFIX):
                raise RuntimeError(f"the webhook receiver did not start; see {log_path}")
            secret = json.dumps({"conn_type": "generic", "password": PARTNER_WEBHOOK_SECRET})
            yield {
                "AIRFLOW__INTEGRATIONS__WEBHOOK_BASE_URL": line[len(READY_PREFIX) :].strip(),
                "AIRFLOW__INTEGRATIONS__WEBHOOK_STORE": store,
                "AIRFLOW__INTEGRATIONS__WEBHOOK_PAYLOAD_KEYS": key,
                f"AIRFLOW_CONN_{WEBHOOK_SECRET_NAME.upper()}": secret,
            }
        finally:
            proc.terminate()
            proc.wait(10)


def airflow_environment(home: Path, database: Path | None = None) -> dict[str, str]:
    """Settings for a private Airflow home on SQLite, loading DAGs from ``example_dags/``."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLES_DIR),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{database or home / 'airflow.db'}",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
    }


def airflow_cli(*args: str, env: Mapping[str, str], timeout: float = 300.0) -> None:
    exe = Path(sys.executable).with_name("airflow")
    proc = subprocess.run(
        [str(exe), *args], env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise RuntimeError(f"airflow {' '.join(args)} exited with {proc.returncode}:\n{tail}")


def migrate(env: Mapping[str, str]) -> None:
    airflow_cli("db", "migrate", env=env)


# -- running one DAG --------------------------------------------------------------------------------


def run_one(path: Path, env: Mapping[str, str], *, timeout: float = DEFAULT_TIMEOUT) -> Result:
    """Run one example through ``dag.test()`` in a child process with ``env`` as its whole environment."""
    path = Path(path).resolve()
    dag_id = path.stem
    t0 = time.monotonic()
    try:
        reason = skip_reason(path)
    except (SyntaxError, ValueError) as exc:
        return Result(dag_id, path, "failed", 0.0, f"{type(exc).__name__}: {exc}")
    if reason is not None:
        return Result(dag_id, path, "skipped", 0.0, reason)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", str(path)]
    try:
        proc = subprocess.run(
            cmd,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raw = exc.stdout or ""
        output = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        note = f"timed out after {timeout:.0f} s"
        return Result(dag_id, path, "failed", time.monotonic() - t0, note, output)
    duration = time.monotonic() - t0
    report = _parse_report(proc.stdout)
    if report is not None and report.get("state") == "success" and proc.returncode == 0:
        return Result(dag_id, path, "success", duration, f"{report.get('tasks', '?')} tasks", proc.stdout)
    return Result(dag_id, path, "failed", duration, failure_note(proc.stdout, report), proc.stdout)


def _parse_report(output: str) -> dict[str, Any] | None:
    for line in reversed(output.splitlines()):
        if line.startswith(RESULT_MARKER):
            report: dict[str, Any] = json.loads(line[len(RESULT_MARKER) :])
            return report
    return None


_TASK_START = re.compile(r"\[DAG TEST\] starting task_id=(\S+)")


def exception_lines(lines: Sequence[str]) -> list[str]:
    """The final line of every traceback in ``lines`` (``ValueError: ...``), in order."""
    found: list[str] = []
    in_traceback = False
    for line in lines:
        if line.startswith("Traceback (most recent call last):"):
            in_traceback = True
        elif in_traceback and line and not line[0].isspace():
            found.append(line.strip())
            in_traceback = False
    return found


def failure_note(output: str, report: Mapping[str, Any] | None) -> str:
    """ "task: first error line" of the task that failed the run, or the first error of the process."""
    lines = output.splitlines()
    culprits = list(report.get("culprits", [])) if report else []
    if culprits:
        sections: dict[str, list[str]] = {}
        current: list[str] | None = None
        for line in lines:
            started = _TASK_START.search(line)
            if started:
                current = sections.setdefault(started.group(1), [])
            elif current is not None:
                current.append(line)
        for task_id in culprits:
            errors = exception_lines(sections.get(task_id, []))
            if errors:
                return f"{task_id}: {errors[0]}"
        return f"failed tasks: {', '.join(culprits)}"
    errors = exception_lines(lines)
    if errors:
        return errors[0]
    if report is not None:
        return f"dag run ended {report.get('state')}"
    tail = [line for line in lines if line.strip()]
    return tail[-1][:200] if tail else "no output"


def _load_dag(path: Path) -> Any:
    """The DAG of ``path``, loaded the way the DAG processor does (``with DAG``, ``@dag``, globals)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(path))
    if bag.import_errors:
        raise ImportError(f"{path.name} does not import:\n{next(iter(bag.import_errors.values()))}")
    if path.stem not in bag.dags:
        raise LookupError(f"{path.name}: expected a DAG with dag_id {path.stem!r}, found {sorted(bag.dags)}")
    return bag.dags[path.stem]


def _culprits(dag: Any, task_instances: Sequence[Any]) -> list[str]:
    """Failed tasks the run did not tolerate, in start order.

    A failure is tolerated when every downstream task still ran (``trigger_rule="all_done"`` and
    friends), as in the examples that check a deliberate failure; it is not when it is a leaf or left a
    downstream task ``upstream_failed``.
    """
    states = {ti.task_id: _state(ti.state) for ti in task_instances}
    started = {ti.task_id: ti.start_date for ti in task_instances}
    found = []
    for task_id, state in states.items():
        if state != "failed":
            continue
        downstream = dag.get_task(task_id).downstream_task_ids
        if not downstream or any(states.get(d) == "upstream_failed" for d in downstream):
            found.append(task_id)
    return sorted(found, key=lambda t: (started[t] is None, started[t] or 0))


def _state(state: Any) -> str:
    return str(getattr(state, "value", state))


def run_dag_file(path: Path) -> int:
    """Child side of :func:`run_one`: ``dag.test()`` one file, then print the result line."""
    dag = _load_dag(path)
    dag_run = dag.test()
    task_instances = dag_run.get_task_instances()
    state = _state(dag_run.state)
    report = {
        "dag_id": dag.dag_id,
        "state": state,
        "tasks": len({ti.task_id for ti in task_instances}),
        "culprits": [] if state == "success" else _culprits(dag, task_instances),
    }
    print(RESULT_MARKER + json.dumps(report), flush=True)
    return 0 if state == "success" else 1


# -- the demo ---------------------------------------------------------------------------------------


def format_table(results: Sequence[Result], width: int = 70) -> str:
    rows = [("DAG id", "result", "duration", "note")]
    for r in results:
        note = r.note if len(r.note) <= width else r.note[: width - 1] + "…"
        duration = "-" if r.status == "skipped" else f"{r.duration:.1f} s"
        rows.append((r.dag_id, r.status, duration, note))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for i, row in enumerate(rows):
        lines.append(
            f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}".rstrip()
        )
        if i == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 4)
    return "\n".join(lines)


def run_all(
    paths: Sequence[Path], *, jobs: int = 1, timeout: float = DEFAULT_TIMEOUT, keep: bool = False
) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="run-examples-"))
    home = workdir / "airflow-home"
    home.mkdir()
    failed = True
    try:
        base_env = {**os.environ, **airflow_environment(home)}
        print(f"airflow home: {home} (SQLite); migrating the metadata database...", flush=True)
        t0 = time.monotonic()
        migrate(base_env)
        print(f"migrated in {time.monotonic() - t0:.1f} s; starting the sandbox...", flush=True)
        with sandbox_connections(workdir) as conn_env, webhook_receiver(workdir) as webhook_env:
            results = _run_paths(
                paths, base_env, {**conn_env, **webhook_env}, home, jobs=jobs, timeout=timeout
            )
        logs = workdir / "logs"
        logs.mkdir()
        for r in results:
            (logs / f"{r.dag_id}.log").write_text(r.output)
        print()
        print(format_table(results))
        counts = {s: sum(r.status == s for r in results) for s in ("success", "failed", "skipped")}
        print(f"\n{counts['success']} succeeded, {counts['failed']} failed, {counts['skipped']} skipped")
        failed = counts["failed"] > 0
        if failed or keep:
            print(f"logs of every DAG run: {logs}")
        return 1 if failed else 0
    finally:
        if not (failed or keep):
            shutil.rmtree(workdir, ignore_errors=True)


def _run_paths(
    paths: Sequence[Path],
    base_env: Mapping[str, str],
    conn_env: Mapping[str, str],
    home: Path,
    *,
    jobs: int,
    timeout: float,
) -> list[Result]:
    template = home / "airflow.db"
    (home / "runs").mkdir()

    def one(path: Path) -> Result:
        # A private copy of the migrated database: SQLite serialises writers across processes.
        database = home / "runs" / f"{path.stem}.db"
        shutil.copyfile(template, database)
        env = {**base_env, **airflow_environment(home, database), **conn_env}
        return run_one(path, env, timeout=timeout)

    results: dict[Path, Result] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(one, p): p for p in paths}
        for done, future in enumerate(as_completed(futures), 1):
            r = future.result()
            results[futures[future]] = r
            extra = f" ({r.note})" if r.status != "success" else ""
            print(f"[{done}/{len(paths)}] {r.dag_id}: {r.status} in {r.duration:.1f} s{extra}", flush=True)
    return [results[p] for p in paths]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", metavar="PATTERN", help="glob or substring of the example file names")
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help="DAGs run at the same time")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds allowed per DAG")
    parser.add_argument("--keep", action="store_true", help="keep the temporary Airflow home and logs")
    parser.add_argument("--one", type=Path, metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        return run_dag_file(args.one.resolve())
    paths = discover(args.only)
    if not paths:
        print(f"no example matches {args.only!r} in {EXAMPLES_DIR}", file=sys.stderr)
        return 1
    return run_all(paths, jobs=args.jobs, timeout=args.timeout, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
