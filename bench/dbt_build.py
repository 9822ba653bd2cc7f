"""dbt marts build benchmark: a full `dbt build` over a generated 10M-row lake, and the daily incremental.

Keys (bench/results.json):

* ``dbt_full_build_seconds_10m``: wall time of ``run_dbt_build(full_refresh=True)`` (seeds, models,
  unit and data tests) over >= 10M insights rows, 1M leads, 5M messages (fresh build file).
* ``dbt_build_ratio_vs_raw_scan``: that time / the time of one DuckDB scan reading every column of
  the same Parquet (insights, leads, messages; nested ``actions`` values included).
* ``dbt_incremental_seconds``: the next day's build: one more day of insights and leads lands in the
  lake, then ``run_dbt_build()`` re-processes the 28-day window incrementally.
* ``dbt_publish_seconds_10m``: the publish after that build, with the previous publish (of the full
  build) in place, as every daily run has it: only the dates whose rows changed are copied
  (``dbt_publish_cpu_seconds_10m``: its CPU seconds, less sensitive to this shared box's load).
* ``dbt_publish_seconds_10m_first``: the first publish (nothing published yet: everything is written).
* ``dbt_publish_seconds_10m_window_restated``: a publish after every date of the 28-day window changed
  (as a production run's re-extraction changes at least ``as_of`` on each), the worst daily case.

The lake is generated once under ``bench/out/dbt_lake`` (reused while its parameters match).
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import shutil
import time
from pathlib import Path
from typing import Any

import duckdb
from meta_ads_elt import dbt_runner, publish

from bench.lake_generator import generate_lake

OUT = Path(__file__).resolve().parent / "out"
PARAMS: dict[str, Any] = {
    "insights_rows": 10_000_000,
    "leads": 1_000_000,
    "messages": 5_000_000,
    "accounts": 8,
    "days": 90,
    "end_date": "2026-11-20",
}


def _lake(root: Path) -> float:
    """Generate the bench lake unless the one on disk has the same parameters; its generation seconds."""
    marker = root / "_params.json"
    if marker.exists():
        recorded = json.loads(marker.read_text())
        if recorded.get("params") == PARAMS:
            return float(recorded["seconds"])
    params = {**PARAMS, "end_date": dt.date.fromisoformat(PARAMS["end_date"])}
    started = time.perf_counter()
    generate_lake(root, **params)
    seconds = time.perf_counter() - started
    marker.write_text(json.dumps({"params": PARAMS, "seconds": round(seconds, 1)}))
    return seconds


def raw_scan_seconds(lake: Path) -> float:
    """One DuckDB scan over the same Parquet: every column of insights, leads and messages read and
    decoded once (nested ``actions`` values included), aggregated so nothing can be skipped."""
    opts = "hive_partitioning = true, union_by_name = true"
    queries = [
        f"""
        select max(account_name), max(account_currency), max(campaign_id), max(campaign_name),
            max(adset_id), max(adset_name), max(ad_id), max(ad_name), max(date_start), max(date_stop),
            sum(spend), sum(impressions), sum(clicks), sum(reach), sum(frequency), sum(cpm), sum(ctr),
            sum(inline_link_clicks), sum(list_sum([x."value" for x in actions])),
            max(attribution_setting), max(_report_run_id), max(_extracted_at), max(account_id), max(date)
        from read_parquet('{lake}/insights/*/*/*.parquet', {opts})
        """,
        f"""
        select max(lead_id), max(created_time), max(form_id), max(ad_id), max(adset_id), max(campaign_id),
            max(ad_name), max(is_organic), max(platform), max(email_sha256), max(_extracted_at),
            max(page_id), max(date)
        from read_parquet('{lake}/leads/*/*/*.parquet', {opts})
        """,
        f"""
        select max(message_id), max(conversation_id), max(created_time), max(from_id), max(is_from_page),
            max(message), max(_extracted_at), max(page_id), max(platform), max(date)
        from read_parquet('{lake}/messages/*/*/*/*.parquet', {opts})
        """,
    ]
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute("set enable_progress_bar = false")
        started = time.perf_counter()
        for sql in queries:
            con.execute(sql).fetchall()
        return time.perf_counter() - started
    finally:
        con.close()


def _add_next_day(lake: Path, work: Path) -> None:
    """The next day's extraction: one more account-local day of insights (and its leads)."""
    day = work / "next_day"
    end = dt.date.fromisoformat(PARAMS["end_date"]) + dt.timedelta(days=1)
    per_day = PARAMS["insights_rows"] // PARAMS["days"]
    generate_lake(
        day,
        insights_rows=per_day,
        leads=PARAMS["leads"] // PARAMS["days"],
        messages=0,
        accounts=PARAMS["accounts"],
        days=1,
        end_date=end,
        with_conversations=False,
        lead_id_prefix=f"L{end:%Y%m%d}-",
    )
    for dataset in ("insights", "insights_account_totals", "leads"):
        for partition in (day / dataset).glob("*/*"):
            target = lake / dataset / partition.parent.name / partition.name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(partition, target)
    shutil.rmtree(day)


