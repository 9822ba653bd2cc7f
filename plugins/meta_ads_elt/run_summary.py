"""The run summary: a short human summary of the published marts (spend, leads, cost per lead,
partial days, coverage gaps, dbt warnings, discovery, failed extractions, conversation access), printed
by ``make run`` and the e2e tests."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from meta_ads_elt.dbt_runner import summarize_results
from meta_ads_elt.lake.layout import DATE_DIR_PREFIX, partition_date
from meta_ads_elt.marts import BREAKDOWN_MARTS, DBT_PROJECT_DIR, MARTS, REPO_ROOT, local_path


def zero_decimal_currencies() -> frozenset[str]:
    """Currencies whose minor unit is 1 (dbt var ``zero_decimal_currencies``, Meta's currency table)."""
    import yaml

    config = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    return frozenset(config["vars"]["zero_decimal_currencies"])


def format_money(amount: Any, currency: str | None, zero_decimal: frozenset[str] = frozenset()) -> str:
    """``1,234.56 USD`` (``12,345 JPY`` for a zero-decimal currency); ``-`` for no amount."""
    if amount is None:
        return "-"
    digits = 0 if currency in zero_decimal else 2
    return f"{amount:,.{digits}f} {currency or '(currency unknown)'}"


def _account_label(account_id: str, name: str | None) -> str:
    return f"{name} (act {account_id})" if name else f"act {account_id}"


def _partial_days_line(con: Any) -> str:
    """The account-days whose local day was not over when extracted (day_status = 'partial')."""
    partial = con.execute(
        "select account_id, date, account_name from lead_reconciliation where day_status = 'partial' order by all"
    ).fetchall()
    if not partial:
        return "Partial account-days (not over when extracted): none"
    days = ", ".join(
        f"act {account_id} {day}" + (f" ({name})" if name else "") for account_id, day, name in partial
    )
    return f"Partial account-days (not over when extracted; the next run replaces them): {days}"


def late_first_pull_line(con: Any) -> str:
    """The account-days whose conversations were first pulled 30+ days after the day began
    (``lead_reconciliation.first_party_starts_may_miss_message_requests``): Meta no longer returns
    Message Requests inactive for 30 days (seed 004), so their first-party starts may lack some."""
    late = con.execute(
        """
        select account_id, any_value(account_name), count(*), min(date), max(date)
        from lead_reconciliation where first_party_starts_may_miss_message_requests
        group by account_id order by account_id
        """
    ).fetchall()
    if not late:
        return "Conversations first pulled 30+ days after the day (Message Requests may be missing): none"
    spans = "; ".join(
        f"{_account_label(account_id, name)} {days} day(s) {lo} .. {hi}"
        for account_id, name, days, lo, hi in late
    )
    return (
        "Conversations first pulled 30+ days after the day: Meta no longer returns Message Requests inactive "
        f"for 30 days (seed 004), so unanswered ones started then may be missing from the starts: {spans}"
    )


def coverage_gap_lines(con: Any) -> list[str]:
    """The account-days never extracted (extraction_coverage.coverage_status = 'missing'), as runs of
    consecutive days per account: the marts have no rows there (a gap, not a zero)."""
    present = con.execute(
        "select count(*) from information_schema.tables where table_name = 'extraction_coverage'"
    ).fetchone()[0]
    if not present:
        return []
    runs = con.execute(
        """
        with missing as (
            select account_id, account_name, date,
                date - cast(row_number() over (partition by account_id order by date) as integer) as run_key,
            from extraction_coverage where coverage_status = 'missing'
        )
        select account_id, any_value(account_name), min(date), max(date), count(*)
        from missing group by account_id, run_key order by account_id, min(date)
        """
    ).fetchall()
    if not runs:
        return ["Coverage gaps (account-days never extracted): none"]
    lines = [
        f"WARNING coverage gaps: {sum(r[4] for r in runs)} account-day(s) never extracted (the marts have no "
        "rows there; backfill them: Trigger -> Backfill, or `airflow dags test meta_ads_daily <day>`):"
    ]
    for account_id, name, first, last, days in runs:
        span = f"{first}" if first == last else f"{first} .. {last} ({days} days)"
        lines.append(f"  {_account_label(account_id, name)}: {span}")
    return lines


def dbt_warning_lines(target: str | os.PathLike[str] | None) -> list[str]:
    """The warn-level results of the dbt build whose ``run_results.json`` is in ``target``."""
    path = Path(target) / "run_results.json" if target else None
    if path is None or not path.is_file():
        return []
    document = json.loads(path.read_text())
    warnings = summarize_results(document.get("results", []))["warnings"]
    generated = document.get("metadata", {}).get("generated_at", "?")
    if not warnings:
        return [f"dbt warnings (build of {generated}): none"]
    lines = [f"dbt warnings (build of {generated}; the build passed, these need a look):"]
    lines.extend(f"  WARN {w['node'].split('.')[2]}: {w['message'][:200]}" for w in warnings)
    return lines


def summarize_marts(
    serving_db_path: str | os.PathLike[str] = "data/marts.duckdb",
    dbt_target: str | os.PathLike[str] | None = None,
    lake_root: str | os.PathLike[str] | None = None,
) -> str:
    """A short human summary of the published marts: rows and dates per mart, totals per account (by
    name, money with its currency), coverage gaps, the warn-level results of the dbt build whose
    target directory is ``dbt_target`` (when given), and, with ``discover:`` sources, what the newest
    discovery in ``lake_root`` left out and why (when given)."""
    import duckdb

    serving = local_path(serving_db_path, "META_SERVING_DUCKDB_PATH", REPO_ROOT / "data" / "marts.duckdb")
    zero_decimal = zero_decimal_currencies()
    con = duckdb.connect(str(serving), read_only=True)
    try:
        lines = [f"Marts in {serving}:"]
        present = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}
        for mart in (*MARTS, *(m for m in BREAKDOWN_MARTS if m in present)):
            [(n, lo, hi)] = con.execute(f'select count(*), min(date), max(date) from "{mart}"').fetchall()
            lines.append(f"  {mart:<31} {n:>9,} rows  {lo or '-'} .. {hi or '-'}")
        lines.append(
            "Totals per account (cost_per_lead, lead_reconciliation; money in each account's currency):"
        )
        per_account = con.execute(
            """
            with cpl as (
                select account_id, arg_max(account_name, date) as account_name, any_value(currency) as currency,
                    sum(spend) as spend, sum(leads_reported) as leads_reported,
                    sum(leads_collected) as leads_collected,
                from cost_per_lead group by account_id
            ),
            rec as (
                select account_id, sum(conversations_started) as conversations_started,
                    sum(conversations_started_reported) as conversations_started_reported,
                from lead_reconciliation group by account_id
            )
            select cpl.account_id, cpl.account_name, cpl.currency, cpl.spend, cpl.leads_reported,
                cpl.leads_collected, cpl.spend / nullif(cpl.leads_reported, 0),
                coalesce(rec.conversations_started, 0), coalesce(rec.conversations_started_reported, 0),
            from cpl left join rec using (account_id)
            order by cpl.account_id
            """
        ).fetchall()
        for account_id, name, currency, spend, reported, collected, cpl, conv, conv_reported in per_account:
            lines.append(
                f"  {_account_label(account_id, name)}: spend {format_money(spend, currency, zero_decimal)}, "
                f"leads reported {reported} / collected {collected}, "
                f"cost per lead {format_money(cpl, currency, zero_decimal)}, "
                f"conversations started {conv} (reported {conv_reported})"
            )
        if not per_account:
            lines.append("  (no rows)")
        lines.extend(conversation_access_warnings(con))
        lines.append(_partial_days_line(con))
        lines.append(late_first_pull_line(con))
        lines.extend(failed_extraction_lines(con))
        lines.extend(coverage_gap_lines(con))
        lines.extend(dbt_warning_lines(dbt_target))
        if lake_root is not None:
            lines.extend(discovery_lines(con, lake_root))
        return "\n".join(lines)
    finally:
        con.close()


