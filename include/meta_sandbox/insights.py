"""Ads Insights: query parsing, row keys and row rendering (shared by sync GETs and async jobs).

Guarantees:
- A row exists for each (object at ``level``, time bucket) with delivery on at least one served
  day; served days are the account's local days inside the history window up to today, today as it
  stands at the clock (partial numbers that grow with the clock and are complete once the day is over).
- Object status (Meta's "Manage your ad object's status"): the result list of
  ``/<parent>/insights?level=<lower level>`` leaves out objects whose effective status (as of the
  clock) is ARCHIVED or DELETED, unless the request filters on an ``*.effective_status``; a node's
  own row (``/<id>/insights``, ``level=account``) aggregates every child, whatever its status.
- Rows are ordered by object (world order) then by bucket, so paging is stable.
- All metrics are strings; ``spend`` has 2 decimals; ``cpm``, ``ctr``, ``cpc``, ``frequency`` are
  computed from the row's own totals; ``actions`` / ``action_values`` / ``cost_per_action_type``
  follow ``metrics.py`` (``value`` = 7d_click + 1d_view; per-window keys only for the windows asked).
- Numbers are the same whether a row is served sync, async, at ad level or summed at a higher level.
"""

from __future__ import annotations

import array
import dataclasses
import datetime as dt
import json

from dateutil.relativedelta import relativedelta

from meta_sandbox import breakdowns as bd
from meta_sandbox.clock import day_number, from_day_number
from meta_sandbox.errors import GraphError, param_error, unknown_fields
from meta_sandbox.metrics import WINDOWS, shows, split_windows
from meta_sandbox.params import json_param, list_param
from meta_sandbox.rng import key
from meta_sandbox.world import EFFECTIVE_STATUSES, TERMINAL_STATUSES, Account, Ad, AdSet, Campaign

LEVELS = ("account", "campaign", "adset", "ad")
ID_FIELDS = {
    "account_id",
    "account_name",
    "account_currency",
    "campaign_id",
    "campaign_name",
    "adset_id",
    "adset_name",
    "ad_id",
    "ad_name",
    "objective",
    "optimization_goal",
    "buying_type",
    "attribution_setting",
}
METRIC_FIELDS = {
    "date_start",
    "date_stop",
    "impressions",
    "reach",
    "frequency",
    "clicks",
    "inline_link_clicks",
    "inline_link_click_ctr",
    "spend",
    "cpm",
    "cpc",
    "ctr",
    "cpp",
    "cost_per_inline_link_click",
    "actions",
    "action_values",
    "cost_per_action_type",
    "unique_clicks",
    "created_time",
    "updated_time",
}
# Real Insights fields the sandbox knows but does not model: accepted and omitted (as Meta omits empties).
OMITTED_FIELDS = {
    "conversions",
    "conversion_values",
    "cost_per_conversion",
    "purchase_roas",
    "website_purchase_roas",
    "video_play_actions",
    "video_p25_watched_actions",
    "video_p50_watched_actions",
    "video_p75_watched_actions",
    "video_p100_watched_actions",
    "outbound_clicks",
    "unique_actions",
    "cost_per_unique_click",
    "social_spend",
    "quality_ranking",
    "engagement_rate_ranking",
    "conversion_rate_ranking",
    "cost_per_action",
    "website_ctr",
    "unique_inline_link_clicks",
    "full_view_impressions",
    "full_view_reach",
    "instant_experience_clicks_to_open",
    "estimated_ad_recallers",
    "catalog_segment_value",
    "account_attribution_setting",
}
INSIGHTS_FIELDS = ID_FIELDS | METRIC_FIELDS | OMITTED_FIELDS
DEFAULT_FIELDS = ["impressions", "spend"]
VALID_WINDOWS = set(WINDOWS) | {"default", "dda", "1d_ev", "skan_click", "skan_view"}
PRESETS = {
    "today": (0, 0),
    "yesterday": (1, 1),
    "last_3d": (3, 1),
    "last_7d": (7, 1),
    "last_14d": (14, 1),
    "last_28d": (28, 1),
    "last_30d": (30, 1),
    "last_90d": (90, 1),
    "maximum": (37 * 31, 1),
    "data_maximum": (37 * 31, 1),
}
_DATE_CACHE: dict[int, str] = {}
_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_SALT = {
    n: key("window-salt", n) & 0xFFFFFFFF
    for n in (
        "onsite_conversion.lead_grouped",
        "offsite_conversion.fb_pixel_lead",
        "onsite_conversion.messaging_conversation_started_7d",
        "onsite_conversion.messaging_first_reply",
    )
}
_ACTION_TYPES_LEAD = ("onsite_conversion.lead_grouped", "offsite_conversion.fb_pixel_lead", "lead")
_ACTION_TYPES_MSG = (
    "onsite_conversion.messaging_conversation_started_7d",
    "onsite_conversion.messaging_first_reply",
)


