"""Building the project on generated lakes, incremental idempotency, failures, publishing, docs."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
import struct
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest
from meta_ads_elt import dbt_runner, marts, publish, run_summary
from meta_ads_elt.schemas import DATASETS, DISCOVERY_DATASETS, PARTITION_KEYS

from bench.lake_generator import generate_lake, write_rows
from tests.dbt.conftest import Build, marts_snapshot, write_scenario_lake

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


def test_serving_file_is_readable_by_duckdb_1x(tmp_path: Path, scenario: Build) -> None:
    serving = tmp_path / "marts.duckdb"
    publish.publish_marts(scenario.db, serving, None)
    with open(serving, "rb") as handle:
        header = handle.read(20)
    assert header[8:12] == b"DUCK"
    storage_version = struct.unpack("<Q", header[12:20])[0]
    assert storage_version <= 67  # DuckDB 1.0-1.4 read storage versions 64..67; 2.0 writes 999 by default
    summary = run_summary.summarize_marts(serving)
    assert "cost_per_lead" in summary and "act 1001" in summary


def test_publish_refuses_a_build_without_the_marts(tmp_path: Path) -> None:
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    serving = tmp_path / "marts.duckdb"
    with pytest.raises(publish.PublishError, match="lacks mart"):
        publish.publish_marts(empty, serving, tmp_path / "marts")
    assert not serving.exists()


def test_docs_generate_and_source_freshness_work(scenario: Build) -> None:
    docs = scenario.dbt("docs", "generate")
    assert docs.returncode == 0, docs.stdout[-2000:]
    assert (scenario.target / "catalog.json").exists() and (scenario.target / "index.html").exists()
    freshness = scenario.dbt("source", "freshness")
    # the scenario was extracted in 2026-11: stale relative to now, but every dataset that exists is checked
    assert "freshness of meta.insights" in freshness.stdout, freshness.stdout[-2000:]


def test_the_build_logs_each_node_as_it_finishes_and_returns_its_warnings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lake = tmp_path / "lake"
    write_scenario_lake(lake)
    # A paid lead whose ad id Meta withheld: the warn-level not_null test on stg_meta__leads.ad_id.
    paid_without_ad = {
        "page_id": "P1",
        "date": dt.date(2026, 11, 1),
        "lead_id": "L9",
        "created_time": dt.datetime(2026, 11, 1, 7, tzinfo=dt.UTC),
        "form_id": "FP1",
        "ad_id": None,
        "is_organic": False,
        "platform": "fb",
        "_extracted_at": dt.datetime(2026, 11, 4, 6, tzinfo=dt.UTC),
    }
    write_rows(lake, "leads", [paid_without_ad], replace=False)
    with caplog.at_level(logging.INFO, logger="meta_ads_elt.dbt_runner"):
        result = Build(tmp_path, lake).build()

    messages = [record.getMessage() for record in caplog.records if record.name == "meta_ads_elt.dbt_runner"]
    progress = [m for m in messages if re.match(r"dbt: \d+ of \d+ (OK|PASS|WARN)", m)]
    assert any("OK created sql incremental model main.cost_per_lead" in m for m in progress), messages[:40]
    summary = next(i for i, m in enumerate(messages) if m.startswith("dbt build summary: "))
    assert summary > max(messages.index(m) for m in progress), "progress is logged before the summary"
    assert re.match(r"dbt build summary: PASS=\d+ WARN=[1-9]\d* ERROR=0 SKIP=0 TOTAL=\d+", messages[summary])

    assert result["results"]["WARN"] >= 1 and result["results"]["ERROR"] == 0
    assert result["results"]["PASS"] == len(progress) - result["results"]["WARN"]
    warned = {w["node"]: w["message"] for w in result["warnings"]}
    node = next(n for n in warned if "not_null_stg_meta__leads_ad_id" in n)
    assert "2 results" in warned[node], "the scenario's own lead without an ad (L5) and this one"
    assert any(m.startswith(f"dbt WARN {node}") for m in messages)
    json.dumps(result)  # an XCom: plain JSON


def test_spend_converts_only_with_the_rates_the_user_supplied(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    write_scenario_lake(lake)
    rates = tmp_path / "rates.csv"
    # INR -> USD for Kolkata's 2026-11-01..02 only: its 2026-11-07 has no rate
    rates.write_text(
        "currency,reporting_currency,rate,valid_from,valid_to\nINR,USD,0.012,2026-11-01,2026-11-02\n"
    )
    build = Build(tmp_path, lake)
    build.build(reporting_currency="USD", fx_rates_path=rates)
    rows = build.query(
        "select account_id, date, currency, spend, reporting_currency, fx_rate, spend_reporting "
        "from lead_reconciliation order by account_id, date"
    )
    assert rows == [
        ("1001", dt.date(2026, 10, 31), "USD", Decimal("10.11"), "USD", Decimal(1), Decimal("10.11")),
        ("1001", dt.date(2026, 11, 1), "USD", Decimal("2.50"), "USD", Decimal(1), Decimal("2.50")),
        ("1001", dt.date(2026, 11, 7), "USD", Decimal("0.00"), "USD", Decimal(1), Decimal("0.00")),
        ("1002", dt.date(2026, 11, 2), "INR", Decimal("7.77"), "USD", Decimal("0.012"), Decimal("0.09")),
        ("1002", dt.date(2026, 11, 7), "INR", Decimal("0.00"), "USD", None, None),  # no rate: never invented
    ]
    assert build.query("select fx_rate, spend_reporting from cost_per_lead where account_id = '1002'") == [
        (Decimal("0.012"), Decimal("0.09"))
    ]
    assert build.query(
        "select fx_rate, spend_reporting from cost_per_lead_by_account where account_id = '1002'"
    ) == [(Decimal("0.012"), Decimal("0.09"))]
    # A corrected rate reaches the rows before the incremental window too (1 day: only 2026-11-07)
    rates.write_text("currency,reporting_currency,rate,valid_from,valid_to\nINR,USD,0.0125,2026-11-01,\n")
    build.build(reporting_currency="USD", fx_rates_path=rates, lookback_days=1)
    assert build.query(
        "select date, fx_rate, spend_reporting from conversations_started where account_id = '1002'"
    ) == [(dt.date(2026, 11, 2), Decimal("0.0125"), Decimal("0.10"))]
    assert build.query(
        "select date, fx_rate, spend_reporting from lead_reconciliation where account_id = '1002' order by date"
    ) == [(dt.date(2026, 11, 2), Decimal("0.0125"), Decimal("0.10")),
          (dt.date(2026, 11, 7), Decimal("0.0125"), Decimal("0.00"))]  # fmt: skip


def test_overlapping_rates_fail_the_build_naming_the_pair(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    write_scenario_lake(lake)
    rates = tmp_path / "rates.csv"
    rates.write_text(
        "currency,reporting_currency,rate,valid_from,valid_to\n"
        "INR,USD,0.012,2026-11-01,2026-11-30\nINR,USD,0.013,2026-11-15,\n"
    )
    with pytest.raises(dbt_runner.DbtBuildError, match="assert_fx_rates_do_not_overlap"):
        Build(tmp_path, lake).build(reporting_currency="USD", fx_rates_path=rates)


# --- what BI clients see: names, currency, comments, no HUGEINT (issue 13 item 5) ----------------

DUCKDB_COMPAT = (
    Path(sys.prefix) / "compat" / "duckdb-1.1.3"
)  # installed by `make compat` (`make test` runs it)
READ_EVERY_MART_WITH_DUCKDB_1_1 = r"""
import json, sys
import duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
relations = json.loads(sys.argv[2])
out = {"version": duckdb.__version__, "relations": {}}
for name in relations:
    # every value decoded by DuckDB 1.1 (as text: its Python client needs pytz for TIMESTAMPTZ values)
    rows = con.execute(f'select columns(*)::varchar from "{name}"').fetchall()
    columns = con.execute(
        "select column_name, data_type, comment from duckdb_columns() where table_name = ? order by column_index",
        [name],
    ).fetchall()
    comment = con.execute("select comment from duckdb_tables() where table_name = ?", [name]).fetchone()[0]
    names = [c[0] for c in columns]
    # P2 of the scenario was never snapshotted by a Page extractor: its page_name is unknown (null)
    known = "page_id is distinct from 'P2'" if "page_id" in names else "true"
    nulls = con.execute(
        "select " + ", ".join(f'count(*) filter (where "{c}" is null and {known})' for c in names) + f' from "{name}"'
    ).fetchone()
    out["relations"][name] = {"rows": len(rows), "comment": comment, "columns": columns, "nulls": dict(zip(names, nulls))}
