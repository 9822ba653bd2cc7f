"""LakeWriter: schema, partition routing, atomic replacement, crash safety, flat memory."""

from __future__ import annotations

import datetime as dt
import glob
import os
import subprocess
import sys
import textwrap

import pyarrow.dataset as ds
import pytest
from meta_ads_elt.lake.partitions import LakeWriter
from meta_ads_elt.lake.rows import LakeSchemaError, rows_to_table
from meta_ads_elt.lake.state import LakeState
from meta_ads_elt.schemas import INSIGHTS

NOW = dt.datetime(2026, 11, 2, 12, tzinfo=dt.UTC)


def insight(date, ad="a1", spend="1.23", **extra):
    return {
        "account_id": "1",
        "date": date,
        "campaign_id": "c1",
        "adset_id": "s1",
        "ad_id": ad,
        "date_start": date,
        "date_stop": date,
        "spend": spend,
        "impressions": "10",
        "ctr": "1.23456789",
        "actions": [{"action_type": "lead", "value": "3", "7d_click": "2", "1d_view": "1", "28d_view": "5"}],
        "_extracted_at": NOW,
        **extra,
    }


def run_python(script: str) -> subprocess.CompletedProcess:
    """``script`` in a fresh interpreter at the project root, with plugins/ and include/ importable."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(["plugins", "include", os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def parts(dates):
    return [{"account_id": "1", "date": d} for d in dates]


def read(root, dataset="insights"):
    files = sorted(glob.glob(f"{root}/{dataset}/**/*.parquet", recursive=True))
    if not files:
        return None
    return ds.dataset(files, format="parquet", partitioning="hive").to_table()


def test_rows_become_typed_columns():
    t = rows_to_table("insights", [insight("2026-11-01", spend="12.345")], extra=("account_id", "date"))
    row = t.to_pylist()[0]
    assert str(row["spend"]) == "12.345000"
    assert str(row["ctr"]) == "1.234568"  # rounded half-even to 6 places, never a float
    assert row["impressions"] == 10
    assert row["date_start"] == dt.date(2026, 11, 1)
    assert row["actions"][0]["action_type"] == "lead" and str(row["actions"][0]["7d_click"]) == "2.000000"


def test_required_columns_are_checked():
    bad = insight("2026-11-01")
    del bad["ad_id"]
    with pytest.raises(LakeSchemaError, match="ad_id"):
        rows_to_table("insights", [bad])


def test_rows_are_routed_to_their_partition_and_empty_dates_written(tmp_path):
    w = LakeWriter(tmp_path)
    with w.replace_partitions(
        "insights", parts(["2026-11-01", "2026-11-02", "2026-11-03"]), run_id="r"
    ) as tx:
        tx.write([insight("2026-11-01"), insight("2026-11-02", ad="a2"), insight("2026-11-02", ad="a3")])
    assert tx.rows == 3
    for d in ("2026-11-01", "2026-11-02", "2026-11-03"):
        assert len(glob.glob(f"{tmp_path}/insights/account_id=1/date={d}/*.parquet")) == 1
    table = read(tmp_path)
    assert table.num_rows == 3
    # partition columns live only in directory names
    files = glob.glob(f"{tmp_path}/insights/**/*.parquet", recursive=True)
    import pyarrow.parquet as pq

    assert pq.read_schema(files[0]).names == INSIGHTS.names


def test_rerun_replaces_exactly_the_listed_partitions(tmp_path):
    w = LakeWriter(tmp_path)
    with w.replace_partitions("insights", parts(["2026-11-01", "2026-11-02"]), run_id="r1") as tx:
        tx.write([insight("2026-11-01"), insight("2026-11-02")])
    with w.replace_partitions("insights", parts(["2026-11-02", "2026-11-03"]), run_id="r2") as tx:
        tx.write([insight("2026-11-03", spend="9.99")])
    table = read(tmp_path).to_pylist()
    by_date = {}
    for r in table:
        by_date.setdefault(str(r["date"]), []).append(r)
    assert len(by_date["2026-11-01"]) == 1  # untouched
    assert "2026-11-02" not in by_date  # replaced by an empty partition: no stale rows
    assert [str(r["spend"]) for r in by_date["2026-11-03"]] == ["9.990000"]


def test_exception_swaps_nothing_and_cleans_staging(tmp_path):
    w = LakeWriter(tmp_path)
    with w.replace_partitions("insights", parts(["2026-11-01"]), run_id="r1") as tx:
        tx.write([insight("2026-11-01", spend="1.00")])
    with (
        pytest.raises(RuntimeError),
        w.replace_partitions("insights", parts(["2026-11-01"]), run_id="r2") as tx,
    ):
        tx.write([insight("2026-11-01", spend="2.00")])
        raise RuntimeError("boom")
    assert [str(r["spend"]) for r in read(tmp_path).to_pylist()] == ["1.000000"]
    assert not glob.glob(f"{tmp_path}/_staging/insights/*")


def test_rows_outside_the_listed_partitions_are_rejected(tmp_path):
    w = LakeWriter(tmp_path)
    with (
        pytest.raises(LakeSchemaError, match="does not replace"),
        w.replace_partitions("insights", parts(["2026-11-01"]), run_id="r") as tx,
    ):
        tx.write([insight("2026-11-05")])
    assert read(tmp_path) is None


def test_unknown_columns_are_rejected(tmp_path):
    import pyarrow as pa

    t = rows_to_table("insights", [insight("2026-11-01")], extra=("account_id", "date"))
    t = t.append_column("surprise", pa.array([1]))
    with (
        pytest.raises(LakeSchemaError, match="surprise"),
        LakeWriter(tmp_path).replace_partitions("insights", parts(["2026-11-01"])) as tx,
    ):
        tx.write(t)


def test_fsspec_memory_root_works():
    w = LakeWriter("memory://lake-test")
    with w.replace_partitions("insights", parts(["2026-11-01"]), run_id="m") as tx:
        tx.write([insight("2026-11-01")])
    assert w.fs.glob("/lake-test/insights/account_id=1/date=2026-11-01/*.parquet")
    assert not w.fs.exists("/lake-test/_staging/insights/" + tx.token)


def test_manifest_and_state(tmp_path):
    w = LakeWriter(tmp_path)
    path = w.write_manifest("insights", {"run_id": "r/1", "rows": 3, "partitions": ["2026-11-01"]})
    assert os.path.exists(path) and "_manifests/insights/" in path
    state = LakeState(tmp_path)
    state.write("insights/1/x", {"jobs": [1]})
    assert state.read("insights/1/x") == {"jobs": [1]}
    state.delete("insights/1/x")
    assert state.read("insights/1/x") is None


def test_a_task_killed_mid_write_leaves_the_lake_valid(tmp_path):
    """SIGKILL while writing: the old partitions stay readable and complete; leftovers only in _staging."""
    w = LakeWriter(tmp_path)
    with w.replace_partitions("insights", parts(["2026-11-01"]), run_id="old") as tx:
        tx.write([insight("2026-11-01", ad=f"a{i}") for i in range(5)])
    script = textwrap.dedent(f"""
        import datetime as dt, os, signal
        from meta_ads_elt.lake.partitions import LakeWriter
        now = dt.datetime.now(dt.UTC)
        w = LakeWriter({str(tmp_path)!r}, flush_rows=10)
        row = lambda i: {{"account_id": "1", "date": "2026-11-01", "campaign_id": "c", "adset_id": "s",
                          "ad_id": f"n{{i}}", "date_start": "2026-11-01", "date_stop": "2026-11-01",
                          "_extracted_at": now}}
        with w.replace_partitions("insights", [{{"account_id": "1", "date": "2026-11-01"}}], run_id="new") as tx:
            for i in range(100):
                tx.write([row(i)])   # flushes to the staged file every 10 rows
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = run_python(script)
    assert proc.returncode == -9, proc.stderr
    assert glob.glob(f"{tmp_path}/_staging/insights/*/account_id=1/date=2026-11-01/*.parquet")  # it did write
    table = read(tmp_path)
    assert sorted(table.column("ad_id").to_pylist()) == [f"a{i}" for i in range(5)]
    # the next transaction still works and replaces the partition
    with w.replace_partitions("insights", parts(["2026-11-01"]), run_id="again") as tx:
        tx.write([insight("2026-11-01", ad="z")])
    assert read(tmp_path).column("ad_id").to_pylist() == ["z"]