DISCOVERY_EXTRACTED_STATES = ("extracted", "arrived")
"""States of a discovered account or Page whose data this run extracted (meta_ads_elt.schemas.DISCOVERY_COMMON)."""


def discovery_lines(con: Any, lake_root: str | os.PathLike[str], *, limit: int = 40) -> list[str]:
    """What the newest run's discovery found, by state, and each account or Page it did not extract
    (unreadable, disabled, departed, excluded...) with the reason: never a silent omission."""
    lines = []
    for dataset, id_column, label in (
        ("discovered_accounts", "account_id", "accounts"),
        ("discovered_pages", "page_id", "Pages"),
    ):
        # the files of the date partitions only: a date= directory that names no date (date=tmp) would
        # turn DuckDB's hive date into text, and its rows would pass for the newest discovery
        files = sorted(
            str(file)
            for file in (Path(lake_root).resolve() / dataset).glob(f"{DATE_DIR_PREFIX}*/*.parquet")
            if partition_date(file.parent) is not None
        )
        if not files:
            continue
        rows = con.execute(
            f"""
            with found as (select * from read_parquet($files, hive_partitioning = true, union_by_name = true))
            select date, {id_column}, name, state, reason from found
            where date = (select max(date) from found)
            order by state, {id_column}
            """,
            {"files": files},
        ).fetchall()
        if not rows:
            continue
        counts: dict[str, int] = {}
        for _day, _id, _name, state, _reason in rows:
            counts[state] = counts.get(state, 0) + 1
        by_state = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        lines.append(f"Discovered {label} ({rows[0][0]}): {by_state}")
        left_out = [row for row in rows if row[3] not in DISCOVERY_EXTRACTED_STATES]
        for _day, entity, name, state, reason in left_out[:limit]:
            who = f"{entity} ({name})" if name else entity
            lines.append(f"  {who}: {state}: {reason or 'no reason given'}")
        if len(left_out) > limit:
            lines.append(f"  ... and {len(left_out) - limit} more (lake dataset {dataset})")
    return lines


