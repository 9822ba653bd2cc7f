"""MetaLeadsOperator against the Graph API sandbox over HTTP: reconciliation, reruns, PII, budget, errors."""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import json
import zoneinfo
from pathlib import Path

import pytest
import requests
from meta_ads_elt.errors import MetaConfigError, MetaParameterError, MetaPermissionError, MetaTokenError
from meta_ads_elt.hooks.graph_api import MetaGraphApiHook
from meta_ads_elt.leadgen_budget import LeadRetrievalBudgetExceeded
from meta_ads_elt.operators._pages import page_error, utc_window
from meta_ads_elt.operators.leads import AD_FIELDS, MetaLeadsOperator, discover_page_ids
from sandbox_lake import STILL_CLOCK, read, sorted_rows, today, use_connection

API = "v26.0"


# --- helpers ---------------------------------------------------------------------------------------


def run_leads(lake: Path, page_id: str, day: dt.date, **kwargs) -> dict:
    op = MetaLeadsOperator(
        task_id=f"leads_{page_id}",
        page_id=page_id,
        lake_root=str(lake),
        data_interval_day=day.isoformat(),
        **kwargs,
    )
    return op.execute({"run_id": "test"})


def graph_get(sandbox, path: str, token: str, **params) -> dict:
    response = requests.get(
        f"{sandbox.url}/{API}/{path}", params={"access_token": token, **params}, timeout=30
    )
    response.raise_for_status()
    return response.json()


def page_token(sandbox, page_id: str) -> str:
    return graph_get(sandbox, page_id, "sandbox-token", fields="access_token")["access_token"]


def raw_leads(sandbox, page_id: str) -> list[dict]:
    """Every lead of the Page straight from the sandbox (for the PII and per-form checks)."""
    token = page_token(sandbox, page_id)
    out = []
    for form in graph_get(sandbox, f"{page_id}/leadgen_forms", token, fields="id", limit=100)["data"]:
        after = None
        while True:
            params = {"fields": "id,form_id,field_data", "limit": 500, **({"after": after} if after else {})}
            body = graph_get(sandbox, f"{form['id']}/leads", token, **params)
            out.extend(body["data"])
            after = (body.get("paging") or {}).get("cursors", {}).get("after")
            if not body.get("paging", {}).get("next"):
                break
    return out


def whole_local_days(tz: zoneinfo.ZoneInfo, start: dt.datetime, end: dt.datetime) -> list[dt.date]:
    """Local dates whose whole day lies inside the UTC window ``[start, end)``."""
    day, out = start.astimezone(tz).date(), []
    while True:
        lo = dt.datetime.combine(day, dt.time(), tz)
        hi = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tz)
        if lo >= end:
            return out
        if lo >= start and hi <= end:
            out.append(day)
        day += dt.timedelta(days=1)


# --- fixtures --------------------------------------------------------------------------------------


pytestmark = pytest.mark.usefixtures("calm_governor")


# --- reconciliation ----------------------------------------------------------------------------------