def date_str(day: int) -> str:
    s = _DATE_CACHE.get(day)
    if s is None:
        s = _DATE_CACHE[day] = from_day_number(day).isoformat()
    return s


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def ratio(x: float) -> str:
    s = f"{x:.6f}".rstrip("0").rstrip(".")
    return s or "0"


def _parse_day(value, what: str) -> int:
    try:
        return day_number(dt.date.fromisoformat(str(value)))
    except (TypeError, ValueError) as exc:
        raise param_error(
            f"Param {what} must be a date in the format YYYY-MM-DD: '{value}'", 1487756
        ) from exc


def _range(obj, what: str) -> tuple[int, int]:
    if not isinstance(obj, dict) or "since" not in obj or "until" not in obj:
        raise param_error(f"Param {what} must be an object with since and until")
    since = _parse_day(obj["since"], f"{what}[since]")
    until = _parse_day(obj["until"], f"{what}[until]")
    if since > until:
        raise param_error(f"Param {what}: since must be on or before until", 1487756)
    return since, until


@dataclasses.dataclass
class Query:
    """A parsed insights request. ``todays`` freezes the clock (per account) at submission."""

    level: str
    fields: list[str]
    windows: list[str] | None
    buckets: list[tuple[int, int]]
    ads: list[Ad]
    todays: dict[int, int]
    starts: dict[int, int]
    entities: list = dataclasses.field(default_factory=list)  # [(obj, [ads], account)]
    breakdowns: tuple[str, ...] = ()
    splitters: dict = dataclasses.field(default_factory=dict)  # account index -> breakdowns.Splitter

    def estimated_rows(self) -> int:
        per_row = max((len(s.values) for s in self.splitters.values()), default=1)
        return len(self.entities) * len(self.buckets) * per_row


def _level_of(obj) -> str:
    return {Account: "account", Campaign: "campaign", AdSet: "adset", Ad: "ad"}[type(obj)]


def _status_values(field: str, values: list[str]) -> list[str]:
    """The values of an ``<object>.effective_status`` filter, checked against Meta's enum."""
    level = field.partition(".")[0]
    allowed = EFFECTIVE_STATUSES[level]
    for i, v in enumerate(values):
        if v not in allowed:
            raise param_error(
                f"Filtering field {field}: value[{i}] {v!r} is not a valid effective_status; it "
                f"must be one of {{{', '.join(allowed)}}}",
                1487300,
            )
    return values


def _apply_filter(ads: list[Ad], flt: dict, today_of) -> list[Ad]:
    if not isinstance(flt, dict):
        raise param_error("Each filtering entry must be an object with field, operator and value")
    field = str(flt.get("field", ""))
    op = str(flt.get("operator", "")).upper()
    value = flt.get("value")
    obj_name, _, attr = field.partition(".")
    if obj_name not in ("campaign", "adset", "ad") or attr not in (
        "id",
        "name",
        "effective_status",
        "configured_status",
        "delivery_info",
        "objective",
    ):
        if field in ("action_type", "action_destination", "impressions", "spend", "clicks"):
            return ads  # accepted, not modelled as a row filter
        raise param_error(f"Filtering field {field} is invalid", 1487300)

    def attr_of(ad: Ad):
        obj = {"campaign": ad.campaign, "adset": ad.adset, "ad": ad}[obj_name]
        if attr == "id":
            return obj.id
        if attr == "name":
            return obj.name
        if attr == "objective":
            return ad.campaign.objective
        if attr == "effective_status":
            return obj.effective_status(today_of(ad)) or ""
        return "ACTIVE"

    values = value if isinstance(value, list) else [value]
    values = [str(v) for v in values]
    if attr == "effective_status":
        _status_values(field, values)
    if op in ("IN", "EQUAL", "ANY"):
        return [ad for ad in ads if attr_of(ad) in values]
    if op in ("NOT_IN", "NOT_EQUAL", "NONE"):
        return [ad for ad in ads if attr_of(ad) not in values]
    if op == "CONTAIN":
        return [ad for ad in ads if any(v.lower() in attr_of(ad).lower() for v in values)]
    if op == "NOT_CONTAIN":
        return [ad for ad in ads if not any(v.lower() in attr_of(ad).lower() for v in values)]
    if op == "STARTS_WITH":
        return [ad for ad in ads if any(attr_of(ad).startswith(v) for v in values)]
    raise param_error(f"Filtering operator {op} is not supported for field {field}", 1487300)


