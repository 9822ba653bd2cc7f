"""Publishing the marts: only changed dates are copied, every version is complete, and readers of the
serving DuckDB file and of the Parquet copies never see a half-published or mixed state.

The build files here are made directly in DuckDB (tables named like the marts, with a ``date`` column):
these tests are about the publisher, not about dbt (tests/dbt covers a real build + publish).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from meta_ads_elt import date_replace, marts, parquet_splice, publish
from meta_ads_elt.publish import CURRENT_LINK, VERSIONS_DIR, current_parquet_files

MARTS = marts.MARTS
UPDATE_MIN_ROWS = date_replace.UPDATE_MIN_ROWS


@pytest.fixture(autouse=True)
def update_columns_of_small_tables(monkeypatch):
    """These marts are small: lower the row count from which restated dates of the serving file have
    their changed columns updated rather than re-inserted, so publishes here take that path too."""
    monkeypatch.setattr(date_replace, "UPDATE_MIN_ROWS", 0)


FIRST_DAY = dt.date(2026, 10, 1)
DAYS = 30


def make_build(
    path: Path, version: int, *, rows_per_day: int = 200, days: int = DAYS, extra_column: bool = False
) -> None:
    """A build file whose marts differ from other versions' on some dates (and the same on the rest).

    Version ``v`` changes ``spend`` on the dates ``day % 4 == v % 4``, and versions >= 2 drop the first
    date and add one after the last, so a publish replaces, removes and adds dates.
    """
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    try:
        first = 1 if version >= 2 else 0
        last = days + (1 if version >= 2 else 0)
        extra = ", 'ok' as day_status" if extra_column else ""
        sizes = (rows_per_day, rows_per_day // 2, 8, 3)
        for index, mart in enumerate(MARTS):
            per_day = sizes[index % len(sizes)]
            con.execute(
                f"""
                create table {mart} as
                select
                    cast(date '{FIRST_DAY}' + cast(d as integer) as date) as date,
                    'act_' || (r % 7) as account_id,
                    'ad ' || r as ad_name,
                    cast((r % 13) * 1.25 + case when d % 4 = {version % 4} then {version} * 0.01 else 0 end
                        as decimal(18, 2)) as spend,
                    cast(r * 3 + d as bigint) as impressions,
                    timestamptz '2026-11-01 00:00:00+00' + to_hours(cast(d as integer)) as as_of{extra}
                from range({first}, {last}) as days(d), range({per_day}) as rows(r)
                """
            )
    finally:
        con.close()


def signature_of_rows(rows: int, impressions: int, spend: Decimal) -> tuple:
    return (int(rows), int(impressions), Decimal(spend).quantize(Decimal("0.01")))


def signatures(build: Path) -> dict[str, tuple]:
    """What a reader of each mart must see when it reads this version: rows, sum of an integer and of a
    decimal column (a mix of two versions' row groups matches neither)."""
    con = duckdb.connect(str(build), read_only=True)
    try:
        return {
            mart: signature_of_rows(
                *con.execute(f"select count(*), sum(impressions), sum(spend) from {mart}").fetchone()
            )
            for mart in MARTS
        }
    finally:
        con.close()


def assert_published_equals(build: Path, serving: Path, parquet_dir: Path) -> None:
    con = duckdb.connect()
    try:
        con.execute(f"attach '{build}' as b (read_only)")
        con.execute(f"attach '{serving}' as s (read_only)")
        for mart in MARTS:
            copies = {
                "serving": f"s.{mart}",
                "parquet": f"read_parquet('{parquet_dir / (mart + '.parquet')}')",
            }
            for name, relation in copies.items():
                for query in (
                    f"select * from b.{mart} except all select * from {relation}",
                    f"select * from {relation} except all select * from b.{mart}",
                ):
                    assert con.execute(f"select count(*) from ({query})").fetchone() == (0,), (
                        mart,
                        name,
                        query,
                    )
    finally:
        con.close()


# ---- the Parquet splice ------------------------------------------------------------------------


def test_a_parquet_footer_decodes_and_encodes_back_to_the_same_bytes():
    table = pa.table({"date": [dt.date(2026, 1, 1)] * 3, "name": ["a", None, "c"], "n": [1, 2, 3]})
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=2)
    data = sink.getvalue()
    footer = parquet_splice.read_footer(data)
    assert parquet_splice.encode_struct(footer.metadata) == data[footer.data_end : -8]
    assert len(footer.row_groups) == 2


