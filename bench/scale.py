"""Benchmark ``scale``: 300 discovered ad accounts through real Airflow (scheduler + triggerer).

World: the sandbox's opt-in agency world (``--agency --accounts 300``): two Businesses, 50 ads per
account (2 campaigns x 5 ad sets x 5 ads, plus the rotating promo campaigns), each account promoting a
Page; every 23rd account disabled, every 37th not assigned to the token's user, every 29th a client
that arrives the day after start-up (so not in this run). Realistic latency: 80 ms added to every Graph
request, async jobs lasting 5 s + 0.5 s per 1,000 rows (as the ``insights`` benchmark).

Pipeline: ``accounts: {discover: [business:<agency>:owned, business:<agency>:client]}``,
``pages: {discover: [promoted]}``, 28-day lookback, batches of ``ACCOUNTS_PER_TASK`` accounts
(``PARALLEL`` at a time per task), under ``airflow standalone`` (scheduler, dag-processor, triggerer,
API server, LocalExecutor, SQLite): the scheduled run of the latest interval, start to finish.

Keys:
* ``scale_300_accounts_wall_s``: from the run's ``start_date`` to its ``end_date`` (Airflow's own clock).
* ``scale_calls_per_account``: the sandbox's call count (batch items count one each, as Meta counts)
  for the run, divided by the accounts extracted; beside it ``scale_single_account_plan_calls``: the
  same extraction for one account at a time (Insights, snapshot, leads, conversations of its Page) in a
  fresh sandbox of the same agency world, averaged over 12 of the readable accounts spread evenly over
  the world (the run's own population), so the target is
  ``calls_per_account <= single + 1``; ``scale_discovery_calls``: the discover task's own calls.
* ``scale_peak_rss_mb``: the largest resident set of any one process of the Airflow tree (sampled
  every second), and which process it was.

Command: ``PYTHONPATH=plugins:include:. .venv/bin/python -m bench scale`` (about 10-15 minutes).
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from datetime import datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LATENCY_MS = 80
JOB_BASE_S = 5.0
JOB_PER_1K_S = 0.5
WORLD = {
    "accounts": int(os.environ.get("BENCH_SCALE_ACCOUNTS", "300")),
    "campaigns_per_account": 2,
    "adsets_per_campaign": 5,
    "ads_per_adset": 5,
}
BUDGETS = "app=10000000,user=10000000,ads_insights=10000000,ads_management=10000000,pages=10000000"
ACCOUNTS_PER_TASK = 25
PAGES_PER_TASK = 50
PARALLEL = 10
LOOKBACK = 28
SINGLE_PLAN_SAMPLE = 12


def _sandbox(**extra):
    from meta_sandbox.testing import start_sandbox

    options = {
        "latency_ms": LATENCY_MS,
        "job_base_seconds": JOB_BASE_S,
        "job_seconds_per_1k_rows": JOB_PER_1K_S,
        "budgets": BUDGETS,
        **WORLD,
    }
    return start_sandbox(**options | extra)


class PeakRss:
    """The largest RSS of any one process carrying the tree marker, sampled every second."""

    def __init__(self, marker: str, value: str):
        self.marker, self.value = marker, value
        self.peak_mb, self.peak_name = 0.0, ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(1.0):
            for process in psutil.process_iter(["pid"]):
                try:
                    if process.environ().get(self.marker) != self.value:
                        continue
                    rss = process.memory_info().rss / 2**20
                    if rss > self.peak_mb:
                        self.peak_mb, self.peak_name = rss, " ".join(process.cmdline()[:4])[-120:]
                except (psutil.Error, OSError):
                    continue

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def single_account_plan_calls(sample: int = SINGLE_PLAN_SAMPLE) -> dict:
    """Calls of one account's extraction (Insights, snapshot, leads and conversations of its Page),
    in-process, one account at a time, averaged over ``sample`` accounts spread evenly over the
    accounts the scale run extracts, in a fresh sandbox of the same agency world (Pages differ in
    their conversations and leads, and accounts in their promo generations: the first few accounts
    alone are a biased plan): ``calls`` (the mean), ``by_endpoint`` (means), ``errors_by_code`` (all)."""
    sandbox = _sandbox(agency=True, latency_ms=0)  # same job timing: status polls are part of the plan
    try:
        world = sandbox.world()
        readable = [
            a
            for a in world["accounts"]
            if a["account_status"] == 1 and a["assigned_to_user"] and a["joins_after_days"] is None
        ]
        step = max(1, len(readable) // sample)
        world = {"accounts": readable[::step][:sample]}
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO / "include")]),
            "AIRFLOW_CONN_META_DEFAULT": json.dumps(
                {
                    "conn_type": "meta_graph_api",
                    "password": sandbox.token,
                    "extra": {
                        "base_url": sandbox.url,
                        "app_id": sandbox.app_id,
                        "app_secret": sandbox.app_secret,
                    },
                }
            ),
        }
        calls: list[int] = []
        by_endpoint: collections.Counter = collections.Counter()
        errors: collections.Counter = collections.Counter()
        for account in world["accounts"]:
            code = f"""
