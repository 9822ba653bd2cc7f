"""Run the real pipeline through a real `airflow standalone` (scheduler, triggerer, API server, LocalExecutor).

Used by the end-to-end tests: no part of our code is mocked; the sandbox serves the Graph API over HTTP.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests
import tenacity
import yaml

from tests.processes import TREE_MARKER, stop_tree

PROJECT_DIR = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_pipeline_config(path: Path, world: dict, workdir: Path, **overrides) -> Path:
    """A pipeline.yaml for the sandbox's world, with the lake and marts under ``workdir``."""
    config = {
        "meta_conn_id": "meta_default",
        "lake_root": str(workdir / "lake"),
        "lookback_days": 28,
        "accounts": [{"id": account["id"]} for account in world["accounts"]],
        "pages": [{"id": page["id"]} for page in world["pages"]],
        "insights": {"poll_interval_seconds": 2},
        "marts": {
            "build_path": str(workdir / "build" / "marts_build.duckdb"),
            "serving_path": str(workdir / "marts.duckdb"),
            "parquet_dir": str(workdir / "marts"),
        },
    }
    config.update(overrides)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def airflow_env(home: Path, config_path: Path, sandbox, api_port: int) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_DIR / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_DIR / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{api_port}/execution/",
        # One parse at start is all a test needs (none edits the DAG file or its config while Airflow
        # runs); the default re-parses every 30 s, each parse importing pyarrow and the SDK again.
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__CORE__PARALLELISM": "8",
        # own log-server ports: other Airflows of the suite (parallel test workers) run at the same time
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "PYTHONPATH": os.pathsep.join([str(PROJECT_DIR / "plugins"), str(PROJECT_DIR / "include")]),
        "META_PIPELINE_CONFIG": str(config_path),
        "AIRFLOW_CONN_META_DEFAULT": json.dumps(
            {
                "conn_type": "meta_graph_api",
                "password": sandbox.token,
                "extra": sandbox.connection_extra(),
            }
        ),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    }


def run_airflow(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(VENV_BIN / "airflow"), *args],
        env=env,
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"airflow {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def prepare_home(env: dict[str, str]) -> None:
    """Migrate the metadata DB and create the pools the DAG uses."""
    from meta_ads_elt.config import load_config
    from meta_ads_elt.pools import pools_import_document

    run_airflow(env, "db", "migrate")
    pools_file = Path(env["AIRFLOW_HOME"]) / "pools.json"
    pools_file.write_text(json.dumps(pools_import_document(load_config(env["META_PIPELINE_CONFIG"]))))
    run_airflow(env, "pools", "import", str(pools_file))


