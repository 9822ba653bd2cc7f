"""What BI clients read from one built and published scenario: the serving file's storage version
and comments, a DuckDB 1.1 client, the Parquet copies' descriptions, dbt docs and source freshness,
the run summary."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest
from meta_ads_elt import dbt_runner, marts, publish, run_summary

from tests.dbt.conftest import Build

pytestmark = pytest.mark.slow  # several real dbt builds: minutes

MARTS = marts.MARTS


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


def test_docs_generate_and_source_freshness_work(scenario: Build) -> None:
    docs = scenario.dbt("docs", "generate")
    assert docs.returncode == 0, docs.stdout[-2000:]
    assert (scenario.target / "catalog.json").exists() and (scenario.target / "index.html").exists()
    freshness = scenario.dbt("source", "freshness")
    # the scenario was extracted in 2026-11: stale relative to now, but every dataset that exists is checked
    assert "freshness of meta.insights" in freshness.stdout, freshness.stdout[-2000:]


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
