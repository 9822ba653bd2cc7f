"""The DAG files import cleanly, do no network or database work at parse time, and keep their promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]

# Parses the DAG folder in a fresh interpreter where opening a socket or a SQLite/SQLAlchemy
# connection raises, so any parse-time network or database access shows up as an import error.
GUARDED_PARSE = r"""
import json, socket, sqlite3, sys

class ParseTimeIO(RuntimeError):
    pass

def refuse(*args, **kwargs):
    raise ParseTimeIO("network or database access at DAG parse time")

from airflow.dag_processing.dagbag import DagBag  # Airflow's own start-up may touch config first

socket.socket.connect = refuse
socket.create_connection = refuse
sqlite3.connect = refuse
import sqlalchemy
sqlalchemy.create_engine = refuse

bag = DagBag(dag_folder=sys.argv[1])
dag = bag.dags.get("meta_ads_daily")
print(json.dumps({
    "errors": {k: str(v)[-2000:] for k, v in bag.import_errors.items()},
    "dag_ids": sorted(bag.dag_ids),
    "tasks": sorted(t.task_id for t in dag.tasks) if dag else [],
    "pools": sorted({t.pool for t in dag.tasks}) if dag else [],
    "catchup": dag.catchup if dag else None,
    "max_active_runs": dag.max_active_runs if dag else None,
    "retries": sorted({t.retries for t in dag.tasks}) if dag else [],
    "timetable": type(dag.timetable).__name__ if dag else None,
    "execution_timeouts": {t.task_id: t.execution_timeout.total_seconds() if t.execution_timeout else None
                           for t in dag.tasks} if dag else {},
    "upstream": {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks} if dag else {},
    "trigger_rules": {t.task_id: getattr(t.trigger_rule, "value", t.trigger_rule) for t in dag.tasks} if dag else {},
    "heavy_modules": sorted(m for m in ("pyarrow", "facebook_business", "duckdb", "pandas") if m in sys.modules),
}))
"""


def parse_guarded(dag_folder: Path, home: Path) -> dict:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_DIR / "plugins"),
        "PYTHONPATH": os.pathsep.join([str(PROJECT_DIR / "plugins"), str(PROJECT_DIR / "include")]),
    }
    result = subprocess.run(
        [sys.executable, "-c", GUARDED_PARSE, str(dag_folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def parsed(tmp_path_factory):
    return parse_guarded(PROJECT_DIR / "dags", tmp_path_factory.mktemp("airflow_home"))


def test_the_guard_catches_parse_time_network_access(tmp_path):
    """The guarded parse is not vacuous: a DAG file that opens a connection at import is reported."""
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "chatty.py").write_text(
        "import urllib.request\n"
        "from airflow.sdk import dag\n"
        "urllib.request.urlopen('http://127.0.0.1:9/')\n"
        "@dag(schedule=None)\n"
        "def chatty():\n"
        "    pass\n"
        "chatty()\n"
    )
    result = parse_guarded(dags, tmp_path / "home")
    assert "network or database access at DAG parse time" in json.dumps(result["errors"])


def test_dagbag_imports_without_errors_or_parse_time_io(parsed):
    assert parsed["errors"] == {}
    assert "meta_ads_daily" in parsed["dag_ids"]


def test_parsing_the_dag_imports_no_data_library(parsed):
    """Top-level code of a DAG file runs at every parse (Airflow's best practices): building the DAG
    imports neither pyarrow, the facebook-business SDK, DuckDB nor pandas; the tasks import them."""
    assert parsed["errors"] == {}
    assert parsed["heavy_modules"] == []


def test_every_configured_account_and_page_gets_its_tasks(parsed):
    from meta_ads_elt.config import load_config

    config = load_config()
    tasks = set(parsed["tasks"])
    for account in config.accounts:
        assert f"insights.insights_{account.numeric_id}" in tasks
        assert f"insights.ad_objects_{account.numeric_id}" in tasks
    for page in config.pages:
        assert f"leads.leads_{page.id}" in tasks
        assert f"conversations.conversations_{page.id}" in tasks
    assert {"access_check", "dbt_build", "publish"} <= tasks


def test_a_failed_extraction_does_not_stop_the_publish_but_fails_the_run(parsed):
    """Failure isolation (meta_ads_elt.failures): dbt_build waits for every extraction and runs when one
    succeeded; the ad-object snapshot also runs after an Insights task that gave up some days; the last
    task, check_extractions, runs whatever happened before it and is the DAG's only leaf, so the run's
    state is its verdict."""
    rules, upstream = parsed["trigger_rules"], parsed["upstream"]
    assert rules["dbt_build"] == "all_done"  # with a gate: all_done_min_one_success skips it after a skip
    assert rules["check_extractions"] == "all_done"
    assert upstream["check_extractions"] == ["publish"]
    leaves = {t for t in upstream} - {u for ups in upstream.values() for u in ups}
    assert leaves == {"check_extractions"}
    for task_id, rule in rules.items():
        if task_id.startswith("insights.ad_objects_"):
            assert rule == "all_done_min_one_success"
            assert "access_check" in upstream[task_id]  # never runs when the access check failed


def test_backfill_safety_settings(parsed):
    from meta_ads_elt.config import load_config
    from meta_ads_elt.pools import DUCKDB_WRITER_POOL, pools_for

    assert parsed["catchup"] is False
    assert parsed["max_active_runs"] >= 1
    assert min(parsed["retries"]) >= 1
    assert DUCKDB_WRITER_POOL in parsed["pools"]
    # every pool a task uses is one that `make run` / docker-compose create (or Airflow's own
    # default_pool, which always exists: the access check spends no account or Page budget)
    assert set(parsed["pools"]) - {"default_pool"} <= set(pools_for(load_config()))
    assert parsed["timetable"] == "CronDataIntervalTimetable"


def test_every_task_has_an_execution_timeout(parsed):
    from meta_ads_elt.config import load_config

    timeouts = parsed["execution_timeouts"]
    assert timeouts and all(
        seconds == load_config().execution_timeout_minutes * 60 for seconds in timeouts.values()
    )


def test_the_snapshot_runs_after_the_insights_of_its_account(parsed):
    from meta_ads_elt.config import load_config

    for account in load_config().accounts:
        upstream = parsed["upstream"][f"insights.ad_objects_{account.numeric_id}"]
        assert upstream == ["access_check", f"insights.insights_{account.numeric_id}"]


def test_the_timetable_gives_whole_utc_days_as_data_intervals():
    """Airflow 3's cron default (CronTriggerTimetable) has start == end; ours covers the day before the run."""
    from airflow.timetables.base import TimeRestriction
    from airflow.timetables.interval import CronDataIntervalTimetable
    from pendulum import datetime as pdt

    timetable = CronDataIntervalTimetable("0 0 * * *", timezone="UTC")
    info = timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=pdt(2026, 11, 1, tz="UTC"), latest=None, catchup=True),
    )
    assert info.data_interval.start == pdt(2026, 11, 1, tz="UTC")
    assert info.data_interval.end == pdt(2026, 11, 2, tz="UTC")
    assert info.run_after == info.data_interval.end

    manual = timetable.infer_manual_data_interval(run_after=pdt(2026, 11, 21, 13, 30, tz="UTC"))
    assert (manual.start, manual.end) == (pdt(2026, 11, 20, tz="UTC"), pdt(2026, 11, 21, tz="UTC"))
    assert manual.start.tzinfo is not None and manual.start != manual.end
    assert datetime(2026, 11, 20, tzinfo=UTC).date() == manual.start.date()


