-- Each message with its local date (timezone of the account promoting the Page) and whether it starts
-- a conversation: a user message (not from the Page) that is the first message of its conversation,
-- or comes >= var('conversation_gap_hours') (168 h = 7 days) after the conversation's previous message.
-- When older messages are out of reach (conversation.message_count > messages known, or
-- messages_out_of_reach > 0) the first *known* message has an unknown predecessor: it is not counted.
-- Each start opens a session; the Page's first reply is its first message in that session.
with

messages as (

    select * from {{ ref('int_messages_deduplicated') }}

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
        messages.message_id,
        messages.conversation_id,
        messages.page_id,
        messages.platform,
        messages.created_time,
        messages.is_from_page,
        messages.extracted_at,
        lag(messages.created_time) over by_conversation as previous_created_time,
    from messages
    window by_conversation as (
        partition by messages.conversation_id order by messages.created_time, messages.message_id
    )

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

sessionized as (

    select
        *,
        sum(case when is_conversation_start then 1 else 0 end) over (
            partition by conversation_id
            order by created_time, message_id
            rows between unbounded preceding and current row
        ) as session_number,
    from classified

),

replies as (

    select
        conversation_id,
        session_number,
        min(created_time) filter (where is_from_page) as first_reply_time,
    from sessionized
    where session_number > 0
    group by all

),

localized as (

    select
        sessionized.message_id,
        sessionized.conversation_id,
        sessionized.page_id,
        sessionized.platform,
        sessionized.created_time,
        sessionized.is_from_page,
        sessionized.is_conversation_start,
        sessionized.session_number,
        case
            when sessionized.is_conversation_start
                then (epoch_us(replies.first_reply_time) - epoch_us(sessionized.created_time)) / 1e6
        end as first_reply_seconds,
        pages.account_id,
        {{ meta_local_date('sessionized.created_time', "coalesce(pages.timezone_name, '" ~ var('reporting_timezone') ~ "')") }} as message_date,
        sessionized.extracted_at,
    from sessionized
    left join replies
        on replies.conversation_id = sessionized.conversation_id
        and replies.session_number = sessionized.session_number
        and sessionized.is_conversation_start
    left join pages on pages.page_id = sessionized.page_id

)

select * from localized
