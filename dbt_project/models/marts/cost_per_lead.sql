{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ meta_delete_window('date') }}",
        post_hook="{{ meta_refresh_reporting_currency() }}",
    )
}}
-- One row per (date, account_id, campaign_id, adset_id, ad_id), date = account-local day.
-- leads_reported: the `lead` action (mapping seed) under the row's attribution_setting;
-- leads_collected: paid Lead Ads records dated in the account's timezone. Ratios are
-- spend / nullif(leads, 0) at this grain; coarser grains must recompute them from sums.
-- as_of: the latest _extracted_at of the rows that contributed (deterministic across re-runs).
-- day_status: partial | restating | settled (int_account_days_extracted).
-- Names: as Meta gave them with the Insights row, else the latest ad-object snapshot's.
-- reporting_currency / fx_rate / spend_reporting: macros/meta_reporting_currency.sql.
with

insights as (

    select * from {{ ref('int_insights_ad_daily') }}
    {% if is_incremental() -%}
    where date >= {{ meta_window_start() }}
    {%- endif %}

),

leads as (

    select * from {{ ref('int_leads_attributed') }}
    where is_attributed_to_ad
    {% if is_incremental() -%}
        and created_date_utc >= {{ meta_window_start(offset_days=1) }}
        and created_date >= {{ meta_window_start() }}
    {%- endif %}

),

accounts as (

    select * from {{ ref('int_accounts_current') }}

),

extracted_days as (

    select * from {{ ref('int_account_days_extracted') }}

),

fx_rates as (

    select * from {{ ref('int_fx_rates') }}

),

leads_per_ad_day as (

    select
        created_date as date,
        account_id,
        ad_id,
        any_value(campaign_id) as campaign_id,
        any_value(adset_id) as adset_id,
        any_value(campaign_name) as campaign_name,
        any_value(adset_name) as adset_name,
        any_value(ad_name) as ad_name,
        count(*) as leads_collected,
        max(extracted_at) as extracted_at,
    from leads
    group by all

),

joined as (

    select
        coalesce(insights.date, leads_per_ad_day.date) as date,
        coalesce(insights.account_id, leads_per_ad_day.account_id) as account_id,
        coalesce(insights.campaign_id, leads_per_ad_day.campaign_id) as campaign_id,
        coalesce(insights.adset_id, leads_per_ad_day.adset_id) as adset_id,
        coalesce(insights.ad_id, leads_per_ad_day.ad_id) as ad_id,
        insights.account_name,
        coalesce(insights.campaign_name, leads_per_ad_day.campaign_name) as campaign_name,
        coalesce(insights.adset_name, leads_per_ad_day.adset_name) as adset_name,
        coalesce(insights.ad_name, leads_per_ad_day.ad_name) as ad_name,
        insights.currency,
        coalesce(insights.spend, 0) as spend,
        coalesce(insights.impressions, 0) as impressions,
        coalesce(insights.clicks, 0) as clicks,
        coalesce(insights.leads_reported, 0) as leads_reported,
        coalesce(leads_per_ad_day.leads_collected, 0) as leads_collected,
        insights.attribution_setting,
        greatest(insights.extracted_at, leads_per_ad_day.extracted_at) as as_of,
    from insights
    full outer join leads_per_ad_day
        on leads_per_ad_day.ad_id = insights.ad_id
        and leads_per_ad_day.date = insights.date

),

final as (

    select
        joined.date,
        joined.account_id,
        coalesce(joined.account_name, accounts.account_name) as account_name,
        joined.campaign_id,
        joined.campaign_name,
        joined.adset_id,
        joined.adset_name,
        joined.ad_id,
        joined.ad_name,
        coalesce(joined.currency, accounts.currency) as currency,
        cast(joined.spend as decimal(18, 2)) as spend,
        cast(joined.impressions as bigint) as impressions,
        cast(joined.clicks as bigint) as clicks,
        cast(joined.leads_reported as bigint) as leads_reported,
        cast(joined.leads_collected as bigint) as leads_collected,
        {{ meta_ratio('joined.spend', 'joined.leads_reported') }} as cost_per_lead_reported,
        {{ meta_ratio('joined.spend', 'joined.leads_collected') }} as cost_per_lead_collected,
        joined.attribution_setting,
        joined.as_of,
        extracted_days.day_status,
        {{ meta_reporting_columns(
            'joined.spend', 'coalesce(joined.currency, accounts.currency)', 'fx_rates'
        ) }},
    from joined
    inner join extracted_days
        on extracted_days.account_id = joined.account_id
        and extracted_days.date = joined.date
    left join accounts on accounts.account_id = joined.account_id
    -- used by meta_reporting_columns (templated, so sqlfluff does not see it)
    left join fx_rates  -- noqa: ST11
        on {{ meta_fx_join('fx_rates', 'coalesce(joined.currency, accounts.currency)', 'joined.date') }}

)

select * from final
