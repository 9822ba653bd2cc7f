{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ meta_delete_window('message_date') }}",
    )
}}
-- Each message (de-duplicated across snapshots) with its local date (timezone of the account
-- promoting the Page) and whether it starts a conversation: a user message (not from the Page) that is
-- the first message of its conversation, or comes >= var('conversation_gap_hours') (168 h = 7 days)
-- after the conversation's previous message. When older messages were out of reach
-- (conversation.message_count > messages known, or messages_out_of_reach > 0), the first *known*
-- message has an unknown predecessor and is not counted. first_reply_seconds (on starts): seconds to
-- the Page's next message, if it comes before the conversation's next start.
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
        -- messages known in the conversation (same window: one sort for the three)
        count(*) over (
            by_conversation rows between unbounded preceding and unbounded following
        ) as known_message_count,
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
        not ordered.is_from_page
        and case
            -- the first known message: a start only if no older message is out of reach
            when ordered.previous_created_time is null
                then coalesce(conversations.messages_out_of_reach, 0) = 0
                and coalesce(conversations.message_count, 0) <= ordered.known_message_count
            else epoch_us(ordered.created_time) - epoch_us(ordered.previous_created_time)
                >= cast({{ var('conversation_gap_hours') }} as bigint) * 3600 * 1000000
        end as is_conversation_start,
    from ordered
    left join conversations on conversations.conversation_id = ordered.conversation_id

),

with_next_start as (

    select
        *,
        -- the conversation's next start (starts are ordered like the messages)
        min(case when is_conversation_start then created_time end) over (
            partition by conversation_id order by created_time, message_id
            rows between 1 following and unbounded following
        ) as next_start_time,
    from classified

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
        case
            when with_next_start.is_conversation_start
                and (with_next_start.next_start_time is null
                    or with_next_start.next_page_message_time < with_next_start.next_start_time)
                then (epoch_us(with_next_start.next_page_message_time) - epoch_us(with_next_start.created_time)) / 1e6
        end as first_reply_seconds,
        pages.account_id,
        {{ meta_local_date('with_next_start.created_time', "coalesce(pages.timezone_name, '" ~ var('reporting_timezone') ~ "')") }} as message_date,
        with_next_start.extracted_at,
    from with_next_start
    left join pages on pages.page_id = with_next_start.page_id

)

select * from localized
{% if is_incremental() -%}
where message_date >= {{ meta_window_start() }}
{%- endif %}
