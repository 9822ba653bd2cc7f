"""The daily DAG on Airflow's distributed engine, as docker-compose.yaml runs it: CeleryExecutor, a
PostgreSQL metadata database and result backend, a Redis broker, two Celery workers, the scheduler, the
dag-processor, the triggerer and the API server, all real processes (tests/e2e/celery_cluster.py).
The scheduler schedules the run; the marts it publishes must equal the sandbox's truth.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta

import pytest
from airflow_standalone import assert_insights_deferred_to_triggerer, write_pipeline_config
from celery_cluster import WORKERS, celery_deployment
from marts_vs_truth import reconcile
from meta_ads_elt.config import load_config
from meta_ads_elt.pools import pools_import_document

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAG_ID = "meta_ads_daily"
LOOKBACK_DAYS = 3
RUN_TIMEOUT_SECONDS = 300


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("celery")


@pytest.fixture(scope="module")
def config_path(sandbox, workdir):
    return write_pipeline_config(
        workdir / "pipeline.yaml",
        sandbox.world(),
        workdir / "data",
        lookback_days=LOOKBACK_DAYS,
        # defer at once, so the insights tasks go through the triggerer (not only the worker's poll)
        insights={"poll_interval_seconds": 2, "worker_poll_seconds": 0},
    )


@pytest.fixture(scope="module")
def airflow(sandbox, workdir, config_path):
    with celery_deployment(workdir, config_path, sandbox) as client:
        yield client


@pytest.fixture(scope="module")
def scheduled_run(airflow):
    """Unpaused once both workers are up, with catchup off: the run for the last complete UTC day."""
    deadline = time.monotonic() + 120
    while not any(dag["dag_id"] == DAG_ID for dag in airflow.get("/dags")["dags"]):
        assert time.monotonic() < deadline, f"the dag-processor never parsed {DAG_ID}:\n{airflow.log_tail()}"
        time.sleep(2)
    response = airflow.session.patch(f"{airflow.api}/dags/{DAG_ID}", json={"is_paused": False}, timeout=30)
    assert response.ok, response.text
    runs = airflow.wait_for_runs(
        DAG_ID, lambda run: run["run_type"] == "scheduled", count=1, timeout=RUN_TIMEOUT_SECONDS
    )
    return runs[0]


def task_instances(airflow, run) -> list[dict]:
    return airflow.get(f"/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances")["task_instances"]


def test_the_scheduled_run_publishes_marts_equal_to_the_truth(sandbox, workdir, scheduled_run):
    day = datetime.fromisoformat(scheduled_run["data_interval_start"]).date()
    # Every account-local day the run's window covers.
    since, until = (day - timedelta(days=LOOKBACK_DAYS - 1)).isoformat(), day.isoformat()
    result = reconcile(str(workdir / "data" / "marts.duckdb"), sandbox.truth(since, until), since, until)
    assert result.account_days >= LOOKBACK_DAYS and result.page_days > 0
    assert result.equal, "\n".join(result.differences[:30])


def test_every_task_ran_on_a_celery_worker_and_both_workers_ran_tasks(airflow, scheduled_run):
    instances = task_instances(airflow, scheduled_run)
    assert instances and all(ti["state"] == "success" for ti in instances)
    hosts = Counter(ti["hostname"] for ti in instances)
    assert set(hosts) == set(WORKERS), f"task instances by host: {dict(hosts)}"


def test_the_insights_tasks_deferred_to_the_triggerer(airflow, scheduled_run):
    assert_insights_deferred_to_triggerer(airflow, DAG_ID, scheduled_run)


def test_the_run_lives_in_postgres_and_every_task_went_through_celery(airflow, scheduled_run):
    """The run is in the test's PostgreSQL, and each task execution went through the Redis broker to a
    worker and back: one successful Celery result per execution (an insights task runs twice: once to
    defer, once to resume after its trigger fired)."""
    query = airflow.deployment.query
    run_state = query(
        "select state from dag_run where dag_id = %s and run_id = %s", (DAG_ID, scheduled_run["dag_run_id"])
    )
    assert run_state == [("success",)]
    instances = task_instances(airflow, scheduled_run)
    executions = len(instances) + sum(".insights_" in ti["task_id"] for ti in instances)
    deadline = time.monotonic() + 30
    while True:  # the last task's Celery result is stored a moment after its task instance
        results = dict(query("select status, count(*) from celery_taskmeta group by status"))
        if set(results) <= {"SUCCESS", "FAILURE"} or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert results == {"SUCCESS": executions}


def test_the_deployment_has_the_pools_the_dag_uses(airflow, config_path):
    pools = {pool["name"]: pool["slots"] for pool in airflow.get("/pools", limit=100)["pools"]}
    for name, pool in pools_import_document(load_config(str(config_path))).items():
        assert pools.get(name) == pool["slots"], (
            f"pool {name}: {pools.get(name)} slots, the DAG needs {pool['slots']}"
        )
