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

    select * from {{ meta_lake_source('messages') }}

),

renamed as (

    select
        cast(message_id as varchar) as message_id,
        cast(conversation_id as varchar) as conversation_id,
        cast(page_id as varchar) as page_id,
        cast(platform as varchar) as platform,
        cast(date as date) as snapshot_date,
        created_time,
        from_id,
        is_from_page,
        _extracted_at as extracted_at,

    from source

)

select * from renamed
