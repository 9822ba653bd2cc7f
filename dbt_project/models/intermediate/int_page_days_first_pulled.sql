-- One row per (page_id, platform, date) some conversations pull covered: when the first of those pulls
-- ran, and whether it ran so late that Meta may no longer have returned the day's Message Requests.
-- Meta (seed 004, Conversations API): "Conversations in the Requests folder that have not been active
-- for 30 days are not returned in API calls". A pull of a date at least 30 days after the date began
-- (a backfill, a late first run) may have missed such conversations started that day; which
-- conversations are Requests the API does not say, so the flag says "may". A snapshot (data interval
-- date S) covers the Page-local dates S - lookback_days + 1 .. S; its pull time is the earliest
-- _extracted_at of its rows (a rerun keeps what an earlier pull saw with that pull's time). A snapshot
-- without a conversation covers nothing here. Dates: the promoting account's timezone, else
-- var('reporting_timezone'), as conversations_started_by_page.
with

conversations as (

    select * from {{ ref('stg_meta__conversations') }}

),

pages as (

    select * from {{ ref('int_pages_attributed') }}

),

pulls as (

    select
        page_id,
        platform,
        snapshot_date,
        min(extracted_at) as pulled_at,
    from conversations
    group by all

),

covered as (

    select
        page_id,
        platform,
        pulled_at,
        cast(unnest(generate_series(
            cast(snapshot_date - {{ var('lookback_days') | int - 1 }} as timestamp),
            cast(snapshot_date as timestamp),
            interval 1 day
        )) as date) as date,
    from pulls

),

first_pulls as (

    select
        page_id,
        platform,
        date,
        min(pulled_at) as first_pulled_at,
    from covered
    group by all

),

final as (

    select
        first_pulls.page_id,
        first_pulls.platform,
        first_pulls.date,
        first_pulls.first_pulled_at,
        first_pulls.first_pulled_at >= timezone(
            coalesce(pages.timezone_name, '{{ var("reporting_timezone") }}'),
            cast(first_pulls.date as timestamp)
        ) + interval {{ var('message_requests_inactive_days') | int }} day as message_requests_may_be_missing,
    from first_pulls
    left join pages on pages.page_id = first_pulls.page_id

)

select * from final
