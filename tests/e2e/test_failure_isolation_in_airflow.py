"""Failure isolation through real Airflow (`airflow dags test`, every task run by Airflow with the DAG's
trigger rules): an ad account the token lost access to fails its tasks at once (no retries), the marts of
everything else build and publish equal to the truth and name the failed account, and the last task,
check_extractions, fails the run so it is not green."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from airflow_standalone import (
    PROJECT_DIR,
    VENV_BIN,
    airflow_env,
    free_port,
    prepare_home,
    write_pipeline_config,
)
from marts_vs_truth import reconcile

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1200)]

DAG_ID = "meta_ads_daily"
LOOKBACK_DAYS = 3


def test_an_account_without_access_fails_alone_and_the_marts_still_publish(sandbox_factory, tmp_path):
    sandbox = sandbox_factory()
    world = sandbox.world()
    lost = world["accounts"][0]["account_id"]
    sandbox.set_faults(
        {"lost_access": {"accounts": [lost], "account_error": "permissions"}}
    )  # (#200), HTTP 403
    config = write_pipeline_config(tmp_path / "pipeline.yaml", world, tmp_path, lookback_days=LOOKBACK_DAYS)
    env = airflow_env(tmp_path / "home", config, sandbox, free_port())
    os.makedirs(env["AIRFLOW_HOME"], exist_ok=True)
    prepare_home(env)
    day = datetime.fromisoformat(sandbox.now()).astimezone(UTC).date() - timedelta(days=1)
    result = subprocess.run(
        [str(VENV_BIN / "airflow"), "dags", "test", DAG_ID, f"{(day + timedelta(days=1)).isoformat()}T12:00:00+00:00"],
        env=env, cwd=PROJECT_DIR, capture_output=True, text=True, timeout=1100, check=False,
    )  # fmt: skip
    output = result.stdout[-4000:] + result.stderr[-4000:]

    with sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db") as db:
        states = dict(
            db.execute("select task_id, state from task_instance where dag_id = ?", [DAG_ID]).fetchall()
        )
        tries = dict(
            db.execute("select task_id, try_number from task_instance where dag_id = ?", [DAG_ID]).fetchall()
        )
        (run_state,) = db.execute("select state from dag_run where dag_id = ?", [DAG_ID]).fetchone()
    failed = {task for task, state in states.items() if state != "success"}
    assert failed == {f"insights.insights_{lost}", f"insights.ad_objects_{lost}", "check_extractions"}, (
        states,
        output,
    )
    assert tries[f"insights.insights_{lost}"] == 1, "a lost access is not retried"
    assert states["dbt_build"] == states["publish"] == "success"
    assert run_state == "failed", "a run with a failed account is not green"

    serving = tmp_path / "marts.duckdb"
    with duckdb.connect(str(serving), read_only=True) as con:
        failures = con.execute(
            "select kind, entity, reason, action from _published_failures order by kind"
        ).fetchall()
        (open_failures,) = con.execute("select distinct open_failures from _published").fetchone()
    assert [(kind, entity) for kind, entity, _, _ in failures] == [
        ("ad_objects", f"act_{lost}"),
        ("insights", f"act_{lost}"),
    ]
    assert open_failures == 2
    for _, _, reason, action in failures:
        assert "MetaPermissionError" in reason and "(#200) Permissions error" in reason
        assert (
            f"airflow tasks clear {DAG_ID} -t '^insights." in action
            and f"-s {day} -e {day} --downstream" in action
        )

    since, until = (day - timedelta(days=LOOKBACK_DAYS - 1)).isoformat(), day.isoformat()
    dates = [(day - timedelta(days=i)).isoformat() for i in range(LOOKBACK_DAYS)]
    pages = [
        p["id"] for p in world["pages"] if p.get("account_id") == lost
    ]  # their days come from the account
    check = reconcile(
        str(serving), sandbox.truth(since, until), since, until,
        skip_account_days={(lost, d) for d in dates}, skip_page_days={(p, d) for p in pages for d in dates},
    )  # fmt: skip
    assert check.account_days > 0 and check.page_days > 0
    assert check.equal, "\n".join(check.differences[:30])

    # The task logs (`dags test` prints them) name the account, the reason and what to do.
    logs = result.stdout + result.stderr
    assert f"insights of act_{lost} for {day} failed" in logs and "To fill the gap" in logs
    assert "ExtractionsFailedError" in logs and "1 extraction(s)" not in logs  # insights and ad objects: 2
