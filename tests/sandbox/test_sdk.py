"""The unchanged facebook-business SDK against the sandbox (FacebookSession.GRAPH on the class)."""

from __future__ import annotations

import time
import warnings

import pytest
from facebook_business.adobjects.adaccount import AdAccount
from facebook_business.adobjects.adreportrun import AdReportRun
from facebook_business.adobjects.leadgenform import LeadgenForm
from facebook_business.adobjects.page import Page
from facebook_business.adobjects.user import User
from facebook_business.api import FacebookAdsApi
from facebook_business.exceptions import FacebookRequestError
from facebook_business.session import FacebookSession

NOW = "2026-03-15T12:00:00Z"


@pytest.fixture(scope="module")
def sb(module_sandbox_factory, instagram_unpaced):
    return module_sandbox_factory(now=NOW, job_base_seconds=1.0, budgets=instagram_unpaced)


@pytest.fixture
def api(sb, monkeypatch):
    monkeypatch.setattr(FacebookSession, "GRAPH", sb.url)
    default = FacebookAdsApi.get_default_api()
    api = FacebookAdsApi.init(sb.app_id, sb.app_secret, sb.token, crash_log=False)
    yield api
    FacebookAdsApi.set_default_api(default)


@pytest.fixture
def page_api(sb, api):
    page = sb.world()["pages"][0]
    token = next(
        p["access_token"]
        for p in User("me").get_accounts(fields=["id", "access_token"])
        if p["id"] == page["id"]
    )
    return FacebookAdsApi(FacebookSession(sb.app_id, sb.app_secret, token))


def test_lists_ad_accounts(api, sb):
    accounts = list(User("me").get_ad_accounts(fields=["id", "name", "currency", "timezone_name"]))
    assert {a["id"] for a in accounts} == {a["id"] for a in sb.world()["accounts"]}
    assert {a["currency"] for a in accounts} == {"USD", "INR", "EUR"}


def test_async_insights_poll_and_every_result_page(api, sb):
    acct = AdAccount(sb.world()["accounts"][0]["id"])
    job = acct.get_insights(
        is_async=True,
        fields=["ad_id", "spend", "impressions", "actions"],
        params={
            "level": "ad",
            "time_increment": 1,
            "time_range": {"since": "2026-01-01", "until": "2026-03-14"},
            "action_attribution_windows": ["7d_click", "1d_view"],
            # archived and deleted ads too (the truth counts every ad)
            "filtering": [
                {
                    "field": "ad.effective_status",
                    "operator": "IN",
                    "value": ["ACTIVE", "ADSET_PAUSED", "ARCHIVED", "CAMPAIGN_PAUSED", "DELETED", "PAUSED"],
                }
            ],
        },
    )
    assert isinstance(job, AdReportRun) and job["report_run_id"] == job["id"]
    statuses = []
    while True:
        job.api_get()
        statuses.append(job[AdReportRun.Field.async_status])
        if statuses[-1] == "Job Completed":
            break
        assert len(statuses) < 200
        time.sleep(0.02)
    assert statuses[0] != "Job Completed" and job[AdReportRun.Field.async_percent_completion] == 100
    rows = list(job.get_result(params={"limit": 100}))
    assert len(rows) > 500
    assert len({(r["ad_id"], r["date_start"]) for r in rows}) == len(rows)
    truth = sb.truth("2026-01-01", "2026-03-14")
    acct_id = sb.world()["accounts"][0]["account_id"]
    assert sum(int(r["impressions"]) for r in rows) == sum(
        t["impressions"] for t in truth["accounts"] if t["account_id"] == acct_id
    )


def test_sync_insights_cursor(api, sb):
    acct = AdAccount(sb.world()["accounts"][1]["id"])
    cursor = acct.get_insights(
        fields=["campaign_id", "spend"],
        params={"level": "campaign", "time_increment": 1, "date_preset": "last_30d", "limit": 7},
    )
    rows = list(cursor)
    assert len(rows) >= 2 * 30  # the two permanent campaigns every day, plus the live promo campaign
    assert len({(r["campaign_id"], r["date_start"]) for r in rows}) == len(rows)


def test_leadgen_form_get_leads_with_time_filter(api, page_api, sb):
    form = LeadgenForm(sb.world()["pages"][0]["forms"][0], api=page_api)
    since = int(time.mktime(time.strptime("2026-03-01", "%Y-%m-%d")))
    leads = list(
        form.get_leads(
            fields=["id", "created_time", "field_data", "ad_id", "is_organic"],
            params={
                "filtering": [{"field": "time_created", "operator": "GREATER_THAN", "value": since}],
                "limit": 5,
            },
        )
    )
    assert leads and all(lead["created_time"] >= "2026-02-28" for lead in leads)
    cursor = form.get_leads(fields=["id"], params={"limit": 5})
    cursor.load_next_page()
    assert cursor.total() == form.api_get(fields=["leads_count"])["leads_count"]


def test_page_get_conversations_with_nested_messages(api, page_api, sb):
    page = Page(sb.world()["pages"][0]["id"], api=page_api)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the SDK warns that `messages` is not a declared field
        convs = list(
            page.get_conversations(
                fields=[
                    "id",
                    "updated_time",
                    "participants",
                    "message_count",
                    "messages.limit(25){id,created_time,from,to,message}",
                ],
                params={"platform": "instagram", "limit": 10},
            )
        )
    assert len(convs) > 10
    first = convs[0]
    msgs = first["messages"]["data"]
    assert msgs and {"id", "created_time", "from", "to", "message"} <= set(msgs[0])
    assert first["participants"]["data"][0]["username"]


def test_batch_round_trip(api, sb):
    batch = api.new_batch()
    ok, failed = [], []
    for acct in sb.world()["accounts"]:
        AdAccount(acct["id"]).api_get(
            fields=["name", "currency"],
            batch=batch,
            success=lambda r: ok.append(r.json()),
            failure=lambda r: failed.append(r),
        )
    AdAccount("act_1").api_get(
        fields=["name"], batch=batch, success=ok.append, failure=lambda r: failed.append(r.json())
    )
    assert batch.execute() is None
    assert len(ok) == 3 and {a["currency"] for a in ok} == {"USD", "INR", "EUR"}
    assert failed[0]["error"]["code"] == 100


def test_batch_null_items_are_returned_for_retry(api, sb, sandbox_factory, monkeypatch):
    chaos = sandbox_factory(faults={"null_batch_item_rate": 0.5}, seed=3)
    monkeypatch.setattr(FacebookSession, "GRAPH", chaos.url)
    batch = api.new_batch()
    done = []
    for _ in range(10):
        User("me").api_get(fields=["id"], batch=batch, success=lambda r: done.append(r.json()))
    retry = batch.execute()
    assert retry is not None and len(retry) + len(done) == 10
    while retry is not None:
        retry = retry.execute()
    assert len(done) == 10


def test_sdk_raises_request_error_with_throttle_details(sandbox_factory, api, monkeypatch):
    sb = sandbox_factory(faults={"throttle": {"burst_rate": 1.0, "burst_length": 1, "codes": [17]}})
    monkeypatch.setattr(FacebookSession, "GRAPH", sb.url)
    with pytest.raises(FacebookRequestError) as info:
        list(User("me").get_ad_accounts())
    err = info.value
    assert err.api_error_code() == 17 and err.api_error_subcode() == 2446079 and err.api_transient_error()
    assert err.http_status() == 400 and "x-business-use-case-usage" in err.http_headers()
