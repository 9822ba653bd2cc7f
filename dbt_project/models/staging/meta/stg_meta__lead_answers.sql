with

source as (

    select * from {{ meta_lake_source('lead_answers') }}

),

renamed as (

    select
        cast(lead_id as varchar) as lead_id,
        cast(page_id as varchar) as page_id,
        cast(date as date) as created_date_utc,
        form_id,
        question,
        value as answer,
        value_is_hashed as answer_is_hashed,
        _extracted_at as extracted_at,

    from source

)

select * from renamed