def test_leads_reconcile_with_the_truth_per_account_day_page_day_and_form(sandbox, world, conn, tmp_path):
    day = today(sandbox)
    lookback = 95  # beyond the 90-day history: every lead the sandbox serves
    start = dt.datetime.combine(day - dt.timedelta(days=lookback - 1), dt.time(), dt.UTC)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
    for page in world["pages"]:
        run_leads(tmp_path, page["id"], day, lookback_days=lookback)
    leads = read(tmp_path, "leads").to_pylist()
    assert leads, "the sandbox world has leads"
    assert len({r["lead_id"] for r in leads}) == len(leads), "no lead twice"

    ad_account = {  # every ad of the served window, archived and deleted ones included
        o["id"]: a["account_id"] for a in world["accounts"] for o in a["objects"] if o["level"] == "ad"
    }
    page_tz = {p["id"]: zoneinfo.ZoneInfo(p["timezone_name"]) for p in world["pages"]}
    account_tz = {a["account_id"]: zoneinfo.ZoneInfo(a["timezone_name"]) for a in world["accounts"]}
    truth = sandbox.truth((day - dt.timedelta(days=lookback)).isoformat(), end.date().isoformat())

    # paid leads: by the account-local date of created_time, attributed to the account of the ad
    paid = collections.Counter(
        (
            ad_account[r["ad_id"]],
            r["created_time"].astimezone(account_tz[ad_account[r["ad_id"]]]).date().isoformat(),
        )
        for r in leads
        if not r["is_organic"] and r["ad_id"]
    )
    expected_paid = {(t["account_id"], t["date"]): t["leads_collected"] for t in truth["accounts"]}
    compared = 0
    for account in world["accounts"]:
        for local_day in whole_local_days(account_tz[account["account_id"]], start, end):
            key = (account["account_id"], local_day.isoformat())
            assert paid.get(key, 0) == expected_paid.get(key, 0), key
            compared += expected_paid.get(key, 0)
    assert compared > 0

    # organic leads, and paid leads without an ad id (seed 003: ad previews): per Page, platform and
    # Page-local date; they stay in the lake, none dropped
    platform = {"fb": "messenger", "ig": "instagram"}

    def per_page(rows):
        return collections.Counter(
            (
                r["page_id"],
                platform[r["platform"]],
                r["created_time"].astimezone(page_tz[r["page_id"]]).date().isoformat(),
            )
            for r in rows
        )

    organic = per_page(r for r in leads if r["is_organic"])
    unattributed = per_page(r for r in leads if not r["is_organic"] and not r["ad_id"])
    assert all(not r["adset_id"] and not r["campaign_id"] for r in leads if not r["ad_id"])
    for found, name in ((organic, "organic_leads"), (unattributed, "leads_collected_unattributed")):
        expected = {(t["page_id"], t["platform"], t["date"]): t[name] for t in truth["pages"]}
        compared = 0
        for page in world["pages"]:
            for local_day in whole_local_days(page_tz[page["id"]], start, end):
                for p in ("messenger", "instagram"):
                    key = (page["id"], p, local_day.isoformat())
                    assert found.get(key, 0) == expected.get(key, 0), (name, key)
                    compared += expected.get(key, 0)
        assert compared > 0, name

    # per form: every lead the form holds (the sandbox's own leads_count), organic ones included
    per_form = collections.Counter(r["form_id"] for r in leads)
    for page in world["pages"]:
        token = page_token(sandbox, page["id"])
        forms = graph_get(
            sandbox, f"{page['id']}/leadgen_forms", token, fields="id,leads_count,organic_leads_count"
        )
        for form in forms["data"]:
            assert per_form[form["id"]] == form["leads_count"], form["id"]


def test_every_window_date_is_a_partition_and_a_rerun_leaves_identical_data(sandbox, world, conn, tmp_path):
    day = today(sandbox)
    page_id = world["pages"][0]["id"]
    first = run_leads(tmp_path, page_id, day, lookback_days=10)
    before = {name: sorted_rows(read(tmp_path, name)) for name in ("leads", "lead_answers")}
    dates = sorted(p.name for p in (tmp_path / "leads" / f"page_id={page_id}").iterdir())
    # ten UTC days ending with D, plus the one-day timezone margin on each side
    assert dates == [f"date={(day - dt.timedelta(days=i)).isoformat()}" for i in range(10, -2, -1)]
    assert first["partitions"] == 12

    second = run_leads(tmp_path, page_id, day, lookback_days=10)
    after = {name: sorted_rows(read(tmp_path, name)) for name in ("leads", "lead_answers")}
    assert before == after and before["leads"]
    assert first["rows"] == second["rows"]
    manifests = list((tmp_path / "_manifests" / "leads").glob("*.json"))
    assert len(manifests) == 2
    # the Page's name, from the call for its token, replaced by each run (the marts' page_name)
    pages = [
        {k: v for k, v in row.items() if k != "_extracted_at"} for row in read(tmp_path, "pages").to_pylist()
    ]
    assert pages == [{"name": world["pages"][0]["name"], "page_id": page_id, "extractor": "leads"}]
    assert json.loads(manifests[0].read_text())["lead_retrieval_limit"] > 0


