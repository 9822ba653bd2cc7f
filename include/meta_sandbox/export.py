"""``GET /ads/lead_gen/export_csv/?id=<form>&type=form&from_date=&to_date=`` (seed 003).

Served on the sandbox host (Meta serves it on www.facebook.com, outside the versioned Graph API).
Tab-separated, UTF-8, one header line. ``from_date`` defaults to (and is clamped to) the form's
creation, ``to_date`` to now. Columns: id, created_time, ad_id, ad_name, adset_id, adset_name,
campaign_id, campaign_name, form_id, form_name, is_organic (1/0), platform, then every field_data
name of the form (full_name, email, phone_number, custom questions). Organic and ad-preview leads
leave the ad columns empty, and so do leads of an account the requester is no advertiser on (seed
003). Needs the lead permissions (``auth.LEAD_PERMISSIONS``); charged to the Page's leadgen budget.
"""

from __future__ import annotations

from meta_sandbox import auth, leads
from meta_sandbox.clock import graph_time
from meta_sandbox.errors import missing_object, param_error
from meta_sandbox.world import LeadForm


def export_csv(sandbox, ctx):
    from meta_sandbox.app import Response

    params = ctx.params
    auth.require_leads(ctx.principal)
    if str(params.get("type", "form")) != "form":
        raise param_error("Param type must be 'form'")
    form = sandbox.world.by_id.get(str(params.get("id", "")))
    if not isinstance(form, LeadForm):
        raise missing_object(str(params.get("id", "")))
    created = form.created_day * 86400
    now = int(sandbox.clock.now().timestamp())
    try:
        lo = max(created, int(params.get("from_date") or created))
        hi = min(now, int(params.get("to_date") or now))
    except ValueError as exc:
        raise param_error("from_date and to_date must be POSIX timestamps") from exc
    rows = [
        lead for lead in sandbox.page_leads(form.page) if lead.form is form and lo <= lead.created_ts <= hi
    ]
    questions = ["full_name", "email", "phone_number"] + [q["key"] for q in form.questions]
    header = [
        "id",
        "created_time",
        "ad_id",
        "ad_name",
        "adset_id",
        "adset_name",
        "campaign_id",
        "campaign_name",
        "form_id",
        "form_name",
        "is_organic",
        "platform",
        *questions,
    ]
    lines = ["\t".join(header)]
    for lead in sorted(rows, key=lambda r: r.created_ts):
        ad = lead.ad if leads.ad_ids_visible(lead, ctx.principal) else None
        data = {d["name"]: ",".join(d["values"]) for d in leads.field_data(lead)}
        cells = [
            lead.id,
            graph_time(lead.created_ts),
            ad.id if ad else "",
            ad.name if ad else "",
            ad.adset.id if ad else "",
            ad.adset.name if ad else "",
            ad.campaign.id if ad else "",
            ad.campaign.name if ad else "",
            form.id,
            form.name,
            "1" if lead.is_organic else "0",
            "ig" if leads.lead_platform(lead) == "instagram" else "fb",
            *[data.get(q, "") for q in questions],
        ]
        lines.append("\t".join(c.replace("\t", " ") for c in cells))
    body = ("\n".join(lines) + "\n").encode()
    return Response(
        200,
        body,
        content_type="text/csv; charset=UTF-8",
        headers={"Content-Disposition": f'attachment; filename="{form.id}.tsv"'},
    )
