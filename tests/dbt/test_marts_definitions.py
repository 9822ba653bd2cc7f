"""The marts reproduce the sandbox truth definitions on a hand-written lake (see conftest.scenario)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from tests.dbt.conftest import Build

D = dt.date.fromisoformat

MART_COLUMNS = {
    "cost_per_lead": [
        "date",
        "account_id",
        "account_name",
        "campaign_id",
        "campaign_name",
        "adset_id",
        "adset_name",
        "ad_id",
        "ad_name",
        "currency",
        "spend",
        "impressions",
        "clicks",
        "leads_reported",
        "leads_collected",
        "cost_per_lead_reported",
        "cost_per_lead_collected",
        "attribution_setting",
        "as_of",
        "day_status",
        "reporting_currency",
        "fx_rate",
        "spend_reporting",
    ],
    "conversations_started": [
        "date",
        "account_id",
        "campaign_id",
        "adset_id",
        "ad_id",
        "conversations_started_reported",
        "spend",
        "cost_per_conversation_started",
        "currency",
        "as_of",
        "day_status",
        "account_name",
        "campaign_name",
        "adset_name",
        "ad_name",
        "reporting_currency",
        "fx_rate",
        "spend_reporting",
    ],
    "conversations_started_by_page": [
        "date",
        "page_id",
        "platform",
        "conversations_started",
        "messages_in",
        "messages_out",
        "median_first_reply_seconds",
        "conversations_started_observed",
        "conversations_started_inferred",
        "day_status",
        "page_name",
        "account_id",
        "account_name",
        "message_requests_may_be_missing",
    ],
    "lead_reconciliation": [
        "date",
        "account_id",
        "leads_collected",
        "leads_reported",
        "leads_difference",
        "conversations_started",
        "conversations_started_reported",
        "conversations_started_difference",
        "leads_collected_unattributed",
        "first_party_starts_far_below_reported",
        "spend",
        "impressions",
        "account_total_spend",
        "account_total_impressions",
        "day_status",
        "account_name",
        "currency",
        "reporting_currency",
        "fx_rate",
        "spend_reporting",
        "attribution_settings",
        "first_party_starts_far_below_reported_7d",
        "first_party_starts_may_miss_message_requests",
    ],
    "leads_by_page": [
        "date",
        "page_id",
        "platform",
        "account_id",
        "leads_collected",
        "leads_collected_unattributed",
        "organic_leads",
        "as_of",
        "day_status",
        "page_name",
        "account_name",
    ],
    "extraction_coverage": [
        "date",
        "account_id",
        "account_name",
        "currency",
        "coverage_status",
        "day_status",
        "served_local_date",
    ],
}
ROLLUPS = ("cost_per_lead_by_campaign", "cost_per_lead_by_account")
NAME_COLUMNS = {  # the names every row of a mart carries, as far as its grain has them
    "cost_per_lead": ("account_name", "campaign_name", "adset_name", "ad_name", "currency"),
    "conversations_started": ("account_name", "campaign_name", "adset_name", "ad_name", "currency"),
    "conversations_started_by_page": ("page_name", "account_name"),
    "lead_reconciliation": ("account_name", "currency"),
    "leads_by_page": ("page_name", "account_name"),
    "extraction_coverage": ("account_name", "currency"),
    "cost_per_lead_by_campaign": ("account_name", "campaign_name", "currency"),
    "cost_per_lead_by_account": ("account_name", "currency"),
}


def test_marts_have_exactly_the_contract_columns(scenario: Build) -> None:
    for mart, columns in MART_COLUMNS.items():
        got = [r[0] for r in scenario.query(f"select column_name from (describe {mart})")]
        assert got == columns, mart


def test_leads_are_dated_in_the_account_timezone(scenario: Build) -> None:
    rows = scenario.query(
        "select date, account_id, ad_id, leads_collected from cost_per_lead where leads_collected > 0 order by all"
    )
    # 2026-11-01T06:00Z is 2026-10-31 in Los Angeles; 2026-11-01T20:00Z is 2026-11-02 in Kolkata.
    assert rows == [
        (D("2026-10-31"), "1001", "A1", 1),
        (D("2026-10-31"), "1001", "A3", 1),  # the ad is known only from insights (deleted ad)
        (D("2026-11-02"), "1002", "A2", 1),
    ]


def test_messages_are_dated_in_the_promoting_account_timezone(scenario: Build) -> None:
    rows = scenario.query(
        "select date, page_id, platform, conversations_started, messages_in, messages_out, "
        "median_first_reply_seconds, conversations_started_observed, conversations_started_inferred "
        "from conversations_started_by_page order by all"
    )
    assert rows == [
        (D("2026-10-31"), "P1", "messenger", 1, 1, 1, 600.0, 1, 0),
        # K4: the start the first snapshot saw survives the second one, where it is beyond reach
        (D("2026-11-01"), "P1", "messenger", 1, 2, 1, 600.0, 1, 0),
        (D("2026-11-02"), "P2", "instagram", 1, 3, 0, None, 1, 0),
        (D("2026-11-07"), "P1", "messenger", 1, 1, 0, None, 1, 0),
        # K5: its first message was never within reach: inferred, and the sender-less row is no message in
        (D("2026-11-07"), "P2", "instagram", 1, 0, 1, 300.0, 0, 1),
    ]


def test_days_pulled_in_time_may_not_miss_message_requests(scenario: Build) -> None:
    """The scenario's pulls (Nov 6 and Nov 10) come within days of every message date (Oct 31..Nov 7):
    no page-day or account-day with conversations is flagged (int_page_days_first_pulled)."""
    assert scenario.query(
        "select distinct message_requests_may_be_missing from conversations_started_by_page"
    ) == [(False,)]
    assert scenario.query(
        "select distinct first_party_starts_may_miss_message_requests from lead_reconciliation "
        "where conversations_started > 0"
    ) == [(False,)]


def test_lead_is_never_summed_with_its_components(scenario: Build) -> None:
    row = scenario.query(
        "select leads_reported, cost_per_lead_reported, cost_per_lead_collected, spend "
        "from cost_per_lead where date = '2026-10-31' and ad_id = 'A1'"
    )
    # lead = 5 (= lead_grouped 3 + fb_pixel_lead 2): 5, never 10
    assert row == [(5, Decimal("2.002000"), Decimal("10.010000"), Decimal("10.01"))]
    total = scenario.query("select sum(leads_reported) from cost_per_lead")[0][0]
    assert total == 5 + 1


def test_repulled_day_keeps_the_latest_extraction(scenario: Build) -> None:
    rows = scenario.query(
        "select spend, leads_reported, as_of from cost_per_lead where date = '2026-11-01' and ad_id = 'A1'"
    )
    assert [(r[0], r[1]) for r in rows] == [(Decimal("2.50"), 1)]
    assert rows[0][2] == dt.datetime(2026, 11, 4, 6, tzinfo=dt.UTC)


def test_divide_by_zero_gives_null(scenario: Build) -> None:
    rows = scenario.query(
        "select leads_reported, cost_per_lead_reported, leads_collected, cost_per_lead_collected "
        "from cost_per_lead where ad_id = 'A2'"
    )
    assert rows == [(0, None, 1, Decimal("7.770000"))]


def test_conversations_started_reported_and_cost(scenario: Build) -> None:
    rows = scenario.query(
        "select date, ad_id, conversations_started_reported, spend, cost_per_conversation_started, currency "
        "from conversations_started order by all"
    )
    assert rows == [
        (D("2026-10-31"), "A1", 2, Decimal("10.01"), Decimal("5.005000"), "USD"),
        (D("2026-10-31"), "A3", 0, Decimal("0.10"), None, "USD"),
        (D("2026-11-01"), "A1", 0, Decimal("2.50"), None, "USD"),
        (D("2026-11-02"), "A2", 1, Decimal("7.77"), Decimal("7.770000"), "INR"),
    ]


def test_lead_reconciliation_per_account_and_local_day(scenario: Build) -> None:
    rows = scenario.query(
        "select date, account_id, leads_collected, leads_reported, leads_difference, conversations_started, "
        "conversations_started_reported, conversations_started_difference, leads_collected_unattributed, "
        "first_party_starts_far_below_reported, first_party_starts_far_below_reported_7d "
        "from lead_reconciliation order by date, account_id"
    )
    assert rows == [
        # date, account, collected, reported, diff, conv first-party, conv reported, diff,
        # unattributed leads, first-party far below reported (the day, the 7 days around it)
        (D("2026-10-31"), "1001", 2, 5, -3, 1, 2, -1, 1, False, False),
        (D("2026-11-01"), "1001", 0, 1, -1, 1, 0, 1, 0, False, False),
        (D("2026-11-02"), "1002", 1, 0, 1, 1, 1, 0, 0, False, False),
        (D("2026-11-07"), "1001", 0, 0, 0, 1, 0, 1, 0, False, False),
        (D("2026-11-07"), "1002", 0, 0, 0, 1, 0, 1, 0, False, False),
    ]


def test_sums_of_leads_name_the_attribution_settings_they_were_counted_under(scenario: Build) -> None:
    # every Insights row of the scenario has Meta's default setting (several settings: the unit test
    # test_a_rollup_over_several_attribution_settings_names_them); days without delivery have none
    for mart in ROLLUPS:
        rows = scenario.query(f"select distinct attribution_settings from {mart}")
        assert rows == [("7d_click,1d_view",)], mart
    rows = scenario.query("select date, attribution_settings from lead_reconciliation order by all")
    assert {r[1] for r in rows} == {"7d_click,1d_view", None}
    assert all((setting is None) == (day == D("2026-11-07")) for day, setting in rows), rows


def test_paid_leads_without_an_ad_are_kept_per_page_and_day(scenario: Build) -> None:
    rows = scenario.query(
        "select date, page_id, platform, account_id, leads_collected, leads_collected_unattributed, "
        "organic_leads from leads_by_page order by all"
    )
    # L1, L4 (ad known), L5 (no ad id) and L3 (organic) on LA 2026-10-31; L2 in Kolkata
    assert rows == [
        (D("2026-10-31"), "P1", "messenger", "1001", 2, 1, 1),
        (D("2026-11-02"), "P2", "messenger", "1002", 1, 0, 0),
    ]
    total = scenario.query("select sum(leads_collected) from cost_per_lead")[0][0]
    assert total == 3, "a lead without an ad never reaches cost_per_lead"


def test_ad_level_sums_sit_beside_the_account_totals_with_each_days_status(scenario: Build) -> None:
    rows = scenario.query(
        "select date, account_id, spend, impressions, account_total_spend, account_total_impressions, day_status "
        "from lead_reconciliation order by date, account_id"
    )
    assert rows == [
        (D("2026-10-31"), "1001", Decimal("10.11"), 200, Decimal("10.11"), 200, "restating"),
        (D("2026-11-01"), "1001", Decimal("2.50"), 100, Decimal("2.50"), 100, "restating"),
        (D("2026-11-02"), "1002", Decimal("7.77"), 100, Decimal("7.77"), 100, "restating"),
        (D("2026-11-07"), "1001", Decimal("0.00"), 0, Decimal("0.00"), 0, "restating"),
        # a day with first-party conversations and no delivery, served while Kolkata's day was running
        (D("2026-11-07"), "1002", Decimal("0.00"), 0, Decimal("0.00"), 0, "partial"),
    ]


def test_every_mart_row_has_the_day_status_of_its_account_day(scenario: Build) -> None:
    # Kolkata's 2026-11-07 was served at 17:30 local time (partial); everything else after its day ended.
    assert scenario.query(
        "select account_id, date, day_status from int_account_days_extracted where day_status != 'restating'"
    ) == [("1002", D("2026-11-07"), "partial")]
    for mart in (
        "cost_per_lead",
        "conversations_started",
        "conversations_started_by_page",
        "lead_reconciliation",
        "cost_per_lead_by_campaign",
        "cost_per_lead_by_account",
    ):
        assert scenario.query(f"select count(*) from {mart} where day_status is null") == [(0,)], mart
    assert scenario.query(
        "select distinct day_status from conversations_started_by_page where page_id = 'P2' "
        "and date = '2026-11-07'"
    ) in ([], [("partial",)])


def test_the_build_fails_naming_the_account_day_whose_rows_miss_the_account_total(tmp_path) -> None:
    import shutil

    import pytest
    from meta_ads_elt import dbt_runner

    from bench.lake_generator import write_rows
    from tests.dbt.conftest import write_scenario_lake

    lake = tmp_path / "lake"
    write_scenario_lake(lake)
    # Meta counted one more ad that day (a deleted one the ad-level rows left out).
    shutil.rmtree(lake / "insights_account_totals" / "account_id=1001" / "date=2026-10-31")
    write_rows(
        lake,
        "insights_account_totals",
        [
            {
                "account_id": "1001",
                "date": D("2026-10-31"),
                "account_currency": "USD",
                "spend": Decimal("12.34"),
                "impressions": 250,
                "clicks": 0,
                "timezone_name": "America/Los_Angeles",
                "served_at": dt.datetime(2026, 11, 8, 12, tzinfo=dt.UTC),
                "served_local_date": D("2026-11-08"),
                "_extracted_at": dt.datetime(2026, 11, 8, 12, tzinfo=dt.UTC),
            }
        ],
    )
    with pytest.raises(dbt_runner.DbtBuildError) as failed:
        Build(tmp_path, lake).build()
    assert "assert_ad_level_rows_sum_to_the_account_totals" in str(failed.value)
    assert "account 1001 on 2026-10-31: spend 10.11 vs total 12.34 USD" in str(failed.value)


def test_spend_is_exact_decimal_in_rollups(scenario: Build) -> None:
    rows = scenario.query(
        "select account_id, sum(spend), typeof(sum(spend)) from cost_per_lead group by all order by all"
    )
    assert [(r[0], r[1]) for r in rows] == [("1001", Decimal("12.61")), ("1002", Decimal("7.77"))]
    assert rows[0][2].startswith("DECIMAL")
    by_account = scenario.query(
        "select spend, leads_reported, cost_per_lead_reported from cost_per_lead_by_account "
        "where account_id = '1001' and date = '2026-10-31'"
    )
    # recomputed from sums: (10.01 + 0.10) / 5, not an average of per-ad ratios
    assert by_account == [(Decimal("10.11"), 5, Decimal("2.022000"))]


def test_absent_dataset_builds_as_empty(scenario: Build) -> None:
    # the scenario lake has no Insights report but the default (e.g. no insights_by_device files)
    assert scenario.query("select count(*) from stg_meta__insights_by_device") == [(0,)]


# --- self-describing marts (issue 13 item 5) ----------------------------------------------------


def test_every_mart_row_carries_names_and_currency(scenario: Build) -> None:
    for mart, columns in NAME_COLUMNS.items():
        for column in columns:
            # P2 was never snapshotted by a Page extractor: its name is unknown (null), nothing else is
            unknown = "page_id = 'P2'" if column == "page_name" else "false"
            nulls = scenario.query(f"select count(*) from {mart} where {column} is null and not ({unknown})")
            assert nulls == [(0,)], f"{mart}.{column}"
    # names as Meta gave them with the Insights row (the deleted ad A3 is known only from Insights)
    assert scenario.query(
        "select distinct account_name, campaign_name, adset_name, ad_name, currency from cost_per_lead "
        "where ad_id = 'A3'"
    ) == [("acct 1001", "name C1", "name S1", "name A3", "USD")]
    assert scenario.query(
        "select account_name, campaign_name, ad_name, currency from conversations_started where account_id = '1002'"
    ) == [("acct 1002", "name C2", "name A2", "INR")]
    # the Page's latest snapshot names it; the promoting account's snapshot names the account
    assert scenario.query(
        "select distinct page_id, page_name, account_name from leads_by_page order by all"
    ) == [
        ("P1", "Page One (renamed)", "LA"),
        ("P2", None, "Kolkata"),
    ]
    assert scenario.query(
        "select distinct page_name, account_id, account_name from conversations_started_by_page where page_id = 'P1'"
    ) == [("Page One (renamed)", "1001", "LA")]
    assert scenario.query(
        "select distinct account_id, account_name, currency from lead_reconciliation order by 1"
    ) == [
        ("1001", "LA", "USD"),
        ("1002", "Kolkata", "INR"),
    ]


def test_counts_are_bigint_and_no_mart_column_is_hugeint(scenario: Build) -> None:
    relations = [*MART_COLUMNS, *ROLLUPS]
    types = scenario.query(
        "select table_name, column_name, data_type from duckdb_columns() where table_name in "
        f"({', '.join(repr(r) for r in relations)})"
    )
    assert {t[0] for t in types} == set(relations)
    allowed = {"DATE", "VARCHAR", "BIGINT", "DOUBLE", "BOOLEAN", "TIMESTAMP WITH TIME ZONE",
               "DECIMAL(18,2)", "DECIMAL(18,6)", "DECIMAL(18,10)"}  # fmt: skip
    assert [t for t in types if t[2] not in allowed] == []
    counts = ("impressions", "clicks", "leads", "conversations", "messages_", "organic_leads")
    not_bigint = [t for t in types if any(c in t[1] for c in counts) and t[2] not in ("BIGINT", "BOOLEAN")]
    assert not_bigint == []


def test_every_mart_and_every_column_is_described(scenario: Build) -> None:
    relations = [*MART_COLUMNS, *ROLLUPS]
    described = dict(scenario.query(
        "select table_name, comment from duckdb_tables() union all select view_name, comment from duckdb_views()"
    ))  # fmt: skip
    assert [r for r in relations if not (described.get(r) or "").strip()] == []
    undescribed = scenario.query(
        "select table_name, column_name from duckdb_columns() where table_name in "
        f"({', '.join(repr(r) for r in relations)}) and coalesce(trim(comment), '') = ''"
    )
    assert undescribed == []
    assert scenario.query(
        "select comment from duckdb_columns() where table_name = 'cost_per_lead' and column_name = 'currency'"
    )[0][0].startswith("The ad account's currency (ISO 4217")


def test_coverage_shows_extracted_partial_and_missing_account_days(scenario: Build) -> None:
    rows = scenario.query(
        "select account_id, coverage_status, min(date), max(date), count(*) from extraction_coverage "
        "group by all order by account_id, min(date)"
    )
    assert rows == [
        ("1001", "extracted", D("2026-10-31"), D("2026-11-07"), 3),
        ("1001", "missing", D("2026-11-02"), D("2026-11-06"), 5),
        ("1002", "extracted", D("2026-11-02"), D("2026-11-02"), 1),
        ("1002", "missing", D("2026-11-03"), D("2026-11-06"), 4),
        ("1002", "partial", D("2026-11-07"), D("2026-11-07"), 1),
    ]
    # the gaps warn (never fail) the build, one result per run of consecutive missing days
    tested = scenario.dbt("test", "--select", "assert_no_account_day_is_missing")
    assert tested.returncode == 0, tested.stdout[-2000:]
    assert "WARN 2 assert_no_account_day_is_missing" in tested.stdout, tested.stdout[-2000:]


def test_the_reporting_currency_is_off_by_default(scenario: Build) -> None:
    for mart in ("cost_per_lead", "conversations_started", "lead_reconciliation", "cost_per_lead_by_account"):
        assert scenario.query(
            f"select count(*) from {mart} where reporting_currency is not null or fx_rate is not null "
            "or spend_reporting is not null"
        ) == [(0,)], mart
