"""Insights reports (insights.reports) extracted against the sandbox: one lake dataset per report,
breakdown columns in its primary key, numbers equal to the sandbox's breakdown truth to the cent."""

from __future__ import annotations

import collections
import datetime as dt
import glob
import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pytest
from meta_ads_elt.operators.insights import MetaInsightsOperator
from meta_ads_elt.reports import ReportConfig, preset
from meta_ads_elt.schemas import report_schema
from sandbox_lake import use_connection

from tests.sandboxes import still_now

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("calm_governor")]

NOW = "2026-11-20T12:00:00+00:00"
D = "2026-11-19"
LOOKBACK = 7
SINCE = "2026-11-13"


def read(lake, dataset: str) -> pa.Table:
    part = pads.partitioning(pa.schema([("account_id", pa.string()), ("date", pa.string())]), flavor="hive")
    return pads.dataset(str(lake / dataset), format="parquet", partitioning=part).to_table()


def report_op(report, account, lake, day=D, **kw):
    return MetaInsightsOperator(
        task_id=f"insights_{report.name}_{account}",
        report=report,
        account_id=f"act_{account}",
        lake_root=str(lake),
        data_interval_day=day,
        deferrable=False,
        first_poll=0.1,
        poll_interval=0.5,
        **{"lookback_days": LOOKBACK, **kw},
    )


@pytest.fixture
def fixed(sandbox_factory):
    return sandbox_factory(now=NOW)


@pytest.mark.parametrize("name", ["by_placement", "by_age_gender", "by_country", "by_device"])
def test_a_preset_lands_in_its_own_dataset_equal_to_the_breakdown_truth(fixed, monkeypatch, tmp_path, name):
    use_connection(monkeypatch, fixed)
    report = preset(name)
    accounts = [a["account_id"] for a in fixed.world()["accounts"]]
    for account in accounts:
        result = report_op(report, account, tmp_path).execute({"run_id": "first"})
        assert result["partitions"] == LOOKBACK
        assert len(glob.glob(f"{tmp_path}/insights_{name}/account_id={account}/date=*")) == LOOKBACK
    assert not glob.glob(f"{tmp_path}/insights/*"), "the default report's dataset is left alone"
    table = read(tmp_path, f"insights_{name}")
    assert set(report_schema(report).names) | {"account_id", "date"} == set(table.column_names)
    rows = table.to_pylist()
    keys = [tuple(str(r[k]) for k in report.primary_key) for r in rows]
    assert len(keys) == len(set(keys)), "one row per primary key (breakdown columns included)"
    assert {r["off_meta_actions"] for r in rows} == {"complete"}
    got = collections.defaultdict(lambda: [Decimal(0), 0, 0, 0])
    for r in rows:
        g = got[(r["account_id"], str(r["date"]), *(r[b] for b in report.breakdowns))]
        g[0] += r["spend"]
        g[1] += r["impressions"]
        g[2] += r["clicks"]
        g[3] += int(sum(a["value"] for a in r["actions"] or [] if a["action_type"] == "lead"))
    truth = fixed.truth(SINCE, D)["breakdowns"][",".join(report.breakdowns)]
    want = {
        (t["account_id"], t["date"], *(t[b] for b in report.breakdowns)): [
            Decimal(t["spend"]),
            t["impressions"],
            t["clicks"],
            t["leads_reported"],
        ]
        for t in truth
    }
    assert want and {k: v for k, v in got.items() if any(v)} == want
    manifest = json.loads(Path(glob.glob(f"{tmp_path}/_manifests/insights_{name}/*.json")[0]).read_text())
    assert manifest["breakdowns"] == list(report.breakdowns) and manifest["report"] == name
    # no job state left (only the jobs' pace, kept for the next run's first status read)
    assert not [p for p in glob.glob(f"{tmp_path}/_state/**/*.json", recursive=True) if "_pace/" not in p]

    before = sorted(
        json.dumps(
            {k: v for k, v in r.items() if k not in ("_extracted_at", "_report_run_id")},
            default=str,
            sort_keys=True,
        )
        for r in rows
    )
    for account in accounts:
        report_op(report, account, tmp_path).execute({"run_id": "second"})
    after = sorted(
        json.dumps(
            {k: v for k, v in r.items() if k not in ("_extracted_at", "_report_run_id")},
            default=str,
            sort_keys=True,
        )
        for r in read(tmp_path, f"insights_{name}").to_pylist()
    )
    assert after == before, "a rerun replaces exactly its partitions"


