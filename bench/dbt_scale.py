"""dbt at the scale of issue 12: a full `dbt build` over the lake of 300 accounts x 28 days (no Airflow).

The ``scale`` benchmark extracts 300 discovered accounts (50 ads each, a Page each) for 28 days through
Airflow; its lake holds ~100k Parquet files (one per dataset, account or Page and date: insights, the
account totals, the four preset reports, leads, lead answers, conversations and messages). What dbt
costs there depends on that file count far more than on the rows (420k insights rows; the 10M-row
lake of ``dbt_build`` has ~5k files). This benchmark builds the same shape with
``bench/lake_generator.py`` and times ``run_dbt_build(full_refresh=True)`` on it.

Keys (bench/results.json):

* ``dbt_full_build_seconds_300_accounts``: wall time of the full build (fresh build file, 2 threads);
  ``dbt_full_build_cpu_seconds_300_accounts``: its CPU seconds (user + system of the dbt process),
  less sensitive to this shared box's load; ``dbt_full_build_peak_rss_mb_300_accounts``: the peak
  resident set of the largest child of the bench process so far (dbt's own when the benchmark runs
  alone: ``python -m bench dbt_scale``).
* ``dbt_scale_lake_files``: the Parquet files of the generated lake; ``dbt_scale_slowest_nodes``:
  the slowest nodes (seconds); ``dbt_scale_loadavg_1m``: the 1-minute load average after the build.

The lake is generated once under ``bench/out/dbt_scale_lake`` (reused while its parameters match).
Command: ``PYTHONPATH=plugins:include:. .venv/bin/python -m bench dbt_scale`` (a few minutes).
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import shutil
import time
from pathlib import Path
from typing import Any

from meta_ads_elt import dbt_runner

from bench.dbt_build import OUT, _loadavg, _slowest_nodes
from bench.lake_generator import generate_lake

ACCOUNTS = 300
ADS_PER_ACCOUNT = 50
DAYS = 28
PARAMS: dict[str, Any] = {
    "insights_rows": ACCOUNTS * ADS_PER_ACCOUNT * DAYS,
    "leads": 100_000,
    "messages": 300_000,
    "accounts": ACCOUNTS,
    "days": DAYS,
    "end_date": "2026-11-20",
    "reports": True,
}


def _lake(root: Path) -> int:
    """Generate the scale lake unless the one on disk has the same parameters; its Parquet file count."""
    marker = root / "_params.json"
    if not (marker.exists() and json.loads(marker.read_text()).get("params") == PARAMS):
        generate_lake(root, **{**PARAMS, "end_date": dt.date.fromisoformat(PARAMS["end_date"])})
        marker.write_text(json.dumps({"params": PARAMS}))
    return sum(1 for _ in root.rglob("*.parquet"))


def run() -> dict[str, Any]:
    OUT.mkdir(parents=True, exist_ok=True)
    lake = OUT / "dbt_scale_lake"
    files = _lake(lake)
    work = OUT / "dbt_scale"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    dbt_runner.run_dbt_build(
        full_refresh=True,
        lake_root=lake,
        build_db_path=work / "build" / "marts_build.duckdb",
        target_path=work / "target",
        log_path=work / "logs",
        threads=2,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "dbt_full_build_seconds_300_accounts": round(wall, 1),
        "dbt_full_build_cpu_seconds_300_accounts": round(
            after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1
        ),
        # ru_maxrss of children: the largest child so far (the dbt process here), in KiB on Linux
        "dbt_full_build_peak_rss_mb_300_accounts": after.ru_maxrss // 1024,
        "dbt_scale_lake_files": files,
        "dbt_scale_slowest_nodes": _slowest_nodes(work / "target" / "run_results.json"),
        "dbt_scale_loadavg_1m": _loadavg(),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