def test_raw_email_phone_and_names_never_reach_the_lake(sandbox, world, conn, tmp_path):
    day = today(sandbox)
    page_id = world["pages"][1]["id"]
    run_leads(tmp_path, page_id, day, lookback_days=30)
    raw = raw_leads(sandbox, page_id)
    secrets: set[str] = set()
    emails = {}
    for lead in raw:
        answers = {f["name"]: f["values"][0] for f in lead["field_data"]}
        emails[lead["id"]] = answers["email"]
        secrets.update(
            {answers["email"], answers["email"].lower(), answers["full_name"], answers["phone_number"]}
        )
        secrets.update(answers["full_name"].split())  # first and last names alone
        secrets.add(answers["phone_number"].lstrip("+"))
        if "city" in answers:
            secrets.add(answers["city"])
    assert secrets

    leads = read(tmp_path, "leads")
    answers = read(tmp_path, "lead_answers")
    decoded = json.dumps([leads.to_pylist(), answers.to_pylist()], default=str)
    blobs = b"".join(p.read_bytes() for p in tmp_path.rglob("*.parquet"))
    for secret in secrets:
        assert secret not in decoded, "a raw PII value was decoded from the lake"
        assert secret.encode() not in blobs, "a raw PII value is in a Parquet file"

    # what is stored instead: the normalised hash, and the multiple-choice answers that are not PII
    stored = {r["lead_id"]: r for r in leads.to_pylist()}
    for lead_id, row in stored.items():
        assert row["email_sha256"] == hashlib.sha256(emails[lead_id].strip().lower().encode()).hexdigest()
        assert row["phone_sha256"] and len(row["phone_sha256"]) == 64
    kept = {r["question"] for r in answers.to_pylist() if r["value"] is not None and not r["value_is_hashed"]}
    assert kept and kept <= {"preferred_contact_time", "budget_range"}
    dropped = {r["question"] for r in answers.to_pylist() if r["value"] is None}
    assert "full_name" in dropped


def test_allow_listed_questions_keep_their_raw_values(sandbox, world, conn, tmp_path):
    page_id = world["pages"][0]["id"]
    run_leads(tmp_path, page_id, today(sandbox), lookback_days=3, pii_allow_list=["full_name"])
    names = [r["value"] for r in read(tmp_path, "lead_answers").to_pylist() if r["question"] == "full_name"]
    assert names and all(name and " " in name for name in names)


# --- the lead-retrieval budget ---------------------------------------------------------------------------


def test_the_run_stops_before_exceeding_the_lead_retrieval_budget(sandbox_factory, monkeypatch, tmp_path):
    # Meta's formula scaled down so that about five lead reads spend the Page's 24-hour budget; only
    # Meta's leadgen usage header can tell the operator so (its own count assumes the full budget).
    small = sandbox_factory(leadgen_budget_scale=1.6e-6)
    try:
        use_connection(monkeypatch, small)
        page_id = small.world()["pages"][0]["id"]
        small.reset_stats()
        with pytest.raises(LeadRetrievalBudgetExceeded, match=rf"Page {page_id}") as caught:
            run_leads(tmp_path, page_id, today(small), lookback_days=28, page_limit=5)
        assert "200 x 24" in str(caught.value)
        stats = small.stats()
        assert "80005" not in stats["by_error_code"], "the sandbox never had to refuse a lead read"
        assert stats["by_endpoint"], stats
        assert not (tmp_path / "leads").exists(), "nothing is written when the budget stops the run"
    finally:
        small.stop()


# --- Pages with nothing to fetch, tokens that withhold ad ids ----------------------------------------


