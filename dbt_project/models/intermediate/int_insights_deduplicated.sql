-- One insights row per (ad_id, date): a re-pulled day keeps only its latest extraction.
with

insights as (

    select * from {{ ref('stg_meta__insights') }}

),

latest as (

    select *
    from insights
    qualify row_number() over (
        partition by ad_id, date
        order by extracted_at desc, report_run_id desc
    ) = 1

)

select * from latest
