"""Time only the publish with the whole 28-day window restated, on what ``bench dbt_build`` left behind.

``python -m bench dbt_build`` takes minutes (two builds, three publishes); this copies its build file
and published state (``bench/out/dbt_build/build`` and ``serve``, left untouched) to a scratch
directory, changes every date of the window again (``dbt_build._restate_window``: ``as_of`` + 1 hour)
and times one ``publish_marts`` (wall and CPU seconds, with the 1-minute load average before it), as
``dbt_publish_seconds_10m_window_restated`` does. Then it checks the published copies: every mart,
rollup and breakdown mart of the serving file, and every mart's Parquet copy, equal the build's
(``EXCEPT ALL`` both ways). Not part of ``make bench`` (it reads that bench's output); a JSON report
on stdout, exit status 1 when a copy differs.

    PYTHONPATH=plugins:include:. .venv/bin/python -m bench.publish_window [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import duckdb
from meta_ads_elt import marts

from bench import dbt_build, marts_identity

BENCH_WORK = dbt_build.OUT / "dbt_build"


def parquet_differences(build_db: Path, parquet_dir: Path) -> dict[str, int]:
    """Per mart: rows of the build not in its Parquet copy plus rows of the copy not in the build."""
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute(f"attach '{build_db}' as build (read_only)")
        differences = {}
        for mart in marts.MARTS:
            copy = f"read_parquet('{parquet_dir / (mart + '.parquet')}')"
            differences[mart] = sum(
                con.execute(f"select count(*) from ({query})").fetchone()[0]
                for query in (
                    f"from build.main.{mart} except all from {copy}",
                    f"from {copy} except all from build.main.{mart}",
                )
            )
        return differences
    finally:
        con.close()


def run_once(scratch: Path) -> dict[str, Any]:
    work = scratch / "work"
    shutil.rmtree(work, ignore_errors=True)
    for part in ("build", "serve"):
        shutil.copytree(BENCH_WORK / part, work / part, symlinks=True)
    build_db = work / "build" / "marts_build.duckdb"
    serving, parquet_dir = work / "serve" / "marts.duckdb", work / "serve" / "marts"
    dbt_build._restate_window(build_db)
    os.sync()  # the copies' writeback is not timed
    load = dbt_build._loadavg()
    wall, cpu = dbt_build._timed_publish(build_db, serving, parquet_dir)
    relations = (*marts.MARTS, *marts.ROLLUPS, *marts.BREAKDOWN_MARTS)
    serving_report = marts_identity.compare(build_db, serving, relations)
    return {
        "seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "loadavg_1m_before": load,
        "serving_differs": sorted(name for name, entry in serving_report.items() if not entry["identical"]),
        "parquet_differs": sorted(
            mart for mart, rows in parquet_differences(build_db, parquet_dir).items() if rows
        ),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="publishes to time, each on a fresh copy")
    args = parser.parse_args(argv)
    if not (BENCH_WORK / "build" / "marts_build.duckdb").exists() or not (BENCH_WORK / "serve").is_dir():
        print(f"{BENCH_WORK} has no build and published state: run `python -m bench dbt_build` first")
        return 2
    with tempfile.TemporaryDirectory(prefix="publish_window-", dir=dbt_build.OUT) as scratch:
        runs = [run_once(Path(scratch)) for _ in range(args.runs)]
    print(json.dumps({"runs": runs}, indent=2))
    return 1 if any(r["serving_differs"] or r["parquet_differs"] for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