def _buckets(params: dict, today: int) -> list[tuple[int, int]]:
    ranges = json_param(params, "time_ranges")
    if ranges:
        if not isinstance(ranges, list):
            raise param_error("Param time_ranges must be a list")
        return [_range(r, "time_ranges") for r in ranges]
    tr = json_param(params, "time_range")
    if tr:
        since, until = _range(tr, "time_range")
    else:
        preset = params.get("date_preset") or "last_30d"
        if preset not in PRESETS:
            raise param_error(f"Param date_preset must be one of {{{', '.join(sorted(PRESETS))}}}")
        back, end = PRESETS[preset]
        since, until = today - back, today - end
    inc = str(params.get("time_increment") or "all_days")
    if inc == "all_days":
        return [(since, until)]
    if inc == "monthly":
        out, d = [], since
        while d <= until:
            date = from_day_number(d)
            nxt = day_number((date.replace(day=28) + dt.timedelta(days=4)).replace(day=1))
            out.append((d, min(until, nxt - 1)))
            d = nxt
        return out
    try:
        step = int(inc)
    except ValueError as exc:
        raise param_error("Param time_increment must be 1-90, monthly or all_days") from exc
    if not 1 <= step <= 90:
        raise param_error("Param time_increment must be 1-90, monthly or all_days")
    return [(d, min(until, d + step - 1)) for d in range(since, until + 1, step)]


RETENTION_MONTHS = 37
"""Meta keeps Insights for 37 months: a time range starting further back is refused, code 3018, "The
start date of the time range cannot be beyond 37 months from the current date" (Graph API reference, Ad
Account, "Error Codes"; the body, HTTP 400 and OAuthException, as Airbyte's source-facebook-marketing
error fixtures record it). Meta does not say in which time zone its "current date" is: the sandbox takes
the UTC date, as for the reach limit."""


def starts_over_months_back(sandbox, buckets: list[tuple[int, int]], months: int) -> bool:
    """Whether the query's first date is more than ``months`` calendar months before the UTC date: the line
    of Meta's limits counted in months (37 months of Insights; reach by breakdown, ``app.py``)."""
    first = from_day_number(min(b[0] for b in buckets))
    return first < sandbox.clock.now().date() - relativedelta(months=months)


def _refuse_beyond_retention(sandbox, params: dict, buckets: list[tuple[int, int]]) -> None:
    """Code 3018 for a ``time_range`` / ``time_ranges`` starting over 37 months back (a ``date_preset``
    is Meta's own range)."""
    if not (json_param(params, "time_range") or json_param(params, "time_ranges")):
        return
    if starts_over_months_back(sandbox, buckets, RETENTION_MONTHS):
        raise GraphError(
            "(#3018) The start date of the time range cannot be beyond 37 months from the current date", 3018
        )


