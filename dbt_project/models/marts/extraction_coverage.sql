-- One row per (date, account_id) from the account's first extracted day (or var coverage_start_date,
-- when earlier) to the newest day any account has extracted: whether the pipeline extracted the
-- account's Insights for that account-local day, so a chart can show a day it never extracted as a
-- gap instead of drawing straight across it (the other marts hold only extracted days).
--   extracted: extracted after the day was over (day_status restating or settled);
--   partial:   extracted while the day was not over (its numbers will grow; the next run replaces it);
--   missing:   never extracted (a failed or skipped run; backfill the day to fill it).
-- The warn-level test assert_no_account_day_is_missing names each gap; the run summary and the
-- HTML report show them. Accounts come from the Insights partitions and the account snapshots (an
-- account snapshotted but never extracted is missing on every day). Rebuilt each run (small).
{%- set coverage_start = var('coverage_start_date', none) %}
with

extracted_days as (

    select * from {{ ref('int_account_days_extracted') }}

),

accounts as (

    select * from {{ ref('int_accounts_current') }}

),

overall as (

    select
        {% if coverage_start -%}
        least(min(date), cast('{{ coverage_start }}' as date)) as first_date,
        {%- else -%}
        min(date) as first_date,
        {%- endif %}
        max(date) as last_date,
    from extracted_days

),

account_spans as (

    select
        known.account_id,
        {% if coverage_start -%}
        least(coalesce(min(extracted.date), any_value(overall.first_date)), cast('{{ coverage_start }}' as date))
        {%- else -%}
        coalesce(min(extracted.date), any_value(overall.first_date))
        {%- endif %} as first_date,
        any_value(overall.last_date) as last_date,
    from (
        select account_id from extracted_days
        union
        select account_id from accounts
    ) as known
    cross join overall
    left join extracted_days as extracted on extracted.account_id = known.account_id
    where overall.last_date is not null
    group by known.account_id

),

account_days as (

    select
        account_id,
        cast(unnest(generate_series(first_date, last_date, interval 1 day)) as date) as date,
    from account_spans

),

final as (

    select
        account_days.date,
        account_days.account_id,
        accounts.account_name,
        accounts.currency,
        case
            when extracted_days.account_id is null then 'missing'
            when extracted_days.day_status = 'partial' then 'partial'
            else 'extracted'
        end as coverage_status,
        extracted_days.day_status,
        extracted_days.served_local_date,
    from account_days
    left join extracted_days
        on extracted_days.account_id = account_days.account_id
        and extracted_days.date = account_days.date
    left join accounts on accounts.account_id = account_days.account_id

)

select * from final