def test_a_type_1_report_is_flagged_and_lacks_off_meta_leads(fixed, monkeypatch, tmp_path):
    use_connection(monkeypatch, fixed)
    report = ReportConfig(name="by_region", breakdowns=("region",))
    account = fixed.world()["accounts"][0]["account_id"]
    report_op(report, account, tmp_path).execute({"run_id": "r"})
    rows = read(tmp_path, "insights_by_region").to_pylist()
    assert rows and {r["off_meta_actions"] for r in rows} == {"not_returned"}
    assert not any(
        a["action_type"] == "offsite_conversion.fb_pixel_lead" for r in rows for a in r["actions"] or []
    )


def test_a_weekly_report_replaces_the_accounts_earlier_buckets_and_leaves_a_stray_directory(
    fixed, monkeypatch, tmp_path, caplog
):
    """Buckets start where each run's window starts, so a run of a report with time_increment != 1
    replaces every date partition of the account (the earlier run's buckets would overlap its own); a
    date= directory that names no date is no partition: left as it is, with a warning."""
    use_connection(monkeypatch, fixed)
    report = ReportConfig(name="by_week", time_increment=7)
    account = fixed.world()["accounts"][0]["account_id"]
    base = tmp_path / f"insights_by_week/account_id={account}"
    earlier = (dt.date.fromisoformat(D) - dt.timedelta(days=3)).isoformat()
    report_op(report, account, tmp_path, day=earlier).execute({"run_id": "earlier"})
    first_start = (dt.date.fromisoformat(earlier) - dt.timedelta(days=LOOKBACK - 1)).isoformat()
    assert {str(r["date"]) for r in read(tmp_path, "insights_by_week").to_pylist()} == {first_start}
    first_partitions = sorted(p.name for p in base.iterdir())
    stray = base / "date=tmp"
    stray.mkdir()
    (stray / "notes.parquet").write_bytes(b"not ours")
    with caplog.at_level("WARNING", logger="meta_ads_elt.lake.layout"):
        report_op(report, account, tmp_path).execute({"run_id": "second"})
    assert any(f"{stray}: not a date partition" in r.getMessage() for r in caplog.records)
    assert (stray / "notes.parquet").read_bytes() == b"not ours"
    stray.joinpath("notes.parquet").unlink()
    stray.rmdir()
    rows = read(tmp_path, "insights_by_week").to_pylist()
    assert rows and {str(r["date"]) for r in rows} == {SINCE}, "the earlier run's bucket is emptied"
    assert {p.name for p in base.iterdir()} >= {*first_partitions, f"date={SINCE}"}


def test_re_attach_state_is_keyed_by_the_reports_spec(tmp_path):
    placement, country = preset("by_placement"), preset("by_country")
    names = {
        report_op(r, "1", tmp_path, attribution_windows=w)._state_name(
            *map(dt.date.fromisoformat, (SINCE, D))
        )
        for r in (placement, country)
        for w in (["7d_click", "1d_view"], ["1d_click"])
    }
    assert len(names) == 4
    assert all(n.startswith(("insights_by_placement/1/", "insights_by_country/1/")) for n in names)
    default = report_op(ReportConfig(name="default"), "1", tmp_path)
    assert default._state_name(*map(dt.date.fromisoformat, (SINCE, D))).startswith("insights/1/")


