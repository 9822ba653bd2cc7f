"""Discovery (``meta_ads_elt.discovery``) against the sandbox's agency world over HTTP: sources, filters,
unreadable and disabled accounts, arrivals and departures, and the errors that name a bad source."""

from __future__ import annotations

import datetime as dt

import pytest
from meta_ads_elt.config import parse_config
from meta_ads_elt.discovery import DiscoveryError, discover
from meta_ads_elt.hooks.graph_api import MetaGraphApiHook
from sandbox_lake import read, use_connection

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("calm_governor")]

NOW = "2026-03-10T12:00:00Z"
DAY = dt.date(2026, 3, 9)


@pytest.fixture(scope="module")
def agency():
    from meta_sandbox.testing import start_sandbox

    handle = start_sandbox(
        agency=True, accounts=60, campaigns_per_account=2, adsets_per_campaign=1, ads_per_adset=1, now=NOW
    )
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def agency_world(agency):
    return agency.world()


def config_for(lake, accounts, pages=None, **extra):
    data = {"lake_root": str(lake), "accounts": accounts, **extra}
    if pages is not None:
        data["pages"] = pages
    return parse_config(data)


@pytest.fixture(scope="module")
def franchise():
    """The first account promotes its own Page and 130 franchise Pages: more than one page of
    ``promote_pages`` (100 a page as discovery reads it, expanded or as an edge)."""
    from meta_sandbox.testing import start_sandbox

    handle = start_sandbox(
        accounts=2,
        campaigns_per_account=1,
        adsets_per_campaign=1,
        ads_per_adset=1,
        extra_promoted_pages=130,
        now=NOW,
    )
    yield handle
    handle.stop()


def run(monkeypatch, sandbox, config, day=DAY, token="sandbox-token", app_secret=None, **hook_settings):  # noqa: S107 (sandbox token)
    """``hook_settings``: attributes of the hook (``max_attempts``, ``backoff_base``) a test shortens."""
    use_connection(monkeypatch, sandbox, token=token, app_secret=app_secret)
    hook = MetaGraphApiHook(meta_conn_id="meta_default")
    for name, value in hook_settings.items():
        setattr(hook, name, value)
    return discover(hook, config, day, run_id=f"test_{day}")


def by_id(items):
    return {f.id: f for f in items}


def test_me_finds_the_default_worlds_accounts_and_pages(sandbox, tmp_path, monkeypatch):
    world = sandbox.world()
    found = run(
        monkeypatch,
        sandbox,
        config_for(tmp_path, {"discover": ["me"]}, {"discover": ["me"]}),
        day=dt.date.fromisoformat(sandbox.now()[:10]),
    )
    summary = found.summary()
    assert sorted(a["account_id"] for a in summary["accounts"]) == sorted(a["id"] for a in world["accounts"])
    assert sorted(p["page_id"] for p in summary["pages"]) == sorted(p["id"] for p in world["pages"])
    assert summary["flagged_accounts"] == [] and summary["warnings"] == []


def test_two_businesses_unreadable_and_disabled_accounts_are_flagged_with_the_fix(
    agency, agency_world, tmp_path, monkeypatch
):
    agency_id = agency_world["businesses"][0]["id"]
    config = config_for(
        tmp_path,
        {"discover": [f"business:{agency_id}:owned", f"business:{agency_id}:client"]},
        {"discover": ["promoted"]},
    )
    found = run(monkeypatch, agency, config)
    accounts = by_id(found.accounts)
    world = {a["account_id"]: a for a in agency_world["accounts"]}
    managed = {i for i, a in world.items() if not a["joins_after_days"]}
    assert set(accounts) == managed
    for account_id, item in accounts.items():
        truth = world[account_id]
        if not truth["assigned_to_user"]:
            assert (
                item.state == "unreadable"
                and "not assigned" in item.reason
                and "Business Settings" in item.reason
            )
        elif truth["account_status"] == 2:
            assert item.state == "skipped_status" and "DISABLED" in item.reason
        else:
            assert item.state == "arrived" and item.history_days == 28, "first seen: backfilled"
    assert {f.state for f in found.accounts} == {"unreadable", "skipped_status", "arrived"}
    extracted = {f.id for f in found.accounts if f.extracted}
    assert {f.id for f in found.pages} == {world[a]["page_id"] for a in extracted}
    lake = read(tmp_path, "discovered_accounts").to_pylist()
    assert {r["account_id"]: r["state"] for r in lake} == {f.id: f.state for f in found.accounts}

    # the run summary lists every account discovery left out, with its reason
    import duckdb
    from meta_ads_elt.run_summary import discovery_lines

    lines = discovery_lines(duckdb.connect(), tmp_path, limit=1000)
    left_out = [f for f in found.accounts if not f.extracted]
    assert left_out and lines[0].startswith(f"Discovered accounts ({DAY}): ")
    for item in left_out:
        assert any(
            line.startswith(f"  {item.id} ") and f": {item.state}: {item.reason}" in line for line in lines
        )
    assert not any(f.id in line for f in found.accounts if f.extracted for line in lines[1:])


