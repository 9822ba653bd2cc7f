{% macro meta_cost_per_lead_rollup(keys, names) -%}
{#-
    cost_per_lead rolled up to (date, `keys`): ratios recomputed from sums, counts BIGINT and money
    DECIMAL(18,2) (a plain sum() would give HUGEINT / DECIMAL(38,2), which many BI drivers mishandle).
    `names` (e.g. account_name): those of the group's latest extraction. spend_reporting is recomputed
    from the summed spend with the account-day's rate (one currency and date per group).
    attribution_settings: macros/meta_attribution_settings.sql.
-#}
with

cost_per_lead as (

    select * from {{ ref('cost_per_lead') }}

),

rolled_up as (

    select
        date,
        {%- for key in keys %}
        {{ key }},
        {%- endfor %}
        {%- for name in names %}
        arg_max({{ name }}, as_of) as {{ name }},
        {%- endfor %}
        any_value(currency) as currency,  -- one currency per account
        cast(sum(spend) as decimal(18,2)) as spend,
        cast(sum(impressions) as bigint) as impressions,
        cast(sum(clicks) as bigint) as clicks,
        cast(sum(leads_reported) as bigint) as leads_reported,
        cast(sum(leads_collected) as bigint) as leads_collected,
        max(as_of) as as_of,
        any_value(day_status) as day_status,  -- one status per account-day
        any_value(reporting_currency) as reporting_currency,
        any_value(fx_rate) as fx_rate,  -- one rate per currency and date
        {{ meta_attribution_settings('attribution_setting') }} as attribution_settings,
    from cost_per_lead
    group by date, {{ keys | join(', ') }}

)

select
    * exclude (reporting_currency, fx_rate, attribution_settings),
    {{ meta_ratio('spend', 'leads_reported') }} as cost_per_lead_reported,
    {{ meta_ratio('spend', 'leads_collected') }} as cost_per_lead_collected,
    reporting_currency,
    fx_rate,
    cast(round(spend * fx_rate, 2) as decimal(18,2)) as spend_reporting,
    attribution_settings,
from rolled_up
{%- endmacro %}
