-- No double counting: per account and day of the lookback window, cost_per_lead.leads_reported equals
-- the `lead` action alone (latest extraction of each ad-day), never lead + its components.
with

insights as (

    select
        date,
        account_id,
        ad_id,
        extracted_at,
        coalesce(list_sum([action.value for action in actions if action.action_type = 'lead']), 0)  -- noqa: RF01
            as lead_value,
    from {{ ref('stg_meta__insights') }}
    where date >= {{ meta_window_start() }}

),

latest as (

    select
        date,
        account_id,
        sum(lead_value) as leads,
    from insights
    where
        not exists (
            select 1
            from insights as newer
            where
                newer.ad_id = insights.ad_id
                and newer.date = insights.date
                and newer.extracted_at > insights.extracted_at
        )
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

select
    coalesce(latest.date, mart.date) as date,
    coalesce(latest.account_id, mart.account_id) as account_id,
    latest.leads as leads_in_insights,
    mart.leads as leads_in_mart,
from latest
full outer join mart on mart.date = latest.date and mart.account_id = latest.account_id
where coalesce(latest.leads, 0) <> coalesce(mart.leads, 0)
