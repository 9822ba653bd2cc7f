with

source as (

    select * from {{ meta_lake_source('campaigns') }}

),

renamed as (

    select
        cast(campaign_id as varchar) as campaign_id,
        cast(account_id as varchar) as account_id,
        name as campaign_name,
        objective,
        status,
        created_time,
        effective_status,
        configured_status,
        updated_time,
        _extracted_at as extracted_at,

    from source

)

select * from renamed