def test_row_groups_of_two_files_make_one_file_every_reader_reads():
    first = pa.table({"date": [dt.date(2026, 1, 1)] * 2, "n": [1, 2]})
    second = pa.table({"date": [dt.date(2026, 1, 2)] * 3, "n": [3, 4, 5]})
    parts = []
    for table in (first, second):
        sink = io.BytesIO()
        pq.write_table(table, sink)
        parts.append(parquet_splice.chunk_bytes(sink.getvalue()))
    out = io.BytesIO()
    out.write(parquet_splice.MAGIC)
    groups = []
    for footer, chunks in parts:
        offset = out.tell()
        out.write(chunks)
        groups += [parquet_splice.shift_row_group(g, offset - 4) for g in footer.row_groups]
    out.write(
        parquet_splice.footer_bytes(parts[0][0], list(reversed(groups)))
    )  # any order: footer order wins
    data = out.getvalue()
    assert pq.read_table(pa.BufferReader(data)).column("n").to_pylist() == [3, 4, 5, 1, 2]
    assert pq.read_metadata(pa.BufferReader(data)).num_rows == 5


def test_files_with_another_schema_are_not_spliced():
    footers = []
    for table in (pa.table({"n": [1]}), pa.table({"m": [1]})):
        sink = io.BytesIO()
        pq.write_table(table, sink)
        footers.append(parquet_splice.read_footer(sink.getvalue()))
    with pytest.raises(parquet_splice.ParquetSpliceError, match="different schemas"):
        parquet_splice.check_same_schema(footers)


# ---- publishing ----------------------------------------------------------------------------------


def test_only_changed_dates_are_copied_and_every_publish_equals_its_build(tmp_path):
    serving, parquet_dir = tmp_path / "marts.duckdb", tmp_path / "marts"
    builds = []
    for version in range(4):
        builds.append(tmp_path / f"build{version}.duckdb")
        make_build(builds[-1], version)
    first = publish.publish_marts(builds[0], serving, parquet_dir)
    assert set(first["serving_modes"].values()) == {"full"}
    assert_published_equals(builds[0], serving, parquet_dir)

    second = publish.publish_marts(builds[1], serving, parquet_dir)
    changed_days = len([d for d in range(DAYS) if d % 4 == 1])  # version 1 changes these dates
    assert second["serving_modes"]["cost_per_lead"] == f"{changed_days} date(s) replaced"
    assert second["parquet_modes"]["cost_per_lead"] == f"{changed_days} date(s) re-encoded"
    assert_published_equals(builds[1], serving, parquet_dir)

    before = current_parquet_files(parquet_dir)
    again = publish.publish_marts(builds[1], serving, parquet_dir)
    assert set(again["serving_modes"].values()) == {"unchanged"}
    assert set(again["parquet_modes"].values()) == {"unchanged"}
    after = current_parquet_files(parquet_dir)
    assert all(after[m] != before[m] and os.path.samefile(after[m], before[m]) for m in MARTS)  # hard links

    third = publish.publish_marts(builds[2], serving, parquet_dir)  # a date removed, one added
    assert_published_equals(builds[2], serving, parquet_dir)
    con = duckdb.connect(str(serving), read_only=True)
    try:
        published = dict(con.execute("select mart, version from _published").fetchall())
        assert min_max(con, "cost_per_lead") == (
            FIRST_DAY + dt.timedelta(days=1),
            FIRST_DAY + dt.timedelta(days=DAYS),
        )
    finally:
        con.close()
    assert set(published.values()) == {third["version"]}


