"""Lead Ads: Page tokens, forms, leads (filters, organic, disclaimers), export_csv, the lead budget."""

from __future__ import annotations

import calendar
import datetime as dt

import pytest

NOW = "2026-03-15T12:00:00Z"


@pytest.fixture(scope="module")
def sb(module_sandbox_factory):
    return module_sandbox_factory(now=NOW)


@pytest.fixture(scope="module")
def g(sb, graph_for):
    return graph_for(sb)


@pytest.fixture(scope="module")
def w(sb):
    return sb.world()


@pytest.fixture(scope="module")
def page(w):
    return w["pages"][0]


@pytest.fixture(scope="module")
def pg(sb, g, page, graph_for):
    """A client holding the Page token of the first Page."""
    return graph_for(sb, token=g.page_token(page["id"]))


def _ts(iso: str) -> int:
    return calendar.timegm(dt.datetime.fromisoformat(iso).utctimetuple())


def test_me_accounts_serves_page_tokens(g, w):
    body = g.ok("me/accounts", fields="id,name,access_token,tasks", summary="true")
    assert {p["id"] for p in body["data"]} == {p["id"] for p in w["pages"]}
    assert body["summary"]["total_count"] == len(w["pages"]) == 5  # 3 promoted Pages + 2 no account promotes
    for p in body["data"]:
        assert p["access_token"].startswith("EAAP") and "MESSAGING" in p["tasks"]
    tok = g.ok(w["pages"][1]["id"], fields="access_token")
    assert set(tok) == {"access_token", "id"}


def test_page_edges_need_a_page_token_of_that_page(g, w, page, pg, error_of):
    for edge in ("leadgen_forms", "conversations"):
        status, body, _ = g.get(f"{page['id']}/{edge}")
        err = error_of(body)
        assert status == 400 and err["code"] == 190 and "Page Access Token" in err["message"]
    status, body, _ = pg.get(f"{w['pages'][1]['id']}/leadgen_forms")
    assert status == 400 and error_of(body)["code"] == 190
    status, body, _ = pg.get("me/accounts")
    assert status == 400 and error_of(body)["code"] == 100


def test_leadgen_forms_of_a_page(pg, page):
    forms = pg.ok(f"{page['id']}/leadgen_forms", fields="id,name,status,leads_count,questions,locale")["data"]
    assert [f["id"] for f in forms] == page["forms"]
    for f in forms:
        assert f["status"] == "ACTIVE" and isinstance(f["leads_count"], int) and f["leads_count"] > 0
        assert {"full_name", "email", "phone_number"} <= {q["key"] for q in f["questions"]}


