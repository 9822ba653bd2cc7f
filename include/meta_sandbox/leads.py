"""Lead-form records (paid and organic) per Page, generated from the daily facts.

Guarantees:
- Paid leads of ad A on account-local day D: exactly ``delivery(A, D).leads_onsite`` records, each
  with ``created_time`` inside local day D (so ``onsite_conversion.lead_grouped`` matches them).
- Organic leads (``is_organic: true``, no ad/campaign ids) per Page and local day: a Poisson count.
- Ad-preview leads (seed 003: a lead "puede enviarse desde una vista previa del anuncio"): forms
  submitted from an ad's preview, per Page with lead ads and local day (Poisson, mean
  ``PREVIEW_LEADS_PER_DAY``): ``is_organic: false`` and never any ad/ad set/campaign id. No ad
  delivered them, so Insights never counts them.
- Seed 003 again: ad ids are given only to a requester with advertiser privileges on the ad
  account; ``render(..., ad_ids_visible=False)`` leaves them out (the caller decides per token).
- A Page with ``collects_leads`` False has its forms but never a lead.
- Only leads created before the clock exist: the history window's days and today so far (the same
  days insights serve).
- Lead ids are 16-digit numeric strings that encode their place, so ``GET /<lead_id>`` needs no index:
  ``7`` + kind (0 paid / 1 organic / 2 ad preview) + owner (5 digits: ad global index or Page index)
  + day (5) + seq (4).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from meta_sandbox import rng
from meta_sandbox.clock import from_day_number

FIRST_NAMES = [
    "Ana",
    "Ravi",
    "Lena",
    "Tom",
    "Priya",
    "Jonas",
    "Maria",
    "Arjun",
    "Sofia",
    "Lukas",
    "Emma",
    "Kabir",
    "Mia",
    "Noah",
    "Isha",
    "Felix",
    "Olivia",
    "Rohan",
    "Clara",
    "Liam",
]
LAST_NAMES = [
    "Garcia",
    "Sharma",
    "Müller",
    "Smith",
    "Patel",
    "Schmidt",
    "Rossi",
    "Iyer",
    "Lopez",
    "Weber",
    "Brown",
    "Nair",
    "Fischer",
    "Khan",
    "Silva",
    "Meyer",
    "Jones",
    "Reddy",
    "Wagner",
    "Costa",
]
PREVIEW_LEADS_PER_DAY = 0.3
"""Leads submitted from ad previews, per Page with lead ads and local day (mean)."""
PHONE_PREFIX = {
    "USD": "+1415555",
    "INR": "+9198765",
    "EUR": "+49151",
    "GBP": "+447700",
    "BRL": "+55119",
    "AUD": "+61412",
    "MXN": "+52155",
}


@dataclasses.dataclass(eq=False)
class Lead:
    id: str
    created_ts: int  # unix seconds
    page: object
    form: object
    ad: object | None
    is_organic: bool
    h: int
    is_preview: bool = False  # submitted from an ad preview: paid (not organic) but no ad

    def local_day(self) -> int:
        tz = self.page.tz
        return (dt.datetime.fromtimestamp(self.created_ts, tz).date() - dt.date(1970, 1, 1)).days


PAID, ORGANIC, PREVIEW = 0, 1, 2


def lead_id(kind: int, owner: int, day: int, seq: int) -> str:
    return f"7{int(kind)}{owner:05d}{day:05d}{seq:04d}"


def parse_lead_id(ident: str) -> tuple[int, int, int, int] | None:
    """(kind, owner, day, seq): kind PAID (owner = ad global index), ORGANIC or PREVIEW (owner = Page index)."""
    if len(ident) != 16 or not ident.isdigit() or ident[0] != "7" or ident[1] not in "012":
        return None
    return int(ident[1]), int(ident[2:7]), int(ident[7:12]), int(ident[12:16])


def _created_ts(tz, day: int, h: int) -> int:
    d = from_day_number(day)
    midnight = dt.datetime(d.year, d.month, d.day, tzinfo=tz)
    return int(midnight.timestamp()) + int(rng.unit(h) * 86399)


def paid_leads(sandbox, ad, day: int) -> list[Lead]:
    dl = sandbox.delivery(ad, day)
    n = dl.leads_onsite if dl else 0
    page = ad.account.page
    out = []
    for seq in range(n):
        h = rng.mix64(ad.key ^ (day << 20) ^ (seq + 1) ^ 0x5EED)
        out.append(
            Lead(
                lead_id(PAID, ad.gindex, day, seq), _created_ts(page.tz, day, h), page, ad.form, ad, False, h
            )
        )
    return out


def organic_leads(sandbox, page, day: int) -> list[Lead]:
    cfg = sandbox.world.config
    if not page.collects_leads or not page.forms:
        return []
    h0 = rng.mix64(rng.key(cfg.seed, "organic-leads", page.index) ^ day)
    n = rng.poisson(cfg.organic_leads_per_day, rng.unit(h0))
    out = []
    for seq in range(n):
        h = rng.mix64(h0 ^ (seq + 1))
        form = page.forms[h % len(page.forms)]
        out.append(
            Lead(
                lead_id(ORGANIC, page.index, day, seq),
                _created_ts(page.tz, day, h),
                page,
                form,
                None,
                True,
                h,
            )
        )
    return out


def preview_leads(sandbox, page, day: int) -> list[Lead]:
    """Leads submitted from the preview of one of the Page's lead ads: not organic, never an ad id."""
    if not page.collects_leads or not page.lead_ads:
        return []
    h0 = rng.mix64(rng.key(sandbox.world.config.seed, "preview-leads", page.index) ^ day)
    out = []
    for seq in range(rng.poisson(PREVIEW_LEADS_PER_DAY, rng.unit(h0))):
        h = rng.mix64(h0 ^ (seq + 1) ^ 0x9E)
        form = page.lead_ads[h % len(page.lead_ads)].form
        out.append(
            Lead(
                lead_id(PREVIEW, page.index, day, seq),
                _created_ts(page.tz, day, h),
                page,
                form,
                None,
                False,
                h,
                is_preview=True,
            )
        )
    return out


