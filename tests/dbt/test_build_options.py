"""Build options and what a build reports: dbt's node log and warnings, spend converted with the
rates the user supplied, overlapping rates."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from decimal import Decimal
from pathlib import Path

import pytest
from meta_ads_elt import dbt_runner

from bench.lake_generator import write_rows
from tests.dbt.conftest import Build, write_scenario_lake

pytestmark = pytest.mark.slow  # several real dbt builds: minutes


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


def test_the_pipelines_builds_leave_the_unit_tests_to_make_test_where_they_all_pass(tmp_path: Path) -> None:
    """dbt's unit tests check the project's code on static rows, not the lake: a pipeline build leaves them
    out (dbt_runner.PRODUCTION_BUILD_EXCLUDES, as dbt recommends), and here every declared one runs and
    passes."""
    lake = tmp_path / "lake"
    write_scenario_lake(lake)
    build = Build(tmp_path, lake)
    build.build()
    built = json.loads((build.target / "run_results.json").read_text())["results"]
    assert any(r["unique_id"].startswith("model.") for r in built)
    assert not [r["unique_id"] for r in built if r["unique_id"].startswith("unit_test.")]

    declared = json.loads((build.target / "manifest.json").read_text())["unit_tests"]
    tested = build.dbt("test", "--select", "test_type:unit")
    assert tested.returncode == 0, tested.stdout[-3000:]
    results = json.loads((build.target / "run_results.json").read_text())["results"]
    assert len(declared) >= 9 and sorted(r["unique_id"] for r in results) == sorted(declared)
    assert {r["status"] for r in results} == {"pass"}, [(r["unique_id"], r["message"]) for r in results]


RATES_HEADER = "currency,reporting_currency,rate,valid_from,valid_to\n"


def _scenario_with_rates(tmp_path: Path, rates_rows: str) -> tuple[Build, Path]:
    """The scenario lake, a build of it, and a rates file holding ``rates_rows`` (CSV, header added)."""
    lake = tmp_path / "lake"
    write_scenario_lake(lake)
    rates = tmp_path / "rates.csv"
    rates.write_text(RATES_HEADER + rates_rows)
    return Build(tmp_path, lake), rates


def test_spend_converts_only_with_the_rates_the_user_supplied(tmp_path: Path) -> None:
    # INR -> USD for Kolkata's 2026-11-01..02 only: its 2026-11-07 has no rate
    build, rates = _scenario_with_rates(tmp_path, "INR,USD,0.012,2026-11-01,2026-11-02\n")
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
    rates.write_text(RATES_HEADER + "INR,USD,0.0125,2026-11-01,\n")
    build.build(reporting_currency="USD", fx_rates_path=rates, lookback_days=1)
    assert build.query(
        "select date, fx_rate, spend_reporting from conversations_started where account_id = '1002'"
    ) == [(dt.date(2026, 11, 2), Decimal("0.0125"), Decimal("0.10"))]
    assert build.query(
        "select date, fx_rate, spend_reporting from lead_reconciliation where account_id = '1002' order by date"
    ) == [(dt.date(2026, 11, 2), Decimal("0.0125"), Decimal("0.10")),
          (dt.date(2026, 11, 7), Decimal("0.0125"), Decimal("0.00"))]  # fmt: skip


def test_overlapping_rates_fail_the_build_naming_the_pair(tmp_path: Path) -> None:
    build, rates = _scenario_with_rates(
        tmp_path, "INR,USD,0.012,2026-11-01,2026-11-30\nINR,USD,0.013,2026-11-15,\n"
    )
    with pytest.raises(dbt_runner.DbtBuildError, match="assert_fx_rates_do_not_overlap"):
        build.build(reporting_currency="USD", fx_rates_path=rates)
