{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ meta_delete_partitions('snapshot_date') }}",
    )
}}
with

source as (

    select * from {{ meta_lake_source('conversations') }}

),

renamed as (

    select
        cast(conversation_id as varchar) as conversation_id,
        cast(page_id as varchar) as page_id,
        cast(platform as varchar) as platform,
        cast(date as date) as snapshot_date,
        updated_time,
        cast(message_count as bigint) as message_count,
        participant_ids,
        -- null = unknown (message_count missing), never 0
        cast(messages_out_of_reach as bigint) as messages_out_of_reach,
        cast(first_message_id as varchar) as first_message_id,
        _extracted_at as extracted_at,

    from source

)

select * from renamed