def test_every_publish_equals_its_build_when_restated_dates_are_re_inserted(tmp_path, monkeypatch):
    """With the default threshold these small marts' changed dates are deleted and re-inserted."""
    monkeypatch.setattr(date_replace, "UPDATE_MIN_ROWS", UPDATE_MIN_ROWS)
    serving, parquet_dir = tmp_path / "marts.duckdb", tmp_path / "marts"
    for version in (0, 1, 2, 1):
        build = tmp_path / f"build{version}.duckdb"
        if not build.exists():
            make_build(build, version)
        publish.publish_marts(build, serving, parquet_dir)
        assert_published_equals(build, serving, parquet_dir)


def min_max(con, mart):
    return con.execute(f"select min(date), max(date) from {mart}").fetchone()


def test_a_reader_holding_the_previous_footer_reads_the_previous_version_from_the_new_file(tmp_path):
    """What a reader that opens a path twice does when a publish lands between its two opens: the
    previous version's footer applied to the new file's bytes must give the previous version, whole
    (also across a schema change and a forced full rewrite)."""
    serving, parquet_dir = tmp_path / "marts.duckdb", tmp_path / "marts"
    steps = [(0, {}), (1, {}), (2, {}), (3, {"incremental": False}), (4, {}), (1, {})]
    previous: dict[str, tuple[str, pa.Table]] = {}
    for version, options in steps:
        build = tmp_path / f"build{version}.duckdb"
        make_build(build, version, extra_column=version == 4)
        publish.publish_marts(build, serving, parquet_dir, **options)
        current = current_parquet_files(parquet_dir)
        for mart, path in current.items():
            if mart in previous:
                old_path, old_table = previous[mart]
                straddling = pq.ParquetFile(path, metadata=pq.read_metadata(old_path)).read()
                assert straddling.equals(old_table), (
                    f"{mart}: version {version} overwrote bytes of the previous one"
                )
            previous[mart] = (path, pq.read_table(path))


def test_a_mart_whose_columns_change_is_rewritten_whole(tmp_path):
    serving, parquet_dir = tmp_path / "marts.duckdb", tmp_path / "marts"
    make_build(tmp_path / "a.duckdb", 0)
    make_build(tmp_path / "b.duckdb", 1, extra_column=True)
    publish.publish_marts(tmp_path / "a.duckdb", serving, parquet_dir)
    result = publish.publish_marts(tmp_path / "b.duckdb", serving, parquet_dir)
    assert set(result["serving_modes"].values()) == {"full"}
    assert set(result["parquet_modes"].values()) == {"full"}
    assert_published_equals(tmp_path / "b.duckdb", serving, parquet_dir)
    assert "day_status" in pq.read_schema(parquet_dir / "cost_per_lead.parquet").names


def test_the_contract_paths_point_at_one_immutable_version(tmp_path):
    serving, parquet_dir = tmp_path / "marts.duckdb", tmp_path / "marts"
    parquet_dir.mkdir()
    (parquet_dir / "cost_per_lead.parquet").write_bytes(b"an old-style regular file")
    make_build(tmp_path / "a.duckdb", 0)
    result = publish.publish_marts(tmp_path / "a.duckdb", serving, parquet_dir)
    current = os.readlink(parquet_dir / CURRENT_LINK)
    assert current == f"{VERSIONS_DIR}/{result['version']}"
    for mart in MARTS:
        contract = parquet_dir / f"{mart}.parquet"
        assert os.readlink(contract) == f"{CURRENT_LINK}/{mart}.parquet"
        assert Path(os.path.realpath(contract)) == parquet_dir / current / f"{mart}.parquet"
    # readers that discover a directory skip the '_'-prefixed version store
    assert sorted(duckdb.sql(f"select file from glob('{parquet_dir}/*.parquet')").fetchall()) == sorted(
        (str(parquet_dir / f"{m}.parquet"),) for m in MARTS
    )


