"""Airflow's own FacebookAdsReportingHook (a client we did not write) runs unchanged against the sandbox."""

from __future__ import annotations

import json
import time
import types

import pytest

pytest.importorskip("airflow.providers.facebook.ads.hooks.ads")


def test_bulk_facebook_report_returns_every_row(sandbox_factory, monkeypatch):
    from airflow.providers.facebook.ads.hooks import ads as provider
    from facebook_business.api import FacebookAdsApi
    from facebook_business.session import FacebookSession

    sb = sandbox_factory(now="2026-03-15T12:00:00Z", job_base_seconds=0.5, job_seconds_per_1k_rows=0)
    account = sb.world()["accounts"][0]
    monkeypatch.setenv(
        "AIRFLOW_CONN_SANDBOX_FB",
        json.dumps(
            {
                "conn_type": "facebook_social",
                "extra": {
                    "app_id": sb.app_id,
                    "app_secret": sb.app_secret,
                    "access_token": sb.token,
                    "account_id": [account["id"]],
                },
            }
        ),
    )
    monkeypatch.setattr(FacebookSession, "GRAPH", sb.url)
    sleeps = []

    def short_sleep(seconds):
        sleeps.append(seconds)
        time.sleep(0.1)

    # Only the provider module's view of `time` is replaced (it polls with a fixed 5 s sleep).
    monkeypatch.setattr(provider, "time", types.SimpleNamespace(sleep=short_sleep))
    default = FacebookAdsApi.get_default_api()
    try:
        hook = provider.FacebookAdsReportingHook(facebook_conn_id="sandbox_fb")
        result = hook.bulk_facebook_report(
            params={
                "level": "ad",
                "time_increment": 1,
                "time_range": {"since": "2026-02-01", "until": "2026-03-14"},
            },
            fields=["account_id", "ad_id", "date_start", "spend", "impressions", "actions"],
        )
    finally:
        FacebookAdsApi.set_default_api(default)
    rows = result[account["id"]]
    assert sleeps, "the hook polled at least once before completion"
    expected_days = {
        t["date"]
        for t in sb.truth("2026-02-01", "2026-03-14")["accounts"]
        if t["account_id"] == account["account_id"]
    }
    assert {r["date_start"] for r in rows} == expected_days
    assert len(rows) == len({(r["ad_id"], r["date_start"]) for r in rows}) > 25  # more than one default page
    stats = sb.stats()["by_endpoint"]
    assert stats["GET /{report_run_id}/insights"] > 1 and stats["POST /act_{id}/insights"] == 1
