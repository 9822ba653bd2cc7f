"""Usage headers on every response and Meta's throttle errors when a budget is spent."""

from __future__ import annotations

import json
import time

import pytest


def test_usage_headers_on_success_and_error(graph, world):
    acct = world["accounts"][0]
    for status_expected, path, params in (
        (200, f"{acct['id']}/insights", {"fields": "spend"}),
        (400, f"{acct['id']}/insights", {"fields": "nope"}),
        (400, "me/adaccounts", {"token": "bad"}),
    ):
        status, _, headers = graph.get(path, **params)
        assert status == status_expected
        for h in (
            "x-app-usage",
            "x-ad-account-usage",
            "x-business-use-case-usage",
            "facebook-api-version",
            "x-fb-trace-id",
            "x-fb-request-id",
        ):
            assert h in headers, (h, path)
        assert set(json.loads(headers["x-app-usage"])) == {"call_count", "total_cputime", "total_time"}
    _, _, headers = graph.get(f"{acct['id']}/insights", fields="spend")
    throttle = json.loads(headers["x-fb-ads-insights-throttle"])
    assert set(throttle) == {"app_id_util_pct", "acc_id_util_pct", "ads_api_access_tier"}
    buc = json.loads(headers["x-business-use-case-usage"])  # keyed by the token's business (Meta's docs)
    entry = buc[world["business"]["id"]][0]
    assert entry["type"] == "ads_insights"
    assert {
        "call_count",
        "total_cputime",
        "total_time",
        "estimated_time_to_regain_access",
        "ads_api_access_tier",
    } <= set(entry)
    _, _, headers = graph.get(acct["id"], fields="name")
    assert "x-fb-ads-insights-throttle" not in headers
    assert set(json.loads(headers["x-ad-account-usage"])) == {
        "acc_id_util_pct",
        "reset_time_duration",
        "ads_api_access_tier",
    }


@pytest.mark.parametrize(
    ("budget", "path_of", "code", "subcode", "buc_type"),
    [
        ("ads_insights", lambda w: f"{w['accounts'][0]['id']}/insights", 80000, 2446079, "ads_insights"),
        ("ads_management", lambda w: f"{w['accounts'][0]['id']}/campaigns", 80004, 2446079, "ads_management"),
        ("user", lambda w: "me/adaccounts", 17, 2446079, None),
        ("app", lambda w: "me/adaccounts", 4, None, None),
    ],
)
def test_spent_budgets_answer_with_metas_codes(
    sandbox_factory, graph_for, error_of, budget, path_of, code, subcode, buc_type
):
    sb = sandbox_factory(budgets=f"{budget}=5,window_s=120")
    g = graph_for(sb)
    w = sb.world()
    path = path_of(w)
    usage = []
    for _ in range(5):
        status, _, headers = g.get(path)
        assert status == 200
        if buc_type:
            usage.append(
                json.loads(headers["x-business-use-case-usage"])[w["business"]["id"]][0]["call_count"]
            )
    assert usage == sorted(usage) and (not usage or usage[-1] == 100)
    status, body, headers = g.get(path)
    err = error_of(body)
    assert status == 400 and err["code"] == code and err.get("error_subcode") == subcode
    if buc_type:
        entry = json.loads(headers["x-business-use-case-usage"])[w["business"]["id"]][0]
        assert entry["type"] == buc_type and entry["estimated_time_to_regain_access"] >= 1
    if code in (4, 17):
        assert err["is_transient"] is True
    # Budgets can be reset/raised at runtime.
    sb.set_budgets(**{budget: 1000})
    assert g.get(path)[0] == 200


def test_app_usage_rises_with_load(sandbox_factory, graph_for):
    sb = sandbox_factory(budgets="app=20")
    g = graph_for(sb)
    seen = [json.loads(g.get("me")[2]["x-app-usage"])["call_count"] for _ in range(10)]
    assert seen == sorted(seen) and seen[-1] >= 45


def test_page_responses_report_leadgen_usage_against_the_pages_real_budget(sandbox, graph, world):
    """After a lead read, later Page calls (conversations, forms) must not report the leadgen budget as spent."""
    page = world["pages"][0]
    page_token = graph.ok(page["id"], fields="access_token")["access_token"]
    graph.ok(f"{page['forms'][0]}/leads", token=page_token, limit=5)
    for path, params in (
        (f"{page['id']}/conversations", {"platform": "messenger"}),
        (f"{page['id']}/leadgen_forms", {}),
    ):
        status, _, headers = graph.get(path, token=page_token, **params)
        assert status == 200
        entries = json.loads(headers["x-business-use-case-usage"]).get(page["id"], [])
        leadgen = [entry for entry in entries if entry["type"] == "leadgen"]
        assert leadgen and leadgen[0]["call_count"] < 5, (path, entries)


def test_the_ads_usage_header_can_be_keyed_by_the_ad_account(sandbox_factory, graph_for):
    sb = sandbox_factory(usage_header_key="account")
    acct = sb.world()["accounts"][0]
    _, _, headers = graph_for(sb).get(f"{acct['id']}/insights", fields="spend")
    assert set(json.loads(headers["x-business-use-case-usage"])) == {acct["account_id"]}


def test_instagram_conversations_calls_are_two_a_second_per_instagram_account(
    sandbox_factory, graph_for, error_of
):
    """Meta: "Instagram Conversations API: 2 calls per second per IG professional account" (meta_api_facts.md
    section 2.2), 80002 the Instagram code (section 2.3), each batch item counted (section 8). Messenger
    reads of the same Page are not part of it."""
    sb = sandbox_factory(budgets="instagram=2")  # Meta's quota (the tests' sandboxes raise it by default)
    g = graph_for(sb)
    page = sb.world()["pages"][0]
    pg = graph_for(sb, token=g.page_token(page["id"]))
    listing = {"platform": "instagram", "fields": "id", "limit": 5}
    answers = [pg.get(f"{page['id']}/conversations", **listing) for _ in range(3)]
    assert [status for status, _, _ in answers] == [200, 200, 400]
    err = error_of(answers[2][1])
    assert err["code"] == 80002 and "Instagram" in err["message"]
    assert pg.get(f"{page['id']}/conversations", platform="messenger", fields="id", limit=5)[0] == 200
    ids = [c["id"] for c in answers[0][1]["data"]]
    assert len(ids) == 5
    time.sleep(1.2)
    status, items, _ = pg.post("", batch=[{"method": "GET", "relative_url": f"{i}?fields=id"} for i in ids])
    assert status == 200
    codes = [item["code"] for item in items]
    assert codes == [200, 200, 400, 400, 400], codes
    assert {json.loads(item["body"])["error"]["code"] for item in items[2:]} == {80002}
    time.sleep(1.2)
    assert pg.get(ids[0], fields="id")[0] == 200