def test_pages_without_leads_or_forms_write_empty_partitions_without_a_lead_read(
    sandbox, world, conn, tmp_path
):
    """Forms whose leads_count is 0, and no forms at all: nothing to fetch, so no lead read, no budget
    to refuse; every date of the window is written (empty) and the task succeeds."""
    day = today(sandbox)
    quiet = [p for p in world["pages"] if not p["account_id"]]
    assert [len(p["forms"]) for p in quiet] == [2, 0]
    sandbox.reset_stats()
    for page in quiet:
        summary = run_leads(tmp_path, page["id"], day, lookback_days=5)
        assert summary["rows"] == {"leads": 0, "lead_answers": 0} and summary["partitions"] == 7
        dates = list((tmp_path / "leads" / f"page_id={page['id']}").iterdir())
        assert len(dates) == 7
    endpoints = sandbox.stats()["by_endpoint"]
    assert not any(k.endswith("/leads") for k in endpoints), endpoints


def test_leads_of_an_account_the_user_is_no_advertiser_on_keep_coming_without_ad_ids(
    sandbox, world, monkeypatch, tmp_path
):
    """Seed 003: without advertiser privileges on the ad account, its leads come without ad, ad set and
    campaign ids. They stay in the lake (paid, unattributed): per Page-day they equal the truth's paid
    leads plus its ad-preview leads."""
    account = world["accounts"][1]
    use_connection(monkeypatch, sandbox, token=f"sandbox-token-not-advertiser-on-{account['account_id']}")
    day = today(sandbox)
    page = next(p for p in world["pages"] if p["id"] == account["page_id"])
    other = next(p for p in world["pages"] if p["account_id"] and p["id"] != page["id"])
    for p in (page, other):
        run_leads(tmp_path, p["id"], day, lookback_days=10)
    leads = read(tmp_path, "leads").to_pylist()
    mine = [r for r in leads if r["page_id"] == page["id"] and not r["is_organic"]]
    assert mine and not any(r["ad_id"] or r["adset_id"] or r["campaign_id"] for r in mine)
    assert any(r["ad_id"] for r in leads if r["page_id"] == other["id"]), "other accounts keep their ad ids"
    tz = zoneinfo.ZoneInfo(page["timezone_name"])
    start, end = utc_window(day, 10)
    truth = sandbox.truth((day - dt.timedelta(days=12)).isoformat(), end.date().isoformat())
    expected = collections.Counter()
    for t in truth["pages"]:
        if t["page_id"] == page["id"]:
            expected[t["date"]] += t["leads_collected"] + t["leads_collected_unattributed"]
    got = collections.Counter(r["created_time"].astimezone(tz).date().isoformat() for r in mine)
    days = [d.isoformat() for d in whole_local_days(tz, start, end)]
    assert days and all(got[d] == expected[d] for d in days), [(d, got[d], expected[d]) for d in days]


