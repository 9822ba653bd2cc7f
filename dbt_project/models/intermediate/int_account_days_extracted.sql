{{ config(materialized='table') }}
-- One row per (account_id, date) whose Insights partition exists in the lake: the account-local days
-- some run has extracted (every run writes each day of its window, empty ones included). The marts
-- keep only these days, so a day on the edge of a window (leads from the timezone margin, old
-- messages of a long conversation) never shows up half-counted, and the marts depend only on which
-- days were extracted, not on the order of the runs (a backfill equals daily runs).
-- day_status: whether the day was over when extracted (`partial` if not) and whether Meta may still
-- restate it (`restating`, younger than var('restatement_days') when extracted) or not (`settled`).
-- When it was extracted, in the account's time zone: the account total's served_local_date (Meta's
-- clock); for lakes written before the totals existed, the local date of the day's latest Insights
-- extraction, else of the account snapshot.
-- depends_on: {{ source('meta', 'insights') }}
with

partitions as (

    {% if execute -%}
    select file from glob('{{ meta_lake_glob('insights') }}')
    {%- else -%}
    select cast(null as varchar) as file
    {%- endif %}

),

extracted as (

    select distinct
        cast(regexp_extract(file, 'account_id=([^/]+)', 1) as varchar) as account_id,
        cast(regexp_extract(file, 'date=([0-9]{4}-[0-9]{2}-[0-9]{2})', 1) as date) as date,
    from partitions

),

totals as (

    select
        account_id,
        date,
        served_local_date,
    from {{ ref('stg_meta__account_totals') }}
    qualify row_number() over (partition by account_id, date order by extracted_at desc) = 1

),

insights_extracted as (

    select
        account_id,
        date,
        max(extracted_at) as extracted_at,
    from {{ ref('stg_meta__insights') }}
    group by all

),

accounts as (

    select * from {{ ref('int_accounts_current') }}

),

served as (

    select
        extracted.account_id,
        extracted.date,
        coalesce(
            totals.served_local_date,
            {{ meta_local_date(
                'coalesce(insights_extracted.extracted_at, accounts.extracted_at)', 'accounts.timezone_name'
            ) }}
        ) as served_local_date,
    from extracted
    left join totals
        on totals.account_id = extracted.account_id and totals.date = extracted.date
    left join insights_extracted
        on insights_extracted.account_id = extracted.account_id and insights_extracted.date = extracted.date
    left join accounts on accounts.account_id = extracted.account_id

),

final as (

    select
        account_id,
        date,
        served_local_date,
        {{ meta_day_status('date', 'served_local_date') }} as day_status,
    from served

)

select * from final
