"""`discover: [me]` through real Airflow (`airflow dags test`, what `make run` runs): the mapped batch
tasks publish the same marts as the explicit lists of the same (default) world, and the discovery
dataset says what was found."""

from __future__ import annotations

import os
import sqlite3
from datetime import timedelta

import duckdb
import pytest
from airflow_standalone import (
    PULL_TIME_COLUMNS,
    airflow_env,
    free_port,
    prepare_home,
    run_airflow,
    write_pipeline_config,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1500)]

DAG_ID = "meta_ads_daily"
LOOKBACK_DAYS = 3
MARTS = (
    "cost_per_lead",
    "conversations_started",
    "conversations_started_by_page",
    "lead_reconciliation",
    "cost_per_lead_by_placement",
)
# the default report and one further report (breakdowns): mapped batches run both, as listed accounts do
INSIGHTS = {"poll_interval_seconds": 2, "reports": [{"name": "default"}, {"preset": "by_placement"}]}


def _scheduled_day():
    from airflow.timetables.interval import CronDataIntervalTimetable
    from meta_ads_elt.config import DEFAULT_SCHEDULE
    from pendulum import now

    interval = CronDataIntervalTimetable(DEFAULT_SCHEDULE, "UTC").infer_manual_data_interval(
        run_after=now("UTC")
    )
    return interval.start.date()


def marts_snapshot(serving_path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(serving_path), read_only=True) as connection:
        result = {}
        for mart in MARTS:
            relation = connection.table(mart)
            columns = [name for name in relation.columns if name != "as_of" and name not in PULL_TIME_COLUMNS]
            result[mart] = sorted(relation.select(*[f'"{name}"' for name in columns]).fetchall(), key=repr)
        return result


def dags_test(sandbox, workdir, name: str, **overrides):
    config = write_pipeline_config(
        workdir / f"{name}.yaml",
        sandbox.world(),
        workdir / name,
        lookback_days=LOOKBACK_DAYS,
        insights=INSIGHTS,
        **overrides,
    )
    env = airflow_env(workdir / f"{name}_home", config, sandbox, free_port())
    os.makedirs(env["AIRFLOW_HOME"], exist_ok=True)
    prepare_home(env)
    day = _scheduled_day()
    result = run_airflow(
        env, "dags", "test", DAG_ID, f"{(day + timedelta(days=1)).isoformat()}T12:00:00+00:00"
    )
    return workdir / name, result


def test_discover_me_publishes_the_same_marts_as_the_explicit_lists(sandbox, tmp_path):
    listed, _ = dags_test(sandbox, tmp_path, "listed")
    discovered, result = dags_test(
        sandbox,
        tmp_path,
        "discovered",
        accounts={"discover": ["me"]},
        pages={"discover": ["me"]},
        mapping={"accounts_per_task": 2, "pages_per_task": 3},
    )
    output = result.stdout + result.stderr
    assert "extract_accounts" in output and "discover" in output
    listed_marts, discovered_marts = (
        marts_snapshot(listed / "marts.duckdb"),
        marts_snapshot(discovered / "marts.duckdb"),
    )
    assert listed_marts["cost_per_lead"] and listed_marts["cost_per_lead_by_placement"], "the marts have rows"
    for mart in MARTS:
        assert listed_marts[mart] == discovered_marts[mart], f"{mart} differs between listed and discovered"
    world = sandbox.world()
    with duckdb.connect() as connection:
        found = dict(
            connection.sql(
                f"select account_id, state from read_parquet('{discovered}/lake/discovered_accounts/**/*.parquet')"
            ).fetchall()
        )
        pages = dict(
            connection.sql(
                f"select page_id, state from read_parquet('{discovered}/lake/discovered_pages/**/*.parquet')"
            ).fetchall()
        )
    assert found == {a["account_id"]: "arrived" for a in world["accounts"]}, "first run: every account is new"
    assert set(pages) == {p["id"] for p in world["pages"]}


def test_a_discovery_that_finds_no_page_still_publishes_the_marts(sandbox, tmp_path):
    """Airflow skips a mapped task with nothing to map (no Page found). The build must not be skipped with
    it: the run publishes the marts of the listed accounts, and a run that published nothing is never green."""
    business = sandbox.world()["business"]["id"]  # manages no client's account in the default world
    workdir, result = dags_test(
        sandbox, tmp_path, "no_pages", pages={"discover": [f"business:{business}:client"]}
    )
    output = (result.stdout + result.stderr)[-6000:]
    with sqlite3.connect(workdir.parent / "no_pages_home" / "airflow.db") as db:
        states = dict(
            db.execute("select task_id, state from task_instance where dag_id = ?", [DAG_ID]).fetchall()
        )
        (run_state,) = db.execute("select state from dag_run where dag_id = ?", [DAG_ID]).fetchone()
    assert states["leads.extract_leads"] == states["conversations.extract_conversations"] == "skipped", states
    assert states["dbt_build"] == states["publish"] == "success", (states, output)
    assert run_state == "success", (states, output)
    with duckdb.connect(str(workdir / "marts.duckdb"), read_only=True) as connection:
        (spend,) = connection.execute("select sum(spend) from cost_per_lead").fetchone()
    assert spend and spend > 0, "the listed accounts' spend is published"
