with

source as (

    select * from {{ meta_lake_source('pages') }}

),

renamed as (

    select
        cast(page_id as varchar) as page_id,
        name as page_name,
        extractor,
        _extracted_at as extracted_at,

    from source

)

select * from renamed
