"""Window planning, the time filter and lead rows: pure logic of the leads operator."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from meta_ads_elt.errors import MetaArgumentError
from meta_ads_elt.operators._base import interval_day
from meta_ads_elt.operators._pages import parse_meta_time, utc_window, window_dates
from meta_ads_elt.operators.leads import LeadRows, leads_filtering
from meta_ads_elt.pii import PiiPolicy

EXTRACTED = datetime(2026, 3, 1, tzinfo=UTC)


def test_window_is_lookback_days_ending_after_the_interval_day_plus_a_timezone_margin():
    """28 UTC days ending with D, plus one UTC day each side so every account-local day is complete
    (Los Angeles' day D ends at D+1 08:00 UTC, Kolkata's D-27 starts at D-28 18:30 UTC)."""
    start, end = utc_window(date(2026, 3, 10), 28)
    assert start == datetime(2026, 2, 10, tzinfo=UTC)
    assert end == datetime(2026, 3, 12, tzinfo=UTC)
    assert len(window_dates(start, end)) == 30


def test_interval_day_is_the_utc_date_of_the_interval_start():
    moment = datetime(2026, 3, 10, 23, 30, tzinfo=UTC) + timedelta(hours=0)
    assert interval_day({"data_interval_start": moment}) == date(2026, 3, 10)
    assert interval_day({}, "2026-01-02") == date(2026, 1, 2)
    with pytest.raises(MetaArgumentError, match="data_interval_day"):  # fails at once: a retry cannot help
        interval_day({})


@pytest.mark.parametrize(
    "value", ["2026-03-10T08:49:14+0000", "2026-03-10T09:49:14+01:00", 1773132554, "1773132554"]
)
def test_meta_times_become_utc(value):
    assert parse_meta_time(value) == datetime(2026, 3, 10, 8, 49, 14, tzinfo=UTC)


def test_filter_widens_the_window_by_the_overlap():
    start, end = utc_window(date(2026, 3, 10), 1)
    sent = json.loads(leads_filtering(start, end, timedelta(minutes=15)))
    assert sent == [
        {"field": "time_created", "operator": "GREATER_THAN_OR_EQUAL", "value": int(start.timestamp()) - 900},
        {"field": "time_created", "operator": "LESS_THAN", "value": int(end.timestamp()) + 900},
    ]


def _lead(lead_id: str, created: str, **extra) -> dict:
    return {"id": lead_id, "created_time": created, "form_id": "f1", **extra}


def test_leads_outside_the_window_are_trimmed_and_each_date_gets_a_partition():
    start, end = utc_window(date(2026, 3, 10), 2)  # UTC dates 2026-03-08 .. 2026-03-11
    rows = LeadRows.empty(window_dates(start, end))
    policy = PiiPolicy.build()
    assert rows.add(_lead("1", "2026-03-07T23:59:59+0000"), "f1", policy, {}, EXTRACTED) is False
    assert rows.add(_lead("2", "2026-03-08T00:00:00+0000"), "f1", policy, {}, EXTRACTED) is True
    assert rows.add(_lead("3", "2026-03-12T00:00:00+0000"), "f1", policy, {}, EXTRACTED) is False
    leads, answers = rows.tables(date(2026, 3, 10))
    assert leads.num_rows == 0 and answers.num_rows == 0  # an empty date still yields a (empty) table
    assert rows.tables(date(2026, 3, 8))[0].column("lead_id").to_pylist() == ["2"]


def test_a_lead_row_matches_the_schema_and_carries_no_raw_pii():
    start, end = utc_window(date(2026, 3, 10), 1)
    rows = LeadRows.empty(window_dates(start, end))
    lead = _lead(
        "7",
        "2026-03-10T10:00:00+0000",
        is_organic=False,
        ad_id="a1",
        campaign_id="c1",
        platform="fb",
        field_data=[{"name": "email", "values": ["X@Y.com"]}, {"name": "full_name", "values": ["Ann Lee"]}],
        custom_disclaimer_responses=[
            {"checkbox_key": "optional_1", "is_checked": "1"},
            {"checkbox_key": "o2", "is_checked": ""},
        ],
    )
    rows.add(lead, "f1", PiiPolicy.build(), {}, EXTRACTED)
    leads, answers = rows.tables(date(2026, 3, 10))
    row = leads.to_pylist()[0]
    assert row["created_time"] == datetime(2026, 3, 10, 10, tzinfo=UTC)
    assert row["is_organic"] is False and row["ad_id"] == "a1"
    assert row["custom_disclaimer_responses"] == [
        {"checkbox_key": "optional_1", "is_checked": True},
        {"checkbox_key": "o2", "is_checked": False},
    ]
    text = repr(leads.to_pylist()) + repr(answers.to_pylist())
    assert "X@Y.com" not in text and "x@y.com" not in text and "Ann Lee" not in text
    assert sorted(answers.column("question").to_pylist()) == ["email", "full_name"]


def test_a_lead_served_without_ad_ids_keeps_those_an_earlier_pull_saw():
    """Seed 003: a token whose user lost advertiser privileges on the ad account gets the account's leads
    without ad, ad set and campaign ids. A lead's ad never changes: the earlier pull's ids (and names)
    are kept, the rest of the row is the new pull's. A lead that came with ids keeps its own, and one no
    pull saw with ids (organic) stays without."""
    start, end = utc_window(date(2026, 3, 10), 1)
    rows = LeadRows.empty(window_dates(start, end))
    policy = PiiPolicy.build()
    ad = {"ad_id": "a1", "ad_name": "Ad", "adset_id": "s1", "adset_name": "Set", "campaign_id": "c1",
          "campaign_name": "Camp"}  # fmt: skip
    rows.add(_lead("1", "2026-03-10T10:00:00+0000", platform="ig"), "f1", policy, {}, EXTRACTED)
    rows.add(_lead("2", "2026-03-10T11:00:00+0000", ad_id="a9", adset_id="s9", campaign_id="c9"), "f1",
             policy, {}, EXTRACTED)  # fmt: skip
    rows.add(_lead("3", "2026-03-10T12:00:00+0000", is_organic=True), "f1", policy, {}, EXTRACTED)
    earlier = [
        {"lead_id": "1", **ad},
        {"lead_id": "2", **ad},
        {"lead_id": "3", **dict.fromkeys(ad)},
        {"lead_id": "4", **ad},  # not served any more: not this rule's business
    ]
    assert rows.without_ad_ids() == {"1", "3"}

    rows.keep_ad_ids_an_earlier_pull_saw(earlier)

    by_id = {r["lead_id"]: r for r in rows.tables(date(2026, 3, 10))[0].to_pylist()}
    assert sorted(by_id) == ["1", "2", "3"]
    assert {k: by_id["1"][k] for k in ad} == ad
    assert (by_id["1"]["platform"], by_id["1"]["_extracted_at"]) == ("ig", EXTRACTED)
    assert (by_id["2"]["ad_id"], by_id["2"]["adset_id"], by_id["2"]["campaign_id"]) == ("a9", "s9", "c9")
    assert not any(by_id["3"][k] for k in ad)
    assert rows.ad_ids_kept == 1
