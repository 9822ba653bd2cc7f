"""Synthetic, schema-exact Meta ads lake for the dbt tests and the dbt benchmark.

Two entry points:

* :func:`generate_lake` writes a whole coherent world (accounts in several timezones, the ad tree,
  insights with nested ``actions``, leads, lead answers, conversations and messages) of any size.
  Rows are produced by DuckDB (vectorised, deterministic: every "random" number is a hash of the row
  number and the seed), then cast to the exact Arrow schemas of ``meta_ads_elt.schemas`` and written
  as hive partitions (``part-<n>.parquet``) with the partition columns only in directory names.
* :func:`write_rows` writes hand-written rows (a list of dicts) into one dataset, for tests that need
  precise scenarios (timezone boundaries, re-pulled days, duplicated messages).

CLI: ``python -m bench.lake_generator /tmp/lake --insights-rows 10000000 --leads 1000000 --messages 5000000``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
from meta_ads_elt.reports import presets
from meta_ads_elt.schemas import lake_datasets

TIMEZONES = (
    "America/Los_Angeles",
    "Asia/Kolkata",
    "Europe/Berlin",
    "UTC",
    "America/New_York",
    "Australia/Sydney",
    "America/Sao_Paulo",
    "Asia/Tokyo",
)
CURRENCIES = ("USD", "INR", "EUR", "USD", "USD", "AUD", "BRL", "JPY")
PARTITION_TYPES: dict[str, pa.DataType] = {
    "account_id": pa.string(),
    "page_id": pa.string(),
    "platform": pa.string(),
    "date": pa.date32(),
    "extractor": pa.string(),
}


REPORT_BREAKDOWN_VALUES: dict[str, tuple[str, ...]] = {
    "publisher_platform": ("facebook", "instagram", "facebook", "audience_network"),
    "platform_position": ("feed", "story", "marketplace", "an_classic"),
    "age": ("18-24", "25-34", "35-44", "45-54"),
    "gender": ("female", "male", "unknown", "female"),
    "country": ("US", "DE", "IN", "BR"),
    "device_platform": ("mobile_app", "desktop", "mobile_web", "mobile_app"),
}
"""The breakdown values of the preset reports' rows (``reports=True``), picked per ad: index ``k % 4``."""


def _full_schema(dataset: str) -> pa.Schema:
    schema, keys = lake_datasets(presets())[dataset]
    for key in keys:
        schema = schema.append(pa.field(key, PARTITION_TYPES[key], nullable=False))
    return schema


def _write_batches(
    root: Path,
    dataset: str,
    reader: pa.RecordBatchReader | Iterable[pa.RecordBatch],
    *,
    replace: bool = True,
) -> None:
    """Write record batches (file schema + partition columns) as hive partitions of ``dataset``.

    ``replace`` swaps whole partitions (the extractors' semantics); ``False`` adds a file beside the
    existing ones (to simulate a re-pull that left two extractions of a day).
    """
    schema = _full_schema(dataset)
    keys = lake_datasets(presets())[dataset][1]

    def cast(batches: Iterable[pa.RecordBatch]) -> Iterable[pa.RecordBatch]:
        for batch in batches:
            table = pa.Table.from_batches([batch]).select(schema.names)
            yield from table.cast(schema).to_batches()

    pads.write_dataset(
        cast(reader),
        base_dir=str(root / dataset),
        schema=schema,
        format="parquet",
        partitioning=pads.partitioning(pa.schema([schema.field(k) for k in keys]), flavor="hive"),
        basename_template=f"part-{uuid.uuid4().hex[:8]}-{{i}}.parquet",
        existing_data_behavior="delete_matching" if replace else "overwrite_or_ignore",
        max_partitions=100_000,
        max_open_files=512,
        max_rows_per_group=256 * 1024,
    )


