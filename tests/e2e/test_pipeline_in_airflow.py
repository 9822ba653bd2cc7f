"""The whole pipeline, for real: `airflow standalone` (scheduler, triggerer, API server), the sandbox over
HTTP, dbt and DuckDB. A scheduled run, a backfill created through the REST API as the UI creates it,
a rerun of a day, and `airflow dags test` daily runs for comparison.
"""

from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from airflow_standalone import (
    PULL_TIME_COLUMNS,
    airflow_env,
    assert_insights_deferred_to_triggerer,
    free_port,
    prepare_home,
    run_airflow,
    start_standalone,
    write_pipeline_config,
)
from marts_vs_truth import reconcile

# A backfill of two days plus three `airflow dags test` runs: more than the suite's 600 s on a busy 2-core box.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1800)]

DAG_ID = "meta_ads_daily"
LOOKBACK_DAYS = 3


def _latest_interval():
    """The data interval a scheduled run covers now (default schedule: day D, run at D+1 12:00 UTC)."""
    from airflow.timetables.interval import CronDataIntervalTimetable
    from meta_ads_elt.config import DEFAULT_SCHEDULE
    from pendulum import now

    return CronDataIntervalTimetable(DEFAULT_SCHEDULE, "UTC").infer_manual_data_interval(run_after=now("UTC"))


INTERVAL = _latest_interval()
SCHEDULED_DAY = INTERVAL.start.date()  # over in every time zone: no partial day in these runs
# Two backfilled days, just before the scheduled day.
BACKFILL_DAYS = [SCHEDULED_DAY - timedelta(days=2), SCHEDULED_DAY - timedelta(days=1)]
DAILY_DAYS = [*BACKFILL_DAYS, SCHEDULED_DAY]  # what the deployment runs, as daily runs in order
# When a row was extracted or served (``served_local_date``: ``served_at``'s day in the account's time zone,
# which decides partial days; the compared days are over whenever either lake was served).
VOLATILE_COLUMNS = {"_extracted_at", "_report_run_id", "served_at", "served_local_date"}
LAKE_DATASETS = (
    "insights",
    "insights_account_totals",
    "accounts",
    "campaigns",
    "adsets",
    "ads",
    "leads",
    "lead_answers",
    "conversations",
    "messages",
)
MARTS = ("cost_per_lead", "conversations_started", "conversations_started_by_page", "lead_reconciliation")


# The sandbox serves the current day as it stands (as Meta does): leads and messages created after the
# scheduled interval ended keep arriving between two runs, and a conversation's snapshot row (updated_time,
# message_count) moves with them. Lakes are compared on what was complete when the interval ended.
SETTLED_BY_INTERVAL_END = {
    "leads": "created_time < {end}",
    "messages": "created_time < {end}",
    "lead_answers": "lead_id in (select lead_id from read_parquet('{lake}/leads/**/*.parquet') "
    "where created_time < {end})",
    "conversations": "conversation_id in (select conversation_id from read_parquet('{lake}/messages/**/*.parquet') "
    "where created_time < {end})",
}
MOVING_COLUMNS = {"conversations": {"updated_time", "message_count", "messages_out_of_reach"}}


def moved_conversations(*lake_roots: Path) -> list[str]:
    """Conversations with a message created after the interval ended, in any of these lakes. Meta returns
    a conversation's 20 newest messages only (seed 004), so each new message can push an older one out of
    reach: a later pull of such a conversation rightly lacks messages an earlier pull had."""
    end = f"timestamptz '{INTERVAL.end.isoformat()}'"
    moved: set[str] = set()
    with duckdb.connect() as connection:
        for lake_root in lake_roots:
            if list((lake_root / "messages").rglob("*.parquet")):
                moved.update(
                    row[0]
                    for row in connection.sql(
                        f"select distinct conversation_id from read_parquet('{lake_root}/messages/**/*.parquet', "
                        f"hive_partitioning=true, union_by_name=true) where created_time >= {end}"
                    ).fetchall()
                )
    return sorted(moved)


