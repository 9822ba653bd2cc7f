-- The current name of each Page the pipeline extracts (its latest snapshot, whichever extractor took it).
with

pages as (

    select * from {{ ref('stg_meta__pages') }}

),

latest as (

    select
        page_id,
        page_name,
        extracted_at,
    from pages
    qualify row_number() over (partition by page_id order by extracted_at desc, extractor asc) = 1

)

select * from latest
