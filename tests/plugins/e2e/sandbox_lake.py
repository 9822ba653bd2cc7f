"""Helpers shared by the extraction tests that run against the sandbox: the Connection, the sandbox's
day, and reading a lake dataset back with its hive partition columns."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
from meta_ads_elt import governor
from meta_ads_elt.schemas import PARTITION_KEYS

USER_TOKEN = "sandbox-token"
STILL_CLOCK = "2026-11-20T12:00:00Z"
"""A sandbox clock that does not tick (``sandbox_factory(now=STILL_CLOCK)``), for a test that moves it
itself: on a ticking clock a lead or message can arrive between two reads (or during one), and the two
reads differ by it."""


def use_connection(monkeypatch, sandbox, token: str = USER_TOKEN, app_secret: str | None = None) -> None:
    """``meta_default`` for ``sandbox``; ``app_secret`` other than the sandbox app's makes every proof wrong."""
    secret = sandbox.app_secret if app_secret is None else app_secret
    conn = {
        "conn_type": "meta_graph_api",
        "password": token,
        "extra": sandbox.connection_extra(app_secret=secret),
    }
    monkeypatch.setenv("AIRFLOW_CONN_META_DEFAULT", json.dumps(conn))


def calm_governor_in(monkeypatch) -> None:
    """Swap in a fresh governor that never pauses on usage percentages (regain times and errors still
    count): for tests about what is extracted, not about pacing. The process-wide governor lives as
    long as pytest, so one test's usage readings (or the 24 h block that Meta's regain time rightly
    imposes after the lead-budget test) would otherwise pace the next."""
    monkeypatch.setattr(governor, "_governor", governor.RateLimitGovernor(slow_from=101, pause_at=101))


def today(sandbox) -> dt.date:
    """The sandbox clock's UTC date: the data interval day whose window reaches "now"."""
    return dt.datetime.fromisoformat(sandbox.now()).astimezone(dt.UTC).date()


def read(lake: Path, dataset: str) -> pa.Table:
    """A lake dataset with its partition columns (as strings), as the extractors wrote it."""
    keys = PARTITION_KEYS[dataset]
    part = pads.partitioning(pa.schema([(key, pa.string()) for key in keys]), flavor="hive")
    return pads.dataset(str(lake / dataset), format="parquet", partitioning=part).to_table()


def sorted_rows(table: pa.Table) -> list[dict]:
    rows = [{k: v for k, v in r.items() if k != "_extracted_at"} for r in table.to_pylist()]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def run_day(lake: Path, world: dict, day: dt.date, lookback_days: int, run_id: str = "test") -> None:
    """Every extraction of the daily DAG for ``day``, as Airflow runs them (``execute``), into ``lake``:
    ad objects and Insights per account (polling in the worker), leads and conversations per Page."""
    from meta_ads_elt.operators.ad_objects import MetaAdObjectsOperator
    from meta_ads_elt.operators.conversations import MetaConversationsOperator
    from meta_ads_elt.operators.insights import MetaInsightsOperator
    from meta_ads_elt.operators.leads import MetaLeadsOperator

    context = {"run_id": run_id}
    for account in world["accounts"]:
        MetaAdObjectsOperator(task_id="objects", account_id=account["id"], lake_root=str(lake)).execute(
            context
        )
        MetaInsightsOperator(
            task_id="insights", account_id=account["id"], lake_root=str(lake), data_interval_day=day.isoformat(),
            lookback_days=lookback_days, deferrable=False, first_poll=0.1, poll_interval=0.5,
        ).execute(context)  # fmt: skip
    for page in world["pages"]:
        common = {"page_id": page["id"], "lake_root": str(lake), "data_interval_day": day.isoformat(),
                  "lookback_days": lookback_days}  # fmt: skip
        MetaLeadsOperator(task_id="leads", **common).execute(context)
        MetaConversationsOperator(task_id="conversations", **common).execute(context)


def build_marts(root: Path, lake: Path, day: dt.date, lookback_days: int) -> Path:
    """The DAG's dbt build (incremental window ending with ``day``) and publish; the serving file."""
    from meta_ads_elt.dbt_runner import run_dbt_build
    from meta_ads_elt.publish import publish_marts

    build = run_dbt_build(
        lake_root=lake, build_db_path=root / "build.duckdb", target_path=root / "target", log_path=root / "logs",
        window_end=day.isoformat(), lookback_days=lookback_days, threads=2, timeout=900,
    )  # fmt: skip
    serving = root / "marts.duckdb"
    publish_marts(build, serving_db_path=serving, parquet_dir=None)
    return serving


def dbt_results(root: Path) -> dict[str, dict]:
    """``target/run_results.json`` of the last build: unique_id -> result."""
    results = json.loads((root / "target" / "run_results.json").read_text())["results"]
    return {r["unique_id"]: r for r in results}
