"""Ground truth: what a correct pipeline's marts must contain, as of the sandbox clock.

See DESIGN.md ("Definitions the truth uses"). Built from the same generators that serve the API:
- accounts: per (account, local date) with delivery: spend, impressions, clicks, ``leads_reported``
  (the ``lead`` action's value = onsite lead_grouped + reported pixel leads), ``leads_collected``
  (paid lead records by local created date), ``conversations_started_reported`` (the reported
  ``onsite_conversion.messaging_conversation_started_7d``). Every ad counts, whatever its status:
  paused, archived and deleted ads included (what really happened, not what a default listing shows).
  ``partial`` is true for the account's current local day (numbers as they stand at the clock), and
  ``day_status`` is ``partial``, ``restating`` (complete, younger than 28 days: conversions may still
  be restated) or ``settled``.
- pages: per (page, platform, local date) with a start or an organic lead: ``conversations_started``
  (user messages that are first or come >= 7 days after the previous message) and ``organic_leads``
  (organic lead records by local created date; platform from the lead's ``platform`` field:
  ``fb`` -> messenger, ``ig`` -> instagram); ``partial`` as for accounts.
- archived_or_deleted_ads: per (account, ad, local date) with something reported, for the ads whose
  effective status at the clock is ARCHIVED or DELETED (the rows a default Insights listing drops).
Only dates inside each account's served window (history up to the current day) appear.
"""

from __future__ import annotations

import collections

from meta_sandbox.clock import graph_time
from meta_sandbox.conversations import day_conversations, starts
from meta_sandbox.insights import date_str, money
from meta_sandbox.leads import lead_platform, organic_leads
from meta_sandbox.metrics import RESTATEMENT_DAYS
from meta_sandbox.world import TERMINAL_STATUSES


def day_status(day: int, today: int) -> str:
    if day >= today:
        return "partial"
    return "settled" if today - day >= RESTATEMENT_DAYS else "restating"


def truth(sandbox, since_day: int | None, until_day: int | None) -> dict:
    accounts_out = []
    pages_out = []
    retired_out = []
    for account in sandbox.world.accounts:
        start, today = sandbox.window(account)
        lo = start if since_day is None else max(start, since_day)
        hi = today if until_day is None else min(today, until_day)
        ads = sandbox.ads_of(account, lo, hi)
        retired = {ad.id for ad in ads if ad.effective_status(today) in TERMINAL_STATUSES}
        for day in range(lo, hi + 1):
            spend = imp = clicks = leads_rep = leads_col = conv_rep = 0
            any_delivery = False
            for ad in ads:
                dl = sandbox.observed(ad, day, today)
                if dl is None:
                    continue
                any_delivery = True
                pixel, conv, _reply = dl.reported(today)
                spend += dl.spend_cents
                imp += dl.impressions
                clicks += dl.clicks
                leads_rep += dl.leads_onsite + pixel
                leads_col += dl.leads_onsite
                conv_rep += conv
                if ad.id in retired:
                    retired_out.append({
                        "account_id": account.account_id, "ad_id": ad.id, "date": date_str(day),
                        "effective_status": ad.effective_status(today), "spend": money(dl.spend_cents),
                        "impressions": dl.impressions, "leads_reported": dl.leads_onsite + pixel,
                        "leads_collected": dl.leads_onsite, "conversations_started_reported": conv,
                    })
            if any_delivery:
                accounts_out.append({
                    "account_id": account.account_id, "date": date_str(day), "currency": account.currency,
                    "spend": money(spend), "impressions": imp, "clicks": clicks, "leads_reported": leads_rep,
                    "leads_collected": leads_col, "conversations_started_reported": conv_rep,
                    "partial": day >= today, "day_status": day_status(day, today),
                })
        page = account.page
        cutoff = sandbox.cutoff_ts(account)
        counts: dict[tuple[str, int], list[int]] = collections.defaultdict(lambda: [0, 0])
        # Starts can come from conversations born up to (window) days earlier; all are born in-window.
        for born in range(start, today + 1):
            for conv in day_conversations(sandbox, page, born):
                for m in starts(conv, cutoff):
                    d = sandbox.local_day(account, m.ts)
                    if lo <= d <= hi:
                        counts[(conv.platform, d)][0] += 1
        for day in range(lo, hi + 1):
            for lead in organic_leads(sandbox, page, day):
                if lead.created_ts < cutoff:
                    counts[(lead_platform(lead), day)][1] += 1
        for (platform, day), (conv_n, org_n) in counts.items():
            pages_out.append({"page_id": page.id, "platform": platform, "date": date_str(day),
                              "conversations_started": conv_n, "organic_leads": org_n, "partial": day >= today})
    pages_out.sort(key=lambda r: (r["page_id"], r["date"], r["platform"]))
    return {"as_of": sandbox.clock.now().isoformat(), "as_of_graph_time": graph_time(sandbox.clock.now().timestamp()),
            "accounts": accounts_out, "pages": pages_out, "archived_or_deleted_ads": retired_out}
