{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ meta_delete_window('date') }}",
    )
}}
-- One row per (date, page_id, platform), date = local date in the timezone of the account promoting
-- the Page: first-party conversations started (Conversations API) = observed (the sender was read)
-- + inferred (the opening message was beyond the 20 most recent in every snapshot; see
-- int_messages_classified), messages in (from users) and out (from the Page; messages whose sender is
-- beyond reach are in neither), and the median seconds from a conversation start to the Page's first
-- reply. Names: the Page's (its latest snapshot) and the promoting account's (account_id, account_name;
-- null for a Page no account promotes). message_requests_may_be_missing: the day's first conversations
-- pull came 30+ days after the day began, when Meta no longer returns Message Requests left inactive
-- for 30 days (seed 004; int_page_days_first_pulled).
with

messages as (

    select * from {{ ref('int_messages_classified') }}
    {% if is_incremental() -%}
    where message_date >= {{ meta_window_start() }}
    {%- endif %}

),

pages as (

    select * from {{ ref('int_pages_attributed') }}

),

extracted_days as (

    select * from {{ ref('int_account_days_extracted') }}

),

first_pulls as (

    select * from {{ ref('int_page_days_first_pulled') }}

),

page_names as (

    select * from {{ ref('int_pages_current') }}

),

accounts as (

    select * from {{ ref('int_accounts_current') }}

),

per_page_day as (

    select
        message_date as date,
        page_id,
        platform,
        cast(count(*) filter (where is_conversation_start) as bigint) as conversations_started,
        cast(count(*) filter (where not is_from_page) as bigint) as messages_in,
        cast(count(*) filter (where is_from_page) as bigint) as messages_out,
        cast(median(first_reply_seconds) as double) as median_first_reply_seconds,
        cast(
            count(*) filter (where is_conversation_start and not is_conversation_start_inferred) as bigint
        ) as conversations_started_observed,
        cast(count(*) filter (where is_conversation_start_inferred) as bigint)
            as conversations_started_inferred,
        max(extracted_at) as extracted_at,
    from messages
    group by all

),

final as (

    -- Only days the promoting account has extracted (see int_account_days_extracted), with their
    -- day_status; a Page no account promotes is dated in the reporting timezone and kept on the days
    -- some account has extracted (the runs' windows), so its older messages (anchors, long histories)
    -- never show up as half-counted days; its day_status comes from its latest message snapshot.
    select
        per_page_day.* exclude (extracted_at),  -- noqa: RF02
        coalesce(
            extracted_days.day_status,
            {{ meta_day_status(
                'per_page_day.date',
                meta_local_date('per_page_day.extracted_at', "'" ~ var('reporting_timezone') ~ "'"),
            ) }}
        ) as day_status,
        page_names.page_name,
        pages.account_id,
        accounts.account_name,
        first_pulls.message_requests_may_be_missing,
    from per_page_day
    left join pages on pages.page_id = per_page_day.page_id
    left join page_names on page_names.page_id = per_page_day.page_id
    left join accounts on accounts.account_id = pages.account_id
    left join first_pulls
        on first_pulls.page_id = per_page_day.page_id
        and first_pulls.platform = per_page_day.platform
        and first_pulls.date = per_page_day.date
    left join extracted_days
        on extracted_days.account_id = pages.account_id
        and extracted_days.date = per_page_day.date
    where extracted_days.account_id is not null
        or (
            pages.account_id is null
            and exists (
                select 1
                from extracted_days as any_extracted
                where any_extracted.date = per_page_day.date
            )
        )

)

select * from final
