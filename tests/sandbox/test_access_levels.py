"""Who may read what: /me/permissions, Page tasks, Standard Access (seed 004), advertiser privileges
(seed 003), ``?metadata=1`` (seed 002)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def sandbox(module_sandbox_factory, instagram_unpaced):
    """This module's own default world: its reads of Instagram conversations are not paced."""
    return module_sandbox_factory(budgets=instagram_unpaced)


@pytest.fixture(scope="module")
def graph(sandbox, graph_for):
    return graph_for(sandbox)


@pytest.fixture(scope="module")
def world(sandbox):
    return sandbox.world()


@pytest.fixture(scope="module")
def page(world):
    return world["pages"][0]


def test_me_permissions_lists_granted_and_declined(graph, sandbox, graph_for):
    full = graph.ok("me/permissions")["data"]
    assert {"permission": "leads_retrieval", "status": "granted"} in full
    assert all(set(p) == {"permission", "status"} for p in full)
    without = graph_for(sandbox, token="sandbox-token-without-leads_retrieval+pages_messaging").ok(
        "me/permissions"
    )
    declined = {p["permission"] for p in without["data"] if p["status"] == "declined"}
    assert declined == {"leads_retrieval", "pages_messaging"}


def test_me_permissions_is_no_edge_of_a_page(graph, sandbox, page, graph_for, error_of):
    status, body, _ = graph_for(sandbox, token=graph.page_token(page["id"])).get("me/permissions")
    assert (
        status == 400 and "nonexisting field (permissions) on node type (Page)" in error_of(body)["message"]
    )


def test_page_tasks_follow_the_token_and_the_conversations_api_needs_messaging(
    sandbox, page, graph_for, error_of
):
    user = graph_for(sandbox, token="sandbox-token-without-MESSAGING+MODERATE")
    node = user.ok(page["id"], fields="id,tasks")
    assert "MESSAGING" not in node["tasks"] and "ADVERTISE" in node["tasks"]
    pg = graph_for(sandbox, token=user.page_token(page["id"]))
    for platform in ("messenger", "instagram"):
        status, body, _ = pg.get(f"{page['id']}/conversations", platform=platform)
        err = error_of(body)
        assert status == 400 and err["code"] == 10 and "MESSAGING" in err["message"]
    leads_ok = pg.ok(f"{page['id']}/leadgen_forms", fields="id")
    assert leads_ok["data"], "other Page edges do not need the task"


def test_instagram_conversations_need_seed_004s_three_permissions(sandbox, page, graph_for, error_of):
    for missing in ("instagram_basic", "pages_manage_metadata"):
        user = graph_for(sandbox, token=f"sandbox-token-without-{missing}")
        pg = graph_for(sandbox, token=user.page_token(page["id"]))
        status, body, _ = pg.get(f"{page['id']}/conversations", platform="instagram")
        assert status == 400 and missing in error_of(body)["message"]
        assert pg.ok(f"{page['id']}/conversations", platform="messenger", limit=1)["data"]


def test_standard_access_hides_people_without_an_app_role(graph, sandbox, page, graph_for, error_of):
    full = graph_for(sandbox, token=graph.page_token(page["id"]))
    std_user = graph_for(sandbox, token="sandbox-token-standard-access")
    std = graph_for(sandbox, token=std_user.page_token(page["id"]))
    for platform in ("messenger", "instagram"):
        every = full.page_all(f"{page['id']}/conversations", platform=platform, limit=100)
        seen = std.page_all(f"{page['id']}/conversations", platform=platform, limit=100)
        assert 0 < len(seen) < len(every) / 5, "the edge answers normally, with far fewer conversations"
        assert {c["id"] for c in seen} < {c["id"] for c in every}
        hidden = next(c["id"] for c in every if c["id"] not in {s["id"] for s in seen})
        status, body, _ = std.get(hidden, fields="id")
        assert status == 400 and error_of(body)["error_subcode"] == 33


def test_a_requester_without_advertiser_privileges_gets_leads_without_ad_ids(
    graph, sandbox, world, graph_for
):
    account = world["accounts"][0]
    page = next(p for p in world["pages"] if p["id"] == account["page_id"])
    fields = "id,is_organic,ad_id,adset_id,campaign_id,ad_name"
    full = graph_for(sandbox, token=graph.page_token(page["id"]))
    user = graph_for(sandbox, token=f"sandbox-token-not-advertiser-on-{account['account_id']}")
    blind = graph_for(sandbox, token=user.page_token(page["id"]))
    form = page["forms"][0]
    with_ids = [lead for lead in full.page_all(f"{form}/leads", fields=fields, limit=500) if "ad_id" in lead]
    assert with_ids
    without = blind.page_all(f"{form}/leads", fields=fields, limit=500)
    assert [lead["id"] for lead in without] == [
        lead["id"] for lead in full.page_all(f"{form}/leads", fields="id", limit=500)
    ]
    assert not any({"ad_id", "adset_id", "campaign_id", "ad_name"} & set(lead) for lead in without)
    assert "ad_id" not in blind.ok(with_ids[0]["id"], fields=fields)
    status, body, _ = blind.get("/ads/lead_gen/export_csv/", version="", id=form, type="form")
    assert status == 200
    header, *lines = body.splitlines()
    ad_column = header.split("\t").index("ad_id")
    assert lines and all(line.split("\t")[ad_column] == "" for line in lines)


@pytest.mark.parametrize(("kind", "expected"), [("page", "page"), ("form", "leadgenform"), ("ig", "iguser")])
def test_metadata_names_the_node_type(graph, world, kind, expected):
    page = world["pages"][0]
    node = {"page": page["id"], "form": page["forms"][0], "ig": page["instagram_id"]}[kind]
    body = graph.ok(node, metadata=1, fields="id")
    assert body["metadata"]["type"] == expected
    assert {"name": "id"} in body["metadata"]["fields"]
