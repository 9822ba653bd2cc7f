"""Ad objects, the world, routing and Meta-shaped errors."""

from __future__ import annotations

import requests


def test_me_adaccounts_lists_every_account_with_currency_and_timezone(graph, world):
    body = graph.ok(
        "me/adaccounts", fields="id,account_id,name,currency,timezone_name,timezone_offset_hours_utc"
    )
    accounts = {a["id"]: a for a in body["data"]}
    assert set(accounts) == {a["id"] for a in world["accounts"]}
    by_currency = {a["currency"]: a for a in body["data"]}
    assert by_currency["USD"]["timezone_name"] == "America/Los_Angeles"
    assert by_currency["INR"]["timezone_name"] == "Asia/Kolkata"
    assert by_currency["INR"]["timezone_offset_hours_utc"] == 5.5
    assert by_currency["EUR"]["timezone_name"] == "Europe/Berlin"
    for a in body["data"]:
        assert a["id"] == "act_" + a["account_id"] and a["account_id"].isdigit()


def test_default_fields_of_adaccounts_are_id_and_account_id(graph):
    row = graph.ok("me/adaccounts")["data"][0]
    assert set(row) == {"id", "account_id"}


def test_ad_account_node_and_promote_pages(graph, world):
    acct = world["accounts"][0]
    body = graph.ok(acct["id"], fields="name,currency,timezone_name,timezone_offset_hours_utc,account_id")
    assert body["account_id"] == acct["account_id"] and body["currency"] == acct["currency"]
    pages = graph.ok(f"{acct['id']}/promote_pages", fields="id,name")["data"]
    assert [p["id"] for p in pages] == [acct["page_id"]]


def test_promote_pages_of_more_than_a_page_are_paged_read_or_expanded(sandbox_factory, graph_for):
    """``--extra-promoted-pages``: the first account promotes its own Page and 30 franchise Pages. The edge
    answers 25 a page without ``limit``, read directly or expanded in ``fields`` (seed 002, "Field
    Expansion"), the expansion's ``paging.next`` pointing at the edge; ``.limit(n)`` sets the page size
    (pages without hidden entries here: ``test_paging.py`` has them)."""
    sb = sandbox_factory(
        accounts=2,
        campaigns_per_account=1,
        adsets_per_campaign=1,
        ads_per_adset=1,
        extra_promoted_pages=30,
        paging_gaps=False,
    )
    graph, world = graph_for(sb), sb.world()
    acct, other = world["accounts"]
    assert len(acct["promote_page_ids"]) == 31 and acct["promote_page_ids"][0] == acct["page_id"]
    assert other["promote_page_ids"] == [other["page_id"]]
    assert [p["id"] for p in graph.page_all(f"{acct['id']}/promote_pages", fields="id")] == acct[
        "promote_page_ids"
    ]
    listed = graph.ok("me/adaccounts", fields="account_id,promote_pages{id,name}")["data"]
    expanded = next(a["promote_pages"] for a in listed if a["account_id"] == acct["account_id"])
    assert len(expanded["data"]) == 25 and f"/{acct['id']}/promote_pages?" in expanded["paging"]["next"]
    rest = graph.ok(f"{acct['id']}/promote_pages", fields="id", after=expanded["paging"]["cursors"]["after"])
    assert [p["id"] for p in expanded["data"] + rest["data"]] == acct["promote_page_ids"]
    limited = graph.ok(acct["id"], fields="promote_pages.limit(100){id}")["promote_pages"]
    assert len(limited["data"]) == 31 and "next" not in limited["paging"]
    franchise = graph.ok(acct["promote_page_ids"][-1], fields="id,name")
    assert franchise["name"] == "Acme Solar Franchise 30"


