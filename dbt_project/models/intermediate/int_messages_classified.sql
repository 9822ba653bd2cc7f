{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ meta_delete_window('message_date') }}",
    )
}}
-- Each message (de-duplicated across snapshots, a row with the sender winning) with its local date
-- (timezone of the account promoting the Page) and whether it starts a conversation (DESIGN.md,
-- "Conversation starts"). A message opens a conversation when it is the conversation's first
-- message (its id is the first_message_id a snapshot's walk of the messages edge reached) or comes
-- >= var('conversation_gap_hours') (168 h = 7 days) after the conversation's previous message (every
-- message's created_time is known, details or not). Then:
--   * observed start: the sender is known and is not the Page;
--   * inferred start: the sender is unknown (beyond the 20 most recent messages in every snapshot
--     that listed it): Meta lets a Page message a person only in reply, so a message that opens a
--     conversation or ends 7 days of silence is the person's;
--   * a Page message never starts one; the oldest known message of a conversation whose first
--     message no snapshot reached has an unknown predecessor and is not counted.
-- first_reply_seconds (on starts): seconds to the Page's next message, if it comes before the
-- conversation's next start.
-- Incremental: re-classifies the messages of the recent snapshots and replaces the window's dates.
with

messages as (

    select *
    from {{ meta_latest_messages(
        ref('stg_meta__messages'),
        snapshots_since=(meta_window_start(offset_days=2) if is_incremental() else none),
    ) }} as latest_messages

),

conversations as (

    select * from {{ ref('int_conversations_current') }}

),

pages as (

    select * from {{ ref('int_pages_attributed') }}

),

ordered as (

    select
        message_id,
        conversation_id,
        page_id,
        platform,
        created_time,
        is_from_page,
        extracted_at,
        lag(created_time) over by_conversation as previous_created_time,
        min(case when is_from_page then created_time end) over (
            by_conversation rows between 1 following and unbounded following
        ) as next_page_message_time,
    from messages
    -- a message without a conversation has no history and is not classified
    where conversation_id is not null
    window by_conversation as (partition by conversation_id order by created_time, message_id)

),

classified as (

    select
        ordered.message_id,
        ordered.conversation_id,
        ordered.page_id,
        ordered.platform,
        ordered.created_time,
        ordered.is_from_page,
        ordered.extracted_at,
        ordered.next_page_message_time,
        coalesce(not ordered.is_from_page, true)
        and case
            when ordered.previous_created_time is null
                then coalesce(ordered.message_id = conversations.first_message_id, false)
            else epoch_us(ordered.created_time) - epoch_us(ordered.previous_created_time)
                >= cast({{ var('conversation_gap_hours') }} as bigint) * 3600 * 1000000
        end as opens_conversation,
    from ordered
    left join conversations on conversations.conversation_id = ordered.conversation_id

),

starts as (

    select
        * exclude (opens_conversation),
        opens_conversation as is_conversation_start,
        opens_conversation and is_from_page is null as is_conversation_start_inferred,
    from classified

),

with_next_start as (

    select
        *,
        -- the conversation's next start (starts are ordered like the messages)
        min(case when is_conversation_start then created_time end) over (
            partition by conversation_id order by created_time, message_id
            rows between 1 following and unbounded following
        ) as next_start_time,
    from starts

),

localized as (

    select
        with_next_start.message_id,
        with_next_start.conversation_id,
        with_next_start.page_id,
        with_next_start.platform,
        with_next_start.created_time,
        with_next_start.is_from_page,
        with_next_start.is_conversation_start,
        with_next_start.is_conversation_start_inferred,
        case
            when
                with_next_start.is_conversation_start
                and (
                    with_next_start.next_start_time is null
                    or with_next_start.next_page_message_time < with_next_start.next_start_time
                )
                then
                    (
                        epoch_us(with_next_start.next_page_message_time)
                        - epoch_us(with_next_start.created_time)
                    ) / 1e6
        end as first_reply_seconds,
        pages.account_id,
        {{ meta_local_date(
            'with_next_start.created_time', "coalesce(pages.timezone_name, '" ~ var('reporting_timezone') ~ "')"
        ) }} as message_date,
        with_next_start.extracted_at,
    from with_next_start
    left join pages on pages.page_id = with_next_start.page_id

)

select * from localized
{% if is_incremental() -%}
where message_date >= {{ meta_window_start() }}
{%- endif %}
