-- One row per (account_id, date) whose Insights partition exists in the lake: the account-local days
-- some run has extracted (every run writes each day of its window, empty ones included). The marts
-- keep only these days, so a day on the edge of a window (leads from the timezone margin, old
-- messages of a long conversation) never shows up half-counted, and the marts depend only on which
-- days were extracted, not on the order of the runs (a backfill equals daily runs).
-- depends_on: {{ source('meta', 'insights') }}
with

partitions as (

    {% if execute -%}
    select file from glob('{{ meta_lake_glob('insights') }}')
    {%- else -%}
    select cast(null as varchar) as file
    {%- endif %}

),

final as (

    select distinct
        cast(regexp_extract(file, 'account_id=([^/]+)', 1) as varchar) as account_id,
        cast(regexp_extract(file, 'date=([0-9]{4}-[0-9]{2}-[0-9]{2})', 1) as date) as date,
    from partitions

)

select * from final
