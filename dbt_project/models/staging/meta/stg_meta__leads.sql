{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ meta_delete_partitions('created_date_utc') }}",
    )
}}
with

source as (

    select * from {{ meta_lake_source('leads') }}

),

renamed as (

    select
        cast(lead_id as varchar) as lead_id,
        cast(page_id as varchar) as page_id,
        cast(date as date) as created_date_utc,
        created_time,
        form_id,
        ad_id,
        ad_name,
        adset_id,
        adset_name,
        campaign_id,
        campaign_name,
        coalesce(is_organic, false) as is_organic,
        platform,
        _extracted_at as extracted_at,

    from source

)

select * from renamed