def test_campaigns_adsets_ads_edges_and_nodes(graph, world):
    acct = world["accounts"][0]
    campaigns = graph.page_all(f"{acct['id']}/campaigns", fields="id,name,objective,status", limit=1)
    assert {c["objective"] for c in campaigns} == {"OUTCOME_LEADS", "OUTCOME_ENGAGEMENT"}
    adsets = graph.ok(f"{acct['id']}/adsets", fields="id,campaign_id,optimization_goal")["data"]
    assert "CONVERSATIONS" in {s["optimization_goal"] for s in adsets}
    assert "LEAD_GENERATION" in {s["optimization_goal"] for s in adsets}
    ads = graph.page_all(f"{acct['id']}/ads", fields="id,adset_id,campaign_id,name", limit=3)
    permanent = [ad for c in acct["campaigns"] for s in c["adsets"] for ad in s["ads"]]
    live = [o["id"] for o in acct["objects"] if o["level"] == "ad" and o["effective_status"] not in TERMINAL]
    assert set(permanent) <= set(live)
    assert sorted(a["id"] for a in ads) == sorted(live)
    camp = acct["campaigns"][0]
    assert graph.ok(camp["id"], fields="name,objective")["objective"] == camp["objective"]
    assert len(graph.ok(f"{camp['id']}/adsets")["data"]) == len(camp["adsets"])
    adset = camp["adsets"][0]
    node = graph.ok(adset["id"], fields="campaign_id,optimization_goal,promoted_object")
    assert node["campaign_id"] == camp["id"] and node["promoted_object"]["page_id"] == acct["page_id"]
    assert [a["id"] for a in graph.ok(f"{adset['id']}/ads")["data"]] == adset["ads"]
    ad = graph.ok(adset["ads"][0], fields="id,name,adset_id,campaign_id,account_id,creative")
    assert ad["adset_id"] == adset["id"] and ad["account_id"] == acct["account_id"]


TERMINAL = ("ARCHIVED", "DELETED")
LIVE_AND_ARCHIVED = [
    "ACTIVE",
    "ADSET_PAUSED",
    "ARCHIVED",
    "CAMPAIGN_PAUSED",
    "DISAPPROVED",
    "IN_PROCESS",
    "PAUSED",
    "PENDING_BILLING_INFO",
    "PENDING_REVIEW",
    "PREAPPROVED",
    "WITH_ISSUES",
]


def _ids(acct, level, *statuses):
    return {o["id"] for o in acct["objects"] if o["level"] == level and o["effective_status"] in statuses}


def test_edges_leave_out_archived_and_deleted_objects_unless_the_filter_asks(graph, world, error_of):
    # Meta, "Manage your ad object's status": edges without a filter return live objects only; ARCHIVED
    # ones when the status filter names ARCHIVED; DELETED ones never ("error if it does").
    acct = world["accounts"][0]
    assert _ids(acct, "ad", "DELETED") and _ids(acct, "ad", "ARCHIVED") and _ids(acct, "campaign", "DELETED")
    default = {a["id"] for a in graph.page_all(f"{acct['id']}/ads", fields="id,effective_status", limit=100)}
    assert not default & (_ids(acct, "ad", "ARCHIVED") | _ids(acct, "ad", "DELETED"))
    listed = graph.page_all(
        f"{acct['id']}/ads", fields="id,effective_status", limit=100, effective_status=LIVE_AND_ARCHIVED
    )
    assert {a["id"] for a in listed} == default | _ids(acct, "ad", "ARCHIVED")
    assert {a["effective_status"] for a in listed} >= {"ACTIVE", "ARCHIVED"}
    archived = graph.page_all(
        f"{acct['id']}/campaigns",
        fields="id",
        limit=100,
        filtering=[{"field": "campaign.effective_status", "operator": "IN", "value": ["ARCHIVED"]}],
    )
    assert {c["id"] for c in archived} == _ids(acct, "campaign", "ARCHIVED")
    status, body, _ = graph.get(f"{acct['id']}/ads", effective_status=["ACTIVE", "DELETED"])
    assert status == 400 and error_of(body)["code"] == 100 and "DELETED" in error_of(body)["message"]
    status, body, _ = graph.get(f"{acct['id']}/ads", effective_status=["ACTIVE", "GONE"])
    assert status == 400 and "GONE" in error_of(body)["message"]  # the rejected value is named


