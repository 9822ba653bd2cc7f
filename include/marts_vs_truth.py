"""Reconcile the published marts with the sandbox's ground truth (`GET /_sandbox/truth`).

Used by `make run` (to say whether the marts equal the truth) and by the end-to-end tests.
Spend is compared to the cent, counts exactly, per ad account and account-local day (paid leads
without an ad included), and per Page, platform and day: first-party conversations started (with
observed + inferred = started, and no more inferred than the starts the truth says are beyond the
API's reach now) and leads (attributed, unattributed, organic); per ad and day for the ads that are
archived or deleted by now (the rows a default Insights listing drops); each account-day's
`day_status` (partial / restating / settled) where the truth gives one; and, per breakdown mart that
has rows (cost per lead by placement, age x gender, country), each account, day and breakdown value's
spend, impressions, clicks and reported leads.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

import duckdb

CENT = Decimal("0.01")

ACCOUNT_DAYS_SQL = """
with delivery as (
    select date, account_id,
           sum(spend) as spend, sum(impressions) as impressions, sum(clicks) as clicks,
           sum(leads_reported) as leads_reported, sum(leads_collected) as leads_collected
    from cost_per_lead group by all
), conversations as (
    select date, account_id, sum(conversations_started_reported) as conversations_started_reported
    from conversations_started group by all
), unattributed as (
    select date, account_id, sum(leads_collected_unattributed) as leads_collected_unattributed
    from lead_reconciliation group by all
), spine as (
    select date, account_id from delivery
    union select date, account_id from conversations
    union select date, account_id from unattributed
)
select cast(spine.date as varchar) as date,
       replace(spine.account_id, 'act_', '') as account_id,
       cast(coalesce(d.spend, 0) as varchar) as spend,
       coalesce(d.impressions, 0) as impressions, coalesce(d.clicks, 0) as clicks,
       coalesce(d.leads_reported, 0) as leads_reported, coalesce(d.leads_collected, 0) as leads_collected,
       coalesce(c.conversations_started_reported, 0) as conversations_started_reported,
       coalesce(u.leads_collected_unattributed, 0) as leads_collected_unattributed
from spine
left join delivery d on d.date = spine.date and d.account_id = spine.account_id
left join conversations c on c.date = spine.date and c.account_id = spine.account_id
left join unattributed u on u.date = spine.date and u.account_id = spine.account_id
"""

RETIRED_AD_DAYS_SQL = """
with leads as (
    select cast(date as varchar) as date, ad_id, sum(spend) as spend, sum(impressions) as impressions,
           sum(leads_reported) as leads_reported, sum(leads_collected) as leads_collected
    from cost_per_lead group by all
), conversations as (
    select cast(date as varchar) as date, ad_id, sum(conversations_started_reported) as conversations_started_reported
    from conversations_started group by all
)
select coalesce(l.date, c.date) as date, coalesce(l.ad_id, c.ad_id) as ad_id,
       cast(coalesce(l.spend, 0) as varchar) as spend, coalesce(l.impressions, 0) as impressions,
       coalesce(l.leads_reported, 0) as leads_reported, coalesce(l.leads_collected, 0) as leads_collected,
       coalesce(c.conversations_started_reported, 0) as conversations_started_reported
from leads l full outer join conversations c on c.date = l.date and c.ad_id = l.ad_id
"""

DAY_STATUS_SQL = """
select cast(date as varchar) as date, replace(account_id, 'act_', '') as account_id, any_value(day_status) as day_status
from lead_reconciliation group by all
"""

PAGE_DAYS_SQL = """
with spine as (
    select date, page_id, platform from conversations_started_by_page
    union select date, page_id, platform from leads_by_page
)
select cast(spine.date as varchar) as date, spine.page_id, spine.platform,
       coalesce(c.conversations_started, 0) as conversations_started,
       coalesce(c.conversations_started_observed, 0) as conversations_started_observed,
       coalesce(c.conversations_started_inferred, 0) as conversations_started_inferred,
       coalesce(l.leads_collected, 0) as leads_collected,
       coalesce(l.leads_collected_unattributed, 0) as leads_collected_unattributed,
       coalesce(l.organic_leads, 0) as organic_leads
from spine
left join conversations_started_by_page c
    on c.date = spine.date and c.page_id = spine.page_id and c.platform = spine.platform
