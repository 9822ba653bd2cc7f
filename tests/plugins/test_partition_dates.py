"""How a partition's date is read from its path (``meta_ads_elt.lake.layout``), and what each reader
does with a ``date=`` directory that names no date: never take it for a date, never crash."""

from __future__ import annotations

import datetime as dt
import logging
import shutil

import duckdb
import fsspec
import pytest
from meta_ads_elt.dbt_runner import default_window_end
from meta_ads_elt.discovery import _previous
from meta_ads_elt.lake.layout import partition_date, partition_dates
from meta_ads_elt.lake.partitions import LakeWriter
from meta_ads_elt.run_summary import discovery_lines

D = dt.date


@pytest.mark.parametrize(
    ("path", "day"),
    [
        ("/lake/insights/account_id=1/date=2026-03-09", D(2026, 3, 9)),
        ("/lake/insights/account_id=1/date=2026-03-09/", D(2026, 3, 9)),
        ("date=2026-12-31", D(2026, 12, 31)),
        ("/lake/insights/account_id=1/date=tmp", None),
        ("/lake/insights/account_id=1/date=20260309", None),  # fromisoformat reads it; the layout does not
        ("/lake/insights/account_id=1/date=2026-W10-1", None),
        ("/lake/insights/account_id=1/date=2026-02-30", None),
        ("/lake/insights/account_id=1/date=2026-03-09.bak", None),
        ("/lake/insights/account_id=1/date=", None),
        ("/lake/insights/account_id=1", None),
        ("/lake/insights/date=2026-03-09/part-1.parquet", None),  # a file is not a partition directory
    ],
)
def test_partition_date_reads_only_an_iso_date_directory(path, day):
    assert partition_date(path) == day


def test_partition_date_takes_a_pathlib_path(tmp_path):
    assert partition_date(tmp_path / "date=2026-03-09") == D(2026, 3, 9)


def test_partition_dates_are_sorted_and_a_non_date_directory_is_left_out_with_a_warning(tmp_path, caplog):
    for name in ("date=2026-03-10", "date=2026-03-08", "date=tmp", "date=2026-03-09", "other"):
        (tmp_path / "insights" / "account_id=1" / name).mkdir(parents=True)
    (tmp_path / "insights" / "account_id=2" / "date=2026-03-11").mkdir(parents=True)
    fs = fsspec.filesystem("file")
    with caplog.at_level(logging.WARNING, logger="meta_ads_elt.lake.layout"):
        assert partition_dates(fs, f"{tmp_path}/insights/account_id=1") == [
            D(2026, 3, 8),
            D(2026, 3, 9),
            D(2026, 3, 10),
        ]
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path}/insights/account_id=1/date=tmp: not a date partition (expected date=YYYY-MM-DD); left out"
    ]
    assert partition_dates(fs, f"{tmp_path}/insights/account_id=*")[-1] == D(2026, 3, 11)
    assert partition_dates(fs, f"{tmp_path}/insights/account_id=404") == []


def test_the_writer_lists_a_datasets_dates_under_the_keys_before_date(tmp_path):
    writer = LakeWriter(tmp_path)
    with writer.replace_partitions("discovered_accounts", [{"date": "2026-03-09"}, {"date": "2026-03-07"}]):
        pass
    with writer.replace_partitions("insights", [{"account_id": "1", "date": "2026-03-09"}]):
        pass
    assert writer.partition_dates("discovered_accounts") == [D(2026, 3, 7), D(2026, 3, 9)]
    assert writer.partition_dates("insights", {"account_id": "1"}) == [D(2026, 3, 9)]
    assert writer.partition_dates("insights", {"account_id": "2"}) == []
    assert writer.partition_dates("insights_by_country", {"account_id": "1"}) == []
    memory = LakeWriter("memory://partition-dates-test")
    with memory.replace_partitions("discovered_pages", [{"date": "2026-03-09"}]):
        pass
    assert memory.partition_dates("discovered_pages") == [D(2026, 3, 9)]
    for dataset, leading in (
        ("insights", {}),
        ("campaigns", {"account_id": "1"}),
        ("messages", {"page_id": "1"}),
    ):
        with pytest.raises(ValueError, match="give the keys before date"):
            writer.partition_dates(dataset, leading)


def _discovered(writer: LakeWriter, day: str, ids: list[str], state: str = "extracted") -> None:
    rows = [
        {
            "account_id": i,
            "name": f"acct {i}",
            "state": state,
            "reason": None if state == "extracted" else "a reason",
            "sources": ["me"],
            "_extracted_at": dt.datetime(2026, 3, 10, tzinfo=dt.UTC),
        }
        for i in ids
    ]
    with writer.replace_partitions("discovered_accounts", [{"date": day}]) as tx:
        tx.write(rows, partition={"date": day})


def test_discovery_history_reads_the_newest_date_before_the_run_not_a_stray_directory(tmp_path):
    writer = LakeWriter(tmp_path)
    _discovered(writer, "2026-03-08", ["1", "2"])
    _discovered(writer, "2026-03-10", ["3"])  # the run's own date and later ones are not history
    base = tmp_path / "discovered_accounts"
    # a backup beside the partitions: its name sorts after 2026-03-08 and before 2026-03-10
    shutil.copytree(base / "date=2026-03-10", base / "date=2026-03-09.bak")
    (base / "date=tmp").mkdir()
    assert set(_previous(writer, "discovered_accounts", D(2026, 3, 10), "account_id")) == {"1", "2"}
    assert _previous(writer, "discovered_accounts", D(2026, 3, 8), "account_id") == {}
    assert (
        _previous(LakeWriter(tmp_path / "empty"), "discovered_accounts", D(2026, 3, 10), "account_id") == {}
    )


def test_the_run_summary_shows_the_newest_discovery_not_a_stray_directory(tmp_path):
    writer = LakeWriter(tmp_path / "lake")
    _discovered(writer, "2026-03-08", ["2"], state="excluded")
    _discovered(writer, "2026-03-09", ["1"])
    stray = tmp_path / "lake" / "discovered_accounts" / "date=tmp"
    shutil.copytree(tmp_path / "lake" / "discovered_accounts" / "date=2026-03-08", stray)
    assert discovery_lines(duckdb.connect(), tmp_path / "lake") == [
        "Discovered accounts (2026-03-09): 1 extracted"
    ]
    only_stray = tmp_path / "only_stray" / "discovered_accounts" / "date=tmp"
    shutil.copytree(stray, only_stray)
    assert discovery_lines(duckdb.connect(), tmp_path / "only_stray") == []


def test_the_dbt_window_ends_on_the_newest_insights_date_with_files(tmp_path):
    writer = LakeWriter(tmp_path)
    with writer.replace_partitions(
        "insights", [{"account_id": "1", "date": "2026-03-08"}, {"account_id": "2", "date": "2026-03-09"}]
    ):
        pass
    (tmp_path / "insights" / "account_id=1" / "date=2026-03-12").mkdir()  # no file: not a partition yet
    stray = tmp_path / "insights" / "account_id=1" / "date=tmp"
    shutil.copytree(tmp_path / "insights" / "account_id=1" / "date=2026-03-08", stray)
    shutil.copytree(stray, tmp_path / "insights" / "account_id=1" / "date=20260311")
    assert default_window_end(tmp_path) == D(2026, 3, 9)
