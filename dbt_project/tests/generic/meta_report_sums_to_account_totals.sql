{% test meta_report_sums_to_account_totals(model, report) %}
{#-
    The completeness control of the Insights issue, applied to a report of insights.reports (declared in
    its generated yml, meta_ads_elt.dbt_contract): per account and complete local day of the lookback
    window (everything on --full-refresh), the report's rows (latest extraction) must sum to the account's
    own `level=account` total: spend within half a minor unit per row of the report, at least one (Meta rounds each
    breakdown row's spend to the minor unit), impressions exactly. A day the report has no row for counts
    as zero. Partial days are left out: their numbers move between the two pulls.
-#}
with

totals as (

    select *
    from {{ ref('stg_meta__account_totals') }}
    where date >= {{ "date '0001-01-01'" if flags.FULL_REFRESH else meta_window_start() }}
    qualify row_number() over (partition by account_id, date order by extracted_at desc) = 1

),

report as (

    select account_id, date, sum(spend) as spend, sum(impressions) as impressions, count(*) as n_rows,
    from {{ model }}
    where date >= {{ "date '0001-01-01'" if flags.FULL_REFRESH else meta_window_start() }}
    group by all

),

extracted as (

    -- the dates the report covers per account (a report added later has no history before it)
    select account_id, min(date) as first_date, max(date) as last_date,
    from {{ model }}
    group by all

),

days as (

    select * from {{ ref('int_account_days_extracted') }}

)

select
    '{{ report }}' as report,
    totals.account_id,
    totals.date,
    totals.spend as total_spend,
    coalesce(report.spend, 0) as report_spend,
    totals.impressions as total_impressions,
    coalesce(report.impressions, 0) as report_impressions,
from totals
inner join days on days.account_id = totals.account_id and days.date = totals.date
inner join extracted on extracted.account_id = totals.account_id
    and totals.date between extracted.first_date and extracted.last_date
left join report on report.account_id = totals.account_id and report.date = totals.date
where days.day_status != 'partial'
    and (
        abs(totals.spend - coalesce(report.spend, 0))
            > {{ meta_minor_unit('totals.currency') }} * greatest(1, coalesce(report.n_rows, 0) / 2.0)
        or totals.impressions != coalesce(report.impressions, 0)
    )
{% endtest %}
