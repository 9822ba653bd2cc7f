"""Insights ``breakdowns``: split consistently with the truth (Meta, "Insights API Breakdowns")."""

from __future__ import annotations

import collections
import time
from decimal import Decimal

import pytest
from meta_sandbox.world import AD_EFFECTIVE_STATUSES

NOW = "2026-03-15T12:00:00Z"
FIELDS = ["account_id", "ad_id", "spend", "impressions", "clicks", "reach", "inline_link_clicks", "actions"]
WINDOWS = ["1d_click", "7d_click", "28d_click", "1d_view"]
# Every ad status, as the pipeline asks for them (Meta's "Manage your ad object's status" page).
EVERY_STATUS = [{"field": "ad.effective_status", "operator": "IN", "value": list(AD_EFFECTIVE_STATUSES)}]
SETS = [
    ["publisher_platform", "platform_position"],
    ["age", "gender"],
    ["country"],
    ["device_platform"],
    ["region"],
    ["impression_device"],
]
RANGE = {"since": "2026-03-08", "until": "2026-03-15"}  # the last day is today (partial)


@pytest.fixture(scope="module")
def fixed(module_sandbox_factory):
    return module_sandbox_factory(now=NOW)


@pytest.fixture(scope="module")
def g(fixed, graph_for):
    return graph_for(fixed)


@pytest.fixture(scope="module")
def acct(fixed):
    return fixed.world()["accounts"][0]


def _action(row, name, key="value"):
    return sum(int(a.get(key, 0)) for a in row.get("actions", []) if a["action_type"] == name)


def _pull(g, acct, breakdowns=None):
    params = {
        "level": "ad",
        "time_increment": 1,
        "fields": FIELDS,
        "time_range": RANGE,
        "limit": 500,
        "filtering": EVERY_STATUS,
        "action_attribution_windows": WINDOWS,
    }
    if breakdowns:
        params["breakdowns"] = breakdowns
    return g.page_all(f"{acct['id']}/insights", **params)


@pytest.fixture(scope="module")
def ad_level(g, acct):
    return {(r["ad_id"], r["date_start"]): r for r in _pull(g, acct)}


@pytest.mark.parametrize("breakdowns", SETS[:4] + SETS[5:], ids=[",".join(s) for s in SETS[:4] + SETS[5:]])
def test_a_breakdowns_rows_sum_back_to_the_ad_level_to_the_cent(g, acct, ad_level, breakdowns):
    rows = _pull(g, acct, breakdowns)
    assert rows and all(set(breakdowns) <= set(r) for r in rows)
    keys = [(r["ad_id"], r["date_start"], *(r[b] for b in breakdowns)) for r in rows]
    assert len(keys) == len(set(keys)), "one row per ad, day and breakdown value"
    sums: dict = collections.defaultdict(collections.Counter)
    spend: dict = collections.defaultdict(Decimal)
    for r in rows:
        key = (r["ad_id"], r["date_start"])
        spend[key] += Decimal(r["spend"])
        for name in ("impressions", "clicks", "inline_link_clicks"):
            sums[key][name] += int(r[name])
        for action in (
            "lead",
            "onsite_conversion.lead_grouped",
            "offsite_conversion.fb_pixel_lead",
            "onsite_conversion.messaging_conversation_started_7d",
        ):
            for window in ("value", *WINDOWS):
                sums[key][f"{action}:{window}"] += _action(r, action, window)
        assert _action(r, "lead") == _action(r, "lead", "7d_click") + _action(r, "lead", "1d_view")
        assert (
            _action(r, "lead", "1d_click")
            <= _action(r, "lead", "7d_click")
            <= _action(r, "lead", "28d_click")
        )
        assert int(r["reach"]) <= int(r["impressions"])
    # an ad-level row with nothing to report (Meta serves some) has no breakdown rows
    assert set(sums) == {
        k for k, r in ad_level.items() if int(r["impressions"]) or Decimal(r["spend"]) or "actions" in r
    }
    for key, row in ad_level.items():
        assert spend[key] == Decimal(row["spend"]), key
        for name in ("impressions", "clicks", "inline_link_clicks"):
            assert sums[key][name] == int(row[name]), (key, name)
        for action in (
            "lead",
            "onsite_conversion.lead_grouped",
            "offsite_conversion.fb_pixel_lead",
            "onsite_conversion.messaging_conversation_started_7d",
        ):
            for window in ("value", *WINDOWS):
                assert sums[key][f"{action}:{window}"] == _action(row, action, window), (key, action, window)


def test_reach_does_not_sum_across_placements(g, acct, ad_level):
    rows = _pull(g, acct, SETS[0])
    reach = collections.Counter()
    for r in rows:
        reach[(r["ad_id"], r["date_start"])] += int(r["reach"])
    assert sum(reach.values()) > sum(int(r["reach"]) for r in ad_level.values())


def test_cost_per_lead_differs_by_placement(g, acct):
    rows = _pull(g, acct, SETS[0])
    cpl = {}
    for r in rows:
        leads = _action(r, "lead")
        if leads:
            cpl.setdefault(r["platform_position"], Decimal(r["spend"]) / leads)
    assert len(set(cpl.values())) > 1


