-- One insights row per (ad_id, date): a re-pulled day keeps only its latest extraction.
-- Re-pulls replace whole partitions, so duplicates are rare: find only the duplicated keys (a narrow
-- aggregate) and drop their stale rows with a left join, instead of ranking every row (a full sort).
-- The join is on (ad_id, date), so a date filter on this view prunes the lake's partitions on both sides.
with

insights as (

    select * from {{ ref('stg_meta__insights') }}

),

duplicated_keys as (

    select
        ad_id,
        date,
        max(extracted_at) as latest_extracted_at,
    from insights
    group by ad_id, date
    having count(*) > 1

),

latest as (

    select insights.*
    from insights
    left join duplicated_keys
        on duplicated_keys.ad_id = insights.ad_id
        and duplicated_keys.date = insights.date
    where duplicated_keys.ad_id is null
        or insights.extracted_at >= duplicated_keys.latest_extracted_at

)

select * from latest
