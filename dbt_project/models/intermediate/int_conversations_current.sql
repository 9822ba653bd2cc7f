{{ config(materialized='table') }}
-- One row per conversation: its latest snapshot (message_count, messages out of reach), with the
-- id of its first message from any snapshot whose walk of the messages edge reached it (the first
-- message never changes; a later snapshot may stop its walk at the window start and not see it).
-- A table: its window functions over every snapshot run once per build, not once per reader
-- (int_messages_classified and its tests).
with

conversations as (

    select * from {{ ref('stg_meta__conversations') }}

),

latest as (

    select
        * exclude (first_message_id),
        max(first_message_id) over (partition by conversation_id) as first_message_id,
    from conversations
    qualify
        row_number() over (partition by conversation_id order by extracted_at desc, snapshot_date desc) = 1

)

select * from latest