def parse(sandbox, obj, params: dict) -> Query:
    """Parse and validate an insights request on ``obj`` (account, campaign, ad set or ad)."""
    level = str(params.get("level") or _level_of(obj))
    if level not in LEVELS:
        raise param_error("param level must be one of {ad, adset, campaign, account}")
    fields = [f.name for f in sandbox.fields_of(params)] or list(DEFAULT_FIELDS)
    bad = [f for f in fields if f not in INSIGHTS_FIELDS]
    if bad:
        raise unknown_fields(bad)
    breakdowns = bd.parse(params)
    windows = list_param(params, "action_attribution_windows")
    if windows:
        bad = [w for w in windows if w not in VALID_WINDOWS]
        if bad:
            raise param_error(f"action_attribution_windows must be one of {sorted(VALID_WINDOWS)}: {bad}")
    account = obj if isinstance(obj, Account) else obj.account
    start, today = sandbox.window(account)
    todays, starts = {account.index: today}, {account.index: start}
    buckets = _buckets(params, today)
    _refuse_beyond_retention(sandbox, params, buckets)
    lo = max(start, min(b[0] for b in buckets))
    hi = min(today, max(b[1] for b in buckets))
    ads = sandbox.ads_of(obj, lo, hi)
    flt = json_param(params, "filtering")
    status_filtered = False
    if flt:
        if not isinstance(flt, list):
            raise param_error("Param filtering must be a list of {field, operator, value}")
        for entry in flt:
            ads = _apply_filter(ads, entry, lambda ad: today)
            if isinstance(entry, dict) and str(entry.get("field", "")).endswith(
                ("effective_status", "delivery_info")
            ):
                status_filtered = True
    q = Query(level, fields, windows, buckets, ads, todays, starts, breakdowns=breakdowns)
    if breakdowns:
        q.splitters[account.index] = bd.Splitter(breakdowns, account)
    groups: dict[int, tuple] = {}
    for ad in ads:
        ent = {"ad": ad, "adset": ad.adset, "campaign": ad.campaign, "account": ad.account}[level]
        g = groups.get(id(ent))
        if g is None:
            groups[id(ent)] = (ent, [ad], ad.account)
        else:
            g[1].append(ad)
    entities = list(groups.values())
    if not status_filtered and LEVELS.index(level) > LEVELS.index(_level_of(obj)):
        # "you cannot retrieve the deleted objects as a connection object from a non deleted node":
        # the result list of a parent at a lower level leaves out ARCHIVED and DELETED objects.
        entities = [e for e in entities if e[0].effective_status(today) not in TERMINAL_STATUSES]
    q.entities = entities
    return q


def row_keys(sandbox, q: Query) -> array.array:
    """Every row with delivery, in serving order, packed as ``entity index << 16 | bucket index``
    (4 bytes a row, so a 1M-row job costs 4 MB, not a list of tuples)."""
    keys = array.array("L")
    if q.breakdowns:
        for ei in range(len(q.entities)):
            for bi in range(len(q.buckets)):
                for ci, totals in enumerate(_breakdown_totals(sandbox, q, ei, bi)):
                    if bd.has_data(totals):
                        keys.append(ci << 40 | ei << 16 | bi)
        return keys
    delivers, observed = sandbox.delivers, sandbox.observed
    for ei, (_ent, ads, account) in enumerate(q.entities):
        start, today = q.starts[account.index], q.todays[account.index]
        for bi, (since, until) in enumerate(q.buckets):
            lo, hi = max(since, start), min(until, today)
            if lo > hi:
                continue
            complete_hi = min(hi, today - 1)
            if any(delivers(ad, d) for ad in ads for d in range(lo, complete_hi + 1)) or (
                hi == today and any(shows(observed(ad, today, today)) for ad in ads)
            ):
                keys.append(ei << 16 | bi)
    return keys


def render_rows(sandbox, q: Query, keys) -> list[str]:
    """Serialised rows for packed ``keys`` (a page)."""
    if q.breakdowns:
        return [_render_breakdown_row(sandbox, q, k) for k in keys]
    return [render_row_json(sandbox, q, k >> 16, k & 0xFFFF) for k in keys]


def _breakdown_totals(sandbox, q: Query, ei: int, bi: int) -> list[dict]:
    """Per breakdown value: the bucket's numbers of entity ``ei`` (summed over its ads and days); the last
    (ei, bi) is cached on the query (a page renders the values of one row key after another)."""
    cached = q.__dict__.get("_bd_last")
    if cached is not None and cached[0] == (ei, bi):
        return cached[1]
    _ent, ads, account = q.entities[ei]
    since, until = q.buckets[bi]
    start, today = q.starts[account.index], q.todays[account.index]
    splitter = q.splitters[account.index]
    totals = [bd.empty_totals() for _ in splitter.values]
    observed = sandbox.observed
    for ad in ads:
        for d in range(max(since, start), min(until, today) + 1):
            dl = observed(ad, d, today)
            if dl is None:
                continue
            h = dl.h
            parts = splitter.split(
                dl, dl.reported(today), lambda name, v, h=h: split_windows(v, h ^ _SALT[name])
            )
            for into, part in zip(totals, parts, strict=True):
                bd.add(into, part)
    q.__dict__["_bd_last"] = ((ei, bi), totals)
    return totals