def test_a_report_added_to_the_config_lands_and_its_staging_model_builds(fixed, monkeypatch, tmp_path):
    """One entry in insights.reports: the DAG runs it, its dataset lands, the dbt build generates its
    source and staging model and builds them, with its completeness test against the account totals."""
    import duckdb
    import yaml
    from meta_ads_elt.config import PROJECT_DIR, parse_config
    from meta_ads_elt.dbt_runner import run_dbt_build
    from meta_ads_elt.marts import DBT_PROJECT_DIR

    data = yaml.safe_load((PROJECT_DIR / "include" / "pipeline.yaml").read_text())
    data["insights"]["reports"].append({"name": "by_region", "breakdowns": ["region"]})
    config = parse_config(data)
    report = config.insights.reports[-1]
    use_connection(monkeypatch, fixed)
    account = fixed.world()["accounts"][0]["account_id"]
    lake = tmp_path / "lake"
    for r in (config.insights.reports[0], report):  # the default report brings the account totals
        report_op(r, account, lake).execute({"run_id": "r"})
    assert len(glob.glob(f"{lake}/insights_by_region/account_id={account}/date=*")) == LOOKBACK
    project = tmp_path / "dbt_project"  # the copy run_dbt_build makes beside the build file
    monkeypatch.setenv("DBT_INDIRECT_SELECTION", "cautious")  # only tests whose parents are all selected
    result = run_dbt_build(
        lake_root=lake,
        build_db_path=tmp_path / "build.duckdb",
        reports=config.insights.reports,
        select="+stg_meta__insights_by_region +int_account_days_extracted",
        window_end=D,
        lookback_days=LOOKBACK,
        target_path=tmp_path / "target",
        log_path=tmp_path / "logs",
        threads=2,
        timeout=600,
    )
    assert (project / "models/staging/meta/reports/stg_meta__insights_by_region.sql").exists()
    assert not (DBT_PROJECT_DIR / "models/staging/meta/reports/stg_meta__insights_by_region.sql").exists()
    ran = json.loads((tmp_path / "target" / "run_results.json").read_text())["results"]
    assert any(
        "meta_report_sums_to_account_totals_stg_meta__insights_by_region" in r["unique_id"]
        and r["status"] == "pass"
        for r in ran
    )
    assert result["results"]["ERROR"] == 0
    with duckdb.connect(str(tmp_path / "build.duckdb"), read_only=True) as con:
        n, regions, spend = con.execute(
            "select count(*), count(distinct region), sum(spend) from stg_meta__insights_by_region"
        ).fetchone()
        total = con.execute("select sum(spend) from stg_meta__account_totals").fetchone()[0]
    assert n > 0 and regions > 1 and spend == total


def test_old_dates_of_a_breakdown_report_come_without_reach_and_are_never_refused(
    sandbox_factory, monkeypatch, tmp_path
):
    """Meta limits async jobs with breakdowns asking reach for a start over 13 months back to 10 per ad
    account per day (research/meta_api_facts.md section 1.4): a backfill of eleven such dates failed on the
    eleventh. Their jobs now leave reach out (null in the lake) and every date lands, equal to the truth."""
    sb = sandbox_factory(now=still_now(), history_days=500)
    use_connection(monkeypatch, sb)
    report, account = preset("by_country"), sb.world()["accounts"][0]["account_id"]
    today = dt.date.fromisoformat(sb.now()[:10])
    days = [today - dt.timedelta(days=430 + i) for i in range(11)]  # over 14 months back
    for day in days:
        result = report_op(report, account, tmp_path, day=day.isoformat(), lookback_days=1).execute(
            {"run_id": f"backfill {day}"}
        )
        assert result["partitions"] == 1
    rows = read(tmp_path, "insights_by_country").to_pylist()
    assert rows and {r["reach"] for r in rows} == {None}
    manifests = [
        json.loads(Path(p).read_text())
        for p in glob.glob(f"{tmp_path}/_manifests/insights_by_country/*.json")
    ]
    assert len(manifests) == 11 and all(len(m["reach_withheld_jobs"]) == 1 for m in manifests)
    got = collections.Counter()
    for r in rows:
        got[str(r["date"])] += r["spend"]
    truth = sb.truth(min(days).isoformat(), max(days).isoformat())["accounts"]
    want = {
        t["date"]: Decimal(t["spend"]) for t in truth if t["account_id"] == account and Decimal(t["spend"])
    }
    assert want and dict(got) == want
    # a recent date's job keeps reach, and its manifest says so
    recent = today - dt.timedelta(days=2)
    result = report_op(report, account, tmp_path, day=recent.isoformat(), lookback_days=1).execute(
        {"run_id": f"daily {recent}"}
    )
    assert json.loads(Path(result["manifest"]).read_text())["reach_withheld_jobs"] == []
    recent_rows = [
        r for r in read(tmp_path, "insights_by_country").to_pylist() if str(r["date"]) == str(recent)
    ]
    assert recent_rows and any(r["reach"] is not None for r in recent_rows)
