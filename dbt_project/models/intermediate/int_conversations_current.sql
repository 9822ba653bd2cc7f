-- One row per conversation: its latest snapshot (message_count, messages out of reach).
with

conversations as (

    select * from {{ ref('stg_meta__conversations') }}

),

latest as (

    select *
    from conversations
    qualify row_number() over (
        partition by conversation_id order by extracted_at desc, snapshot_date desc
    ) = 1

)

select * from latest
