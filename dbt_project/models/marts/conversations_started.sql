{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ meta_delete_window('date') }}",
    )
}}
-- One row per (date, account_id, campaign_id, adset_id, ad_id) with delivery: the reported
-- onsite_conversion.messaging_conversation_started_7d (mapping seed), spend and the cost per
-- conversation started (spend / nullif(count, 0) at this grain), and the day's day_status.
with

insights as (

    select * from {{ ref('int_insights_ad_daily') }}
    {% if is_incremental() -%}
    where date >= {{ meta_window_start() }}
    {%- endif %}

),

extracted_days as (

    select * from {{ ref('int_account_days_extracted') }}

),

final as (

    select
        insights.date,
        insights.account_id,
        insights.campaign_id,
        insights.adset_id,
        insights.ad_id,
        cast(insights.conversations_started_reported as bigint) as conversations_started_reported,
        cast(insights.spend as decimal(18,2)) as spend,
        {{ meta_ratio('insights.spend', 'insights.conversations_started_reported') }} as cost_per_conversation_started,
        insights.currency,
        insights.extracted_at as as_of,
        coalesce(extracted_days.day_status, 'partial') as day_status,
    from insights
    left join extracted_days
        on extracted_days.account_id = insights.account_id
        and extracted_days.date = insights.date

)

select * from final
