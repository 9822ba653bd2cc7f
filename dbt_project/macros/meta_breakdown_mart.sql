{% macro meta_breakdown_mart(report_model, breakdown_columns) -%}
{#-
    A cost-per-lead mart on an Insights report with breakdowns (insights.reports): one row per (date,
    account_id, ad_id, breakdown values) - the grain the report was pulled at - with spend, impressions,
    clicks, reach (at this grain only: people are counted once per row, so reach never sums across
    rows), leads_reported (the actions the seed meta_action_types flags counts_as_lead, under the row's
    attribution_setting), cost_per_lead_reported, currency and day_status as in cost_per_lead.
    off_meta_actions says whether the row's actions miss off-Meta conversions (Meta's Type 1 breakdowns).
    Spend, impressions, clicks and leads_reported sum across breakdown values to the ad-level numbers of
    cost_per_lead (tested); the rows are never unioned with the ad-level fact (a test guards it).
-#}
-- depends_on: {{ ref('meta_action_types') }}
with

report as (

    select
        *,
        cast(coalesce(list_sum([
            action."value" for action in actions
            if lower(action.action_type) in {{ meta_action_types('counts_as_lead') }}
        ]), 0) as bigint) as leads_reported,
    from {{ ref(report_model) }}

),

accounts as (

    select * from {{ ref('int_accounts_current') }}

),

extracted_days as (

    select * from {{ ref('int_account_days_extracted') }}

),

final as (

    select
        report.date,
        report.account_id,
        coalesce(report.account_name, accounts.account_name) as account_name,
        report.campaign_id,
        report.campaign_name,
        report.adset_id,
        report.adset_name,
        report.ad_id,
        report.ad_name,
        {%- for column in breakdown_columns %}
        report.{{ column }},
        {%- endfor %}
        coalesce(report.currency, accounts.currency) as currency,
        cast(report.spend as decimal(18,2)) as spend,
        cast(report.impressions as bigint) as impressions,
        cast(report.clicks as bigint) as clicks,
        cast(report.reach as bigint) as reach,
        report.leads_reported,
        {{ meta_ratio('report.spend', 'report.leads_reported') }} as cost_per_lead_reported,
        report.attribution_setting,
        report.off_meta_actions,
        report.extracted_at as as_of,
        extracted_days.day_status,
    from report
    inner join extracted_days
        on extracted_days.account_id = report.account_id
        and extracted_days.date = report.date
    left join accounts on accounts.account_id = report.account_id

)

select * from final
{%- endmacro %}