left join leads_by_page l on l.date = spine.date and l.page_id = spine.page_id and l.platform = spine.platform
"""

ACCOUNT_FIELDS = (
    "spend",
    "impressions",
    "clicks",
    "leads_reported",
    "leads_collected",
    "conversations_started_reported",
    "leads_collected_unattributed",
)

BREAKDOWN_MARTS = {
    "cost_per_lead_by_placement": ("publisher_platform", "platform_position"),
    "cost_per_lead_by_age_gender": ("age", "gender"),
    "cost_per_lead_by_country": ("country",),
}
"""Breakdown mart -> its breakdown columns (the truth's ``breakdowns`` key is them joined by ``,``)."""

BREAKDOWN_FIELDS = ("spend", "impressions", "clicks", "leads_reported")
"""Per account, day and breakdown value: what may be summed across ads and must equal the truth's."""

PAGE_FIELDS = ("conversations_started", "leads_collected", "leads_collected_unattributed", "organic_leads")
"""Page-day counts that must equal the truth's."""


@dataclass
class Reconciliation:
    """The differences between marts and truth over a date range (empty lists mean they are equal)."""

    since: str
    until: str
    account_days: int = 0
    page_days: int = 0
    inferred_starts: int = 0  # starts the marts inferred (their message beyond reach in every snapshot)
    beyond_reach_starts: int = 0  # starts whose message the truth says is beyond the API's reach now
    retired_ad_days: int = 0
    skipped_account_days: int = 0
    partial_account_days: list[str] = field(default_factory=list)
    breakdown_rows: dict[str, int] = field(
        default_factory=dict
    )  # mart -> (account, day, value) rows compared
    differences: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not self.differences


def fetch_truth(sandbox_url: str, since: str, until: str) -> dict:
    url = f"{sandbox_url}/_sandbox/truth?since={since}&until={until}"
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (the local sandbox)
        return json.load(response)


def _rows(connection: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    cursor = connection.execute(sql)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _same(field_name: str, ours: object, theirs: object) -> bool:
    if field_name == "spend":
        return Decimal(str(ours)).quantize(CENT) == Decimal(str(theirs)).quantize(CENT)
    return int(ours or 0) == int(theirs or 0)


def _breakdown_rows(
    connection: duckdb.DuckDBPyConnection, mart: str, columns: tuple[str, ...], since: str, until: str
) -> dict[tuple, dict]:
    """A breakdown mart summed over ads per (account, day, breakdown values), rows with nothing left out."""
    keys = ", ".join(columns)
    sql = f"""
        select replace(account_id, 'act_', '') as account_id, cast(date as varchar) as date, {keys},
               cast(sum(spend) as varchar) as spend, sum(impressions) as impressions, sum(clicks) as clicks,
               sum(leads_reported) as leads_reported
        from {mart}
        where cast(date as varchar) between '{since}' and '{until}'
        group by all
        having sum(spend) != 0 or sum(impressions) != 0 or sum(clicks) != 0 or sum(leads_reported) != 0
    """
    return {
        (row["account_id"], row["date"], *(row[c] for c in columns)): row for row in _rows(connection, sql)
    }


def reconcile(
    marts_path: str,
    truth: dict,
    since: str,
    until: str,
    *,
    skip_account_days: Iterable[tuple[str, str]] = (),
    skip_page_days: Iterable[tuple[str, str]] = (),
) -> Reconciliation:
    """Compare every account-day and page-day in ``[since, until]`` of the marts with the truth.

    ``skip_account_days``: (account id without ``act_``, ISO date) pairs left out of the comparison (e.g.
    the account-days a run could not extract, which the marts name in ``_published_failures``); counted
    in ``skipped_account_days``. ``skip_page_days``: (Page id, ISO date) pairs likewise (a Page takes its
    local dates from the account that promotes it).
    """
    result = Reconciliation(since=since, until=until)
    skipped = {(str(a).removeprefix("act_"), str(d)) for a, d in skip_account_days}
    with duckdb.connect(marts_path, read_only=True) as connection:
        ours_accounts = {
            (row["account_id"], row["date"]): row
            for row in _rows(connection, ACCOUNT_DAYS_SQL)
            if since <= row["date"] <= until
        }
        ours_pages = {
            (row["page_id"], row["platform"], row["date"]): row
            for row in _rows(connection, PAGE_DAYS_SQL)
            if since <= row["date"] <= until
        }
        ours_retired = {(row["ad_id"], row["date"]): row for row in _rows(connection, RETIRED_AD_DAYS_SQL)}
        ours_status = {
            (row["account_id"], row["date"]): row["day_status"] for row in _rows(connection, DAY_STATUS_SQL)
        }
        present = {
            row[0]
            for row in connection.execute("select table_name from information_schema.tables").fetchall()
        }
        ours_breakdowns = {
            mart: _breakdown_rows(connection, mart, columns, since, until)
            for mart, columns in BREAKDOWN_MARTS.items()
            if mart in present
        }
    zero_account = dict.fromkeys(ACCOUNT_FIELDS, 0)
    theirs_accounts = {
        (str(row["account_id"]).removeprefix("act_"), row["date"]): row for row in truth.get("accounts", [])
    }
    for key in sorted(set(ours_accounts) | set(theirs_accounts)):
        if key in skipped:
            result.skipped_account_days += 1
            continue
        ours, theirs = ours_accounts.get(key, zero_account), theirs_accounts.get(key, zero_account)
        result.account_days += 1
        for name in ACCOUNT_FIELDS:
            if not _same(name, ours.get(name, 0), theirs.get(name, 0)):
                result.differences.append(
                    f"account {key[0]} {key[1]} {name}: marts {ours.get(name, 0)} vs truth {theirs.get(name, 0)}"
                )
        status = theirs.get("day_status")
        if status is not None and key in ours_status and ours_status[key] != status:
            result.differences.append(
                f"account {key[0]} {key[1]} day_status: marts {ours_status[key]} vs truth {status}"
            )
        if ours_status.get(key) == "partial":
            result.partial_account_days.append(f"{key[0]} {key[1]}")
    retired_fields = (
        "spend",
        "impressions",
        "leads_reported",
        "leads_collected",
        "conversations_started_reported",
    )
    for row in truth.get("archived_or_deleted_ads", []):
        if not since <= row["date"] <= until:
            continue
        if (str(row.get("account_id", "")).removeprefix("act_"), row["date"]) in skipped:
            continue
        ours = ours_retired.get((str(row["ad_id"]), row["date"]), dict.fromkeys(retired_fields, 0))
        result.retired_ad_days += 1
        for name in retired_fields:
            if not _same(name, ours.get(name, 0), row.get(name, 0)):
                result.differences.append(
                    f"{row['effective_status'].lower()} ad {row['ad_id']} {row['date']} {name}: "
                    f"marts {ours.get(name, 0)} vs truth {row.get(name, 0)}"
                )
    for mart, ours_rows in ours_breakdowns.items():
        if not ours_rows:
            continue  # the report was not extracted (not configured): nothing to compare; callers check the count
        columns = BREAKDOWN_MARTS[mart]
        theirs_rows = {
            (str(row["account_id"]), row["date"], *(row[c] for c in columns)): row
            for row in truth.get("breakdowns", {}).get(",".join(columns), [])
            if since <= row["date"] <= until
        }
        zero = dict.fromkeys(BREAKDOWN_FIELDS, 0)
        for key in sorted(set(ours_rows) | set(theirs_rows)):
            ours, theirs = ours_rows.get(key, zero), theirs_rows.get(key, zero)
            result.breakdown_rows[mart] = result.breakdown_rows.get(mart, 0) + 1
            for name in BREAKDOWN_FIELDS:
                if not _same(name, ours.get(name, 0), theirs.get(name, 0)):
                    result.differences.append(
                        f"{mart} {' '.join(key)} {name}: marts {ours.get(name, 0)} vs "
                        f"truth {theirs.get(name, 0)}"
                    )
    theirs_pages = {
        (str(row["page_id"]), row["platform"], row["date"]): row for row in truth.get("pages", [])
    }
    skipped_pages = {(str(p), str(d)) for p, d in skip_page_days}
    for key in sorted(set(ours_pages) | set(theirs_pages)):
        if (key[0], key[2]) in skipped_pages:
            continue
        ours, theirs = ours_pages.get(key, {}), theirs_pages.get(key, {})
        result.page_days += 1
        where = f"page {key[0]} {key[1]} {key[2]}"
        for name in PAGE_FIELDS:
            if not _same(name, ours.get(name, 0), theirs.get(name, 0)):
                result.differences.append(
                    f"{where} {name}: marts {ours.get(name, 0)} vs truth {theirs.get(name, 0)}"
                )
        observed, inferred = (
            ours.get("conversations_started_observed", 0),
            ours.get("conversations_started_inferred", 0),
        )
        if observed + inferred != ours.get("conversations_started", 0):
            result.differences.append(
                f"{where}: conversations_started_observed {observed} + inferred {inferred} "
                f"!= conversations_started {ours.get('conversations_started', 0)}"
            )
        beyond = theirs.get("conversations_started_beyond_reach", 0)
        if inferred > beyond:  # a start inferred by the marts is beyond reach now (conversations only grow)
            result.differences.append(
                f"{where}: {inferred} starts inferred, but only {beyond} are beyond the API's reach in the truth"
            )
        result.inferred_starts += inferred
        result.beyond_reach_starts += beyond
    return result
