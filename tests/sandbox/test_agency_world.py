"""The opt-in agency world: two Businesses, owned and client ad accounts, disabled, unreadable and
late-joining accounts; Business Manager edges as Meta documents them."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def agency(module_sandbox_factory):
    return module_sandbox_factory(
        agency=True,
        accounts=60,
        campaigns_per_account=2,
        adsets_per_campaign=1,
        ads_per_adset=1,
        now="2026-03-10T12:00:00Z",
    )


def test_two_businesses_own_and_manage_the_accounts(agency, graph_for):
    graph, world = graph_for(agency), agency.world()
    agency_id, client_id = (b["id"] for b in world["businesses"])
    owned = {a["id"] for a in graph.page_all(f"{agency_id}/owned_ad_accounts", fields="id,name")}
    client = {a["id"] for a in graph.page_all(f"{agency_id}/client_ad_accounts", fields="id,name")}
    client_owned = {a["id"] for a in graph.page_all(f"{client_id}/owned_ad_accounts", fields="id")}
    late = {a["id"] for a in world["accounts"] if a["joins_after_days"]}
    assert owned and client and not owned & client
    assert client == client_owned
    assert owned | client == {a["id"] for a in world["accounts"]} - late
    pages = {p["id"] for p in graph.page_all(f"{agency_id}/client_pages", fields="id")}
    assert pages == {a["page_id"] for a in world["accounts"] if a["id"] in client}


def test_me_adaccounts_leaves_out_unassigned_accounts_which_answer_100_33(agency, graph_for, error_of):
    graph, world = graph_for(agency), agency.world()
    listed = {a["id"]: a for a in graph.page_all("me/adaccounts", fields="id,account_status")}
    unassigned = [a for a in world["accounts"] if not a["assigned_to_user"]]
    disabled = [a for a in world["accounts"] if a["account_status"] == 2]
    assert unassigned and disabled
    assert not set(listed) & {a["id"] for a in unassigned}
    assert {listed[a["id"]]["account_status"] for a in disabled if a["id"] in listed} == {2}
    status, body, _ = graph.get(unassigned[0]["id"], fields="id,name")
    assert status == 400 and (error_of(body)["code"], error_of(body)["error_subcode"]) == (100, 33)


def test_a_late_client_appears_the_day_after_start_up(agency, graph_for):
    graph, world = graph_for(agency), agency.world()
    late = [a for a in world["accounts"] if a["joins_after_days"]]
    assert late
    before = {a["id"] for a in graph.page_all("me/adaccounts")}
    assert not before & {a["id"] for a in late}
    agency.set_clock(advance_days=1)
    try:
        after = {a["id"] for a in graph.page_all("me/adaccounts")}
        assert {a["id"] for a in late} <= after
        assert graph.ok(late[0]["id"], fields="id")["id"] == late[0]["id"]
    finally:
        agency.set_clock(now="2026-03-10T12:00:00Z")


def test_default_world_has_one_business_and_every_account_active(graph, world):
    assert len(world["businesses"]) == 1
    assert {a["account_status"] for a in world["accounts"]} == {1}
    assert graph.ok(f"{world['business']['id']}/client_ad_accounts")["data"] == []