def test_deleted_objects_still_answer_by_their_id(graph, world):
    acct = world["accounts"][0]
    deleted_ad = sorted(_ids(acct, "ad", "DELETED"))[0]
    node = graph.ok(
        deleted_ad, fields="id,name,status,effective_status,configured_status,updated_time,created_time"
    )
    assert node["effective_status"] == "DELETED" and node["updated_time"] >= node["created_time"]
    deleted_campaign = sorted(_ids(acct, "campaign", "DELETED"))[0]
    assert graph.ok(deleted_campaign, fields="status")["status"] == "DELETED"
    # a campaign's deletion is inherited by its ads: deleted as their effective status, not as configured
    inherited = [
        o
        for o in acct["objects"]
        if o["level"] == "ad" and o["campaign_id"] == deleted_campaign and o["configured_status"] == "ACTIVE"
    ]
    assert inherited and all(o["effective_status"] == "DELETED" for o in inherited)


def test_the_business_owns_the_accounts(graph, world):
    business = world["business"]
    assert graph.ok(business["id"], fields="id,name") == {"id": business["id"], "name": business["name"]}
    assert graph.ok(world["accounts"][1]["id"], fields="business")["business"]["id"] == business["id"]
    owned = graph.page_all(f"{business['id']}/owned_ad_accounts", fields="id", limit=100)
    assert {a["id"] for a in owned} == {a["id"] for a in world["accounts"]}


def test_paused_ad_sets_are_live_and_listed(sandbox_factory, graph_for):
    sb = sandbox_factory(now="2026-03-15T12:00:00Z")
    world = sb.world()
    acct = next(a for a in world["accounts"] if _ids(a, "adset", "PAUSED"))
    paused = _ids(acct, "adset", "PAUSED")
    listed = {
        s["id"]: s
        for s in graph_for(sb).page_all(f"{acct['id']}/adsets", fields="id,effective_status", limit=100)
    }
    assert paused <= set(listed) and {listed[i]["effective_status"] for i in paused} == {"PAUSED"}
    ads = [o for o in acct["objects"] if o["level"] == "ad" and o.get("adset_id") in paused]
    assert ads and {o["effective_status"] for o in ads} == {"ADSET_PAUSED"}


def test_summary_total_count(graph, world):
    body = graph.ok(f"{world['accounts'][0]['id']}/ads", summary="true", limit=1)
    live = [
        o
        for o in world["accounts"][0]["objects"]
        if o["level"] == "ad" and o["effective_status"] not in TERMINAL
    ]
    assert body["summary"]["total_count"] == len(live) and len(body["data"]) == 1


def test_any_api_version_and_trailing_slash_are_accepted(graph, world):
    acct = world["accounts"][1]["id"]
    for version in ("v19.0", "v26.0", "v99.0"):
        status, body, headers = graph.call("GET", acct + "/", version=version, fields="name")
        assert status == 200 and body["id"] == acct
        assert headers["facebook-api-version"] == version


def test_unknown_field_is_a_meta_error(graph, world, error_of):
    status, body, _ = graph.get(world["accounts"][0]["id"], fields="name,bogus_field")
    err = error_of(body)
    assert status == 400 and err["code"] == 100 and "Unknown fields" in err["message"]
    assert "bogus_field" in err["message"]


def test_insights_expands_only_on_nodes_that_have_insights(graph, world, error_of):
    """Ads Insights is an edge of ad accounts, campaigns, ad sets and ads (seed 002, field expansion): on a
    lead form, say, Meta refuses it as an unknown field rather than leaving it out of the answer."""
    acct = world["accounts"][0]["id"]
    status, body, _ = graph.get(acct, fields="name,insights.date_preset(last_7d){spend}")
    assert status == 200 and "insights" in body
    form = world["pages"][0]["forms"][0]
    status, body, _ = graph.get(form, fields="name,insights{spend}")
    err = error_of(body)
    assert status == 400 and err["code"] == 100 and "insights" in err["message"]


def test_bad_id_and_bad_edge_are_meta_errors(graph, world, error_of):
    status, body, _ = graph.get("123456789")
    err = error_of(body)
    assert status == 400 and err["code"] == 100 and err["error_subcode"] == 33
    assert err["type"] == "GraphMethodException"
    status, body, _ = graph.get(f"{world['accounts'][0]['id']}/nonsense")
    assert status == 400 and "nonexisting field (nonsense)" in error_of(body)["message"]
    status, body, _ = graph.get("act_1")
    assert status == 400 and error_of(body)["code"] == 100


