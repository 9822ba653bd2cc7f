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
-- conversation started (spend / nullif(count, 0) at this grain).
with

insights as (

    select * from {{ ref('int_insights_ad_daily') }}
    {% if is_incremental() -%}
    where date >= {{ meta_window_start() }}
    {%- endif %}

),

final as (

    select
        date,
        account_id,
        campaign_id,
        adset_id,
        ad_id,
        cast(conversations_started_reported as bigint) as conversations_started_reported,
        cast(spend as decimal(18,2)) as spend,
        {{ meta_ratio('spend', 'conversations_started_reported') }} as cost_per_conversation_started,
        currency,
        extracted_at as as_of,
    from insights

)

select * from final