def test_form_leads_with_time_created_filters(pg, page):
    form = page["forms"][0]
    fields = "id,created_time,ad_id,form_id,field_data,is_organic,campaign_id,platform"
    everything = pg.page_all(f"{form}/leads", fields=fields, limit=50)
    assert everything and all(lead["form_id"] == form for lead in everything)
    times = [_ts(lead["created_time"].replace("+0000", "+00:00")) for lead in everything]
    assert times == sorted(times, reverse=True)
    pivot = times[len(times) // 2]
    for op, keep in (
        ("GREATER_THAN", lambda t: t > pivot),
        ("LESS_THAN", lambda t: t < pivot),
        ("GREATER_THAN_OR_EQUAL", lambda t: t >= pivot),
    ):
        got = pg.page_all(
            f"{form}/leads",
            fields="id,created_time",
            limit=100,
            filtering=[{"field": "time_created", "operator": op, "value": pivot}],
        )
        assert len(got) == sum(1 for t in times if keep(t)), op
    # Graph parses relaxed JSON too.
    lax = pg.ok(
        f"{form}/leads",
        fields="id",
        limit=500,
        filtering=f"[{{'field':'time_created','operator':'GREATER_THAN','value':{pivot}}}]",
    )
    assert len(lax["data"]) == sum(1 for t in times if t > pivot)
    organic = [lead for lead in everything if lead["is_organic"]]
    paid = [lead for lead in everything if not lead["is_organic"]]
    assert organic and paid
    assert all("ad_id" not in lead and "campaign_id" not in lead for lead in organic)
    with_ad = [lead for lead in paid if "ad_id" in lead]
    assert with_ad and all(lead["ad_id"] and lead["campaign_id"] for lead in with_ad)
    # seed 003: a paid lead without ad ids came from an ad preview (its id says so in the sandbox)
    previews = [lead for lead in paid if "ad_id" not in lead]
    assert previews and all("campaign_id" not in lead and lead["id"][1] == "2" for lead in previews)
    assert {lead["platform"] for lead in everything} <= {"fb", "ig"}


@pytest.mark.parametrize("op", ["LESS_THAN_OR_EQUAL", "EQUAL"])
def test_a_time_created_filter_takes_only_the_three_documented_operators(pg, page, error_of, op):
    """Seed 003: "El parámetro operator tiene uno de los siguientes valores": LESS_THAN, GREATER_THAN,
    GREATER_THAN_OR_EQUAL. Any other operator is refused, not applied."""
    status, body, _ = pg.get(
        f"{page['forms'][0]}/leads",
        filtering=[{"field": "time_created", "operator": op, "value": 1773500000}],
    )
    err = error_of(body)
    assert status == 400 and err["code"] == 100 and op in err["message"], body


def test_field_data_has_pii_and_custom_questions(pg, page):
    lead = pg.ok(f"{page['forms'][1]}/leads", fields="field_data", limit=1)["data"][0]
    names = [f["name"] for f in lead["field_data"]]
    assert names[:3] == ["full_name", "email", "phone_number"] and len(names) == 5
    assert all(isinstance(f["values"], list) and isinstance(f["values"][0], str) for f in lead["field_data"])
    assert "@" in lead["field_data"][1]["values"][0]


def test_lead_node_and_custom_disclaimer_responses(pg, page):
    lead_id = pg.ok(f"{page['forms'][0]}/leads", fields="id", limit=1)["data"][0]["id"]
    body = pg.ok(lead_id, fields="custom_disclaimer_responses")
    assert set(body) == {"custom_disclaimer_responses", "id"}
    for item in body["custom_disclaimer_responses"]:
        assert set(item) == {"checkbox_key", "is_checked"} and item["is_checked"] in ("1", "")
    default = pg.ok(lead_id)
    assert {"id", "created_time", "field_data", "form_id"} <= set(default)


def test_ad_leads_match_lead_grouped_actions(sb, g, pg, w, page):
    acct = next(a for a in w["accounts"] if a["page_id"] == page["id"])
    lead_ads = [ad for c in acct["campaigns"] if c["kind"] == "leads" for s in c["adsets"] for ad in s["ads"]]
    ad = lead_ads[0]
    leads = pg.page_all(f"{ad}/leads", fields="id,created_time,ad_id", limit=100)
    assert leads and {lead["ad_id"] for lead in leads} == {ad}
    rows = g.page_all(f"{ad}/insights", time_increment=1, date_preset="maximum", fields="actions", limit=500)
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(acct["timezone_name"])
    by_day: dict[str, int] = {}
    for lead in leads:
        t = dt.datetime.fromisoformat(lead["created_time"].replace("+0000", "+00:00")).astimezone(tz)
        by_day[t.date().isoformat()] = by_day.get(t.date().isoformat(), 0) + 1
    reported = {}
    for r in rows:
        for a in r.get("actions", []):
            if a["action_type"] == "onsite_conversion.lead_grouped":
                reported[r["date_start"]] = int(a["value"])
    assert reported == by_day


def test_lead_permission_errors(sb, g, page, graph_for, error_of):
    no_leads = graph_for(sb, token="sandbox-token-without-leads_retrieval")
    tok = no_leads.page_token(page["id"])
    status, body, _ = graph_for(sb, token=tok).get(f"{page['forms'][0]}/leads")
    err = error_of(body)
    assert status == 400 and err["code"] == 10 and "leads_retrieval" in err["message"]


def test_export_csv_is_a_tsv_of_the_forms_leads(sb, pg, page):
    import requests

    form = page["forms"][0]
    frm, to = _ts("2026-03-01T00:00:00+00:00"), _ts("2026-03-08T00:00:00+00:00")
    resp = requests.get(
        f"{sb.url}/ads/lead_gen/export_csv/",
        timeout=30,
        params={"id": form, "type": "form", "from_date": frm, "to_date": to, "access_token": pg.token},
    )
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/csv")
    lines = resp.text.strip().split("\n")
    header = lines[0].split("\t")
    assert header[:2] == ["id", "created_time"] and "is_organic" in header and "email" in header
    api = pg.page_all(
        f"{form}/leads",
        fields="id",
        limit=500,
        filtering=[
            {"field": "time_created", "operator": "GREATER_THAN_OR_EQUAL", "value": frm},
            {"field": "time_created", "operator": "LESS_THAN", "value": to + 1},
        ],
    )
    assert sorted(line.split("\t")[0] for line in lines[1:]) == sorted(lead["id"] for lead in api)
    assert {line.split("\t")[header.index("is_organic")] for line in lines[1:]} == {"0", "1"}


def test_lead_retrieval_budget_rises_and_ends_in_80005(sandbox_factory, graph_for, error_of):
    import json

    # 200 x 24 x leads-in-90-days, scaled down so a test can spend it.
    sb = sandbox_factory(now=NOW, leadgen_budget_scale=0.00001)
    g = graph_for(sb)
    page = sb.world()["pages"][0]
    pg = graph_for(sb, token=g.page_token(page["id"]))
    form = page["forms"][0]
    pct, status, body, headers = [], 200, None, None
    for _ in range(100):
        status, body, headers = pg.get(f"{form}/leads", fields="id", limit=1)
        buc = json.loads(headers["x-business-use-case-usage"])
        entry = next(e for e in buc[page["id"]] if e["type"] == "leadgen")
        pct.append(entry["call_count"])
        if status != 200:
            break
    err = error_of(body)
    assert status == 400 and err["code"] == 80005
    assert pct == sorted(pct) and pct[-1] == 100 and entry["estimated_time_to_regain_access"] > 0


@pytest.mark.parametrize(
    "missing", ["pages_manage_ads", "pages_read_engagement", "pages_show_list", "ads_management"]
)
def test_reading_leads_needs_every_lead_permission_not_only_leads_retrieval(
    sb, pg, page, graph_for, error_of, missing
):
    """Retrieving Leads (meta_api_facts.md section 5.2): leads_retrieval, ads_management, pages_show_list,
    pages_read_engagement and pages_manage_ads. A Page token of a user with leads_retrieval but not one
    of the others is refused on the form's leads edge, a lead node and the TSV export, naming what it lacks."""
    lead_id = pg.ok(f"{page['forms'][0]}/leads", limit=1)["data"][0]["id"]
    user = graph_for(sb, token=f"sandbox-token-without-{missing}")
    lacking = graph_for(sb, token=user.page_token(page["id"]))
    for path in (f"{page['forms'][0]}/leads", lead_id):
        status, body, _ = lacking.get(path)
        err = error_of(body)
        assert status == 400 and missing in err["message"], (path, body)
        assert err["code"] == (200 if missing == "ads_management" else 10)
    status, body, _ = lacking.call(
        "GET", "ads/lead_gen/export_csv/", version="", id=page["forms"][0], type="form"
    )
    assert status == 400 and missing in error_of(body)["message"]