def test_bad_params_are_meta_errors(graph, world, error_of):
    acct = world["accounts"][0]["id"]
    status, body, _ = graph.get(f"{acct}/insights", time_range={"since": "2024-13-01", "until": "2024-01-02"})
    assert status == 400 and error_of(body)["code"] == 100
    status, body, _ = graph.get(f"{acct}/insights", level="galaxy")
    assert status == 400 and "level" in error_of(body)["message"]
    status, body, _ = graph.get(f"{acct}/ads", limit="many")
    assert status == 400 and error_of(body)["code"] == 100
    status, body, _ = graph.get(f"{acct}/ads", after="not-a-cursor!")
    assert status == 400 and error_of(body)["code"] == 100


def test_crash_reporter_post_is_accepted_without_token(sandbox):
    resp = requests.post(
        f"{sandbox.url}/v26.0/{sandbox.app_id}/instruments",
        data={"bizsdk_crash_report": '{"reason": "x"}'},
        timeout=10,
    )
    assert resp.status_code == 200 and resp.json() == {"success": True}


def test_me_node(graph, world):
    body = graph.ok("me", fields="id,name")
    assert body["id"] == world["user_id"]


def test_world_route_names_pages_forms_and_counts(world):
    assert world["counts"] == {"accounts": 3, "campaigns": 6, "adsets": 12, "ads": 24, "pages": 5, "forms": 8}
    promoted = [p for p in world["pages"] if p["account_id"]]
    assert {p["account_id"] for p in promoted} == {a["account_id"] for a in world["accounts"]}
    # two Pages no account promotes, dated in UTC: one with forms (never a lead), one without forms
    unpromoted = [p for p in world["pages"] if not p["account_id"]]
    assert [len(p["forms"]) for p in unpromoted] == [2, 0]
    assert {p["timezone_name"] for p in unpromoted} == {"UTC"}
    assert all(p["instagram_id"].isdigit() for p in world["pages"])


def test_page_and_instagram_nodes(graph, world):
    page = world["pages"][0]
    body = graph.ok(page["id"], fields="id,name,instagram_business_account")
    assert body["instagram_business_account"]["id"] == page["instagram_id"]
    ig = graph.ok(page["instagram_id"], fields="id,username")
    assert ig["username"] == page["instagram_username"]


def test_same_seed_gives_same_world_and_other_seed_differs():
    from meta_sandbox.app import Options, Sandbox

    a = Sandbox(Options(now="2026-03-01T12:00:00Z")).world.summary()
    b = Sandbox(Options(now="2026-03-01T12:00:00Z")).world.summary()
    c = Sandbox(Options(seed=7, now="2026-03-01T12:00:00Z")).world.summary()
    assert a == b
    assert a["accounts"][0]["id"] != c["accounts"][0]["id"]


def test_updated_time_is_the_day_of_the_last_status_change_whatever_the_day_it_is_read():
    """Meta's ``updated_time`` of an object nobody changed does not move from one day to the next: the
    run of a status starts where it started, however long ago (it moved with the clock past 400 days,
    so two pulls a day apart differed: tests/e2e/test_pipeline_in_airflow.py across a midnight)."""
    from meta_sandbox.world import Schedule

    never_changed = Schedule(start=100)
    assert {never_changed.changed_on(day) for day in (120, 600, 601, 5000)} == {100}
    ended = Schedule(start=100, end=200, end_status="ARCHIVED")
    assert {ended.changed_on(day) for day in (200, 700, 701)} == {200}
    paused = Schedule(start=100, pauses=((150, 160), (160, 170)))
    assert paused.changed_on(155) == paused.changed_on(169) == 150  # two pauses back to back: one run
    assert paused.changed_on(120) == 100
    assert paused.changed_on(900) == paused.changed_on(901) == 170
    weekly = Schedule(start=0, weekly_pause=(4, 1))
    assert weekly.status(7) == "PAUSED" and weekly.changed_on(10) == 7 and weekly.changed_on(20) == 14