def _render_breakdown_row(sandbox, q: Query, k: int) -> str:
    ci, ei, bi = k >> 40, (k >> 16) & 0xFFFFFF, k & 0xFFFF
    ent, _ads, account = q.entities[ei]
    t = _breakdown_totals(sandbox, q, ei, bi)[ci]
    want_windows = bool(q.windows) and any(
        f in q.fields for f in ("actions", "action_values", "cost_per_action_type")
    )
    win = None
    if want_windows:
        win = dict(t["win"])
        if t["link"]:
            win["link_click"] = {
                "1d_click": t["link"],
                "7d_click": t["link"],
                "28d_click": t["link"],
                "1d_view": 0,
                "7d_view": 0,
                "28d_view": 0,
            }
    since, until = q.buckets[bi]
    row = _row_from_totals(
        q,
        ent,
        account,
        since,
        until,
        t["impressions"],
        t["reach"],
        t["clicks"],
        t["link"],
        t["spend"],
        t["onsite"],
        t["pixel"],
        t["conv"],
        t["reply"],
        win,
    )
    values = q.splitters[account.index].values[ci][0]
    date_start, date_stop = row.pop("date_start"), row.pop("date_stop")
    row.update(zip(q.breakdowns, values, strict=True))
    row["date_start"], row["date_stop"] = date_start, date_stop
    return _DUMPS(row)


def render_row(sandbox, q: Query, ei: int, bi: int) -> dict:
    """The reference renderer (readable, dict-based); ``render_row_json`` is the fast path and a test
    checks that both produce the same rows."""
    ent, ads, account = q.entities[ei]
    since, until = q.buckets[bi]
    start, today = q.starts[account.index], q.todays[account.index]
    lo, hi = max(since, start), min(until, today)
    impressions = reach = clicks = link = spend = 0
    onsite = pixel = conv = reply = 0
    want_actions = any(f in q.fields for f in ("actions", "action_values", "cost_per_action_type"))
    windows = q.windows or []
    win: dict[str, dict[str, int]] | None = {} if (windows and want_actions) else None
    observed = sandbox.observed
    for ad in ads:
        for d in range(lo, hi + 1):
            dl = observed(ad, d, today)
            if dl is None:
                continue
            impressions += dl.impressions
            reach += dl.reach
            clicks += dl.clicks
            link += dl.link_clicks
            spend += dl.spend_cents
            if want_actions:
                p, c, r = dl.reported(today)
                onsite += dl.leads_onsite
                pixel += p
                conv += c
                reply += r
                if win is not None:
                    h = dl.h
                    for name, v in (
                        ("link_click", dl.link_clicks),
                        ("onsite_conversion.lead_grouped", dl.leads_onsite),
                        ("offsite_conversion.fb_pixel_lead", p),
                        ("onsite_conversion.messaging_conversation_started_7d", c),
                        ("onsite_conversion.messaging_first_reply", r),
                    ):
                        if not v:
                            continue
                        if name == "link_click":
                            sw = {
                                "1d_click": v,
                                "7d_click": v,
                                "28d_click": v,
                                "1d_view": 0,
                                "7d_view": 0,
                                "28d_view": 0,
                            }
                        else:
                            sw = split_windows(v, h ^ _SALT[name])
                        acc = win.setdefault(name, dict.fromkeys(WINDOWS, 0))
                        for k in WINDOWS:
                            acc[k] += sw[k]
    return _row_from_totals(
        q,
        ent,
        account,
        since,
        until,
        impressions,
        reach,
        clicks,
        link,
        spend,
        onsite,
        pixel,
        conv,
        reply,
        win,
    )


