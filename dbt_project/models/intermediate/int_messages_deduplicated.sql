-- One row per message_id: the same message recurs in every conversation snapshot that reached it;
-- the latest extraction wins.
with

messages as (

    select * from {{ ref('stg_meta__messages') }}

),

latest as (

    select *
    from messages
    qualify row_number() over (partition by message_id order by extracted_at desc, snapshot_date desc) = 1

)

select * from latest
