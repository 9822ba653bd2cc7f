{{ config(materialized='view') }}
-- Rollup of cost_per_lead to (date, account_id, campaign_id); ratios recomputed from sums.
with

cost_per_lead as (

    select * from {{ ref('cost_per_lead') }}

),

rolled_up as (

    select
        date,
        account_id,
        campaign_id,
        any_value(account_name) as account_name,
        any_value(campaign_name) as campaign_name,
        any_value(currency) as currency,
        sum(spend) as spend,
        sum(impressions) as impressions,
        sum(clicks) as clicks,
        sum(leads_reported) as leads_reported,
        sum(leads_collected) as leads_collected,
        max(as_of) as as_of,
        any_value(day_status) as day_status,  -- one status per account-day
    from cost_per_lead
    group by date, account_id, campaign_id

)

select
    *,
    {{ meta_ratio('spend', 'leads_reported') }} as cost_per_lead_reported,
    {{ meta_ratio('spend', 'leads_collected') }} as cost_per_lead_collected,
from rolled_up