def test_filters_by_name_id_status_and_currency_and_a_filter_matching_nothing_is_named(
    agency, agency_world, tmp_path, monkeypatch
):
    first = agency_world["accounts"][0]
    config = config_for(
        tmp_path,
        {
            "discover": ["me"],
            "include": {"names": ["acme*", "Nobody Here*"]},
            "exclude": {"ids": [first["id"]]},
            "account_status": ["ACTIVE", "DISABLED"],
            "currency": ["USD"],
        },
    )
    found = run(monkeypatch, agency, config)
    extracted = [f for f in found.accounts if f.extracted]
    assert extracted and all(f.name.lower().startswith("acme") and f.currency == "USD" for f in extracted)
    assert by_id(found.accounts)[first["account_id"]].state == "excluded"
    assert any(
        "accounts.include name 'Nobody Here*' matches no discovered account" in w for w in found.warnings
    )


def test_an_unknown_business_and_filters_leaving_nothing_fail_naming_them(agency, tmp_path, monkeypatch):
    with pytest.raises(
        DiscoveryError, match=r"business:1234567890:owned.*Business 1234567890 does not exist"
    ):
        run(monkeypatch, agency, config_for(tmp_path, {"discover": ["business:1234567890:owned"]}))
    with pytest.raises(DiscoveryError, match=r"leave none to extract"):
        run(monkeypatch, agency, config_for(tmp_path, {"discover": ["me"], "currency": ["JPY"]}))


def test_an_ad_account_or_page_id_as_a_business_source_is_named_with_the_fix(
    agency, agency_world, tmp_path, monkeypatch
):
    """Meta answers a bare ad account id as an unknown object (100/33) and a Page's missing Business edge as
    code 100 "nonexisting field ... on node type (Page)": neither is "Business does not exist" nor a bare
    "Fix the parameter"."""
    account = next(a for a in agency_world["accounts"] if a["assigned_to_user"] and not a["joins_after_days"])
    acct = account["account_id"]
    with pytest.raises(
        DiscoveryError,
        match=rf"business:{acct} expects a Business id; act_{acct} is an ad account, not a Business: list it under accounts:",
    ) as wrong:
        run(monkeypatch, agency, config_for(tmp_path, {"discover": [f"business:{acct}:owned"]}))
    assert "does not exist or this token cannot see it" not in str(wrong.value)
    page = account["page_id"]
    with pytest.raises(
        DiscoveryError,
        match=rf"business:{page} expects a Business id; Meta says {page} is a page: list it under pages:",
    ) as wrong:
        run(
            monkeypatch,
            agency,
            config_for(tmp_path, {"discover": ["me"]}, {"discover": [f"business:{page}:owned"]}),
        )
    assert "Fix the parameter" not in str(wrong.value)


def test_a_refused_proof_or_token_on_a_business_source_keeps_its_own_fix_not_business_does_not_exist(
    agency, agency_world, tmp_path, monkeypatch
):
    """Meta answers a wrong appsecret_proof with code 100 too (no subcode): only 100/33 means the Business
    is unknown to the token; a refused proof or token fails at once with the Connection's fix."""
    from meta_ads_elt.errors import MetaAppSecretProofError, MetaTokenError

    agency_id = agency_world["businesses"][0]["id"]
    config = config_for(tmp_path, {"discover": [f"business:{agency_id}:owned", "me"]})
    with pytest.raises(MetaAppSecretProofError) as proof:
        run(monkeypatch, agency, config, app_secret="not-the-app-secret")
    message = str(proof.value)
    assert "Invalid appsecret_proof provided in the API argument" in message, "Meta's own message"
    assert f"/{agency_id}/owned_ad_accounts" in message and "copy the secret of that app" in message
    assert "does not exist" not in message and "not-the-app-secret" not in message
    with pytest.raises(MetaTokenError, match=r"Refresh the token") as expired:
        run(monkeypatch, agency, config, token="sandbox-expired-token")
    assert "does not exist" not in str(expired.value)


def test_a_source_the_token_cannot_read_is_named(agency, agency_world, tmp_path, monkeypatch):
    agency_id = agency_world["businesses"][0]["id"]
    config = config_for(tmp_path, {"discover": ["me", f"business:{agency_id}:owned"]})
    found = run(monkeypatch, agency, config, token="sandbox-token-without-business_management")
    assert any(f"'business:{agency_id}:owned'" in w and "business_management" in w for w in found.warnings)
    assert any(f.extracted for f in found.accounts)
    with pytest.raises(DiscoveryError, match="no source could be read"):
        run(
            monkeypatch,
            agency,
            config_for(tmp_path, {"discover": [f"business:{agency_id}:owned"]}),
            token="sandbox-token-without-business_management",
        )