def run() -> dict[str, Any]:
    OUT.mkdir(parents=True, exist_ok=True)
    work = OUT / "dbt_build"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    lake_root = OUT / "dbt_lake"
    generate_seconds = _lake(lake_root)
    # the bench adds a day below: work on a copy-on-write-free copy of the generated lake
    lake = work / "lake"
    shutil.copytree(lake_root, lake)
    scan = min(raw_scan_seconds(lake) for _ in range(2))
    build_kwargs = {
        "lake_root": lake,
        "build_db_path": work / "build" / "marts_build.duckdb",
        "target_path": work / "target",
        "log_path": work / "logs",
        "threads": 2,
    }
    full, full_cpu = _timed_build(full_refresh=True, **build_kwargs)
    rows = duckdb.connect(str(build_kwargs["build_db_path"]), read_only=True)
    try:
        insights_rows = rows.execute("select count(*) from conversations_started").fetchone()[0]
    finally:
        rows.close()
    slowest = _slowest_nodes(work / "target" / "run_results.json")
    shutil.copy(work / "target" / "run_results.json", work / "run_results_full.json")
    load_full = _loadavg()
    serve = (work / "serve" / "marts.duckdb", work / "serve" / "marts")
    publish_first, publish_first_cpu = _timed_publish(build_kwargs["build_db_path"], *serve)
    _add_next_day(lake, work)
    incremental, incremental_cpu = _timed_build(**build_kwargs)
    slowest_incremental = _slowest_nodes(work / "target" / "run_results.json")
    shutil.copy(work / "target" / "run_results.json", work / "run_results_incremental.json")
    load_incremental = _loadavg()
    publish, publish_cpu = _timed_publish(build_kwargs["build_db_path"], *serve)
    load_publish = _loadavg()
    _restate_window(build_kwargs["build_db_path"])
    publish_restated, publish_restated_cpu = _timed_publish(build_kwargs["build_db_path"], *serve)
    return {
        "dbt_full_build_seconds_10m": round(full, 1),
        "dbt_build_ratio_vs_raw_scan": round(full / scan, 2),
        "dbt_incremental_seconds": round(incremental, 1),
        "dbt_full_build_cpu_seconds_10m": round(full_cpu, 1),
        "dbt_incremental_cpu_seconds": round(incremental_cpu, 1),
        "dbt_raw_scan_seconds_10m": round(scan, 2),
        "dbt_publish_seconds_10m": round(publish, 1),
        "dbt_publish_cpu_seconds_10m": round(publish_cpu, 1),
        "dbt_publish_seconds_10m_first": round(publish_first, 1),
        "dbt_publish_cpu_seconds_10m_first": round(publish_first_cpu, 1),
        "dbt_publish_seconds_10m_window_restated": round(publish_restated, 1),
        "dbt_publish_cpu_seconds_10m_window_restated": round(publish_restated_cpu, 1),
        "dbt_publish_loadavg_1m": load_publish,
        "dbt_bench_insights_rows": insights_rows,
        "dbt_bench_lake_generate_seconds": round(generate_seconds, 1),
        "dbt_bench_slowest_nodes": slowest,
        "dbt_bench_slowest_nodes_incremental": slowest_incremental,
        "dbt_bench_loadavg_1m": {"full": load_full, "incremental": load_incremental},
    }


def _timed_build(**kwargs: Any) -> tuple[float, float]:
    """Wall seconds of one ``run_dbt_build`` and CPU seconds of its dbt subprocess (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    dbt_runner.run_dbt_build(**kwargs)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def _timed_publish(build_db: Path, serving: Path, parquet_dir: Path) -> tuple[float, float]:
    """Wall and CPU seconds (this process, DuckDB's threads included) of one ``publish_marts``."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    started = time.perf_counter()
    publish.publish_marts(build_db, serving, parquet_dir)
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return wall, usage.ru_utime + usage.ru_stime - cpu


def _restate_window(build_db: Path, lookback_days: int = 28) -> None:
    """Every date of the window changes, as when a daily run re-extracts it (``as_of`` moves on each row)."""
    con = duckdb.connect(str(build_db))
    try:
        for mart in ("cost_per_lead", "conversations_started"):
            con.execute(
                f"update {mart} set as_of = as_of + interval 1 hour "
                f"where date > (select max(date) from {mart}) - {lookback_days}"
            )
    finally:
        con.close()


def _slowest_nodes(run_results: Path, n: int = 6) -> dict[str, float]:
    """The n slowest nodes of a dbt run (seconds), named by model/test name (tests: their short name)."""
    results = json.loads(run_results.read_text())["results"]
    slowest = sorted(results, key=lambda r: -r["execution_time"])[:n]
    return {_node_name(r["unique_id"]): round(r["execution_time"], 1) for r in slowest}


def _node_name(unique_id: str) -> str:
    parts = unique_id.split(".")
    # generic tests end with a hash: test.meta_ads.<name>.<hash>
    name = parts[2] if parts[0] == "test" and len(parts) > 3 else parts[-1]
    return name[:60]


def _loadavg() -> float:
    """1-minute load average of this shared box, recorded next to the timings."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return -1.0


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
