"""Are the marts row-for-row identical when built by two versions of the dbt project over the same lake?

For a refactor or a speed change of ``dbt_project/`` that must not change a single number: the
project at a git revision (``--before``, exported with ``git archive``) and the working tree's project
(or ``--after``) each build the same lake with the same steps, and after each step every published
mart (``marts.MARTS``, ``marts.ROLLUPS`` and ``marts.BREAKDOWN_MARTS``) is compared: same column names and types in the same
order, and ``EXCEPT ALL`` empty both ways (duplicates count).

Steps: a full build (``--full-refresh``), then the daily incremental build. On the generated bench
lake (``--lake bench``: ``bench/out/dbt_lake``, copied first) the next day lands in between, as in
``bench/dbt_build.py``; on another lake (e.g. ``data/lake`` after ``make run``, left untouched) the
incremental re-runs the same window.

    PYTHONPATH=plugins:include:. .venv/bin/python -m bench.marts_identity --before main --lake bench
    PYTHONPATH=plugins:include:. .venv/bin/python -m bench.marts_identity --before main --lake data/lake

Exit status 0 when every mart is identical after every step, 1 otherwise; a JSON report on stdout.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import duckdb
from meta_ads_elt import dbt_runner, marts

from bench import dbt_build

REPO = Path(__file__).resolve().parents[1]


def export_project(revision: str, into: Path) -> Path:
    """``dbt_project/`` as it is at ``revision`` (without target/ or logs/), under ``into``."""
    into.mkdir(parents=True, exist_ok=True)
    archive = into / "dbt_project.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "archive", revision, "dbt_project"], cwd=REPO, stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    archive.unlink()
    return into / "dbt_project"


def compare(before_db: Path, after_db: Path, relations: tuple[str, ...]) -> dict[str, Any]:
    """Per relation: row counts, rows only before / only after (EXCEPT ALL), and any column difference."""
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute(f"attach '{before_db}' as before_build (read_only)")
        con.execute(f"attach '{after_db}' as after_build (read_only)")
        report: dict[str, Any] = {}
        for name in relations:
            columns = {
                side: con.execute(
                    "select column_name, data_type from information_schema.columns "
                    "where table_catalog = ? and table_name = ? order by ordinal_position",
                    [side, name],
                ).fetchall()
                for side in ("before_build", "after_build")
            }
            entry: dict[str, Any] = {}
            if columns["before_build"] != columns["after_build"]:
                entry["columns_before"] = columns["before_build"]
                entry["columns_after"] = columns["after_build"]
            else:
                before, after = f"before_build.main.{name}", f"after_build.main.{name}"
                entry["rows"] = con.execute(f"select count(*) from {before}").fetchone()[0]
                entry["rows_after"] = con.execute(f"select count(*) from {after}").fetchone()[0]
                entry["only_before"] = con.execute(
                    f"select count(*) from (from {before} except all from {after})"
                ).fetchone()[0]
                entry["only_after"] = con.execute(
                    f"select count(*) from (from {after} except all from {before})"
                ).fetchone()[0]
            entry["identical"] = (
                "columns_before" not in entry and entry["only_before"] == entry["only_after"] == 0
            )
            report[name] = entry
        return report
    finally:
        con.close()


def run(before: str, after: str | None, lake_arg: str, work: Path) -> dict[str, Any]:
    projects = {
        "before": export_project(before, work / "before"),
        "after": export_project(after, work / "after") if after else REPO / "dbt_project",
    }
    if lake_arg == "bench":
        dbt_build._lake(dbt_build.OUT / "dbt_lake")
        lake = work / "lake"
        shutil.copytree(dbt_build.OUT / "dbt_lake", lake)
    else:
        lake = Path(lake_arg).resolve()
    relations = marts.MARTS + marts.ROLLUPS + marts.BREAKDOWN_MARTS
    steps: dict[str, Any] = {}
    for step in ("full", "incremental"):
        if step == "incremental" and lake_arg == "bench":
            dbt_build._add_next_day(lake, work)
        for side, project in projects.items():
            dbt_runner.run_dbt_build(
                lake_root=lake,
                build_db_path=work / side / "marts_build.duckdb",
                project_dir=project,
                target_path=work / side / "target",
                log_path=work / side / "logs",
                full_refresh=step == "full",
                threads=2,
            )
        steps[step] = compare(
            work / "before" / "marts_build.duckdb", work / "after" / "marts_build.duckdb", relations
        )
    identical = all(entry["identical"] for report in steps.values() for entry in report.values())
    return {
        "before": before,
        "after": after or "working tree",
        "lake": str(lake_arg),
        "identical": identical,
        **steps,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="git revision whose dbt_project/ is the reference")
    parser.add_argument("--after", help="git revision to compare (default: the working tree's dbt_project/)")
    parser.add_argument("--lake", default="bench", help="'bench' (the generated 10M-row lake) or a lake root")
    parser.add_argument("--work", help="directory for the builds (default: a temporary one, removed after)")
    args = parser.parse_args(argv)
    if args.work:
        work = Path(args.work).resolve()
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        result = run(args.before, args.after, args.lake, work)
    else:
        with tempfile.TemporaryDirectory(
            prefix="marts_identity_", dir=dbt_build.OUT if args.lake == "bench" else None
        ) as tmp:
            result = run(args.before, args.after, args.lake, Path(tmp))
    print(json.dumps(result, indent=2, default=str))
    return 0 if result["identical"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
