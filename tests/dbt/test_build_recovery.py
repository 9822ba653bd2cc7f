"""A failing dbt build names what failed; DuckDB faults (a damaged build file, a native crash) heal
inside the build. In its own file (as are test_build_and_publish.py, test_build_options.py and
test_published_marts.py) so the dbt files run on parallel workers."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import signal
import threading
import time
from pathlib import Path

import duckdb
import psutil
import pyarrow.parquet as pq
import pytest
from airflow.sdk.exceptions import AirflowFailException
from meta_ads_elt import dbt_runner

from bench.lake_generator import generate_lake, write_rows
from tests.dbt.conftest import Build, marts_snapshot

pytestmark = pytest.mark.slow  # several real dbt builds: minutes


def test_failed_build_names_the_failing_node(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    generate_lake(lake, insights_rows=500, leads=20, messages=50, accounts=1, days=5)
    # a second extraction with the same (ad, date, _extracted_at) breaks the staging grain test
    row = pq.read_table(next((lake / "insights").glob("*/*/*.parquet"))).slice(0, 1).to_pylist()[0]
    part = next((lake / "insights").glob("*/*/*.parquet")).parent
    row["account_id"] = part.parent.name.split("=")[1]
    row["date"] = dt.date.fromisoformat(part.name.split("=")[1])
    write_rows(lake, "insights", [row], replace=False)
    build = Build(tmp_path, lake)
    with pytest.raises(dbt_runner.DbtBuildError) as excinfo:
        build.build()
    assert "unique_combination_of_columns_stg_meta__insights" in str(excinfo.value)
    assert excinfo.value.failures
    # the same lake and project fail the same way on a retry: Airflow fails the task at once
    assert isinstance(excinfo.value, AirflowFailException)


def test_only_failures_a_retry_cannot_change_fail_the_task_at_once() -> None:
    final = dbt_runner.build_error("x", [("model.meta_ads.x", "error", "Binder Error: no column y")], None)
    assert isinstance(final, dbt_runner.DbtNodesFailed) and isinstance(final, AirflowFailException)
    test_failed = dbt_runner.build_error(
        "x", [("test.meta_ads.t", "fail", "Got 3 results, configured to fail")], None
    )
    assert isinstance(test_failed, AirflowFailException)
    for transient in (
        'IO Error: Could not set lock on file "marts_build.duckdb": Conflicting lock is held',
        "Out of Memory Error: could not allocate block of size 256 KiB",
        "TransactionContext Error: Failed to commit: Corrupted uncompressed string segment",
    ):
        error = dbt_runner.build_error("x", [("model.meta_ads.x", "error", transient)], None)
        assert type(error) is dbt_runner.DbtBuildError, transient  # retried by Airflow
    assert type(dbt_runner.build_error("x", [], "SIGSEGV")) is dbt_runner.DbtBuildError
    assert type(dbt_runner.build_error("x", [], None)) is dbt_runner.DbtBuildError  # dbt never ran nodes


def _built_once(tmp_path: Path) -> tuple[Build, dict[str, list[tuple]]]:
    """A small generated lake built once, and the marts that build made."""
    lake = tmp_path / "lake"
    generate_lake(lake, insights_rows=500, leads=40, messages=100, accounts=1, days=5)
    build = Build(tmp_path, lake)
    build.build()
    return build, marts_snapshot(build)


def test_a_damaged_build_file_is_set_aside_and_rebuilt_from_the_lake(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    build, before = _built_once(tmp_path)
    # DuckDB storage damage (CI hit "Corrupted uncompressed string segment" under DuckDB 2.0.0):
    # overwrite the start of every 256 KiB block after the three 4 KiB headers
    size = build.db.stat().st_size
    with build.db.open("r+b") as f:
        for offset in range(3 * 4096, size, 256 * 1024):
            f.seek(offset)
            f.write(os.urandom(4096))
    with caplog.at_level(logging.WARNING, logger="meta_ads_elt.dbt_runner"):
        summary = build.build()
    rebuilt = summary["rebuilt_damaged_build_file"]
    assert rebuilt["damage"] and Path(rebuilt["kept_at"]).exists()
    assert "moved to" in caplog.text and rebuilt["kept_at"] in caplog.text
    assert marts_snapshot(build) == before


def test_a_release_that_changed_an_incremental_models_columns_rebuilds_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    build, before = _built_once(tmp_path)
    # the build file as an older release wrote it: staging insights had a column this one does not
    con = duckdb.connect(str(build.db))
    try:
        con.execute("alter table stg_meta__insights add column written_by_an_older_release integer")
    finally:
        con.close()
    with caplog.at_level(logging.WARNING, logger="meta_ads_elt.dbt_runner"):
        summary = build.build()
    assert summary["full_refresh_after_schema_change"] == ["model.meta_ads.stg_meta__insights"]
    assert "--full-refresh" in caplog.text
    columns = {name for (name,) in build.query("select column_name from (describe stg_meta__insights)")}
    assert "written_by_an_older_release" not in columns
    assert marts_snapshot(build) == before
    # the next build is incremental again
    assert "full_refresh_after_schema_change" not in build.build()


def test_a_dbt_crash_is_built_once_more(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    build, before = _built_once(tmp_path)
    crashed: list[int] = []

    def crash_the_first_dbt_build() -> None:  # CI saw dbt end with SIGSEGV inside DuckDB 2.0.0
        deadline = time.monotonic() + 300
        while not crashed and time.monotonic() < deadline:
            for child in psutil.Process().children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if "build" in child.cmdline() and str(build.target) in " ".join(child.cmdline()):
                        time.sleep(2)  # dbt is under way
                        child.send_signal(signal.SIGSEGV)
                        crashed.append(child.pid)
                        return
            time.sleep(0.1)

    killer = threading.Thread(target=crash_the_first_dbt_build)
    killer.start()
    with caplog.at_level(logging.WARNING, logger="meta_ads_elt.dbt_runner"):
        summary = build.build()
    killer.join()
    assert crashed, "the test never saw the dbt process"
    assert summary["retried_after_crash"] == "SIGSEGV"
    assert "dbt crashed (SIGSEGV" in caplog.text
    assert marts_snapshot(build) == before


def test_a_failing_model_does_not_set_the_build_file_aside(tmp_path: Path) -> None:
    error = dbt_runner.DbtBuildError(
        "dbt build failed", [("model.meta_ads.x", "error", "Binder Error: no column y")]
    )
    assert dbt_runner._build_file_damage(error) is None
    lake_error = dbt_runner.DbtBuildError(
        "x", [("m", "error", "Invalid Input Error: Corrupt parquet file 'a'")]
    )
    assert dbt_runner._build_file_damage(lake_error) is None
    damaged = dbt_runner.DbtBuildError(
        "x",
        [("m", "error", "TransactionContext Error: Failed to commit: Corrupted uncompressed string segment")],
    )
    assert dbt_runner._build_file_damage(damaged).startswith("Corrupted uncompressed string segment")
