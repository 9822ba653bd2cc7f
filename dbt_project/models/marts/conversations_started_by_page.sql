{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ meta_delete_window('date') }}",
    )
}}
-- One row per (date, page_id, platform), date = local date in the timezone of the account promoting
-- the Page: first-party conversations started (Conversations API), messages in (from users) and out
-- (from the Page), and the median seconds from a conversation start to the Page's first reply.
with

messages as (

    select * from {{ ref('int_messages_classified') }}
    {% if is_incremental() -%}
    where message_date >= {{ meta_window_start() }}
    {%- endif %}

),

final as (

    select
        message_date as date,
        page_id,
        platform,
        cast(count(*) filter (where is_conversation_start) as bigint) as conversations_started,
        cast(count(*) filter (where not is_from_page) as bigint) as messages_in,
        cast(count(*) filter (where is_from_page) as bigint) as messages_out,
        cast(median(first_reply_seconds) as double) as median_first_reply_seconds,
    from messages
    group by all

)

select * from final
