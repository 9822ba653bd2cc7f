with

source as (

    select * from {{ meta_lake_source('adsets') }}

),

renamed as (

    select
        cast(adset_id as varchar) as adset_id,
        cast(campaign_id as varchar) as campaign_id,
        cast(account_id as varchar) as account_id,
        name as adset_name,
        optimization_goal,
        status,
        created_time,
        effective_status,
        configured_status,
        updated_time,
        _extracted_at as extracted_at,

    from source

)

select * from renamed
