"""The numbers, end to end: every extractor against the sandbox's default world over HTTP, the real dbt
build (its completeness test included), the published marts, reconciled with ``/_sandbox/truth`` for the
whole 28-day window (archived and deleted ads included), each account-day's ``day_status`` too.

The operators run as Airflow runs them (``execute``), without the scheduler: the Airflow run itself is
covered by ``test_pipeline_in_airflow.py``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest
from marts_vs_truth import reconcile
from meta_ads_elt import dbt_runner, marts, publish, run_summary
from meta_ads_elt.operators.ad_objects import MetaAdObjectsOperator
from meta_ads_elt.operators.conversations import MetaConversationsOperator
from meta_ads_elt.operators.insights import MetaInsightsOperator
from meta_ads_elt.operators.leads import MetaLeadsOperator
from meta_ads_elt.reports import presets

pytestmark = pytest.mark.e2e

LOOKBACK = 28
PERMANENT_MARTS = (
    "cost_per_lead",
    "conversations_started",
    "conversations_started_by_page",
    "lead_reconciliation",
)


def connect(monkeypatch, sb) -> None:
    extra = sb.connection_extra(timeout=20)
    monkeypatch.setenv(
        "AIRFLOW_CONN_META_DEFAULT",
        json.dumps({"conn_type": "meta_graph_api", "password": sb.token, "extra": extra}),
    )


def extract(sb, lake: Path, day: str, *, pages: bool = True, reports=(), **insights_kwargs) -> None:
    """What one DAG run does for data-interval day ``day``, task by task (``reports``: further reports of
    insights.reports, e.g. the presets)."""
    world = sb.world()
    for account in world["accounts"]:
        for report in (None, *reports):
            MetaInsightsOperator(
                task_id="insights",
                account_id=account["id"],
                lake_root=str(lake),
                data_interval_day=day,
                lookback_days=LOOKBACK,
                deferrable=False,
                first_poll=0.2,
                poll_interval=1.0,
                report=report,
                **insights_kwargs,
            ).execute({"run_id": f"run-{day}"})
        MetaAdObjectsOperator(task_id="objects", account_id=account["id"], lake_root=str(lake)).execute(
            {"run_id": f"run-{day}"}
        )
    for page in world["pages"] if pages else []:
        MetaLeadsOperator(
            task_id="leads",
            page_id=page["id"],
            lake_root=str(lake),
            data_interval_day=day,
            lookback_days=LOOKBACK,
        ).execute({"run_id": f"run-{day}"})
        MetaConversationsOperator(
            task_id="conversations",
            page_id=page["id"],
            lake_root=str(lake),
            data_interval_day=day,
            lookback_days=LOOKBACK,
        ).execute({"run_id": f"run-{day}"})


def build_and_publish(tmp_path: Path, lake: Path, day: str) -> Path:
    build = dbt_runner.run_dbt_build(
        lake_root=lake,
        build_db_path=tmp_path / "build" / "marts_build.duckdb",
        target_path=tmp_path / "target",
        log_path=tmp_path / "logs",
        threads=2,
        timeout=900,
        window_end=day,
        lookback_days=LOOKBACK,
    )
    serving = tmp_path / "marts.duckdb"
    publish.publish_marts(build, serving, tmp_path / "marts")
    return serving


def window(day: str) -> tuple[str, str]:
    return (dt.date.fromisoformat(day) - dt.timedelta(days=LOOKBACK - 1)).isoformat(), day


def day_statuses(serving: Path, mart: str) -> dict[tuple[str, str], set[str]]:
    key = "page_id" if mart == "conversations_started_by_page" else "account_id"
    with duckdb.connect(str(serving), read_only=True) as con:
        rows = con.execute(f"select {key}, cast(date as varchar), day_status from {mart}").fetchall()
    out: dict[tuple[str, str], set[str]] = {}
    for owner, date, status in rows:
        out.setdefault((owner, date), set()).add(status)
    return out


def test_the_default_world_reconciles_for_all_28_days_deleted_ads_included(
    sandbox_factory, monkeypatch, tmp_path
):
    sb = sandbox_factory(now="2026-11-20T12:00:00Z")  # the 19th is over in every account's time zone
    connect(monkeypatch, sb)
    day = "2026-11-19"
    extract(sb, tmp_path / "lake", day, reports=presets())  # the default config: default report + presets
    serving = build_and_publish(tmp_path, tmp_path / "lake", day)  # the completeness tests pass
    since, until = window(day)
    truth = sb.truth(since, until)
    result = reconcile(str(serving), truth, since, until)
    assert result.equal, "\n".join(result.differences[:30])
    # cost per lead by placement, age x gender and country equal the breakdown truth to the cent
    assert (
        set(result.breakdown_rows) == set(marts.BREAKDOWN_MARTS) and min(result.breakdown_rows.values()) > 100
    )
    assert result.account_days == 3 * LOOKBACK and result.page_days > 0
    assert result.retired_ad_days > 50  # archived and deleted ads, to the cent
    assert {r["day_status"] for r in truth["accounts"]} == {"settled", "restating"}  # compared too
    assert not result.partial_account_days
    with duckdb.connect(str(serving), read_only=True) as con:
        # the account totals sit beside the ad-level sums, and agree
        assert (
            con.execute("""select count(*), count(*) filter (where spend = account_total_spend
                               and impressions = account_total_impressions) from lead_reconciliation""").fetchone()
            == (3 * LOOKBACK, 3 * LOOKBACK)
        )
        assert con.execute(
            "select min(date) from lead_reconciliation where day_status = 'settled'"
        ).fetchone()[0] == dt.date.fromisoformat(since)
    assert "Partial account-days (not over when extracted): none" in run_summary.summarize_marts(serving)


def test_without_the_status_filter_the_completeness_test_names_the_account_day(
    sandbox_factory, monkeypatch, tmp_path
):
    sb = sandbox_factory(now="2026-11-20T12:00:00Z")
    connect(monkeypatch, sb)
    day = "2026-11-19"
    extract(sb, tmp_path / "lake", day, pages=False, effective_statuses=None)  # Meta's default listing
    with pytest.raises(dbt_runner.DbtBuildError) as failed:
        build_and_publish(tmp_path, tmp_path / "lake", day)
    message = str(failed.value)
    assert "assert_ad_level_rows_sum_to_the_account_totals" in message
    # the first account-day whose archived or deleted ads are missing, by its account and local date
    since, until = window(day)
    retired = sorted(
        {
            (r["account_id"], r["date"])
            for r in sb.truth(since, until)["archived_or_deleted_ads"]
            if r["spend"] != "0.00"
        }
    )
    account, date = retired[0]
    assert f"Incomplete: account {account} on {date}: spend" in message


def test_a_partial_day_is_marked_partial_and_equals_the_truth_as_it_stood(
    sandbox_factory, monkeypatch, tmp_path
):
    sb = sandbox_factory(now="2026-11-20T03:00:00Z")  # 19:00 on the 19th in Los Angeles, the 20th elsewhere
    connect(monkeypatch, sb)
    day = "2026-11-19"
    extract(sb, tmp_path / "lake", day)
    serving = build_and_publish(tmp_path, tmp_path / "lake", day)
    since, until = window(day)
    truth = sb.truth(since, until)
    la = sb.world()["accounts"][0]
    assert [(r["account_id"], r["date"]) for r in truth["accounts"] if r["partial"]] == [
        (la["account_id"], day)
    ]
    result = reconcile(str(serving), truth, since, until)  # the partial day as it stood, to the cent
    assert result.equal, "\n".join(result.differences[:30])
    assert result.partial_account_days == [f"{la['account_id']} {day}"]
    for mart in PERMANENT_MARTS:
        statuses = day_statuses(serving, mart)
        owner = la["page_id"] if mart == "conversations_started_by_page" else la["account_id"]
        assert statuses[(owner, day)] == {"partial"}, mart
        assert all("partial" not in s for (o, d), s in statuses.items() if (o, d) != (owner, day)), mart
    assert f"act {la['account_id']} {day}" in run_summary.summarize_marts(serving)


def test_a_window_across_the_spring_clock_changes_reconciles_for_all_28_days(
    sandbox_factory, monkeypatch, tmp_path
):
    """Spring forward: Los Angeles on 2026-03-08 and Berlin on 2026-03-29 have 23-hour days. Every
    account-day (account time zones) and Page-day (Page-local dates of messages) of a window holding both
    equals the truth, the short days included."""
    sb = sandbox_factory(now="2026-04-01T12:00:00Z")  # the 31st is over in every account's time zone
    connect(monkeypatch, sb)
    day = "2026-03-31"
    extract(sb, tmp_path / "lake", day)
    serving = build_and_publish(tmp_path, tmp_path / "lake", day)
    since, until = window(day)
    assert since <= "2026-03-08" and until >= "2026-03-29"
    result = reconcile(str(serving), sb.truth(since, until), since, until)
    assert result.equal, "\n".join(result.differences[:30])
    assert result.account_days == 3 * LOOKBACK and result.page_days > 0
    timezones = {a["timezone_name"] for a in sb.world()["accounts"]}
    assert {"America/Los_Angeles", "Europe/Berlin"} <= timezones
