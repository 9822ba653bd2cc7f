{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='message_date',
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

known as (

    select
        conversation_id,
        count(*) as known_message_count,
    from messages
    group by conversation_id

),

history as (

    select
        known.conversation_id,
        coalesce(conversations.messages_out_of_reach, 0) = 0
            and coalesce(conversations.message_count, 0) <= known.known_message_count as history_complete,
    from known
    left join conversations on conversations.conversation_id = known.conversation_id

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
    window by_conversation as (partition by conversation_id order by created_time, message_id)

),

classified as (

    select
        ordered.*,
        not ordered.is_from_page
        and case
            when ordered.previous_created_time is null then history.history_complete
            else epoch_us(ordered.created_time) - epoch_us(ordered.previous_created_time)
                >= cast({{ var('conversation_gap_hours') }} as bigint) * 3600 * 1000000
        end as is_conversation_start,
    from ordered
    inner join history on history.conversation_id = ordered.conversation_id

),

next_starts as (

    select
        message_id,
        lead(created_time) over (
            partition by conversation_id order by created_time, message_id
        ) as next_start_time,
    from classified
    where is_conversation_start

),

localized as (

    select
        classified.message_id,
        classified.conversation_id,
        classified.page_id,
        classified.platform,
        classified.created_time,
        classified.is_from_page,
        classified.is_conversation_start,
        case
            when classified.is_conversation_start
                and (next_starts.next_start_time is null
                    or classified.next_page_message_time < next_starts.next_start_time)
                then (epoch_us(classified.next_page_message_time) - epoch_us(classified.created_time)) / 1e6
        end as first_reply_seconds,
        pages.account_id,
        {{ meta_local_date('classified.created_time', "coalesce(pages.timezone_name, '" ~ var('reporting_timezone') ~ "')") }} as message_date,
        classified.extracted_at,
    from classified
    left join next_starts on next_starts.message_id = classified.message_id
    left join pages on pages.page_id = classified.page_id

)

select * from localized
{% if is_incremental() -%}
where message_date >= {{ meta_window_start() }}
{%- endif %}
