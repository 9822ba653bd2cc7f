{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ meta_delete_window('date') }}",
        post_hook="{{ meta_refresh_reporting_currency() }}",
    )
}}
-- One row per (date, account_id, campaign_id, adset_id, ad_id) with delivery: the reported
-- onsite_conversion.messaging_conversation_started_7d (mapping seed), spend and the cost per
-- conversation started (spend / nullif(count, 0) at this grain), and the day's day_status; the names
-- of the account, campaign, ad set and ad (as Meta gave them with the Insights row, else the latest
-- snapshot's) and the reporting currency columns (macros/meta_reporting_currency.sql).
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

accounts as (

    select * from {{ ref('int_accounts_current') }}

),

ads as (

    select * from {{ ref('int_ads_resolved') }}

),

fx_rates as (

    select * from {{ ref('int_fx_rates') }}

),

final as (

    select
        insights.date,
        insights.account_id,
        insights.campaign_id,
        insights.adset_id,
        insights.ad_id,
        cast(insights.conversations_started_reported as bigint) as conversations_started_reported,
        cast(insights.spend as decimal(18, 2)) as spend,
        {{ meta_ratio('insights.spend', 'insights.conversations_started_reported') }}
            as cost_per_conversation_started,
        insights.currency,
        insights.extracted_at as as_of,
        coalesce(extracted_days.day_status, 'partial') as day_status,
        coalesce(insights.account_name, accounts.account_name) as account_name,
        coalesce(insights.campaign_name, ads.campaign_name) as campaign_name,
        coalesce(insights.adset_name, ads.adset_name) as adset_name,
        coalesce(insights.ad_name, ads.ad_name) as ad_name,
        {{ meta_reporting_columns('insights.spend', 'insights.currency', 'fx_rates') }},
    from insights
    left join extracted_days
        on extracted_days.account_id = insights.account_id
        and extracted_days.date = insights.date
    left join accounts on accounts.account_id = insights.account_id
    left join ads on ads.ad_id = insights.ad_id
    -- used by meta_reporting_columns (templated, so sqlfluff does not see it)
    left join fx_rates on {{ meta_fx_join('fx_rates', 'insights.currency', 'insights.date') }}  -- noqa: ST11

)

select * from final