print(json.dumps(out, default=str))
"""


def _published_scenario(tmp_path: Path, scenario: Build) -> tuple[Path, Path]:
    serving, parquet_dir = tmp_path / "data" / "marts.duckdb", tmp_path / "data" / "marts"
    publish.publish_marts(scenario.db, serving, parquet_dir)
    return serving, parquet_dir


def test_a_duckdb_1_1_client_reads_every_mart_with_names_currency_and_comments(
    tmp_path: Path, scenario: Build
) -> None:
    assert (DUCKDB_COMPAT / "duckdb").is_dir(), (
        f"DuckDB 1.1.3 is not installed in {DUCKDB_COMPAT}: run `make compat`"
    )
    serving, _ = _published_scenario(tmp_path, scenario)
    relations = [*MARTS, *marts.ROLLUPS]
    # -S: no site-packages, so the only duckdb importable is 1.1.3 (as in a BI tool bundling it)
    done = subprocess.run(
        [sys.executable, "-S", "-c", READ_EVERY_MART_WITH_DUCKDB_1_1, str(serving), json.dumps(relations)],
        env={**os.environ, "PYTHONPATH": str(DUCKDB_COMPAT)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout)
    assert seen["version"] == "1.1.3"
    assert set(seen["relations"]) == set(relations)
    for name, relation in seen["relations"].items():
        assert relation["rows"] > 0, name
        assert (relation["comment"] or "").strip(), f"{name} has no table comment"
        assert [c[0] for c in relation["columns"] if not (c[2] or "").strip()] == [], (
            f"{name}: undescribed columns"
        )
        assert [c for c in relation["columns"] if "HUGEINT" in c[1] or "INT128" in c[1]] == [], name
        types = dict((c[0], c[1]) for c in relation["columns"])
        for column in ("account_name", "campaign_name", "adset_name", "ad_name", "page_name", "currency"):
            if column in types:
                assert types[column] == "VARCHAR" and relation["nulls"][column] == 0, f"{name}.{column}"
        if "spend" in types:
            assert types["currency"] == "VARCHAR" and relation["nulls"]["currency"] == 0, name


def test_the_parquet_copies_carry_the_descriptions_for_pandas_and_pyarrow(
    tmp_path: Path, scenario: Build
) -> None:
    _, parquet_dir = _published_scenario(tmp_path, scenario)
    for mart in MARTS:
        path = parquet_dir / f"{mart}.parquet"
        metadata = pq.read_schema(path).metadata
        columns = json.loads(metadata[b"column_descriptions"])
        frame = pd.read_parquet(path)
        assert list(columns) == list(frame.columns), mart
        assert all(text.strip() for text in columns.values()), mart
        assert metadata[b"description"].decode().strip(), mart
        assert frame.attrs["column_descriptions"] == columns and frame.attrs["description"], mart
        assert "int128" not in str(pq.read_schema(path)).lower()
    frame = pd.read_parquet(parquet_dir / "cost_per_lead.parquet")
    assert frame.attrs["column_descriptions"]["spend_reporting"].startswith(
        "spend converted to reporting_currency"
    )
    assert frame["account_name"].notna().all() and frame["currency"].notna().all()
    assert str(frame["impressions"].dtype) == "int64"
    # DuckDB reads the same key-value metadata
    with duckdb.connect() as con:
        keys = {row[0] for row in con.execute(
            "select decode(key) from parquet_kv_metadata(?)", [str(parquet_dir / "lead_reconciliation.parquet")]
        ).fetchall()}  # fmt: skip
    assert {"description", "column_descriptions", "PANDAS_ATTRS"} <= keys


def test_changed_descriptions_reach_an_unchanged_mart_on_the_next_publish(
    tmp_path: Path, scenario: Build
) -> None:
    copy = tmp_path / "build.duckdb"
    shutil.copyfile(scenario.db, copy)
    serving, parquet_dir = tmp_path / "marts.duckdb", tmp_path / "marts"
    publish.publish_marts(copy, serving, parquet_dir)
    with duckdb.connect(str(copy)) as con:
        con.execute("comment on column cost_per_lead.spend is 'Spend, described anew.'")
    second = publish.publish_marts(copy, serving, parquet_dir)
    assert second["serving_modes"]["cost_per_lead"] == "unchanged"  # the rows were not copied again
    with duckdb.connect(str(serving), read_only=True) as con:
        assert con.execute(
            "select comment from duckdb_columns() where table_name = 'cost_per_lead' and column_name = 'spend'"
        ).fetchone() == ("Spend, described anew.",)
    descriptions = json.loads(
        pq.read_schema(parquet_dir / "cost_per_lead.parquet").metadata[b"column_descriptions"]
    )
    assert descriptions["spend"] == "Spend, described anew."
    assert pq.read_table(parquet_dir / "cost_per_lead.parquet").num_rows == second["rows"]["cost_per_lead"]


def test_the_run_summary_names_accounts_formats_money_and_shows_gaps_and_warnings(
    tmp_path: Path, scenario: Build
) -> None:
    serving, _ = _published_scenario(tmp_path, scenario)
    target = tmp_path / "target"  # a dbt run of its own: its run_results.json holds the warn-level gaps test
    tested = dbt_runner.run_dbt(
        ["test", "--select", "assert_no_account_day_is_missing"],
        lake_root=scenario.lake, build_db_path=scenario.db, target_path=target, log_path=tmp_path / "logs", timeout=600,
    )  # fmt: skip
    assert tested.returncode == 0, tested.stdout[-2000:]
    summary = run_summary.summarize_marts(serving, target)
    # names and money with its currency (per account: never summed across currencies)
    assert (
        "acct 1001 (act 1001): spend 12.61 USD, leads reported 6 / collected 2, cost per lead 2.10 USD"
        in summary
    )
    assert "acct 1002 (act 1002): spend 7.77 INR" in summary
    assert "Kolkata" in summary  # the partial day is named after the account
    assert "WARNING coverage gaps: 9 account-day(s) never extracted" in summary
    assert "  LA (act 1001): 2026-11-02 .. 2026-11-06 (5 days)" in summary
    assert "  Kolkata (act 1002): 2026-11-03 .. 2026-11-06 (4 days)" in summary
    assert "WARN assert_no_account_day_is_missing: Got 2 results" in summary
    assert (
        run_summary.format_money(Decimal("1234.5"), "JPY", run_summary.zero_decimal_currencies())
        == "1,234 JPY"
    )
    assert run_summary.format_money(Decimal("1234.5"), "EUR") == "1,234.50 EUR"