def _row_from_totals(
    q: Query,
    ent,
    account,
    since: int,
    until: int,
    impressions: int,
    reach: int,
    clicks: int,
    link: int,
    spend: int,
    onsite: int,
    pixel: int,
    conv: int,
    reply: int,
    win,
) -> dict:
    windows = q.windows or []
    row: dict = {}
    campaign = adset = ad = None
    if isinstance(ent, Ad):
        ad, adset, campaign = ent, ent.adset, ent.campaign
    elif isinstance(ent, AdSet):
        adset, campaign = ent, ent.campaign
    elif isinstance(ent, Campaign):
        campaign = ent
    for f in q.fields:
        if f == "account_id":
            row[f] = account.account_id
        elif f == "account_name":
            row[f] = account.name
        elif f == "account_currency":
            row[f] = account.currency
        elif f in ("campaign_id", "campaign_name", "objective", "buying_type"):
            if campaign is not None:
                row[f] = {
                    "campaign_id": campaign.id,
                    "campaign_name": campaign.name,
                    "objective": campaign.objective,
                    "buying_type": "AUCTION",
                }[f]
        elif f in ("adset_id", "adset_name", "optimization_goal"):
            if adset is not None:
                row[f] = {
                    "adset_id": adset.id,
                    "adset_name": adset.name,
                    "optimization_goal": adset.optimization_goal,
                }[f]
        elif f in ("ad_id", "ad_name"):
            if ad is not None:
                row[f] = ad.id if f == "ad_id" else ad.name
        elif f == "attribution_setting":
            row[f] = "7d_click_1d_view"
        elif f == "impressions":
            row[f] = str(impressions)
        elif f == "reach":
            row[f] = str(reach)
        elif f == "frequency":
            row[f] = ratio(impressions / reach) if reach else "0"
        elif f == "clicks":
            row[f] = str(clicks)
        elif f == "unique_clicks":
            row[f] = str(int(clicks * 0.93))
        elif f == "inline_link_clicks":
            row[f] = str(link)
        elif f == "inline_link_click_ctr":
            row[f] = ratio(100.0 * link / impressions) if impressions else "0"
        elif f == "spend":
            row[f] = money(spend)
        elif f == "cpm":
            row[f] = ratio(spend / 100.0 / impressions * 1000) if impressions else "0"
        elif f == "cpp":
            row[f] = ratio(spend / 100.0 / reach * 1000) if reach else "0"
        elif f == "ctr":
            row[f] = ratio(100.0 * clicks / impressions) if impressions else "0"
        elif f == "cpc":
            if clicks:
                row[f] = ratio(spend / 100.0 / clicks)
        elif f == "cost_per_inline_link_click":
            if link:
                row[f] = ratio(spend / 100.0 / link)
        elif f in ("created_time", "updated_time"):
            row[f] = date_str(account.created_day)
        elif f in ("actions", "action_values", "cost_per_action_type"):
            counts = {
                "link_click": link,
                "post_engagement": clicks,
                "page_engagement": clicks,
                "onsite_conversion.lead_grouped": onsite,
                "offsite_conversion.fb_pixel_lead": pixel,
                "lead": onsite + pixel,
                "onsite_conversion.messaging_conversation_started_7d": conv,
                "onsite_conversion.messaging_first_reply": reply,
            }
            items = _actions(f, counts, win, windows, spend, account.lead_value)
            if items:
                row[f] = items
    row["date_start"] = date_str(since)
    row["date_stop"] = date_str(until)
    return row


def _window_counts(name: str, counts: dict, win: dict | None) -> dict[str, int]:
    if win is None:
        return {}
    if name in ("post_engagement", "page_engagement"):
        v = counts[name]
        return {"1d_click": v, "7d_click": v, "28d_click": v, "1d_view": 0, "7d_view": 0, "28d_view": 0}
    if name == "lead":
        a = win.get("onsite_conversion.lead_grouped")
        b = win.get("offsite_conversion.fb_pixel_lead")
        return {k: (a[k] if a else 0) + (b[k] if b else 0) for k in WINDOWS}
    return win.get(name) or dict.fromkeys(WINDOWS, 0)


def _actions(kind: str, counts: dict, win: dict | None, windows: list[str], spend: int, lead_value: float):
    out = []
    for name, v in counts.items():
        if v <= 0:
            continue
        wc = _window_counts(name, counts, win)
        if kind == "action_values":
            if name not in ("offsite_conversion.fb_pixel_lead", "lead"):
                continue
            base = counts["offsite_conversion.fb_pixel_lead"]
            if base <= 0:
                continue
            item = {"action_type": name, "value": f"{base * lead_value:.2f}"}
            pw = _window_counts("offsite_conversion.fb_pixel_lead", counts, win)
            for w in windows:
                if w in wc:
                    item[w] = f"{pw[w] * lead_value:.2f}"
                elif w in ("default", "dda"):
                    item[w] = item["value"]
        elif kind == "cost_per_action_type":
            item = {"action_type": name, "value": ratio(spend / 100.0 / v)}
            for w in windows:
                if w in wc and wc[w] > 0:
                    item[w] = ratio(spend / 100.0 / wc[w])
                elif w in ("default", "dda"):
                    item[w] = item["value"]
        else:
            item = {"action_type": name, "value": str(v)}
            for w in windows:
                if w in wc:
                    item[w] = str(wc[w])
                elif w in ("default", "dda"):
                    item[w] = str(v)
        out.append(item)
    return out