def test_superseded_versions_are_kept_for_readers_then_removed(tmp_path):
    serving, parquet_dir = tmp_path / "marts.duckdb", tmp_path / "marts"
    make_build(tmp_path / "a.duckdb", 0)
    make_build(tmp_path / "b.duckdb", 1)
    first = publish.publish_marts(tmp_path / "a.duckdb", serving, parquet_dir)
    held = current_parquet_files(parquet_dir)["cost_per_lead"]
    publish.publish_marts(tmp_path / "b.duckdb", serving, parquet_dir, retain_minutes=60)
    assert pq.read_table(held).num_rows > 0, "a reader of the replaced version can still read it"
    time.sleep(0.05)
    third = publish.publish_marts(tmp_path / "a.duckdb", serving, parquet_dir, retain_minutes=0.0005)
    assert first["version"] in third["removed_versions"]
    assert not Path(held).exists()
    assert (parquet_dir / VERSIONS_DIR / third["version"]).is_dir()


def test_a_failed_publish_leaves_the_published_state_as_it_was(tmp_path):
    serving, parquet_dir = tmp_path / "marts.duckdb", tmp_path / "marts"
    make_build(tmp_path / "a.duckdb", 0)
    first = publish.publish_marts(tmp_path / "a.duckdb", serving, parquet_dir)
    broken = tmp_path / "broken.duckdb"
    make_build(broken, 1)
    con = duckdb.connect(str(broken))
    con.execute("drop table lead_reconciliation")
    con.close()
    with pytest.raises(publish.PublishError, match="lacks mart"):
        publish.publish_marts(broken, serving, parquet_dir)
    assert os.readlink(parquet_dir / CURRENT_LINK).endswith(first["version"])
    assert sorted(p.name for p in (parquet_dir / VERSIONS_DIR).iterdir()) == [first["version"]]
    assert_published_equals(tmp_path / "a.duckdb", serving, parquet_dir)


# ---- readers while publishing ----------------------------------------------------------------------

READ_STYLES = (
    "duckdb_read_parquet",
    "pyarrow_dataset",
    "pyarrow_read_table",
    "pandas_read_parquet",
    "duckdb_file",
)


def _read(style: str, parquet_dir: Path, serving: Path) -> dict[str, tuple]:
    """One read of every mart in one style; returns each mart's signature (and the DuckDB file's version)."""
    import pandas as pd
    import pyarrow.dataset as ds

    out = {}
    if style == "duckdb_file":
        con = duckdb.connect(str(serving), read_only=True)
        try:
            for mart in MARTS:
                out[mart] = signature_of_rows(
                    *con.execute(f"select count(*), sum(impressions), sum(spend) from {mart}").fetchone()
                )
        finally:
            con.close()
        return out
    files = {m: str(parquet_dir / f"{m}.parquet") for m in MARTS}  # the contract paths
    for mart in MARTS:
        path = files[mart]
        if style == "duckdb_read_parquet":
            row = duckdb.sql(
                f"select count(*), sum(impressions), sum(spend) from read_parquet('{path}')"
            ).fetchall()[0]
        elif style == "pyarrow_dataset":
            table = ds.dataset(path, format="parquet").to_table(columns=["impressions", "spend"])
            row = (table.num_rows, pc.sum(table["impressions"]).as_py(), pc.sum(table["spend"]).as_py())
        elif style == "pyarrow_read_table":
            table = pq.read_table(path, columns=["impressions", "spend"])
            row = (table.num_rows, pc.sum(table["impressions"]).as_py(), pc.sum(table["spend"]).as_py())
        else:
            frame = pd.read_parquet(path, columns=["impressions", "spend"])
            row = (len(frame), frame["impressions"].sum(), sum(frame["spend"], Decimal(0)))
        out[mart] = signature_of_rows(*row)
    return out


