"""Arrow schemas of every lake dataset: the contract between the extractors and dbt.

Partition columns (``account_id``, ``date``, ``page_id``, ``platform``) live in the hive-style
directory names only, never inside the files, so DuckDB's ``hive_partitioning`` sees each once.
Money and rates are decimals (never floats), counts are int64, instants are UTC timestamps.

Layout under the lake root (``data/lake/`` by default)::

    insights/account_id=<id>/date=<account-local YYYY-MM-DD>/part-*.parquet
    insights_account_totals/account_id=<id>/date=<account-local YYYY-MM-DD>/part-*.parquet
    accounts/account_id=<id>/part-*.parquet            (snapshot, replaced each run)
    campaigns/account_id=<id>/part-*.parquet           (snapshot)
    adsets/account_id=<id>/part-*.parquet              (snapshot)
    ads/account_id=<id>/part-*.parquet                 (snapshot)
    pages/page_id=<id>/extractor=<leads|conversations>/part-*.parquet   (snapshot, replaced each run)
    leads/page_id=<id>/date=<UTC created date>/part-*.parquet
    lead_answers/page_id=<id>/date=<UTC created date>/part-*.parquet
    conversations/page_id=<id>/platform=<p>/date=<UTC data-interval date>/part-*.parquet
    messages/page_id=<id>/platform=<p>/date=<UTC data-interval date>/part-*.parquet
    discovered_accounts/date=<UTC data-interval date>/part-*.parquet   (what discovery found, each run)
    discovered_pages/date=<UTC data-interval date>/part-*.parquet
    _manifests/<dataset>/...json                      (one per run and partition set)

``account_id`` is the numeric id without the ``act_`` prefix, as Insights rows report it.
"""

from __future__ import annotations

import pyarrow as pa

MONEY = pa.decimal128(18, 6)
"""Spend, values, costs and rates. Meta sends them as decimal strings; six places keep them exact."""

UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")

ACTION_STAT = pa.struct(
    [
        pa.field("action_type", pa.string()),
        pa.field("value", MONEY),
        pa.field("1d_click", MONEY),
        pa.field("7d_click", MONEY),
        pa.field("28d_click", MONEY),
        pa.field("1d_view", MONEY),
    ]
)
"""One element of ``actions`` / ``action_values`` / ``cost_per_action_type`` (Meta's AdsActionStats,
with the attribution-window keys kept under Meta's own names)."""

EXTRACTED_AT = pa.field("_extracted_at", UTC_TIMESTAMP, nullable=False)

OBJECT_STATUS_FIELDS = (
    pa.field("effective_status", pa.string()),
    pa.field("configured_status", pa.string()),
    pa.field("updated_time", UTC_TIMESTAMP),
)
"""Status of a campaign / ad set / ad as of the snapshot (Meta's effective_status, configured_status and
updated_time): snapshots hold archived and deleted objects too."""

INSIGHTS = pa.schema(
    [
        pa.field("account_name", pa.string()),
        pa.field("account_currency", pa.string()),
        pa.field("campaign_id", pa.string(), nullable=False),
        pa.field("campaign_name", pa.string()),
        pa.field("adset_id", pa.string(), nullable=False),
        pa.field("adset_name", pa.string()),
        pa.field("ad_id", pa.string(), nullable=False),
        pa.field("ad_name", pa.string()),
        pa.field("date_start", pa.date32(), nullable=False),
        pa.field("date_stop", pa.date32(), nullable=False),
        pa.field("spend", MONEY),
        pa.field("impressions", pa.int64()),
        pa.field("clicks", pa.int64()),
        pa.field("reach", pa.int64()),
        pa.field("frequency", MONEY),
        pa.field("cpm", MONEY),
        pa.field("ctr", MONEY),
        pa.field("inline_link_clicks", pa.int64()),
        pa.field("actions", pa.list_(ACTION_STAT)),
        pa.field("action_values", pa.list_(ACTION_STAT)),
        pa.field("cost_per_action_type", pa.list_(ACTION_STAT)),
        pa.field("attribution_setting", pa.string()),
        pa.field("_report_run_id", pa.string()),
        EXTRACTED_AT,
    ]
)

INSIGHTS_ACCOUNT_TOTALS = pa.schema(
    [
        pa.field("account_currency", pa.string()),
        pa.field("spend", MONEY),
        pa.field("impressions", pa.int64()),
        pa.field("clicks", pa.int64()),
        pa.field("timezone_name", pa.string()),
        pa.field("served_at", UTC_TIMESTAMP),
        pa.field("served_local_date", pa.date32()),
        EXTRACTED_AT,
    ]
)
"""The completeness control: the account's own Insights row (``level=account``) per account-local date
of the window, one row per date (zeros when Meta had no row). ``served_at`` is Meta's clock (the
response's ``Date`` header) and ``served_local_date`` that instant's date in the account's time zone:
a date on or after it was not over when served (partial)."""