def test_a_late_client_arrives_with_its_history_and_a_departed_account_is_flagged_not_deleted(
    agency, agency_world, tmp_path, monkeypatch
):
    late = {a["account_id"] for a in agency_world["accounts"] if a["joins_after_days"]}
    config = config_for(
        tmp_path, {"discover": ["me"], "exclude": {"names": ["Hudson*"]}}, arrival_history_days=60
    )
    first = run(monkeypatch, agency, config)
    assert not late & {f.id for f in first.accounts}
    for f in first.accounts:  # pretend the first run extracted them: they have lake data now
        if f.extracted:
            (tmp_path / "insights" / f"account_id={f.id}").mkdir(parents=True)
    agency.set_clock(advance_days=1)
    try:
        # the next day: Hudson accounts leave the config's reach (excluded from the listing by a new filter)
        gone = {f.id for f in first.accounts if f.extracted and (f.name or "").startswith("Rio")}
        config2 = config_for(
            tmp_path, {"discover": ["me"], "exclude": {"names": ["Hudson*", "Rio*"]}}, arrival_history_days=60
        )
        second = run(monkeypatch, agency, config2, day=DAY + dt.timedelta(days=1))
    finally:
        agency.set_clock(now=NOW)
    items = by_id(second.accounts)
    for account_id in late:
        assert items[account_id].state == "arrived" and items[account_id].history_days == 60
    extracted_again = [f for f in second.accounts if f.state == "extracted"]
    assert extracted_again and all(f.history_days == 28 for f in extracted_again)
    assert all(items[i].state == "excluded" for i in gone)
    assert all((tmp_path / "insights" / f"account_id={i}").exists() for i in gone), "nothing is deleted"


def test_an_account_no_source_lists_any_more_is_departed_and_stays_flagged(
    agency, agency_world, tmp_path, monkeypatch
):
    agency_id = agency_world["businesses"][0]["id"]
    owned, client = f"business:{agency_id}:owned", f"business:{agency_id}:client"
    first = run(monkeypatch, agency, config_for(tmp_path, {"discover": [owned, client]}))
    clients = {f.id for f in first.accounts if f.extracted and client in f.sources}
    assert clients
    second = run(
        monkeypatch, agency, config_for(tmp_path, {"discover": [owned]}), day=DAY + dt.timedelta(days=1)
    )
    third = run(
        monkeypatch, agency, config_for(tmp_path, {"discover": [owned]}), day=DAY + dt.timedelta(days=2)
    )
    for found in (second, third):
        items = by_id(found.accounts)
        assert all(
            items[i].state == "departed"
            and "no discovery source lists it since 2026-03-10" in items[i].reason
            for i in clients
        )
        assert all(items[i].first_seen_date == DAY for i in clients)
    assert {
        r["account_id"]
        for r in read(tmp_path, "discovered_accounts").to_pylist()
        if r["state"] == "departed" and r["date"] == "2026-03-11"
    } == clients


def test_listed_accounts_promoted_pages_come_by_batch_and_an_unreadable_item_is_a_warning(
    agency, agency_world, tmp_path, monkeypatch
):
    """Listed (not discovered) accounts have no expanded promote_pages: one batch asks each; an item
    Meta refuses (an account the user is not assigned to: 100/33) is named in a warning, the rest land."""
    readable = next(
        a for a in agency_world["accounts"] if a["assigned_to_user"] and not a["joins_after_days"]
    )
    refused = next(a for a in agency_world["accounts"] if not a["assigned_to_user"])
    config = config_for(tmp_path, [{"id": readable["id"]}, {"id": refused["id"]}], {"discover": ["promoted"]})
    found = run(monkeypatch, agency, config)
    assert {f.id for f in found.pages} == {readable["page_id"]}
    assert found.warnings == [f"pages.discover 'promoted': {refused['id']}/promote_pages not readable"]


def test_a_token_refused_in_the_promoted_pages_batch_fails_at_once_but_a_lost_account_is_a_warning(
    agency, agency_world, tmp_path, monkeypatch
):
    """An item refused for a reason of the token (here a permission Meta names: every account would
    answer the same) fails discovery at once with the fix, instead of a warning per account and no Page
    at all. One account answering a bare "(#200) Permissions error" (the token lost that account) stays
    a warning, and the other account's Pages land."""
    from meta_ads_elt.errors import MetaPermissionError

    assigned = [a for a in agency_world["accounts"] if a["assigned_to_user"] and not a["joins_after_days"]]
    lost, kept = assigned[:2]
    config = config_for(tmp_path, [{"id": lost["id"]}, {"id": kept["id"]}], {"discover": ["promoted"]})
    with pytest.raises(MetaPermissionError) as refused:
        run(monkeypatch, agency, config, token="sandbox-token-without-ads_read")
    message = str(refused.value)
    assert "promote_pages" in message and "(#200) Requires ads_read permission" in message
    assert "The token lacks the permission(s) ads_read" in message and "issue a new token" in message

    agency.set_faults({"lost_access": {"accounts": [lost["account_id"]], "account_error": "permissions"}})
    try:
        found = run(monkeypatch, agency, config)
    finally:
        agency.clear_faults()
    assert {f.id for f in found.pages} == {kept["page_id"]}
    assert found.warnings == [f"pages.discover 'promoted': {lost['id']}/promote_pages not readable"]