def test_a_rerun_after_the_user_lost_the_advertiser_role_keeps_the_ad_ids_of_the_earlier_pull(
    sandbox_factory, monkeypatch, tmp_path
):
    """Seed 003: once the token's user loses advertiser privileges on the ad account, Meta serves the
    account's leads without ad, ad set and campaign ids. The next daily run replaces the lookback window's
    leads: without the earlier ids they would drop out of cost_per_lead and lead_reconciliation. A lead's
    ad never changes, so the rerun keeps the ids (and names) of the earlier pull; the rest of each row is
    the rerun's, and the manifest counts the leads (`ad_ids_kept`). A still clock: no lead arrives
    between the pulls."""
    sb = sandbox_factory(now=STILL_CLOCK)
    world = sb.world()
    account = world["accounts"][1]
    page = next(p for p in world["pages"] if p["id"] == account["page_id"])
    day = today(sb)
    use_connection(monkeypatch, sb)
    run_leads(tmp_path / "lake", page["id"], day, lookback_days=10)
    first = {r["lead_id"]: r for r in read(tmp_path / "lake", "leads").to_pylist()}

    use_connection(monkeypatch, sb, token=f"sandbox-token-not-advertiser-on-{account['account_id']}")
    run_leads(tmp_path / "without_role", page["id"], day, lookback_days=10)
    served = {r["lead_id"]: r for r in read(tmp_path / "without_role", "leads").to_pylist()}
    lost = [lead_id for lead_id, row in first.items() if row["ad_id"] and not served[lead_id]["ad_id"]]
    assert lost, "without the advertiser role the account's leads come without ad ids"
    summary = run_leads(tmp_path / "lake", page["id"], day, lookback_days=10)  # the rerun

    rerun = {r["lead_id"]: r for r in read(tmp_path / "lake", "leads").to_pylist()}
    assert sorted(rerun) == sorted(first) == sorted(served)
    dropped = [lead_id for lead_id in lost if not rerun[lead_id]["ad_id"]]
    assert not dropped, f"{len(dropped)} of {len(first)} leads lost the ad ids of the earlier pull"
    for lead_id, row in rerun.items():
        assert {f: row[f] for f in AD_FIELDS} == {f: first[lead_id][f] for f in AD_FIELDS}, lead_id
        rest = {k: v for k, v in row.items() if k not in AD_FIELDS and k != "_extracted_at"}
        assert rest == {k: v for k, v in served[lead_id].items() if k in rest}, lead_id
    manifest = json.loads(Path(summary["manifest"]).read_text())
    assert manifest["ad_ids_kept"] == len(lost)
    assert {row["_extracted_at"].isoformat() for row in rerun.values()} == {manifest["extracted_at"]}


# --- errors ------------------------------------------------------------------------------------------


def test_a_bad_page_id_names_the_page(sandbox, conn, tmp_path):
    with pytest.raises(MetaParameterError, match=r"Page 999000111 was not found.*leads_retrieval"):
        run_leads(tmp_path, "999000111", today(sandbox), lookback_days=2)


def test_a_token_without_leads_retrieval_names_the_page_and_the_permission(
    sandbox, world, monkeypatch, tmp_path
):
    use_connection(monkeypatch, sandbox, token="sandbox-token-without-leads_retrieval")
    page_id = world["pages"][0]["id"]
    with pytest.raises(
        MetaPermissionError, match=rf"Page {page_id}: permission 'leads_retrieval' is missing"
    ):
        run_leads(tmp_path, page_id, today(sandbox), lookback_days=2)


def test_a_token_without_pages_manage_ads_names_that_permission(sandbox, world, monkeypatch, tmp_path):
    """Meta names the permission it misses (meta_api_facts.md section 5.2 lists five for leads): the error
    names that one, not leads_retrieval, which the token has."""
    use_connection(monkeypatch, sandbox, token="sandbox-token-without-pages_manage_ads")
    page_id = world["pages"][0]["id"]
    with pytest.raises(
        MetaPermissionError, match=rf"Page {page_id}: permission 'pages_manage_ads' is missing"
    ):
        run_leads(tmp_path, page_id, today(sandbox), lookback_days=2)


def lake_files(lake: Path) -> dict[str, bytes]:
    return {str(p.relative_to(lake)): p.read_bytes() for p in sorted(lake.rglob("*.parquet"))}


@pytest.fixture
def filled_lake(sandbox, world, conn, tmp_path):
    """A lake that already holds a good extraction of every promoted Page: bad input must not touch it."""
    for page in world["pages"][:3]:
        run_leads(tmp_path, page["id"], today(sandbox), lookback_days=3)
    before = lake_files(tmp_path)
    assert before
    return tmp_path, before


def test_a_token_of_another_page_is_named_and_the_lake_is_kept(sandbox, world, monkeypatch, filled_lake):
    lake, before = filled_lake
    owner, target = world["pages"][0], world["pages"][1]
    use_connection(monkeypatch, sandbox, token=page_token(sandbox, owner["id"]))
    with pytest.raises(MetaTokenError, match=(
        rf"Page {target['id']}: the connection 'meta_default' holds the Page access token of Page "
        rf"{owner['id']} \(Acme Solar\), not a user token.*Store a user or system-user token"
    )):  # fmt: skip
        run_leads(lake, target["id"], today(sandbox), lookback_days=3)
    assert lake_files(lake) == before