from meta_ads_elt.config import parse_config
from meta_ads_elt.batches import extract_accounts, extract_pages
import pendulum
config = parse_config({{"lake_root": {json.dumps(tempfile.mkdtemp(prefix="scale_single_"))},
    "lookback_days": {LOOKBACK}, "accounts": [{{"id": "{account["id"]}"}}], "pages": [{{"id": "{account["page_id"]}"}}]}})
day = pendulum.parse("{sandbox.now()[:10]}").subtract(days=1)
context = {{"run_id": "single", "data_interval_start": day, "logical_date": day}}
extract_accounts(config, [{{"account_id": "{account["id"]}"}}], context)
extract_pages(config, [{{"page_id": "{account["page_id"]}"}}], context, "leads")
extract_pages(config, [{{"page_id": "{account["page_id"]}"}}], context, "conversations")
"""
            sandbox.reset_stats()
            done = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
            )
            if done.returncode:
                raise RuntimeError(f"single-account extraction failed:\n{done.stderr[-3000:]}")
            stats = sandbox.stats()
            calls.append(int(stats["total"]))
            by_endpoint.update(stats["by_endpoint"])
            errors.update(stats["by_error_code"])
        return {
            "calls": round(sum(calls) / len(calls), 2),
            "by_endpoint": {k: round(v / len(calls), 2) for k, v in sorted(by_endpoint.items())},
            "errors_by_code": dict(errors),
        }
    finally:
        sandbox.stop()


def _reconcile(sandbox, run_dir: Path, run_doc: dict):
    """The run's marts against the sandbox's truth over the lookback window: every account and Page the
    run extracted (discovery's ``arrived``/``extracted``) must equal it; the account-days and Page-days
    of those it did not (unreadable, disabled, not yet managed) are skipped and counted."""
    import duckdb
    from marts_vs_truth import reconcile

    last_day = datetime.fromisoformat(run_doc["data_interval_start"]).date()
    since, until = (last_day - timedelta(days=LOOKBACK - 1)).isoformat(), last_day.isoformat()
    extracted = "where state in ('arrived', 'extracted')"
    with duckdb.connect() as connection:
        accounts, pages = (
            {
                row[0]
                for row in connection.sql(
                    f"select {key} from read_parquet('{run_dir}/lake/{dataset}/**/*.parquet') {extracted}"
                ).fetchall()
            }
            for key, dataset in (("account_id", "discovered_accounts"), ("page_id", "discovered_pages"))
        )
    truth = sandbox.truth(since, until, timeout=1800)

    def account_of(row: dict) -> str:
        return str(row["account_id"]).removeprefix("act_")

    truth["breakdowns"] = {  # reconcile() skips account-days, not breakdown rows: leave those out here
        columns: [row for row in rows if account_of(row) in accounts]
        for columns, rows in truth.get("breakdowns", {}).items()
    }
    return reconcile(
        str(run_dir / "marts.duckdb"),
        truth,
        since,
        until,
        skip_account_days={
            (account_of(row), row["date"])
            for row in truth.get("accounts", [])
            if account_of(row) not in accounts
        },
        skip_page_days={
            (str(row["page_id"]), row["date"])
            for row in truth.get("pages", [])
            if str(row["page_id"]) not in pages
        },
    )


def run() -> dict:
    sys.path.insert(0, str(REPO / "tests" / "e2e"))
    from airflow_standalone import (
        airflow_env,
        free_port,
        prepare_home,
        start_standalone,
        write_pipeline_config,
    )

    from tests.processes import TREE_MARKER

    single = single_account_plan_calls()
    sandbox = _sandbox(agency=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    try:
        world = sandbox.world()
        agency_id = world["businesses"][0]["id"]
        config = write_pipeline_config(
            workdir / "pipeline.yaml",
            world,
            workdir / "run",
            lookback_days=LOOKBACK,
            accounts={"discover": [f"business:{agency_id}:owned", f"business:{agency_id}:client"]},
            pages={"discover": ["promoted"]},
            mapping={
                "accounts_per_task": ACCOUNTS_PER_TASK,
                "pages_per_task": PAGES_PER_TASK,
                "parallel_within_task": PARALLEL,
            },
            insights={"poll_interval_seconds": 5},
        )
        port = free_port()
        env = airflow_env(workdir / "home", config, sandbox, port)
        os.makedirs(env["AIRFLOW_HOME"], exist_ok=True)
        prepare_home(env)
        loadavg_before = os.getloadavg()[0]
        sandbox.reset_stats()  # parsing the DAG makes no call: every call from here on is the run's
        airflow = start_standalone(env, port, timeout=900)
        try:
            with PeakRss(TREE_MARKER, airflow.env[TREE_MARKER]) as rss:
                runs = airflow.wait_for_runs(
                    "meta_ads_daily", lambda r: r["run_type"] == "scheduled", count=1, timeout=3600
                )
                calls = sandbox.stats()
            run_doc = runs[0]
            wall = datetime.fromisoformat(run_doc["end_date"]) - datetime.fromisoformat(run_doc["start_date"])
            tasks = airflow.get(
                f"/dags/meta_ads_daily/dagRuns/{run_doc['dag_run_id']}/taskInstances", limit=200
            )
            found = airflow.get(
                f"/dags/meta_ads_daily/dagRuns/{run_doc['dag_run_id']}/taskInstances/discover/"
                "xcomEntries/return_value"
            )["value"]
            if isinstance(found, str):
                found = json.loads(found)
        finally:
            airflow.stop()
        import duckdb

        with duckdb.connect() as connection:
            states = dict(
                connection.sql(
                    f"select state, count(*) from read_parquet('{workdir}/run/lake/discovered_accounts/**/*.parquet') "
                    "group by all"
                ).fetchall()
            )
        extracted = states.get("arrived", 0) + states.get("extracted", 0)
        check = _reconcile(sandbox, workdir / "run", run_doc)
        if not check.equal:
            raise RuntimeError(
                "the 300-account marts differ from the truth:\n" + "\n".join(check.differences[:30])
            )
        durations: dict[str, float] = {}
        for ti in tasks["task_instances"]:
            if ti.get("start_date") and ti.get("end_date"):
                seconds = (
                    datetime.fromisoformat(ti["end_date"]) - datetime.fromisoformat(ti["start_date"])
                ).total_seconds()
                durations[ti["task_id"]] = max(durations.get(ti["task_id"], 0.0), round(seconds, 1))
        numbers = {
            "scale_300_accounts_wall_s": round(wall.total_seconds(), 1),
            "scale_calls_per_account": round(calls["total"] / max(1, extracted), 2),
            "scale_peak_rss_mb": round(rss.peak_mb, 1),
            "scale_peak_rss_process": rss.peak_name,
            "scale_single_account_plan_calls": single["calls"],
            "scale_single_account_plan_calls_by_endpoint": single["by_endpoint"],
            "scale_single_account_plan_errors_by_code": single["errors_by_code"],
            "scale_errors_by_code": calls["by_error_code"],
            "scale_calls_total": calls["total"],
            "scale_discovery_calls": found.get("calls"),
            "scale_flagged_accounts": {
                flag["state"]: sum(1 for f in found["flagged_accounts"] if f["state"] == flag["state"])
                for flag in found["flagged_accounts"]
            },
            "scale_reconciled_account_days": check.account_days,
            "scale_reconciled_page_days": check.page_days,
            "scale_skipped_account_days": check.skipped_account_days,
            "scale_calls_by_endpoint": calls["by_endpoint"],
            "scale_accounts_by_state": states,
            "scale_longest_task_s": durations,
            "scale_loadavg_1m_before": round(loadavg_before, 2),
            "scale_loadavg_1m_after": round(os.getloadavg()[0], 2),
        }
        shutil.rmtree(workdir, ignore_errors=True)  # the run's lake, marts and Airflow home
        return numbers
    except BaseException:
        print(
            f"[bench] scale failed; its lake, marts and Airflow home are kept in {workdir}", file=sys.stderr
        )
        raise
    finally:
        sandbox.stop()