# ---- the fast path: rows serialised directly (same output as json.dumps(render_row(...))) --------

_CLICK_ONLY = {
    "1d_click": True,
    "7d_click": True,
    "28d_click": True,
    "1d_view": False,
    "7d_view": False,
    "28d_view": False,
}
_ENGAGEMENT = ("link_click", "post_engagement", "page_engagement")
_CONVERSIONS = (
    "onsite_conversion.lead_grouped",
    "offsite_conversion.fb_pixel_lead",
    "lead",
    "onsite_conversion.messaging_conversation_started_7d",
    "onsite_conversion.messaging_first_reply",
)


def _static_fragments(q: Query, ei: int) -> dict[str, str]:
    """JSON fragments of the per-object fields of entity ``ei`` (ids, names), cached on the query."""
    cache = q.__dict__.setdefault("_static", {})
    frags = cache.get(ei)
    if frags is None:
        ent, _ads, account = q.entities[ei]
        campaign = adset = ad = None
        if isinstance(ent, Ad):
            ad, adset, campaign = ent, ent.adset, ent.campaign
        elif isinstance(ent, AdSet):
            adset, campaign = ent, ent.campaign
        elif isinstance(ent, Campaign):
            campaign = ent
        values = {
            "account_id": account.account_id,
            "account_name": account.name,
            "account_currency": account.currency,
            "attribution_setting": "7d_click_1d_view",
            "created_time": date_str(account.created_day),
            "updated_time": date_str(account.created_day),
        }
        if campaign is not None:
            values.update(
                campaign_id=campaign.id,
                campaign_name=campaign.name,
                objective=campaign.objective,
                buying_type="AUCTION",
            )
        if adset is not None:
            values.update(adset_id=adset.id, adset_name=adset.name, optimization_goal=adset.optimization_goal)
        if ad is not None:
            values.update(ad_id=ad.id, ad_name=ad.name)
        frags = {k: _DUMPS(k) + ":" + _DUMPS(v) for k, v in values.items()}
        cache[ei] = frags
    return frags


