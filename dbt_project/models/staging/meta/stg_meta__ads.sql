with

source as (

    select * from {{ meta_lake_source('ads') }}

),

renamed as (

    select
        cast(ad_id as varchar) as ad_id,
        cast(adset_id as varchar) as adset_id,
        cast(campaign_id as varchar) as campaign_id,
        cast(account_id as varchar) as account_id,
        name as ad_name,
        status,
        created_time,
        effective_status,
        configured_status,
        updated_time,
        _extracted_at as extracted_at,

    from source

)

select * from renamed