@dataclass
class Standalone:
    """A running `airflow standalone` and an authenticated REST client for it."""

    env: dict[str, str]
    port: int
    process: subprocess.Popen
    log_path: Path
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def api(self) -> str:
        return f"http://localhost:{self.port}/api/v2"

    def authenticate(self) -> None:
        passwords = Path(self.env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
        password = json.loads(passwords.read_text())["admin"]
        response = requests.post(
            f"http://localhost:{self.port}/auth/token",
            json={"username": "admin", "password": password},
            timeout=30,
        )
        response.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    @tenacity.retry(
        retry=tenacity.retry_if_exception_type((requests.Timeout, requests.ConnectionError)),
        stop=tenacity.stop_after_attempt(4),
        wait=tenacity.wait_fixed(5),
        reraise=True,
    )
    def get(self, path: str, **params) -> dict:
        """GET (idempotent: retried when a loaded machine's API server answers too slowly)."""
        response = self.session.get(f"{self.api}{path}", params=params, timeout=30)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict) -> dict:
        response = self.session.post(f"{self.api}{path}", json=body, timeout=30)
        assert response.status_code < 300, f"POST {path} -> {response.status_code}: {response.text}"
        return response.json()

    def dag_runs(self, dag_id: str) -> list[dict]:
        return self.get(f"/dags/{dag_id}/dagRuns", limit=100)["dag_runs"]

    def wait_for_runs(self, dag_id: str, predicate, *, count: int, timeout: float) -> list[dict]:
        """Wait until ``count`` runs matching ``predicate`` are finished; fail fast on a failed run."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = [run for run in self.dag_runs(dag_id) if predicate(run)]
            failed = [run for run in runs if run["state"] == "failed"]
            if failed:
                raise AssertionError(
                    f"DAG run failed: {failed[0]['dag_run_id']}\n{self.failure_report(dag_id, failed[0])}"
                )
            done = [run for run in runs if run["state"] == "success"]
            if len(done) >= count:
                return done
            time.sleep(3)
        raise AssertionError(
            f"timed out waiting for {count} runs; runs: {self.dag_runs(dag_id)}\n{self.log_tail()}"
        )

    def failure_report(self, dag_id: str, run: dict) -> str:
        instances = self.get(f"/dags/{dag_id}/dagRuns/{run['dag_run_id']}/taskInstances")["task_instances"]
        lines = [f"{ti['task_id']}: {ti['state']}" for ti in instances]
        failed_tasks = {ti["task_id"] for ti in instances if ti["state"] == "failed"}
        logs = sorted(Path(self.env["AIRFLOW_HOME"], "logs").rglob("*.log"))
        of_the_run = [path for path in logs if f"run_id={run['dag_run_id']}" in str(path)]
        # the failed tasks' own tries first: their cause is what the reader needs
        failing = [path for path in of_the_run if path.parent.name.removeprefix("task_id=") in failed_tasks]
        tails = [f"--- {path}\n{path.read_text()[-4000:]}" for path in (failing or of_the_run)[-4:]]
        return "\n".join(lines + tails)

    def log_tail(self) -> str:
        return self.log_path.read_text()[-4000:]

    def stop(self) -> None:
        """Stop standalone and everything it started: its process group, and the processes that carry
        its marker (Airflow runs each task in a process group of its own). SIGKILL after 10 s: the
        scheduler ignores SIGTERM for seconds."""
        stop_tree(self.process, self.env[TREE_MARKER], grace=10)


def start_standalone(env: dict[str, str], port: int, timeout: float = 420) -> Standalone:
    """Start `airflow standalone` in its own process group, marked so that every process it starts can be
    found and stopped (:meth:`Standalone.stop`; call it in a ``finally`` or fixture teardown)."""
    env = {**env, TREE_MARKER: uuid.uuid4().hex}
    log_path = Path(env["AIRFLOW_HOME"]) / "standalone.log"
    process = subprocess.Popen(
        [str(VENV_BIN / "airflow"), "standalone"],
        env=env,
        cwd=PROJECT_DIR,
        stdout=open(log_path, "w"),  # noqa: SIM115 (lives as long as the process)
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    standalone = Standalone(env=env, port=port, process=process, log_path=log_path)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"airflow standalone exited:\n{standalone.log_tail()}")
            try:
                if requests.get(f"http://localhost:{port}/api/v2/version", timeout=10).ok:
                    standalone.authenticate()
                    return standalone
            except (requests.RequestException, FileNotFoundError, KeyError, json.JSONDecodeError):
                pass
            time.sleep(2)
        raise AssertionError(f"airflow standalone did not start:\n{standalone.log_tail()}")
    except BaseException:
        standalone.stop()
        raise


def copy_tree(source: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)


def assert_insights_deferred_to_triggerer(airflow: Standalone, dag_id: str, run: dict) -> None:
    """The deferrable operator really deferred: each account's trigger ran in the triggerer (its own
    log file), polled the report runs to completion and fired the event that resumed the task.

    The resumption is read from the task's own log: the triggerer's "Trigger fired event" line can land
    in the triggerer's main log instead of the trigger's file when the triggerer handles the trigger's
    end before that line (its log routing races its event handling), so it proves nothing missing."""
    instances = airflow.get(f"/dags/{dag_id}/dagRuns/{run['dag_run_id']}/taskInstances")["task_instances"]
    insights = [ti for ti in instances if ".insights_" in ti["task_id"]]
    assert insights and all(ti["state"] == "success" for ti in insights)
    logs = Path(airflow.env["AIRFLOW_HOME"], "logs", f"dag_id={dag_id}", f"run_id={run['dag_run_id']}")
    for ti in insights:
        trigger_logs = list((logs / f"task_id={ti['task_id']}").glob("*.trigger.*.log"))
        assert trigger_logs, f"{ti['task_id']} never ran a trigger"
        text = "\n".join(path.read_text() for path in trigger_logs)
        assert "Job Completed 100%" in text, f"{ti['task_id']}: the trigger never saw its jobs complete"
        task_logs = (logs / f"task_id={ti['task_id']}").glob("attempt=*.log")
        assert any("resumed on the trigger's 'done' event" in path.read_text() for path in task_logs), (
            f"{ti['task_id']} was never resumed by its trigger's event"
        )


PULL_TIME_COLUMNS = frozenset(
    {
        "messages_in",
        "messages_out",
        "median_first_reply_seconds",
        "conversations_started_observed",
        "conversations_started_inferred",
    }
)
"""Columns of conversations_started_by_page that depend on when the conversations were pulled: Meta returns
a conversation's 20 newest messages only (seed 004), so a later pull of a conversation that grew lacks
older messages an earlier pull had (the total of conversations_started does not change: starts beyond
reach are inferred). Two runs pulled at different moments are compared without them."""