def test_a_discovered_config_maps_batches_after_the_discover_task(tmp_path, monkeypatch):
    """`discover:` accounts and Pages: one discover task, then extraction mapped over batches (no per-id
    tasks at parse time), in the pool `make run` creates for them; the parse still does no I/O."""
    from meta_ads_elt.config import parse_config
    from meta_ads_elt.pools import DISCOVERED_POOL, pools_for

    config = {
        "lake_root": str(tmp_path / "lake"),
        "accounts": {"discover": ["me"]},
        "pages": {"discover": ["me"]},
    }
    path = tmp_path / "pipeline.yaml"
    path.write_text(json.dumps(config))
    monkeypatch.setenv("META_PIPELINE_CONFIG", str(path))
    parsed = parse_guarded(PROJECT_DIR / "dags", tmp_path / "home")
    assert parsed["errors"] == {}
    assert set(parsed["tasks"]) == {
        "access_check",
        "discover",
        "account_batches",
        "page_batches",
        "insights.extract_accounts",
        "leads.extract_leads",
        "conversations.extract_conversations",
        "dbt_build",
        "publish",
        "check_extractions",
    }
    assert parsed["upstream"]["discover"] == ["access_check"]
    assert parsed["upstream"]["insights.extract_accounts"] == ["account_batches", "discover"]
    assert DISCOVERED_POOL in parsed["pools"]
    assert set(parsed["pools"]) - {"default_pool"} <= set(pools_for(parse_config(config)))