def lake_snapshot(lake_root: Path, moved: list[str] = ()) -> dict[str, list[tuple]]:
    """Every dataset's rows (volatile extraction columns left out), sorted, with their partition values;
    the ``moved`` conversations (:func:`moved_conversations`) and their messages left out: which pull
    holds such a conversation's row (its ``date`` partition) and which of its messages are still within
    Meta's 20 newest depend on when the pull ran."""
    snapshot = {}
    end = f"timestamptz '{INTERVAL.end.isoformat()}'"
    with duckdb.connect() as connection:
        for dataset in LAKE_DATASETS:
            files = list((lake_root / dataset).rglob("*.parquet"))
            if not files:
                snapshot[dataset] = []
                continue
            where = SETTLED_BY_INTERVAL_END.get(dataset, "true").format(end=end, lake=lake_root)
            if dataset in ("messages", "conversations") and moved:
                where += " and conversation_id not in (" + ", ".join(f"'{c}'" for c in moved) + ")"
            relation = connection.sql(
                f"select * from read_parquet('{lake_root / dataset}/**/*.parquet', hive_partitioning=true, "
                f"union_by_name=true) where {where}"
            )
            skip = VOLATILE_COLUMNS | MOVING_COLUMNS.get(dataset, set())
            columns = [name for name in relation.columns if name not in skip]
            rows = relation.select(*[f'"{name}"' for name in columns]).fetchall()
            snapshot[dataset] = sorted(rows, key=repr)
    return snapshot


def marts_snapshot(serving_path: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(serving_path), read_only=True) as connection:
        result = {}
        for mart in MARTS:
            relation = connection.table(mart)
            columns = [name for name in relation.columns if name != "as_of" and name not in PULL_TIME_COLUMNS]
            result[mart] = sorted(relation.select(*[f'"{name}"' for name in columns]).fetchall(), key=repr)
        return result


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pipeline")


def run_days_as_daily_runs(env: dict[str, str], days: list) -> None:
    for day in days:  # the end of day D's interval: D+1 12:00 UTC
        run_airflow(env, "dags", "test", DAG_ID, f"{(day + timedelta(days=1)).isoformat()}T12:00:00+00:00")


@pytest.fixture(scope="module")
def daily_runs(sandbox, workdir):
    """The backfilled and the scheduled days as daily runs (`airflow dags test`, one after the other) into
    another lake, the backfill's reference. They need nothing of the standalone deployment, so they run
    in the background from the start, while the deployment starts, schedules and backfills; the future
    is awaited by the test that compares, and the module waits for it before it ends (nothing is left
    running, even on failure)."""
    daily_config = write_pipeline_config(
        workdir / "daily.yaml", sandbox.world(), workdir / "daily", lookback_days=LOOKBACK_DAYS
    )
    # Its own metadata DB: Asset names are unique per deployment, and this one points at another lake.
    env = airflow_env(workdir / "daily_home", daily_config, sandbox, free_port())
    os.makedirs(env["AIRFLOW_HOME"], exist_ok=True)
    with ThreadPoolExecutor(max_workers=1) as background:
        yield background.submit(lambda: (prepare_home(env), run_days_as_daily_runs(env, DAILY_DAYS)))


@pytest.fixture(scope="module")
def airflow(sandbox, workdir, daily_runs):
    """A running standalone Airflow whose DAG reads a config for the sandbox's world."""
    config_path = write_pipeline_config(
        workdir / "pipeline.yaml",
        sandbox.world(),
        workdir / "scheduler",
        lookback_days=LOOKBACK_DAYS,
        # defer at once: the sandbox's jobs are instant, and this deployment's runs go through the triggerer
        insights={"poll_interval_seconds": 2, "worker_poll_seconds": 0},
    )
    port = free_port()
    env = airflow_env(workdir / "airflow_home", config_path, sandbox, port)
    os.makedirs(env["AIRFLOW_HOME"], exist_ok=True)
    prepare_home(env)
    standalone = start_standalone(env, port)
    yield standalone
    standalone.stop()


@pytest.fixture(scope="module")
def scheduled_run(airflow):
    """Unpaused with catchup off, the scheduler creates the run for the latest complete interval."""
    runs = airflow.wait_for_runs(DAG_ID, lambda run: run["run_type"] == "scheduled", count=1, timeout=900)
    return runs[0]