def test_memory_stays_flat_in_rows(tmp_path):
    """Buffered rows never exceed flush_rows: the writer streams to Parquet instead of holding the data."""
    w = LakeWriter(tmp_path, flush_rows=1000)
    dates = [f"2026-10-{d:02d}" for d in range(1, 29)]
    peak = 0
    with w.replace_partitions("insights", parts(dates), run_id="big") as tx:
        for i in range(40):
            tx.write([insight(dates[(i * 7 + j) % 28], ad=f"a{i}-{j}") for j in range(250)])
            peak = max(peak, tx._buffered)
    assert tx.rows == 10_000
    assert peak <= 1000 + 250
    assert read(tmp_path).num_rows == 10_000


def test_the_writer_chooses_the_system_allocator_unless_the_deployment_chose_a_pool(tmp_path):
    """Importing the lake changes nothing; creating a writer makes the system allocator Arrow's pool,
    except when ARROW_DEFAULT_MEMORY_POOL names one."""
    script = textwrap.dedent(f"""
        import pyarrow as pa
        from meta_ads_elt.lake.partitions import LakeWriter
        before = pa.default_memory_pool().backend_name
        LakeWriter({str(tmp_path)!r})
        print(before, pa.default_memory_pool().backend_name)
    """)
    root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    pythonpath = os.pathsep.join(["plugins", "include", os.environ.get("PYTHONPATH", "")])
    outputs = {}
    for chosen in (None, "jemalloc"):
        env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
        env["PYTHONPATH"] = pythonpath
        if chosen:
            env["ARROW_DEFAULT_MEMORY_POOL"] = chosen
        proc = subprocess.run(
            [sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
        outputs[chosen] = proc.stdout.split()
    before, after = outputs[None]
    assert before != "system" and after == "system"
    assert outputs["jemalloc"][0] == outputs["jemalloc"][1] != "system"


def test_writing_the_lake_does_not_import_pandas_and_pandas_still_works_after(tmp_path):
    """pyarrow's first conversion would import pandas (~45 MB per task process) only to probe for it: a
    fresh process converting and writing rows never imports it; pyarrow's pandas API still works."""
    script = textwrap.dedent(f"""
        import datetime as dt, sys
        from meta_ads_elt.lake.partitions import LakeWriter
        now = dt.datetime.now(dt.UTC)
        row = {{"account_id": "1", "date": "2026-11-01", "campaign_id": "c", "adset_id": "s", "ad_id": "a",
               "date_start": "2026-11-01", "date_stop": "2026-11-01", "spend": "1.5", "_extracted_at": now,
               "actions": [{{"action_type": "lead", "value": "3"}}]}}
        w = LakeWriter({str(tmp_path)!r})
        with w.replace_partitions("insights", [{{"account_id": "1", "date": "2026-11-01"}}], run_id="r") as tx:
            tx.write([row])
        print("pandas" in sys.modules)
        import pyarrow as pa, pyarrow.parquet as pq, glob
        [path] = glob.glob({str(tmp_path)!r} + "/insights/**/*.parquet", recursive=True)
        frame = pq.read_table(path).to_pandas()
        frame = frame.assign(x=[float("nan")])
        print(type(frame).__name__, pa.Table.from_pandas(frame).column("x").null_count, pa.array(frame["x"]).null_count)
    """)
    proc = run_python(script)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "DataFrame", "1", "1"]  # NaN -> null: pandas semantics
