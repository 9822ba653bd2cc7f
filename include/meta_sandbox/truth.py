"""Ground truth: what a correct pipeline's marts must contain, as of the sandbox clock.

See DESIGN.md ("Definitions the truth uses"). Built from the same generators that serve the API:
- accounts: per (account, local date) with delivery: spend, impressions, clicks, ``leads_reported``
  (the ``lead`` action's value = onsite lead_grouped + reported pixel leads), ``leads_collected``
  (paid lead records by local created date), ``conversations_started_reported`` (the reported
  ``onsite_conversion.messaging_conversation_started_7d``), ``leads_collected_unattributed``
  (ad-preview leads of the Page the account promotes: paid, never an ad id; seed 003). Every ad
  counts, whatever its status: paused, archived and deleted ads included (what really happened, not
  what a default listing shows). ``partial`` is true for the account's current local day (numbers as
  they stand at the clock), and ``day_status`` is ``partial``, ``restating`` (complete, younger than
  28 days: conversions may still be restated) or ``settled``.
- pages: per (page, platform, local date) with a start or a lead: ``conversations_started`` (user
  messages that are first or come >= 7 days after the previous message) and ``organic_leads``
  (organic lead records by local created date; platform from the lead's ``platform`` field:
  ``fb`` -> messenger, ``ig`` -> instagram), plus ``conversations_started_beyond_reach`` (of those
  starts, the ones whose message is older than the 20 most recent of its conversation as of the
  clock: the API gives only its id and created_time), ``conversations_started_standard_access``
  (the starts in conversations with people who have a role on the app: all a Standard Access token
  sees, seed 004), ``leads_collected`` (paid leads with an ad) and ``leads_collected_unattributed``
  (ad-preview leads); ``partial`` as for accounts. A Page's local dates are its promoting account's,
  UTC for a Page no account promotes.
- breakdowns: per breakdown set of ``TRUTH_BREAKDOWNS`` (key: its names joined by ``,``), per (account,
  local date, breakdown values) with something reported: spend, impressions, clicks, ``leads_reported``
  and ``conversations_started_reported``, the ad-day numbers split as the Insights rows with that
  ``breakdowns`` split them (breakdowns.py); they sum to the account-day's numbers above. No reach:
  reach does not sum across ads or breakdown values.
- archived_or_deleted_ads: per (account, ad, local date) with something reported, for the ads whose
  effective status at the clock is ARCHIVED or DELETED (the rows a default Insights listing drops).
Only dates inside each account's (Page's) served window (history up to the current day, which is
served as it stands at the clock) appear.
"""

from __future__ import annotations

import collections

from meta_sandbox import breakdowns as bd
from meta_sandbox.clock import graph_time
from meta_sandbox.conversations import beyond_reach, day_conversations, starts
from meta_sandbox.insights import _SALT, date_str, money
from meta_sandbox.leads import lead_platform, organic_leads, paid_leads, preview_leads
from meta_sandbox.metrics import RESTATEMENT_DAYS, split_windows
from meta_sandbox.world import TERMINAL_STATUSES

TRUTH_BREAKDOWNS = (
    ("publisher_platform", "platform_position"),
    ("age", "gender"),
    ("country",),
    ("device_platform",),
)
"""The breakdown sets whose truth ``/_sandbox/truth`` gives (the pipeline's presets)."""

PAGE_COUNTS = (
    "conversations_started",
    "organic_leads",
    "conversations_started_beyond_reach",
    "conversations_started_standard_access",
    "leads_collected",
    "leads_collected_unattributed",
)


def day_status(day: int, today: int) -> str:
    if day >= today:
        return "partial"
    return "settled" if today - day >= RESTATEMENT_DAYS else "restating"


