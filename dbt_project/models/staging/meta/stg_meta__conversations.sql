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
        cast(coalesce(messages_out_of_reach, 0) as bigint) as messages_out_of_reach,
        _extracted_at as extracted_at,

    from source

)

select * from renamed