@pytest.mark.parametrize("listed", [False, True], ids=["discovered_accounts", "listed_accounts"])
def test_an_account_promoting_more_pages_than_a_page_has_every_page_discovered_for_one_more_call(
    franchise, tmp_path, monkeypatch, listed
):
    """Discovered accounts get their first 100 promoted Pages in the listing (field expansion), listed
    accounts in one batch; the account with 131 reads the rest from its edge after that page's cursor:
    one more call, for that account only."""
    big, small = franchise.world()["accounts"]
    assert len(big["promote_page_ids"]) == 131 and len(small["promote_page_ids"]) == 1
    accounts = [{"id": big["id"]}, {"id": small["id"]}] if listed else {"discover": ["me"]}
    franchise.reset_stats()
    found = run(monkeypatch, franchise, config_for(tmp_path, accounts, {"discover": ["promoted"]}))
    assert {f.id for f in found.pages} == {*big["promote_page_ids"], *small["promote_page_ids"]}
    assert found.warnings == []
    calls = franchise.stats()["by_endpoint"]
    assert calls.get("GET /act_{id}/promote_pages") == (3 if listed else 1)  # 2 batch items + 1, or 1
    assert sorted(r["page_id"] for r in read(tmp_path, "discovered_pages").to_pylist()) == sorted(
        {*big["promote_page_ids"], *small["promote_page_ids"]}
    )


@pytest.mark.parametrize("listed", [False, True], ids=["discovered_accounts", "listed_accounts"])
def test_promoted_pages_still_failing_after_the_hooks_retries_fail_discovery_for_a_retry_naming_the_account(
    franchise, tmp_path, monkeypatch, listed
):
    """A transient error (codes 1/2) on ``promote_pages`` that outlives the hook's retries fails the
    discover task with a retryable error naming the account: a warning would leave that account's Pages
    undiscovered, their leads and conversations never extracted. The retry then discovers them all."""
    from airflow.sdk.exceptions import AirflowFailException
    from meta_ads_elt.errors import MetaRetryableError

    big, small = franchise.world()["accounts"]
    accounts = [{"id": big["id"]}, {"id": small["id"]}] if listed else {"discover": ["me"]}
    config = config_for(tmp_path, accounts, {"discover": ["promoted"]})
    franchise.set_faults({"transient_error_rate": 1.0, "endpoints": ["GET /act_{id}/promote_pages"]})
    try:
        with pytest.raises(MetaRetryableError) as failed:
            run(monkeypatch, franchise, config, max_attempts=2, backoff_base=0.01)
    finally:
        franchise.clear_faults()
    assert not isinstance(failed.value, AirflowFailException)  # Airflow retries the task
    message = str(failed.value)
    assert f"pages.discover 'promoted': {big['id']}/promote_pages" in message
    assert "after the hook's retries" in message
    assert not (tmp_path / "discovered_pages").exists(), "nothing written from a partial discovery"

    found = run(monkeypatch, franchise, config)  # the Airflow retry
    assert {f.id for f in found.pages} == {*big["promote_page_ids"], *small["promote_page_ids"]}


def test_promoted_pages_meta_asks_to_read_in_smaller_pages_are_read_whole_in_halved_pages(
    franchise, tmp_path, monkeypatch
):
    """Meta's "Please reduce the amount of data you're asking for" (code 1, HTTP 500; meta_api_facts.md
    section 3) on a listed account's ``promote_pages`` batch item: that edge is read from its start in
    halved pages (the hook's paginate), not warned about as "not readable" (its Pages never discovered)."""
    big, small = franchise.world()["accounts"]
    config = config_for(tmp_path, [{"id": big["id"]}, {"id": small["id"]}], {"discover": ["promoted"]})
    franchise.set_faults({"too_much_data": {"max_page_rows": 40}})  # 131 Pages, 100 a page asked
    try:
        found = run(monkeypatch, franchise, config)
    finally:
        franchise.clear_faults()
    assert found.warnings == []
    assert {f.id for f in found.pages} == {*big["promote_page_ids"], *small["promote_page_ids"]}
