"""Benchmark: how fast the Graph API sandbox serves insights result pages.

World: 50 ad accounts x 200 ads (4 campaigns x 5 ad sets x 10 ads) x 100 days of history = ~1,000,000
ad-day rows (about 4% of ad-days have no delivery, so ~960k rows). One async report per account
(level=ad, time_increment=1, the whole history, the usual pipeline fields with attribution windows),
all submitted up front and polled until complete (a large job renders its rows while it runs, which
takes ~70 us a row of sandbox CPU), then every result page is read with ``limit=500`` by a client
in this process while the sandbox runs in its own process.

``run()`` returns ``{"sandbox_paging_rows_per_s": float, ...}``; only the paging phase is timed.
Command: ``PYTHONPATH=plugins:include .venv/bin/python -c "from bench.sandbox_paging import run; print(run())"``
"""

from __future__ import annotations

import json
import time

import requests
from meta_sandbox.testing import start_sandbox

FIELDS = [
    "account_id",
    "campaign_id",
    "adset_id",
    "ad_id",
    "date_start",
    "date_stop",
    "spend",
    "impressions",
    "clicks",
    "reach",
    "frequency",
    "cpm",
    "ctr",
    "inline_link_clicks",
    "actions",
    "action_values",
    "cost_per_action_type",
]


def run(
    accounts: int = 50, campaigns: int = 4, adsets: int = 5, ads: int = 10, days: int = 100, limit: int = 500
) -> dict:
    sb = start_sandbox(
        accounts=accounts,
        campaigns_per_account=campaigns,
        adsets_per_campaign=adsets,
        ads_per_adset=ads,
        history_days=days,
        now="2026-03-15T12:00:00Z",
        job_base_seconds=0,
        job_seconds_per_1k_rows=0,
        budgets="app=10000000,user=10000000,ads_insights=10000000,ads_management=10000000",
    )
    http = requests.Session()
    token = {"access_token": sb.token}
    try:
        world = sb.world()
        runs = []
        for acct in world["accounts"]:
            resp = http.post(
                f"{sb.url}/v26.0/{acct['id']}/insights",
                params=token,
                timeout=60,
                data={
                    "level": "ad",
                    "time_increment": "1",
                    "date_preset": "maximum",
                    "fields": json.dumps(FIELDS),
                    "action_attribution_windows": json.dumps(["1d_click", "7d_click", "1d_view"]),
                },
            )
            resp.raise_for_status()
            runs.append(resp.json()["report_run_id"])
        # Large jobs render their rows while they run; poll until every one is complete (not timed).
        jobs_start = time.perf_counter()
        for run_id in runs:
            while True:
                status = http.get(f"{sb.url}/v26.0/{run_id}/", params=token, timeout=60).json()[
                    "async_status"
                ]
                if status == "Job Completed":
                    break
                assert status in ("Job Not Started", "Job Started", "Job Running"), status
                time.sleep(0.5)
        jobs_seconds = time.perf_counter() - jobs_start
        rows = pages = 0
        start = time.perf_counter()
        for run_id in runs:
            after = None
            while True:
                params = {**token, "limit": limit}
                if after:
                    params["after"] = after
                body = http.get(f"{sb.url}/v26.0/{run_id}/insights", params=params, timeout=120).json()
                rows += len(body["data"])
                pages += 1
                paging = body.get("paging", {})
                if "next" not in paging:
                    break
                after = paging["cursors"]["after"]
        elapsed = time.perf_counter() - start
        stats = sb.stats()
    finally:
        sb.stop()
    return {
        "sandbox_paging_rows_per_s": round(rows / elapsed, 1),
        "sandbox_paging_rows": rows,
        "sandbox_paging_pages": pages,
        "sandbox_paging_seconds": round(elapsed, 2),
        "sandbox_paging_ms_per_page": round(1000 * elapsed / pages, 2),
        "sandbox_paging_calls": stats["total"],
        "sandbox_server_ms_per_page": round(1000 * stats["insights_page_seconds"] / pages, 2),
        "sandbox_jobs_seconds": round(jobs_seconds, 1),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
