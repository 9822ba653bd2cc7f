{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='date',
        on_schema_change='fail',
        pre_hook="{{ meta_delete_window('date') }}",
    )
}}
-- One row per (date, ad_id): the latest extraction of the day with its reported lead and
-- conversation counts. Shared by cost_per_lead and conversations_started (the actions are unnested
-- once). Incremental: re-processes the lookback window.
with

insights as (

    select * from {{ ref('int_insights_deduplicated') }}
    {% if is_incremental() -%}
    where date >= {{ meta_window_start() }}
    {%- endif %}

),

actions as (

    select * from {{ ref('int_insight_actions_pivoted') }}
    {% if is_incremental() -%}
    where date >= {{ meta_window_start() }}
    {%- endif %}

),

joined as (

    select
        insights.date,
        insights.account_id,
        insights.campaign_id,
        insights.adset_id,
        insights.ad_id,
        insights.account_name,
        insights.campaign_name,
        insights.adset_name,
        insights.ad_name,
        insights.currency,
        insights.spend,
        insights.impressions,
        insights.clicks,
        cast(coalesce(actions.leads_reported, 0) as bigint) as leads_reported,
        cast(coalesce(actions.conversations_started_reported, 0) as bigint) as conversations_started_reported,
        insights.attribution_setting,
        insights.extracted_at,
    from insights
    left join actions
        on actions.ad_id = insights.ad_id
        and actions.date = insights.date
        and actions.extracted_at = insights.extracted_at

)

select * from joined