def page_leads(sandbox, page) -> list[Lead]:
    """Every visible lead of a Page (today's up to the clock), newest first (cached by the caller)."""
    start, today = sandbox.window(page)
    cutoff = sandbox.cutoff_ts(page)
    out: list[Lead] = []
    for day in range(start, today + 1):
        for ad in sandbox.page_ads(page, "leads", day):
            out.extend(paid_leads(sandbox, ad, day))
        out.extend(organic_leads(sandbox, page, day))
        out.extend(preview_leads(sandbox, page, day))
    out = [lead for lead in out if lead.created_ts < cutoff]
    out.sort(key=lambda lead: (lead.created_ts, lead.id), reverse=True)
    return out


def find_lead(sandbox, ident: str) -> Lead | None:
    parsed = parse_lead_id(ident)
    if parsed is None:
        return None
    kind, owner, day, seq = parsed
    if kind in (ORGANIC, PREVIEW):
        if owner >= len(sandbox.world.pages):
            return None
        page = sandbox.world.pages[owner]
        start, today = sandbox.window(page)
        made = organic_leads if kind == ORGANIC else preview_leads
        candidates = made(sandbox, page, day) if start <= day <= today else []
    else:
        ad = sandbox.world.ad_for_gindex(owner, day)
        if ad is None or ad.form is None:
            return None
        start, today = sandbox.window(ad.account)
        candidates = paid_leads(sandbox, ad, day) if start <= day <= today else []
    lead = candidates[seq] if seq < len(candidates) else None
    return lead if lead is not None and lead.created_ts < sandbox.cutoff_ts(lead.page) else None