def truth(sandbox, since_day: int | None, until_day: int | None) -> dict:
    accounts_out = []
    pages_out = []
    retired_out = []
    breakdowns_out: dict[str, list[dict]] = {",".join(names): [] for names in TRUTH_BREAKDOWNS}
    for account in sandbox.world.accounts:
        start, today = sandbox.window(account)
        lo = start if since_day is None else max(start, since_day)
        hi = today if until_day is None else min(today, until_day)
        ads = sandbox.ads_of(account, lo, hi)
        retired = {ad.id for ad in ads if ad.effective_status(today) in TERMINAL_STATUSES}
        splitters = [bd.Splitter(names, account) for names in TRUTH_BREAKDOWNS]
        for day in range(lo, hi + 1):
            spend = imp = clicks = leads_rep = leads_col = conv_rep = 0
            any_delivery = False
            by_value = [[bd.empty_totals() for _ in s.values] for s in splitters]
            for ad in ads:
                dl = sandbox.observed(ad, day, today)
                if dl is None:
                    continue
                any_delivery = True
                pixel, conv, _reply = dl.reported(today)
                for splitter, totals in zip(splitters, by_value, strict=True):
                    parts = splitter.split(
                        dl, dl.reported(today), lambda name, v, h=dl.h: split_windows(v, h ^ _SALT[name])
                    )
                    for into, part in zip(totals, parts, strict=True):
                        bd.add(into, part)
                spend += dl.spend_cents
                imp += dl.impressions
                clicks += dl.clicks
                leads_rep += dl.leads_onsite + pixel
                leads_col += dl.leads_onsite
                conv_rep += conv
                if ad.id in retired:
                    retired_out.append(
                        {
                            "account_id": account.account_id,
                            "ad_id": ad.id,
                            "date": date_str(day),
                            "effective_status": ad.effective_status(today),
                            "spend": money(dl.spend_cents),
                            "impressions": dl.impressions,
                            "leads_reported": dl.leads_onsite + pixel,
                            "leads_collected": dl.leads_onsite,
                            "conversations_started_reported": conv,
                        }
                    )
            if any_delivery:
                accounts_out.append(
                    {
                        "account_id": account.account_id,
                        "date": date_str(day),
                        "currency": account.currency,
                        "spend": money(spend),
                        "impressions": imp,
                        "clicks": clicks,
                        "leads_reported": leads_rep,
                        "leads_collected": leads_col,
                        "conversations_started_reported": conv_rep,
                        "leads_collected_unattributed": len(
                            _before(preview_leads(sandbox, account.page, day), sandbox.cutoff_ts(account))
                        ),
                        "partial": day >= today,
                        "day_status": day_status(day, today),
                    }
                )
                for splitter, totals in zip(splitters, by_value, strict=True):
                    out = breakdowns_out[",".join(splitter.breakdowns)]
                    for (values, _weight), t in zip(splitter.values, totals, strict=True):
                        if bd.has_data(t):
                            out.append(
                                {
                                    "account_id": account.account_id,
                                    "date": date_str(day),
                                    **dict(zip(splitter.breakdowns, values, strict=True)),
                                    "spend": money(t["spend"]),
                                    "impressions": t["impressions"],
                                    "clicks": t["clicks"],
                                    "leads_reported": t["onsite"] + t["pixel"],
                                    "conversations_started_reported": t["conv"],
                                }
                            )
    for page in sandbox.world.pages:
        pages_out.extend(_page_rows(sandbox, page, since_day, until_day))
    pages_out.sort(key=lambda r: (r["page_id"], r["date"], r["platform"]))
    return {
        "as_of": sandbox.clock.now().isoformat(),
        "as_of_graph_time": graph_time(sandbox.clock.now().timestamp()),
        "accounts": accounts_out,
        "pages": pages_out,
        "archived_or_deleted_ads": retired_out,
        "breakdowns": breakdowns_out,
    }


def _before(leads: list, cutoff: int) -> list:
    """The leads created before the clock (today's so far)."""
    return [lead for lead in leads if lead.created_ts < cutoff]


def _page_rows(sandbox, page, since_day: int | None, until_day: int | None) -> list[dict]:
    start, today = sandbox.window(page)
    lo = start if since_day is None else max(start, since_day)
    hi = today if until_day is None else min(today, until_day)
    cutoff = sandbox.cutoff_ts(page)
    counts: dict[tuple[str, int], collections.Counter] = collections.defaultdict(collections.Counter)
    # Starts can come from conversations born up to (window) days earlier; all are born in-window.
    for born in range(start, today + 1):
        for conv in day_conversations(sandbox, page, born):
            for m in starts(conv, cutoff):
                d = sandbox.local_day(page, m.ts)
                if lo <= d <= hi:
                    row = counts[(conv.platform, d)]
                    row["conversations_started"] += 1
                    row["conversations_started_beyond_reach"] += beyond_reach(conv, m, cutoff)
                    row["conversations_started_standard_access"] += conv.user_has_app_role
    for day in range(lo, hi + 1):
        for lead in _before(organic_leads(sandbox, page, day), cutoff):
            counts[(lead_platform(lead), day)]["organic_leads"] += 1
        for ad in sandbox.page_ads(page, "leads", day):
            for lead in _before(paid_leads(sandbox, ad, day), cutoff):
                counts[(lead_platform(lead), day)]["leads_collected"] += 1
        for lead in _before(preview_leads(sandbox, page, day), cutoff):
            counts[(lead_platform(lead), day)]["leads_collected_unattributed"] += 1
    return [
        {
            "page_id": page.id,
            "platform": platform,
            "date": date_str(day),
            **{name: row[name] for name in PAGE_COUNTS},
            "partial": day >= today,
        }
        for (platform, day), row in counts.items()
    ]
