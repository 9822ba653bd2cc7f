{{ config(severity='warn') }}
-- Warns (never fails the build) for each run of consecutive account-days the pipeline never extracted
-- (extraction_coverage.coverage_status = 'missing'): the marts have no rows there, so a chart would
-- draw straight across the gap. Fix: backfill those days (Airflow: Trigger -> Backfill, or
-- `airflow dags test meta_ads_daily <day>`); each backfilled day replaces exactly its own partitions.
with

missing as (

    select
        account_id,
        account_name,
        date,
        date - cast(row_number() over (partition by account_id order by date) as integer) as run_key,
    from {{ ref('extraction_coverage') }}
    where coverage_status = 'missing'

)

select
    account_id,
    any_value(account_name) as account_name,
    min(date) as first_missing_date,
    max(date) as last_missing_date,
    count(*) as missing_days,
from missing
group by account_id, run_key
order by account_id, first_missing_date
