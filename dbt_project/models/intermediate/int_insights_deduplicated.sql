-- One insights row per (ad_id, date): a re-pulled day keeps only its latest extraction.
-- Re-pulls replace whole partitions, so duplicates are rare and can only exist on dates holding more
-- than one extraction time: find those dates (a tiny aggregate over two columns), then the duplicated
-- keys on those dates only (a narrow aggregate), and drop their stale rows with a left join, instead
-- of ranking every row (a full sort). Each CTE reads the staging table itself (DuckDB would otherwise
-- materialize a shared CTE with every column, `actions` included). A date filter on this view
-- skips the staging table's row groups of other dates (zone maps).
with

insights as (

    select * from {{ ref('stg_meta__insights') }}

),

repulled_dates as (

    select date
    from {{ ref('stg_meta__insights') }}
    group by date
    having count(distinct extracted_at) > 1

),

duplicated_keys as (

    select
        ad_id,
        date,
        max(extracted_at) as latest_extracted_at,
    from {{ ref('stg_meta__insights') }}
    where date in (select repulled_dates.date from repulled_dates)
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
