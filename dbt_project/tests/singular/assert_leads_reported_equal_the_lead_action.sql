-- No double counting: in the lookback window, the marts' leads_reported per account and day equals the
-- sum of the `lead` action alone (latest extraction of each ad-day), never lead + its components.
{{ config(severity='error') }}

with

actions as (

    select
        date,
        account_id,
        ad_id,
        extracted_at,
        sum(action_value) filter (where action_type = 'lead') as lead_value,
    from {{ ref('stg_meta__insight_actions') }}
    where date >= {{ meta_window_start() }}
    group by all

),

latest_rows as (

    select *
    from actions
    qualify extracted_at = max(extracted_at) over (partition by ad_id, date)

),

latest as (

    select
        date,
        account_id,
        sum(lead_value) as leads,
    from latest_rows
    group by all

),

mart as (

    select
        date,
        account_id,
        sum(leads_reported) as leads,
    from {{ ref('cost_per_lead') }}
    where date >= {{ meta_window_start() }}
    group by all

)

select *
from latest
full outer join mart using (date, account_id)
where coalesce(latest.leads, 0) <> coalesce(mart.leads, 0)