def test_a_scheduled_run_completes_and_its_marts_equal_the_truth(airflow, scheduled_run, sandbox, workdir):
    assert scheduled_run["data_interval_start"].startswith(SCHEDULED_DAY.isoformat())
    assert scheduled_run["data_interval_end"].startswith((SCHEDULED_DAY + timedelta(days=1)).isoformat())
    since = (SCHEDULED_DAY - timedelta(days=LOOKBACK_DAYS - 2)).isoformat()
    until = SCHEDULED_DAY.isoformat()
    result = reconcile(str(workdir / "scheduler" / "marts.duckdb"), sandbox.truth(since, until), since, until)
    assert result.account_days > 0 and result.page_days > 0
    assert result.equal, "\n".join(result.differences[:30])


def test_the_insights_task_deferred_to_the_triggerer(airflow, scheduled_run):
    assert_insights_deferred_to_triggerer(airflow, DAG_ID, scheduled_run)


def create_backfill(airflow, body: dict) -> dict:
    """POST /backfills, again while SQLite is busy (Airflow answers 503 "Database is locked" then)."""
    for _ in range(20):
        response = airflow.session.post(f"{airflow.api}/backfills", json=body, timeout=30)
        if response.status_code != 503:
            assert response.status_code < 300, f"POST /backfills -> {response.status_code}: {response.text}"
            return response.json()
        time.sleep(3)
    raise AssertionError(f"POST /backfills kept answering 503: {response.text}")


def test_a_rest_api_backfill_gives_the_same_lake_and_marts_as_daily_runs(
    airflow, scheduled_run, sandbox, workdir, daily_runs
):
    backfill = create_backfill(
        airflow,
        {
            "dag_id": DAG_ID,
            "from_date": f"{BACKFILL_DAYS[0].isoformat()}T12:00:00Z",  # logical dates: the intervals' starts
            "to_date": f"{BACKFILL_DAYS[-1].isoformat()}T12:00:00Z",
            "max_active_runs": 2,
            "reprocess_behavior": "none",
        },
    )
    assert backfill["dag_id"] == DAG_ID
    runs = airflow.wait_for_runs(
        DAG_ID, lambda run: run["run_type"] == "backfill", count=len(BACKFILL_DAYS), timeout=1200
    )
    assert sorted(run["data_interval_start"][:10] for run in runs) == [
        day.isoformat() for day in BACKFILL_DAYS
    ]

    daily_runs.result(timeout=1800)  # the same days as daily runs, into another lake (fixture `daily_runs`)
    moved = moved_conversations(workdir / "scheduler" / "lake", workdir / "daily" / "lake")
    scheduled_lake = lake_snapshot(workdir / "scheduler" / "lake", moved)
    daily_lake = lake_snapshot(workdir / "daily" / "lake", moved)
    for dataset in LAKE_DATASETS:
        assert scheduled_lake[dataset] == daily_lake[dataset], (
            f"{dataset} differs between backfill and daily runs"
        )
    assert scheduled_lake["insights"], "the lake has insights rows"
    assert marts_snapshot(workdir / "scheduler" / "marts.duckdb") == marts_snapshot(
        workdir / "daily" / "marts.duckdb"
    )


def test_rerunning_a_day_changes_nothing(airflow, scheduled_run, workdir):
    kept = workdir / "lake_before_rerun"
    shutil.rmtree(kept, ignore_errors=True)
    shutil.copytree(workdir / "scheduler" / "lake", kept)
    marts_before = marts_snapshot(workdir / "scheduler" / "marts.duckdb")
    airflow.post(
        f"/dags/{DAG_ID}/clearTaskInstances",
        {
            "dry_run": False,
            "dag_run_id": scheduled_run["dag_run_id"],
            "only_failed": False,
            "reset_dag_runs": True,
        },
    )
    cleared_at = datetime.now(UTC).isoformat()
    airflow.wait_for_runs(
        DAG_ID,
        lambda run: (
            run["dag_run_id"] == scheduled_run["dag_run_id"] and (run.get("end_date") or "") > cleared_at
        ),
        count=1,
        timeout=900,
    )
    moved = moved_conversations(kept, workdir / "scheduler" / "lake")
    assert lake_snapshot(workdir / "scheduler" / "lake", moved) == lake_snapshot(kept, moved)
    assert marts_snapshot(workdir / "scheduler" / "marts.duckdb") == marts_before
