"""Window, chunk and split planning of Insights report jobs (pure logic)."""

from __future__ import annotations

import datetime as dt

from meta_ads_elt.operators.insights import GIVEN_UP, ReportJob, plan_chunks, plan_window, replan, split_job

D = dt.date


def test_window_is_lookback_days_ending_at_d():
    assert plan_window(D(2026, 11, 20), 28) == (D(2026, 10, 24), D(2026, 11, 20))
    assert plan_window(D(2026, 11, 20), 1) == (D(2026, 11, 20), D(2026, 11, 20))


def test_chunks_cover_the_window_exactly_once():
    jobs = plan_chunks(D(2026, 10, 24), D(2026, 11, 20), 7)
    assert [(j.since, j.until) for j in jobs] == [
        ("2026-10-24", "2026-10-30"),
        ("2026-10-31", "2026-11-06"),
        ("2026-11-07", "2026-11-13"),
        ("2026-11-14", "2026-11-20"),
    ]
    assert [j.days for j in plan_chunks(D(2026, 11, 1), D(2026, 11, 10), 4)] == [4, 4, 2]


def test_failed_range_is_halved():
    a, b = split_job(ReportJob("2026-11-01", "2026-11-07"))
    assert (a.since, a.until, b.since, b.until) == ("2026-11-01", "2026-11-03", "2026-11-04", "2026-11-07")
    a, b = split_job(ReportJob("2026-11-01", "2026-11-02"))
    assert (a.days, b.days) == (1, 1)


def test_one_day_splits_by_campaign_then_bisects():
    parts = split_job(ReportJob("2026-11-01", "2026-11-01"), ["c3", "c1", "c2", "c4"])
    assert [p.campaign_ids for p in parts] == [["c1", "c2"], ["c3", "c4"]]
    assert [p.campaign_ids for p in split_job(parts[1])] == [["c3"], ["c4"]]
    assert split_job(ReportJob("2026-11-01", "2026-11-01", ["c3"])) == []


def test_one_day_one_campaign_account_gets_a_filter_then_stops():
    (only,) = split_job(ReportJob("2026-11-01", "2026-11-01"), ["c9"])
    assert only.campaign_ids == ["c9"]


def test_split_keeps_the_campaign_filter_when_halving_dates():
    parts = split_job(ReportJob("2026-11-01", "2026-11-04", ["c1", "c2"]))
    assert all(p.campaign_ids == ["c1", "c2"] for p in parts)


def test_job_keys_are_unique_and_stable():
    jobs = plan_chunks(D(2026, 10, 1), D(2026, 10, 28), 7)
    kids = split_job(ReportJob("2026-10-01", "2026-10-01"), ["a", "b"])
    keys = [j.key for j in jobs + kids]
    assert len(set(keys)) == len(keys)
    assert ReportJob.from_dict(kids[0].to_dict()) == kids[0]


def test_replan_splits_failed_resubmits_stalled_keeps_the_rest():
    jobs = [
        ReportJob("2026-11-01", "2026-11-04", status="failed", report_run_id="1"),
        ReportJob("2026-11-05", "2026-11-05", status="stalled", report_run_id="2", attempts=1),
        ReportJob("2026-11-06", "2026-11-06", status="completed", report_run_id="3"),
    ]
    out = replan(jobs, lambda day: ["c1", "c2"])
    assert [(j.key, j.status) for j in out] == [
        ("2026-11-01..2026-11-02", "pending"),
        ("2026-11-03..2026-11-04", "pending"),
        ("2026-11-05", "pending"),
        ("2026-11-06", "completed"),
    ]
    assert out[2].report_run_id is None


def test_smallest_job_is_retried_then_fails_clearly():
    job = ReportJob("2026-11-01", "2026-11-01", ["c1"], status="failed", attempts=1, error="Job Failed")
    (again,) = replan([job], lambda day: ["c1"])
    assert again.status == "pending"
    again.status, again.attempts = "failed", 3
    (given_up,) = replan([again], lambda day: ["c1"])  # its day is left out; the operator names it
    assert given_up.status == GIVEN_UP and given_up.key == again.key
