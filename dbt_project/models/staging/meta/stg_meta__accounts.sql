with

source as (

    select * from {{ meta_lake_source('accounts') }}

),

renamed as (

    select
        cast(account_id as varchar) as account_id,
        name as account_name,
        upper(currency) as currency,
        timezone_name,
        timezone_offset_hours_utc,
        coalesce(promoted_page_ids, []) as promoted_page_ids,
        _extracted_at as extracted_at,

    from source

)

select * from renamed