def lead_platform(lead: Lead) -> str:
    """Where the lead form was submitted: "instagram" (API value "ig") or "messenger" ("fb")."""
    return "instagram" if (lead.h >> 7) % 3 == 0 else "messenger"


def field_data(lead: Lead) -> list[dict]:
    """Realistic PII plus the form's custom questions (values are lists of strings, as Meta sends)."""
    h = lead.h
    first = rng.pick(FIRST_NAMES, h >> 8)
    last = rng.pick(LAST_NAMES, h >> 20)
    currency = lead.page.account.currency if lead.page.account else "USD"
    phone = PHONE_PREFIX.get(currency, "+1555") + f"{(h >> 32) % 100000:05d}"
    email_user = f"{first}.{last}".lower().replace("ü", "ue")
    data = [
        {"name": "full_name", "values": [f"{first} {last}"]},
        {"name": "email", "values": [f"{email_user}{(h >> 40) % 100}@example.com"]},
        {"name": "phone_number", "values": [phone]},
    ]
    for i, q in enumerate(lead.form.questions):
        if q["options"]:
            value = q["options"][(h >> (44 + i * 3)) % len(q["options"])]
        else:
            value = ["Los Angeles", "Mumbai", "Berlin", "London", "Austin", "Pune"][(h >> 50) % 6]
        data.append({"name": q["key"], "values": [value]})
    return data


def disclaimer_responses(lead: Lead) -> list[dict]:
    return [
        {"checkbox_key": "optional_1", "is_checked": "1" if (lead.h >> 3) & 1 else ""},
        {"checkbox_key": "optional_2", "is_checked": "1" if (lead.h >> 5) & 3 == 0 else ""},
    ]


def ad_ids_visible(lead: Lead, principal) -> bool:
    """Seed 003: ad, ad set and campaign ids only for a requester with advertiser privileges on the account."""
    return lead.ad is None or lead.ad.account.account_id not in getattr(principal, "not_advertiser_on", ())


def render(lead: Lead, fields: list[str], clock_graph_time, ad_ids_visible: bool = True) -> dict:
    """A lead node with the requested fields (unknown fields were rejected earlier)."""
    ad = lead.ad
    out: dict = {}
    for f in fields:
        if f == "id":
            out["id"] = lead.id
        elif f == "created_time":
            out["created_time"] = clock_graph_time(lead.created_ts)
        elif f == "field_data":
            out["field_data"] = field_data(lead)
        elif f == "custom_disclaimer_responses":
            out["custom_disclaimer_responses"] = disclaimer_responses(lead)
        elif f == "form_id":
            out["form_id"] = lead.form.id
        elif f == "is_organic":
            out["is_organic"] = lead.is_organic
        elif f == "platform":
            out["platform"] = "ig" if lead_platform(lead) == "instagram" else "fb"
        elif f in ("ad_id", "ad_name", "adset_id", "adset_name", "campaign_id", "campaign_name"):
            if ad is None or not ad_ids_visible:
                continue  # organic and ad-preview leads carry no ad fields, nor leads the requester may not attribute
            obj = {"ad": ad, "adset": ad.adset, "campaign": ad.campaign}[f.split("_")[0]]
            out[f] = obj.id if f.endswith("_id") else obj.name
        elif f == "partner_name" or f == "is_test_lead" or f == "retailer_item_id":
            continue
    if "id" not in out:
        out["id"] = lead.id
    return out


LEAD_FIELDS = {
    "id",
    "created_time",
    "field_data",
    "custom_disclaimer_responses",
    "form_id",
    "is_organic",
    "platform",
    "ad_id",
    "ad_name",
    "adset_id",
    "adset_name",
    "campaign_id",
    "campaign_name",
    "partner_name",
    "is_test_lead",
    "retailer_item_id",
    "home_listing",
    "vehicle",
    "post",
    "post_submission_check_result",
}
LEAD_DEFAULT_FIELDS = ["created_time", "id", "ad_id", "form_id", "field_data"]