def render_row_json(sandbox, q: Query, ei: int, bi: int) -> str:
    """One row as JSON text, without building dicts (the paging hot path)."""
    _ent, ads, account = q.entities[ei]
    since, until = q.buckets[bi]
    start, today = q.starts[account.index], q.todays[account.index]
    lo, hi = max(since, start), min(until, today)
    fields = q.fields
    want_actions = q.__dict__.get("_want_actions")
    if want_actions is None:
        want_actions = q.__dict__["_want_actions"] = any(
            f in fields for f in ("actions", "action_values", "cost_per_action_type")
        )
    windows = q.windows or ()
    track = bool(windows) and want_actions
    impressions = reach = clicks = link = spend = onsite = pixel = conv = reply = 0
    win = {} if track else None
    observed = sandbox.observed
    for ad in ads:
        for d in range(lo, hi + 1):
            dl = observed(ad, d, today)
            if dl is None:
                continue
            impressions += dl.impressions
            reach += dl.reach
            clicks += dl.clicks
            link += dl.link_clicks
            spend += dl.spend_cents
            if want_actions:
                p, c, r = dl.reported(today)
                onsite += dl.leads_onsite
                pixel += p
                conv += c
                reply += r
                if track:
                    h = dl.h
                    for name, v in (
                        ("onsite_conversion.lead_grouped", dl.leads_onsite),
                        ("offsite_conversion.fb_pixel_lead", p),
                        ("onsite_conversion.messaging_conversation_started_7d", c),
                        ("onsite_conversion.messaging_first_reply", r),
                    ):
                        if v:
                            sw = split_windows(v, h ^ _SALT[name])
                            acc = win.get(name)
                            if acc is None:
                                win[name] = sw
                            else:
                                for k in WINDOWS:
                                    acc[k] += sw[k]
    static = _static_fragments(q, ei)
    parts = []
    for f in fields:
        frag = static.get(f)
        if frag is not None:
            parts.append(frag)
        elif f == "impressions":
            parts.append(f'"impressions":"{impressions}"')
        elif f == "spend":
            parts.append(f'"spend":"{spend // 100}.{spend % 100:02d}"')
        elif f == "clicks":
            parts.append(f'"clicks":"{clicks}"')
        elif f == "reach":
            parts.append(f'"reach":"{reach}"')
        elif f == "inline_link_clicks":
            parts.append(f'"inline_link_clicks":"{link}"')
        elif f == "frequency":
            parts.append(f'"frequency":"{ratio(impressions / reach) if reach else "0"}"')
        elif f == "cpm":
            parts.append(f'"cpm":"{ratio(spend / 100.0 / impressions * 1000) if impressions else "0"}"')
        elif f == "ctr":
            parts.append(f'"ctr":"{ratio(100.0 * clicks / impressions) if impressions else "0"}"')
        elif f == "cpp":
            parts.append(f'"cpp":"{ratio(spend / 100.0 / reach * 1000) if reach else "0"}"')
        elif f == "unique_clicks":
            parts.append(f'"unique_clicks":"{int(clicks * 0.93)}"')
        elif f == "inline_link_click_ctr":
            parts.append(
                f'"inline_link_click_ctr":"{ratio(100.0 * link / impressions) if impressions else "0"}"'
            )
        elif f == "cpc":
            if clicks:
                parts.append(f'"cpc":"{ratio(spend / 100.0 / clicks)}"')
        elif f == "cost_per_inline_link_click":
            if link:
                parts.append(f'"cost_per_inline_link_click":"{ratio(spend / 100.0 / link)}"')
        elif f in ("actions", "action_values", "cost_per_action_type"):
            counts = (
                ("link_click", link),
                ("post_engagement", clicks),
                ("page_engagement", clicks),
                ("onsite_conversion.lead_grouped", onsite),
                ("offsite_conversion.fb_pixel_lead", pixel),
                ("lead", onsite + pixel),
                ("onsite_conversion.messaging_conversation_started_7d", conv),
                ("onsite_conversion.messaging_first_reply", reply),
            )
            items = _actions_json(f, counts, win, windows, spend, account.lead_value, pixel)
            if items:
                parts.append(f'"{f}":[{items}]')
    parts.append(f'"date_start":"{date_str(since)}","date_stop":"{date_str(until)}"')
    return "{" + ",".join(parts) + "}"


def _wc(name: str, v: int, win: dict | None) -> dict:
    if name in _ENGAGEMENT:
        return {k: (v if c else 0) for k, c in _CLICK_ONLY.items()}
    if name == "lead":
        a = win.get("onsite_conversion.lead_grouped")
        b = win.get("offsite_conversion.fb_pixel_lead")
        return {k: (a[k] if a else 0) + (b[k] if b else 0) for k in WINDOWS}
    return win.get(name) or dict.fromkeys(WINDOWS, 0)


def _actions_json(kind: str, counts, win, windows, spend: int, lead_value: float, pixel: int) -> str:
    out = []
    for name, v in counts:
        if v <= 0:
            continue
        if kind == "action_values":
            if pixel <= 0 or name not in ("offsite_conversion.fb_pixel_lead", "lead"):
                continue
            value = f"{pixel * lead_value:.2f}"
            s = f'{{"action_type":"{name}","value":"{value}"'
            if windows:
                pw = _wc("offsite_conversion.fb_pixel_lead", pixel, win)
                for w in windows:
                    if w in pw:
                        s += f',"{w}":"{pw[w] * lead_value:.2f}"'
                    elif w in ("default", "dda"):
                        s += f',"{w}":"{value}"'
        elif kind == "cost_per_action_type":
            value = ratio(spend / 100.0 / v)
            s = f'{{"action_type":"{name}","value":"{value}"'
            if windows:
                wc = _wc(name, v, win)
                for w in windows:
                    if w in wc:
                        if wc[w] > 0:
                            s += f',"{w}":"{ratio(spend / 100.0 / wc[w])}"'
                    elif w in ("default", "dda"):
                        s += f',"{w}":"{value}"'
        else:
            s = f'{{"action_type":"{name}","value":"{v}"'
            if windows:
                wc = _wc(name, v, win)
                for w in windows:
                    if w in wc:
                        s += f',"{w}":"{wc[w]}"'
                    elif w in ("default", "dda"):
                        s += f',"{w}":"{v}"'
        out.append(s + "}")
    return ",".join(out)