def write_rows(
    root: str | Path, dataset: str, rows: list[Mapping[str, Any]], *, replace: bool = True
) -> None:
    """Write hand-written rows (file columns + partition columns) into ``dataset``.

    Missing nullable columns default to ``None``. Partitions present in ``rows`` are replaced, like
    the extractors' partition swap, unless ``replace=False``.
    """
    schema = _full_schema(dataset)
    columns = {name: [row.get(name) for row in rows] for name in schema.names}
    table = pa.table(columns, schema=schema)
    _write_batches(Path(root), dataset, table.to_batches(), replace=replace)


def _setup(con: duckdb.DuckDBPyConnection, params: dict[str, Any]) -> None:
    for name, value in params.items():
        con.execute(f"set variable {name} = ?", [value])
    con.execute("set TimeZone = 'UTC'")


def generate_lake(
    root: str | Path,
    *,
    insights_rows: int = 20_000,
    leads: int = 2_000,
    messages: int = 10_000,
    accounts: int = 4,
    days: int = 35,
    end_date: dt.date = dt.date(2026, 11, 20),
    seed: int = 7,
    clean: bool = True,
    with_conversations: bool = True,
    threads: int | None = None,
    lead_id_prefix: str = "L",
    reports: bool = False,
) -> dict[str, Any]:
    """Generate a coherent synthetic lake under ``root``; returns a summary of what was written.

    ``insights_rows`` are spread over ``accounts`` x ``days`` partitions (ads per account = rows /
    (accounts * days)). Each account ``i`` uses ``TIMEZONES[i % 8]`` and promotes Page ``90000<i>``
    (Messenger + Instagram). About 10 % of leads are organic. Messages come in conversations of ~10
    with gaps from minutes to two weeks; ~5 % are repeated in an older snapshot partition.
    ``reports`` adds the preset Insights reports (``insights_by_placement``, ``_by_age_gender``,
    ``_by_country``, ``_by_device``; one partition per account-day each, as the extractors write them):
    each insights row once, with one value per breakdown (:data:`REPORT_BREAKDOWN_VALUES`), so every
    report sums to the account totals.
    """
    root = Path(root)
    if clean and root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    ads_per_account = max(1, insights_rows // max(1, accounts * days))
    con = duckdb.connect()
    con.execute("set memory_limit = '6GB'")
    if threads:
        con.execute(f"set threads = {int(threads)}")
    _setup(
        con,
        {
            "seed": seed,
            "n_accounts": accounts,
            "n_days": days,
            "end_date": end_date,
            "ads_per_account": ads_per_account,
            "n_leads": leads,
            "n_messages": messages,
            "lead_prefix": lead_id_prefix,
        },
    )
    con.execute(
        """
        create table acct as
        select
            i as idx,
            cast(1000 + i as varchar) as account_id,
            cast(900000 + i as varchar) as page_id,
            'Account ' || i as name,
            ? [i % 8 + 1] as timezone_name,
            ? [i % 8 + 1] as currency
        from range(getvariable('n_accounts')) as t(i)
        """,
        [list(TIMEZONES), list(CURRENCIES)],
    )
    extracted = "timestamptz '" + end_date.isoformat() + " 23:00:00+00' + interval 6 hour"
    # -- snapshots -------------------------------------------------------------------------------
    accounts_sql = f"""
        select
            name, currency, timezone_name,
            cast(null as double) as timezone_offset_hours_utc,
            [page_id] as promoted_page_ids,
            {extracted} as _extracted_at,
            account_id
        from acct order by account_id
    """
    _write_batches(root, "accounts", con.sql(accounts_sql).to_arrow_reader())
    # the Page snapshots each Page extractor writes (its name, from the call for the Page token)
    pages_sql = f"""
        select 'Page ' || page_id as name, {extracted} as _extracted_at, page_id, extractor
        from acct, (values ('leads'), ('conversations')) as e(extractor)
        order by page_id, extractor
    """
    _write_batches(root, "pages", con.sql(pages_sql).to_arrow_reader())
    # ad tree: ad k of account a -> adset k // 20, campaign k // 200 (ids unique across accounts)
    con.execute(
        """
        create table ads as
        select
            a.account_id,
            a.idx as account_idx,
            k,
            a.account_id || '0' || lpad(cast(k as varchar), 7, '0') as ad_id,
            a.account_id || '1' || lpad(cast(k // 20 as varchar), 6, '0') as adset_id,
            a.account_id || '2' || lpad(cast(k // 200 as varchar), 5, '0') as campaign_id
        from acct as a, range(getvariable('ads_per_account')) as t(k)
        """
    )
    _write_batches(
        root,
        "campaigns",
        con.sql(
            f"""
            select distinct campaign_id, 'Campaign ' || campaign_id as name, 'OUTCOME_LEADS' as objective,
                'ACTIVE' as status, timestamptz '2026-01-01 00:00:00+00' as created_time,
                'ACTIVE' as effective_status, 'ACTIVE' as configured_status,
                timestamptz '2026-01-01 00:00:00+00' as updated_time,
                {extracted} as _extracted_at, account_id
            from ads order by account_id, campaign_id
            """
        ).to_arrow_reader(),
    )
    _write_batches(
        root,
        "adsets",
        con.sql(
            f"""
            select distinct adset_id, campaign_id, 'Ad set ' || adset_id as name,
                'LEAD_GENERATION' as optimization_goal, 'ACTIVE' as status,
                timestamptz '2026-01-01 00:00:00+00' as created_time,
                'ACTIVE' as effective_status, 'ACTIVE' as configured_status,
                timestamptz '2026-01-01 00:00:00+00' as updated_time,
                {extracted} as _extracted_at, account_id
            from ads order by account_id, adset_id
            """
        ).to_arrow_reader(),
    )
    _write_batches(
        root,
        "ads",
        con.sql(
            f"""
            select ad_id, adset_id, campaign_id, 'Ad ' || ad_id as name, 'ACTIVE' as status,
                timestamptz '2026-01-01 00:00:00+00' as created_time,
                'ACTIVE' as effective_status, 'ACTIVE' as configured_status,
                timestamptz '2026-01-01 00:00:00+00' as updated_time,
                {extracted} as _extracted_at, account_id
            from ads order by account_id, ad_id
            """
        ).to_arrow_reader(),
    )
    # -- insights ----------------------------------------------------------------------------------
    insights_sql = f"""
        with days as (
            select d, cast(getvariable('end_date') - cast(d as integer) as date) as day
            from range(getvariable('n_days')) as t(d)
        ),
        base as (
            select
                ads.*, acct.name as account_name, acct.currency, days.day,
                hash(ads.ad_id, days.day, getvariable('seed')) as h
            from ads
            join acct on acct.account_id = ads.account_id
            cross join days
        ),
        n as (
            select
                *,
                cast((h % 50000) as decimal(18,6)) / 100 as spend,
                cast(h % 10000 as bigint) as impressions,
                cast((h >> 14) % 300 as bigint) as clicks,
                cast((h >> 24) % 4 as bigint) as grouped,
                cast((h >> 28) % 3 as bigint) as pixel,
                cast((h >> 32) % 5 as bigint) as convos
            from base
        )
        select
            account_name,
            currency as account_currency,
            campaign_id, 'Campaign ' || campaign_id as campaign_name,
            adset_id, 'Ad set ' || adset_id as adset_name,
            ad_id, 'Ad ' || ad_id as ad_name,
            day as date_start, day as date_stop,
            spend, impressions, clicks,
            cast(impressions * 8 // 10 as bigint) as reach,
            cast(1.25 as decimal(18,6)) as frequency,
            cast(case when impressions > 0 then spend * 1000 / impressions end as decimal(18,6)) as cpm,
            cast(case when impressions > 0 then clicks * 100.0 / impressions end as decimal(18,6)) as ctr,
            clicks as inline_link_clicks,
            [
                {{'action_type': 'link_click', 'value': clicks::decimal(18,6), '1d_click': clicks::decimal(18,6),
                  '7d_click': clicks::decimal(18,6), '28d_click': clicks::decimal(18,6), '1d_view': null::decimal(18,6)}},
                {{'action_type': 'lead', 'value': (grouped + pixel)::decimal(18,6),
                  '1d_click': grouped::decimal(18,6), '7d_click': (grouped + pixel)::decimal(18,6),
                  '28d_click': (grouped + pixel + 1)::decimal(18,6), '1d_view': 0::decimal(18,6)}},
                {{'action_type': 'onsite_conversion.lead_grouped', 'value': grouped::decimal(18,6),
                  '1d_click': grouped::decimal(18,6), '7d_click': grouped::decimal(18,6),
                  '28d_click': grouped::decimal(18,6), '1d_view': 0::decimal(18,6)}},
                {{'action_type': 'offsite_conversion.fb_pixel_lead', 'value': pixel::decimal(18,6),
                  '1d_click': 0::decimal(18,6), '7d_click': pixel::decimal(18,6),
                  '28d_click': (pixel + 1)::decimal(18,6), '1d_view': 0::decimal(18,6)}},
                {{'action_type': 'onsite_conversion.messaging_conversation_started_7d', 'value': convos::decimal(18,6),
                  '1d_click': convos::decimal(18,6), '7d_click': convos::decimal(18,6),
                  '28d_click': convos::decimal(18,6), '1d_view': 0::decimal(18,6)}}
            ] as actions,
            cast(null as struct(action_type varchar, "value" decimal(18,6), "1d_click" decimal(18,6),
                "7d_click" decimal(18,6), "28d_click" decimal(18,6), "1d_view" decimal(18,6))[]) as action_values,
            cast(null as struct(action_type varchar, "value" decimal(18,6), "1d_click" decimal(18,6),
                "7d_click" decimal(18,6), "28d_click" decimal(18,6), "1d_view" decimal(18,6))[]) as cost_per_action_type,
            '7d_click,1d_view' as attribution_setting,
            'run-' || account_id as _report_run_id,
            {extracted} as _extracted_at,
            account_id,
            day as date
        from n
        order by account_id, day
    """
    _write_batches(root, "insights", con.sql(insights_sql).to_arrow_reader(200_000))
    # -- the completeness control: per account-day, the sums of the ad rows (served the next day at 12:00
    # UTC, when every time zone has finished the last day) --------------------------------------------
    totals_sql = f"""
        with served as (select timestamptz '{end_date.isoformat()} 12:00:00+00' + interval 1 day as served_at)
        select
            any_value(i.account_currency) as account_currency, sum(i.spend) as spend,
            sum(i.impressions) as impressions, sum(i.clicks) as clicks,
            any_value(acct.timezone_name) as timezone_name, any_value(served.served_at) as served_at,
            cast(timezone(any_value(acct.timezone_name), any_value(served.served_at)) as date) as served_local_date,
            {extracted} as _extracted_at, i.account_id, i.date
        from read_parquet('{root / "insights"}/*/*/*.parquet', hive_partitioning = true,
                          hive_types = {{'account_id': 'VARCHAR', 'date': 'DATE'}}) as i
        join acct on acct.account_id = i.account_id
        cross join served
        group by i.account_id, i.date
        order by i.account_id, i.date
    """
    _write_batches(root, "insights_account_totals", con.sql(totals_sql).to_arrow_reader(200_000))
    if reports:
        _write_reports(con, root)
    # -- leads -------------------------------------------------------------------------------------
    con.execute(
        """
        create table lead_rows as
        with l as (
            select i, hash(i, getvariable('seed'), 'lead') as h
            from range(getvariable('n_leads')) as t(i)
        ),
        picked as (
            select
                i, h,
                (h % getvariable('n_accounts')) as account_idx,
                ((h >> 8) % getvariable('ads_per_account')) as k,
                ((h >> 40) % 10) = 0 as is_organic,
                getvariable('end_date')::timestamptz + interval 12 hour
                    - to_seconds(cast((h >> 20) % (getvariable('n_days') * 86400) as bigint)) as created_time
            from l
        )
        select
            getvariable('lead_prefix') || picked.i as lead_id,
            picked.created_time,
            'F' || acct.page_id as form_id,
            case when not is_organic then ads.ad_id end as ad_id,
            case when not is_organic then 'Ad ' || ads.ad_id end as ad_name,
            case when not is_organic then ads.adset_id end as adset_id,
            case when not is_organic then 'Ad set ' || ads.adset_id end as adset_name,
            case when not is_organic then ads.campaign_id end as campaign_id,
            case when not is_organic then 'Campaign ' || ads.campaign_id end as campaign_name,
            is_organic,
            case when h % 3 = 0 then 'ig' else 'fb' end as platform,
            sha256('lead' || picked.i || '@example.com') as email_sha256,
            cast(null as varchar) as phone_sha256,
            [{'checkbox_key': 'consent', 'is_checked': true}] as custom_disclaimer_responses,
            picked.created_time + interval 2 hour as _extracted_at,
            acct.page_id,
            cast(picked.created_time as date) as date
        from picked
        join acct on acct.idx = picked.account_idx
        join ads on ads.account_idx = picked.account_idx and ads.k = picked.k
        """
    )
    _write_batches(
        root, "leads", con.sql("select * from lead_rows order by page_id, date").to_arrow_reader(200_000)
    )
    _write_batches(
        root,
        "lead_answers",
        con.sql(
            """
            select lead_id, form_id, 'email' as question, email_sha256 as value, true as value_is_hashed,
                _extracted_at, page_id, date
            from lead_rows order by page_id, date
            """
        ).to_arrow_reader(200_000),
    )
    # -- conversations + messages --------------------------------------------------------------------
    n_messages = messages if with_conversations else 0
    if n_messages:
        con.execute(
            """
            create table msg as
            with m as (
                select i, i // 10 as conv, i % 10 as pos, hash(i, getvariable('seed'), 'msg') as h
                from range(cast(getvariable('n_messages') * 0.95 as bigint)) as t(i)
            ),
            gaps as (
                select
                    *,
                    case
                        when (h % 7) = 0 then 8 * 86400 + (h >> 10) % 86400   -- a new start after silence
                        when (h % 7) = 1 then 7 * 86400                        -- exactly 7 days: a start
                        when (h % 7) = 2 then 7 * 86400 - 1                    -- 1 s short: not a start
                        else (h >> 10) % 7200
                    end as gap_seconds
                from m
            ),
            timed as (
                select
                    *,
                    sum(gap_seconds) over (partition by conv order by pos) as offset_seconds,
                    hash(conv, getvariable('seed'), 'conv') as hc
                from gaps
            ),
            spans as (
                select *, max(offset_seconds) over (partition by conv) as span_seconds from timed
            )
            select
                'M' || i as message_id,
                'C' || conv as conversation_id,
                getvariable('end_date')::timestamptz + interval 12 hour
                    - to_seconds(cast(hc % (getvariable('n_days') * 86400) as bigint))
                    - to_seconds(cast(span_seconds - offset_seconds as bigint)) as created_time,
                ((h >> 3) % 3) = 0 and pos > 0 as is_from_page,
                'U' || conv as user_id,
                cast(900000 + (hc % getvariable('n_accounts')) as varchar) as page_id,
                case when (hc >> 5) % 2 = 0 then 'messenger' else 'instagram' end as platform,
                conv
            from spans
            """
        )
        con.execute(
            """
            create table conv as
            select
                conversation_id, page_id, platform,
                max(created_time) as updated_time,
                count(*) as message_count,
                arg_min(message_id, created_time) as first_message_id,
                least(cast(max(created_time) as date), getvariable('end_date')) as snapshot_date,
                any_value(user_id) as user_id
            from msg group by all
            """
        )
        _write_batches(
            root,
            "conversations",
            con.sql(
                """
                select conversation_id, updated_time, message_count, [user_id, page_id] as participant_ids,
                    0::bigint as messages_out_of_reach, first_message_id,
                    snapshot_date::timestamptz + interval 30 hour as _extracted_at,
                    page_id, platform, snapshot_date as date
                from conv order by page_id, platform, snapshot_date
                """
            ).to_arrow_reader(200_000),
        )
        # every message in its conversation's snapshot, plus ~5 % repeated in an older snapshot
        _write_batches(
            root,
            "messages",
            con.sql(
                """
                with placed as (
                    select msg.*, conv.snapshot_date as date from msg join conv using (conversation_id)
                    union all
                    select msg.*, cast(conv.snapshot_date - 3 as date) as date
                    from msg join conv using (conversation_id)
                    where hash(msg.message_id, 'dup') % 100 < 5 and msg.created_time < conv.snapshot_date - 3
                )
                select
                    message_id, conversation_id, created_time,
                    case when is_from_page then page_id else user_id end as from_id,
                    [case when is_from_page then user_id else page_id end] as to_ids,
                    is_from_page,
                    'hello' as message,
                    date::timestamptz + interval 30 hour as _extracted_at,
                    page_id, platform, date
                from placed order by page_id, platform, date
                """
            ).to_arrow_reader(200_000),
        )
    con.close()
    return {
        "root": str(root),
        "accounts": accounts,
        "days": days,
        "ads_per_account": ads_per_account,
        "insights_rows": ads_per_account * accounts * days,
        "leads": leads,
        "messages": n_messages,
        "seconds": round(time.perf_counter() - started, 2),
    }


def _write_reports(con: duckdb.DuckDBPyConnection, root: Path) -> None:
    """The preset reports, from the insights rows just written (see :func:`generate_lake`)."""
    insights = (
        f"read_parquet('{root / 'insights'}/*/*/*.parquet', hive_partitioning = true, "
        "hive_types = {'account_id': 'VARCHAR', 'date': 'DATE'})"
    )
    for report in presets():
        schema, _ = lake_datasets([report])[report.dataset]
        breakdowns = ", ".join(
            f"{b} := {list(REPORT_BREAKDOWN_VALUES[b])}[cast(right(ad_id, 7) as integer) % 4 + 1]"
            for b in report.breakdowns
        )
        columns = ", ".join(
            name if name not in report.breakdowns else f"breakdown.{name}"
            for name in schema.names
            if name != "off_meta_actions"
        )
        sql = f"""
            select {columns}, 'complete' as off_meta_actions, account_id, date
            from (select *, struct_pack({breakdowns}) as breakdown from {insights})
            order by account_id, date
        """
        _write_batches(root, report.dataset, con.sql(sql).to_arrow_reader(200_000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root")
    parser.add_argument("--insights-rows", type=int, default=20_000)
    parser.add_argument("--leads", type=int, default=2_000)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--accounts", type=int, default=4)
    parser.add_argument("--days", type=int, default=35)
    parser.add_argument("--end-date", type=dt.date.fromisoformat, default=dt.date(2026, 11, 20))
    parser.add_argument("--reports", action="store_true", help="add the preset Insights reports")
    args = parser.parse_args()
    print(
        generate_lake(
            args.root,
            insights_rows=args.insights_rows,
            leads=args.leads,
            messages=args.messages,
            accounts=args.accounts,
            days=args.days,
            end_date=args.end_date,
            reports=args.reports,
        )
    )


if __name__ == "__main__":
    main()
