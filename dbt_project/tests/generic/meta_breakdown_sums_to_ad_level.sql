{% test meta_breakdown_sums_to_ad_level(model) %}
{#-
    A breakdown mart's spend, impressions and clicks, summed over its breakdown values, equal the
    ad-level numbers of cost_per_lead per account and complete local day of the lookback window:
    spend within half a minor unit per breakdown row, at least one (Meta rounds each row's spend to the minor unit;
    the sandbox splits to the cent, so there it is exact), impressions and clicks exactly. Partial days
    are left out (the two reports are pulled moments apart while the day's numbers move).
-#}
with

breakdown as (

    select account_id, date, any_value(currency) as currency, sum(spend) as spend,
           sum(impressions) as impressions, sum(clicks) as clicks, count(*) as n_rows,
    from {{ model }}
    where day_status != 'partial'
        and date >= {{ "date '0001-01-01'" if flags.FULL_REFRESH else meta_window_start() }}
    group by all

),

ad_level as (

    select account_id, date, sum(spend) as spend, sum(impressions) as impressions, sum(clicks) as clicks,
    from {{ ref('cost_per_lead') }}
    where day_status != 'partial'
        and date >= {{ "date '0001-01-01'" if flags.FULL_REFRESH else meta_window_start() }}
    group by all

)

select
    breakdown.account_id,
    breakdown.date,
    breakdown.spend as breakdown_spend,
    ad_level.spend as ad_level_spend,
    breakdown.impressions as breakdown_impressions,
    ad_level.impressions as ad_level_impressions,
from breakdown
left join ad_level on ad_level.account_id = breakdown.account_id and ad_level.date = breakdown.date
where abs(breakdown.spend - coalesce(ad_level.spend, 0))
        > {{ meta_minor_unit('breakdown.currency') }} * greatest(1, breakdown.n_rows / 2.0)
    or breakdown.impressions != coalesce(ad_level.impressions, 0)
    or breakdown.clicks != coalesce(ad_level.clicks, 0)
{% endtest %}