def test_a_type_1_breakdown_leaves_off_meta_leads_out(g, acct, ad_level):
    rows = _pull(g, acct, ["region"])
    assert sum(_action(r, "offsite_conversion.fb_pixel_lead") for r in rows) == 0
    assert sum(_action(r, "lead") for r in rows) == sum(
        _action(r, "onsite_conversion.lead_grouped") for r in ad_level.values()
    )
    assert sum(_action(r, "offsite_conversion.fb_pixel_lead") for r in ad_level.values()) > 0
    assert sum(Decimal(r["spend"]) for r in rows) == sum(Decimal(r["spend"]) for r in ad_level.values())


def test_a_combination_meta_does_not_serve_is_refused(g, acct, error_of):
    status, body, _ = g.get(f"{acct['id']}/insights", breakdowns=["age", "country"])
    assert status == 400
    assert error_of(body)["code"] == 100
    assert (
        "Current combination of data breakdown columns (action_type, age, country) is invalid"
        in (error_of(body)["message"])
    )


def test_an_async_job_serves_the_same_breakdown_rows(g, acct):
    params = {
        "level": "ad",
        "time_increment": 1,
        "fields": FIELDS,
        "time_range": RANGE,
        "filtering": EVERY_STATUS,
        "action_attribution_windows": WINDOWS,
        "breakdowns": SETS[1],
    }
    run = g.post(f"{acct['id']}/insights", **params)[1]["report_run_id"]
    deadline = time.time() + 30
    while g.ok(run + "/")["async_status"] != "Job Completed":
        assert time.time() < deadline
        time.sleep(0.05)
    assert g.page_all(f"{run}/insights", limit=500) == _pull(g, acct, SETS[1])


@pytest.mark.parametrize("breakdowns", SETS[:4], ids=[",".join(s) for s in SETS[:4]])
def test_the_truth_gives_each_presets_rows_as_served(fixed, g, acct, breakdowns):
    truth = fixed.truth(RANGE["since"], RANGE["until"])
    mine = [r for r in truth["breakdowns"][",".join(breakdowns)] if r["account_id"] == acct["account_id"]]
    served: dict = collections.defaultdict(lambda: [Decimal(0), 0, 0, 0])
    for r in _pull(g, acct, breakdowns):
        s = served[(r["date_start"], *(r[b] for b in breakdowns))]
        s[0] += Decimal(r["spend"])
        s[1] += int(r["impressions"])
        s[2] += int(r["clicks"])
        s[3] += _action(r, "lead")
    expected = {
        (r["date"], *(r[b] for b in breakdowns)): [
            Decimal(r["spend"]),
            r["impressions"],
            r["clicks"],
            r["leads_reported"],
        ]
        for r in mine
    }
    assert expected == {k: v for k, v in served.items() if any(v)}
    days = {r["date"]: r for r in truth["accounts"] if r["account_id"] == acct["account_id"]}
    for day, row in days.items():
        assert sum(Decimal(r["spend"]) for r in mine if r["date"] == day) == Decimal(row["spend"])
        assert sum(r["leads_reported"] for r in mine if r["date"] == day) == row["leads_reported"]


def test_async_jobs_asking_reach_by_breakdown_over_13_months_back_are_ten_a_day(
    module_sandbox_factory, graph_for
):
    """Meta (research/meta_api_facts.md section 1.4): since 2025-06-10, async jobs with breakdowns asking
    reach for a start more than 13 months back are limited to 10 per ad account per day."""
    sb = module_sandbox_factory(now=NOW, history_days=500)
    g = graph_for(sb)
    acct = sb.world()["accounts"][0]["id"]
    old = {"since": "2025-01-06", "until": "2025-01-06"}  # 14 months before 2026-03-15
    recent = {"since": "2025-03-16", "until": "2025-03-16"}  # 12 months before

    def submit(time_range, fields=("ad_id", "spend", "reach")):
        params = {"level": "ad", "time_increment": 1, "fields": list(fields), "time_range": time_range}
        return g.post(f"{acct}/insights", breakdowns=SETS[2], **params)

    assert all(submit(old)[0] == 200 for _ in range(10))
    status, body, _ = submit(old)
    assert status == 400 and body["error"]["code"] == 100
    assert (
        "Reach-related metric breakdowns are unavailable due to rate limit threshold"
        in body["error"]["message"]
    )
    assert submit(old, fields=("ad_id", "spend"))[0] == 200, "without reach the job is not limited"
    assert submit(recent)[0] == 200, "nor is a job starting within 13 months"


def test_sync_queries_by_breakdown_over_13_months_back_come_without_reach(module_sandbox_factory, graph_for):
    """The same Meta note: "reach (and frequency, cpp) is omitted for sync queries that have breakdowns and
    a start date more than 13 months back"; the other fields are served, and reach within 13 months."""
    sb = module_sandbox_factory(now=NOW, history_days=500)
    g = graph_for(sb)
    acct = sb.world()["accounts"][0]["id"]
    fields = "ad_id,spend,impressions,reach,frequency,cpp"

    def rows(since):
        return g.page_all(
            f"{acct}/insights",
            level="ad",
            time_increment=1,
            fields=fields,
            breakdowns=SETS[2],
            time_range={"since": since, "until": since},
            limit=500,
        )

    old, recent = rows("2025-01-06"), rows("2025-03-16")  # 14 and 12 months before 2026-03-15
    assert old and recent
    assert all("spend" in r and "impressions" in r for r in old + recent)
    assert not [r for r in old if {"reach", "frequency", "cpp"} & set(r)]
    assert all("reach" in r for r in recent)