@pytest.mark.parametrize("kind", ["leadgenform", "iguser", "campaign"])
def test_an_id_that_is_not_a_page_says_what_it_is_and_the_lake_is_kept(sandbox, world, filled_lake, kind):
    lake, before = filled_lake
    not_a_page = {
        "leadgenform": world["pages"][0]["forms"][0],
        "iguser": world["pages"][0]["instagram_id"],
        "campaign": world["accounts"][0]["campaigns"][0]["id"],
    }[kind]
    with pytest.raises(MetaParameterError, match=(
        rf"pages\[\]\.id {not_a_page} is not a Page: Meta says it is a {kind}\. Use the Page's numeric id"
    )):  # fmt: skip
        run_leads(lake, not_a_page, today(sandbox), lookback_days=3)
    assert lake_files(lake) == before


def test_a_form_of_another_page_is_named_with_its_page_and_the_lake_is_kept(sandbox, world, filled_lake):
    lake, before = filled_lake
    page, other = world["pages"][0], world["pages"][1]
    foreign = other["forms"][0]
    with pytest.raises(MetaConfigError, match=(
        rf"lead form {foreign} belongs to Page {other['id']}, not to Page {page['id']}\. Move it under"
    )):  # fmt: skip
        run_leads(lake, page["id"], today(sandbox), lookback_days=3, form_ids=[page["forms"][0], foreign])
    assert lake_files(lake) == before
    # the Page's own form alone is fine, and only that form is read
    run_leads(lake, page["id"], today(sandbox), lookback_days=3, form_ids=[page["forms"][1]])
    assert {r["form_id"] for r in read(lake, "leads").to_pylist() if r["page_id"] == page["id"]} == {
        page["forms"][1]
    }


def test_a_user_token_where_a_page_token_is_needed_is_explained(sandbox, world, conn):
    page_id = world["pages"][0]["id"]
    user_hook = MetaGraphApiHook(meta_conn_id="meta_default")
    with pytest.raises(MetaTokenError) as caught:
        list(user_hook.paginate(f"{page_id}/leadgen_forms", {"fields": "id"}))
    explained = page_error(caught.value, page_id, "leads_retrieval")
    assert isinstance(explained, MetaPermissionError)
    assert f"Page {page_id}: this call needs a Page access token" in str(explained)
    assert "leads_retrieval" in str(explained)


def test_pages_can_be_discovered_from_me_accounts(sandbox, world, conn):
    hook = MetaGraphApiHook(meta_conn_id="meta_default")
    assert discover_page_ids(hook) == [p["id"] for p in world["pages"]]


def test_per_form_leads_match_the_forms_csv_export(sandbox, world, conn, tmp_path):
    """Seed 003's other bulk path (the TSV export, from_date/to_date) as an independent per-form check."""
    day = today(sandbox)
    page = world["pages"][2]
    run_leads(tmp_path, page["id"], day, lookback_days=7)
    start, end = utc_window(day, 7)
    lake_ids = collections.defaultdict(set)
    for row in read(tmp_path, "leads").to_pylist():
        lake_ids[row["form_id"]].add(row["lead_id"])
    token = page_token(sandbox, page["id"])
    checked = 0
    for form_id in page["forms"]:
        response = requests.get(
            f"{sandbox.url}/ads/lead_gen/export_csv/",
            params={"id": form_id, "type": "form", "from_date": int(start.timestamp()),
                    "to_date": int(end.timestamp()) - 1, "access_token": token},
            timeout=30,
        )  # fmt: skip
        response.raise_for_status()
        header, *lines = response.text.splitlines()
        id_column = header.split("\t").index("id")
        exported = {line.split("\t")[id_column] for line in lines if line}
        assert lake_ids[form_id] == exported, form_id
        checked += len(exported)
    assert checked > 0