ACCOUNTS = pa.schema(
    [
        pa.field("name", pa.string()),
        pa.field("currency", pa.string(), nullable=False),
        pa.field("timezone_name", pa.string(), nullable=False),
        pa.field("timezone_offset_hours_utc", pa.float64()),
        pa.field("promoted_page_ids", pa.list_(pa.string())),
        EXTRACTED_AT,
    ]
)

CAMPAIGNS = pa.schema(
    [
        pa.field("campaign_id", pa.string(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("objective", pa.string()),
        pa.field("status", pa.string()),
        pa.field("created_time", UTC_TIMESTAMP),
        *OBJECT_STATUS_FIELDS,
        EXTRACTED_AT,
    ]
)

ADSETS = pa.schema(
    [
        pa.field("adset_id", pa.string(), nullable=False),
        pa.field("campaign_id", pa.string(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("optimization_goal", pa.string()),
        pa.field("status", pa.string()),
        pa.field("created_time", UTC_TIMESTAMP),
        *OBJECT_STATUS_FIELDS,
        EXTRACTED_AT,
    ]
)

ADS = pa.schema(
    [
        pa.field("ad_id", pa.string(), nullable=False),
        pa.field("adset_id", pa.string(), nullable=False),
        pa.field("campaign_id", pa.string(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("status", pa.string()),
        pa.field("created_time", UTC_TIMESTAMP),
        *OBJECT_STATUS_FIELDS,
        EXTRACTED_AT,
    ]
)

PAGES = pa.schema(
    [
        pa.field("name", pa.string()),
        EXTRACTED_AT,
    ]
)
"""A configured Page as its extractor saw it (``GET /<page_id>?fields=name``, the call that also gives
the Page token). Each Page extractor (leads, conversations) keeps its own partition, so the two tasks of
one Page never replace the same directory; the marts take the latest name."""

LEADS = pa.schema(
    [
        pa.field("lead_id", pa.string(), nullable=False),
        pa.field("created_time", UTC_TIMESTAMP, nullable=False),
        pa.field("form_id", pa.string(), nullable=False),
        pa.field("ad_id", pa.string()),
        pa.field("ad_name", pa.string()),
        pa.field("adset_id", pa.string()),
        pa.field("adset_name", pa.string()),
        pa.field("campaign_id", pa.string()),
        pa.field("campaign_name", pa.string()),
        pa.field("is_organic", pa.bool_(), nullable=False),
        pa.field("platform", pa.string()),
        pa.field("email_sha256", pa.string()),
        pa.field("phone_sha256", pa.string()),
        pa.field(
            "custom_disclaimer_responses",
            pa.list_(pa.struct([pa.field("checkbox_key", pa.string()), pa.field("is_checked", pa.bool_())])),
        ),
        EXTRACTED_AT,
    ]
)

LEAD_ANSWERS = pa.schema(
    [
        pa.field("lead_id", pa.string(), nullable=False),
        pa.field("form_id", pa.string(), nullable=False),
        pa.field("question", pa.string(), nullable=False),
        pa.field("value", pa.string()),
        pa.field("value_is_hashed", pa.bool_(), nullable=False),
        EXTRACTED_AT,
    ]
)

CONVERSATIONS = pa.schema(
    [
        pa.field("conversation_id", pa.string(), nullable=False),
        pa.field("updated_time", UTC_TIMESTAMP, nullable=False),
        pa.field("message_count", pa.int64()),
        pa.field("participant_ids", pa.list_(pa.string())),
        pa.field("messages_out_of_reach", pa.int64()),  # null: message_count unknown
        pa.field("first_message_id", pa.string()),  # null: the walk did not reach the first message
        EXTRACTED_AT,
    ]
)

MESSAGES = pa.schema(
    [
        pa.field("message_id", pa.string(), nullable=False),
        pa.field("conversation_id", pa.string(), nullable=False),
        pa.field("created_time", UTC_TIMESTAMP, nullable=False),
        pa.field("from_id", pa.string()),
        pa.field("to_ids", pa.list_(pa.string())),
        pa.field("is_from_page", pa.bool_()),  # null: beyond the 20 most recent, sender unknown
        pa.field("message", pa.string()),
        EXTRACTED_AT,
    ]
)

DATASETS: dict[str, pa.Schema] = {
    "insights": INSIGHTS,
    "insights_account_totals": INSIGHTS_ACCOUNT_TOTALS,
    "accounts": ACCOUNTS,
    "campaigns": CAMPAIGNS,
    "adsets": ADSETS,
    "ads": ADS,
    "pages": PAGES,
    "leads": LEADS,
    "lead_answers": LEAD_ANSWERS,
    "conversations": CONVERSATIONS,
    "messages": MESSAGES,
}

DISCOVERY_COMMON = [
    pa.field("name", pa.string()),
    pa.field("sources", pa.list_(pa.string())),  # the discover: sources that listed it
    # extracted | arrived (first seen: backfilled) | excluded | skipped_status | skipped_currency |
    # unreadable | departed (listed before, not any more: its lake data is kept)
    pa.field("state", pa.string(), nullable=False),
    pa.field("reason", pa.string()),
    pa.field("first_seen_date", pa.date32()),
    pa.field("history_days", pa.int32()),  # days this run extracts (the lookback, more on arrival)
    EXTRACTED_AT,
]
DISCOVERED_ACCOUNTS = pa.schema(
    [
        pa.field("account_id", pa.string(), nullable=False),
        pa.field("currency", pa.string()),
        pa.field("account_status", pa.string()),
        pa.field("business_id", pa.string()),
        *DISCOVERY_COMMON,
    ]
)
DISCOVERED_PAGES = pa.schema([pa.field("page_id", pa.string(), nullable=False), *DISCOVERY_COMMON])
DATASETS["discovered_accounts"] = DISCOVERED_ACCOUNTS
DATASETS["discovered_pages"] = DISCOVERED_PAGES
DISCOVERY_DATASETS = ("discovered_accounts", "discovered_pages")
"""Written only with ``discover:`` config, read by no dbt model (a record of what each run found)."""

PARTITION_KEYS: dict[str, tuple[str, ...]] = {
    "insights": ("account_id", "date"),
    "insights_account_totals": ("account_id", "date"),
    "accounts": ("account_id",),
    "campaigns": ("account_id",),
    "adsets": ("account_id",),
    "ads": ("account_id",),
    "pages": ("page_id", "extractor"),
    "leads": ("page_id", "date"),
    "lead_answers": ("page_id", "date"),
    "conversations": ("page_id", "platform", "date"),
    "messages": ("page_id", "platform", "date"),
    "discovered_accounts": ("date",),
    "discovered_pages": ("date",),
}


# ---- Insights reports (insights.reports of include/pipeline.yaml; meta_ads_elt.reports) ---------------

REPORT_PARTITION_KEYS: tuple[str, ...] = ("account_id", "date")
"""Every report dataset ``insights_<report>/account_id=/date=`` (``date`` = the row's ``date_start``)."""

OFF_META_ACTIONS = pa.field("off_meta_actions", pa.string(), nullable=False)
"""``complete`` | ``not_returned`` (Meta's Type 1 breakdowns: pixel and other off-Meta actions are
missing from ``actions``) | ``web_only`` (Type 2): what the row's actions hold (meta_ads_elt.breakdowns)."""


def action_stat(extra_keys: tuple[str, ...] = ()) -> pa.StructType:
    """:data:`ACTION_STAT` with the keys of a report's other ``action_breakdowns`` (e.g. ``action_device``)."""
    if not extra_keys:
        return ACTION_STAT
    return pa.struct(
        [
            ACTION_STAT.field(0),
            *(pa.field(k, pa.string()) for k in extra_keys),
            *(ACTION_STAT.field(i) for i in range(1, ACTION_STAT.num_fields)),
        ]
    )


def report_schema(report) -> pa.Schema:
    """The Arrow schema of a report's dataset: its requested fields (types as in :data:`INSIGHTS`; extra
    string fields as strings, action-stat lists as lists), its breakdown columns (strings, part of the
    primary key), ``off_meta_actions``, ``_report_run_id`` and ``_extracted_at``. ``report`` is a
    :class:`meta_ads_elt.reports.ReportConfig`; the default report's schema is :data:`INSIGHTS`."""
    if report.is_default:
        return INSIGHTS
    from meta_ads_elt.reports import field_kind

    stat = pa.list_(action_stat(report.action_breakdown_keys))
    columns = []
    for name in report.request_fields:
        if name in REPORT_PARTITION_KEYS:
            continue
        if name in INSIGHTS.names:
            field = INSIGHTS.field(name)
            columns.append(pa.field(name, stat) if pa.types.is_list(field.type) else field)
        else:
            columns.append(pa.field(name, stat if field_kind(name) == "actions" else pa.string()))
    columns += [pa.field(b, pa.string()) for b in report.breakdowns]
    columns += [OFF_META_ACTIONS, pa.field("_report_run_id", pa.string()), EXTRACTED_AT]
    return pa.schema(columns)


def lake_datasets(reports=()) -> dict[str, tuple[pa.Schema, tuple[str, ...]]]:
    """Every lake dataset -> (Arrow schema, partition keys): the fixed ones and one per report. The one
    declaration dbt's sources and empty relations are generated from (meta_ads_elt.dbt_contract)."""
    out = {name: (schema, PARTITION_KEYS[name]) for name, schema in DATASETS.items()}
    for report in reports:
        if not report.is_default:
            out[report.dataset] = (report_schema(report), REPORT_PARTITION_KEYS)
    return out
