"""Building the project on generated lakes: incremental idempotency and windows, missing datasets, a
reader holding the serving file, a publish of a build without marts."""

from __future__ import annotations

import datetime as dt
import shutil
import threading
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from meta_ads_elt import marts, publish
from meta_ads_elt.schemas import DATASETS, DISCOVERY_DATASETS, PARTITION_KEYS

from bench.lake_generator import generate_lake
from tests.dbt.conftest import Build, marts_snapshot

pytestmark = pytest.mark.slow  # several real dbt builds: minutes

MARTS = marts.MARTS


def test_generated_lake_follows_the_lake_contract(small_lake: Path) -> None:
    for dataset, schema in DATASETS.items():
        if dataset in DISCOVERY_DATASETS:
            continue  # discovery's own record (discover: config only); no dbt input, not generated
        files = sorted(small_lake.glob(f"{dataset}/**/*.parquet"))
        assert files, dataset
        assert pq.read_schema(files[0]).remove_metadata().equals(schema), dataset
        relative = files[0].relative_to(small_lake / dataset).parts[:-1]
        assert tuple(p.split("=")[0] for p in relative) == PARTITION_KEYS[dataset]


def test_incremental_rebuild_is_idempotent_and_drops_emptied_days(tmp_path: Path, small_lake: Path) -> None:
    build = Build(tmp_path, small_lake)
    build.build()
    full = marts_snapshot(build)
    assert all(full[m] for m in MARTS)
    build.build()  # incremental: re-processes the 28-day window
    assert marts_snapshot(build) == full
    # a re-pull that found no delivery for a window day replaces its partitions with nothing
    last_day = build.query("select max(date) from cost_per_lead")[0][0]
    for partition in small_lake.glob(f"insights/*/date={last_day.isoformat()}"):
        shutil.rmtree(partition)
    build.build()
    assert build.query("select count(*) from conversations_started where date = ?", [last_day]) == [(0,)]
    assert build.query(
        "select count(*) from cost_per_lead where date = ? and (spend > 0 or leads_reported > 0)", [last_day]
    ) == [(0,)]
    incremental = marts_snapshot(build)
    build.build(full_refresh=True)
    assert marts_snapshot(build) == incremental


def test_an_incremental_build_opens_only_the_partitions_of_its_window(
    tmp_path: Path, small_lake: Path
) -> None:
    # 40 days in the lake, a 28-day window: the staging tables keep the older partitions as the full
    # build read them, and an incremental build never opens their files (the build's cost at scale)
    build = Build(tmp_path, small_lake)
    build.build(full_refresh=True)
    full = marts_snapshot(build)
    staged = build.query("select count(*), sum(spend) from stg_meta__insights")
    for dataset in ("insights", "leads", "messages"):
        oldest = min(p.name for p in small_lake.glob(f"{dataset}/**/date=*"))
        for file in small_lake.glob(f"{dataset}/**/{oldest}/*.parquet"):
            file.write_bytes(b"not parquet: unreadable")
    build.build()
    assert marts_snapshot(build) == full
    assert build.query("select count(*), sum(spend) from stg_meta__insights") == staged
    [compiled] = build.target.glob("compiled/**/staging/meta/stg_meta__insights.sql")
    assert "date=*" not in compiled.read_text()  # one glob per date of the window, not the whole lake


def test_missing_conversation_datasets_build_empty_marts(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    generate_lake(
        lake, insights_rows=2_000, leads=100, messages=0, accounts=2, days=10, with_conversations=False
    )
    assert not (lake / "messages").exists()
    build = Build(tmp_path, lake)
    build.build()
    assert build.query("select count(*) from conversations_started_by_page") == [(0,)]
    assert build.query("select sum(conversations_started) from lead_reconciliation") == [(0,)]
    assert build.query("select count(*) from cost_per_lead")[0][0] > 0


def test_reader_holding_the_serving_file_never_blocks_a_build_and_publish(
    tmp_path: Path, small_lake: Path
) -> None:
    build = Build(tmp_path, small_lake)
    serving = tmp_path / "data" / "marts.duckdb"
    parquet_dir = tmp_path / "data" / "marts"
    build.build()
    first = publish.publish_marts(build.db, serving, parquet_dir)
    assert set(first["parquet_files"]) == set(MARTS)

    reader = duckdb.connect(str(serving), read_only=True)
    before = reader.execute("select count(*), sum(spend) from cost_per_lead").fetchone()
    errors: list[BaseException] = []
    seen: list[tuple] = []
    stop = threading.Event()

    def keep_reading() -> None:
        try:
            while not stop.is_set():
                seen.append(reader.execute("select count(*), sum(spend) from cost_per_lead").fetchone())
                for mart in MARTS:
                    reader.execute(f"select count(*) from {mart}").fetchone()
                time.sleep(0.05)
        except BaseException as exc:  # the test fails on any reader error
            errors.append(exc)

    thread = threading.Thread(target=keep_reading)
    thread.start()
    try:
        # new data arrives: one more day of insights for every account
        more = tmp_path / "more"
        generate_lake(
            more,
            insights_rows=600,
            leads=60,
            messages=0,
            accounts=3,
            days=1,
            end_date=dt.date(2026, 11, 21),
            with_conversations=False,
        )
        for partition in (more / "insights").glob("*/*"):
            target = small_lake / "insights" / partition.parent.name / partition.name
            shutil.copytree(partition, target)
        build.build()
        second = publish.publish_marts(build.db, serving, parquet_dir)
    finally:
        stop.set()
        thread.join(timeout=30)
        reader.close()
    assert not errors, errors
    assert seen and all(s == before for s in seen)  # the open reader saw one consistent state
    fresh = duckdb.connect(str(serving), read_only=True)
    try:
        after = fresh.execute("select count(*), max(date) from cost_per_lead").fetchone()
        published = fresh.execute("select max(published_at) from _published").fetchone()[0]
    finally:
        fresh.close()
    assert after[0] > before[0] and after[1] == dt.date(2026, 11, 21)
    assert published.isoformat() >= first["published_at"][:19]
    assert second["rows"]["cost_per_lead"] == after[0]
    for mart in MARTS:
        table = pq.read_table(parquet_dir / f"{mart}.parquet")
        assert table.num_rows == second["rows"][mart]
    assert not list(serving.parent.glob(".*.tmp")) and not list(parquet_dir.glob(".*.tmp"))


def test_publish_refuses_a_build_without_the_marts(tmp_path: Path) -> None:
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    serving = tmp_path / "marts.duckdb"
    with pytest.raises(publish.PublishError, match="lacks mart"):
        publish.publish_marts(empty, serving, tmp_path / "marts")
    assert not serving.exists()