def failed_extraction_lines(con: Any) -> list[str]:
    """The extractions still failed (``_published_failures``): each account or Page, its dates, the
    reason and how to fill the gap. The marts keep the earlier data of those dates."""
    has_table = con.execute(
        "select count(*) from information_schema.tables where table_name = '_published_failures'"
    ).fetchone()[0]
    if not has_table:
        return []
    rows = con.execute(
        "select kind, entity, data_date, first_date, last_date, reason, action from _published_failures "
        "order by data_date, kind, entity"
    ).fetchall()
    if not rows:
        return ["Failed extractions: none"]
    lines = [f"FAILED extractions ({len(rows)}; their dates keep the earlier data in the marts):"]
    for kind, entity, day, first, last, reason, action in rows:
        span = str(first) if first == last else f"{first}..{last}"
        lines.append(
            f"  {entity}: {kind} of the run for {day} (dates {span}): {reason} To fill the gap: {action}"
        )
    return lines


def conversation_access_warnings(con: Any) -> list[str]:
    """Warnings for account-days whose first-party conversation starts are far below Meta's reported
    paid starts over the 7 days around them (``lead_reconciliation.first_party_starts_far_below_reported_7d``,
    so a start Meta reports on another day than its own is not taken for a missing one): the signature
    of a token whose app has only Standard Access, which sees no conversation with people who have no
    role on the app (seed 004). Never a silent zero."""
    flagged = con.execute(
        """
        select account_id, count(*) as days, sum(conversations_started), sum(conversations_started_reported),
            min(date), max(date),
        from lead_reconciliation
        where first_party_starts_far_below_reported_7d
        group by account_id
        order by account_id
        """
    ).fetchall()
    lines = []
    for account_id, days, first_party, reported, lo, hi in flagged:
        lines.append(
            f"WARNING act {account_id}: on {days} day(s) between {lo} and {hi} the Conversations API gave "
            f"{first_party} conversation starts where Meta reports {reported} paid ones. The token's app "
            "probably has only Standard Access, which hides conversations with people who have no role on "
            "the app (seed 004): request Advanced Access for pages_messaging / instagram_manage_messages."
        )
    return lines