def _reader(style: str, parquet_dir: str, serving: str, stop_file: str, out: str) -> None:
    """A reader process: read in a loop until ``stop_file`` exists, then write what it saw to ``out``."""
    reads, errors, seen = 0, [], []
    while not os.path.exists(stop_file):
        try:
            seen.append(_read(style, Path(parquet_dir), Path(serving)))
            reads += 1
            time.sleep(0.05)  # leave the publisher some of this 2-core machine
        except Exception as exc:  # every failed read is reported
            errors.append(f"{type(exc).__name__}: {str(exc)[:300]}")
    Path(out).write_text(
        json.dumps(
            {
                "reads": reads,
                "errors": errors,
                "seen": [
                    {mart: [sig[0], sig[1], str(sig[2])] for mart, sig in read.items()} for read in seen
                ],
            }
        )
    )


READER = """
import sys
sys.path[:0] = sys.argv[1].split(":")
from tests.plugins.test_publish import _reader
_reader(*sys.argv[2:])
"""


@pytest.mark.slow  # >= 50 publishes with four reader processes: minutes
def test_readers_never_see_a_failed_or_mixed_read_during_many_publishes(tmp_path):
    """>= 50 publishes (replacing, adding and removing dates, a schema change, a full rewrite) while one
    process per reader style reads every mart by its contract path in a loop: 0 errors, and every read of a mart equals that
    mart in one of the published versions (a DuckDB-file read: all marts from the same version).

    DuckDB's ``read_parquet``, ``pyarrow.parquet.read_table`` and ``pandas.read_parquet`` open the
    contract path twice (the footer first, then the data); a publish between the two opens must not
    mix versions: this is what failed before (``TProtocolException: Invalid data``)."""
    serving, parquet_dir = tmp_path / "marts.duckdb", tmp_path / "marts"
    builds = [tmp_path / f"build{v}.duckdb" for v in range(5)]
    for version, build in enumerate(builds):
        make_build(build, version, extra_column=version == 4)
    expected = {build: signatures(build) for build in builds}
    versions_of_mart = {mart: {sig[mart] for sig in expected.values()} for mart in MARTS}
    publish.publish_marts(builds[0], serving, parquet_dir, retain_minutes=0.2)

    stop_file = tmp_path / "stop"
    root = Path(__file__).resolve().parents[2]
    path = ":".join(str(root / part) for part in ("plugins", "include", "."))
    readers = {
        style: subprocess.Popen(
            [
                sys.executable,
                "-c",
                READER,
                path,
                style,
                str(parquet_dir),
                str(serving),
                str(stop_file),
                str(tmp_path / f"{style}.json"),
            ]
        )
        for style in READ_STYLES
    }
    try:
        order = [0, 1, 2, 1, 3, 0, 2, 3, 4, 3]
        publishes = 0
        while publishes < 50:
            build = builds[order[publishes % len(order)]]
            publish.publish_marts(
                build, serving, parquet_dir, retain_minutes=0.2, incremental=publishes % 17 != 16
            )
            publishes += 1
        stop_file.touch()
        for process in readers.values():
            process.wait(timeout=120)
    finally:
        stop_file.touch()
        for process in readers.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
    outcomes = []
    for style in READ_STYLES:
        result = json.loads((tmp_path / f"{style}.json").read_text())
        seen = [{m: signature_of_rows(*sig) for m, sig in read.items()} for read in result["seen"]]
        outcomes.append((style, result["reads"], result["errors"], seen))
    assert publishes >= 50
    for style, reads, errors, seen in outcomes:
        assert not errors, f"{style}: {len(errors)} failed reads of {reads + len(errors)}: {errors[:3]}"
        assert reads > 0, f"{style} never completed a read"
        for read in seen:
            for mart, signature in read.items():
                assert signature in versions_of_mart[mart], f"{style} read a mixed {mart}: {signature}"
            if style == "duckdb_file":
                assert read in expected.values(), f"the DuckDB file mixed versions across marts: {read}"
    assert_published_equals(builds[order[49 % len(order)]], serving, parquet_dir)
