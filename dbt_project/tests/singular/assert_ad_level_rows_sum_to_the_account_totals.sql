-- The completeness control. Per account and complete local day of the lookback window (everything on
-- --full-refresh), the ad-level Insights rows (latest extraction) must sum to the account's own
-- `level=account` total, which counts every ad whatever its status: spend within one minor unit of
-- the account currency, impressions exactly. A difference means rows are missing (e.g. the ads of a
-- deleted campaign) or duplicated. The test raises an error that names every account and day (dbt
-- prints it), instead of a bare count. Partial days are left out: their numbers move while read.
{{ config(severity='error') }}
with

totals as (

    select *
    from {{ ref('stg_meta__account_totals') }}
    where date >= {{ "date '0001-01-01'" if flags.FULL_REFRESH else meta_window_start() }}
    qualify row_number() over (partition by account_id, date order by extracted_at desc) = 1

),

ad_level as (

    select
        account_id,
        date,
        sum(spend) as spend,
        sum(impressions) as impressions,
    from {{ ref('int_insights_deduplicated') }}
    where date >= {{ "date '0001-01-01'" if flags.FULL_REFRESH else meta_window_start() }}
    group by all

),

days as (

    select * from {{ ref('int_account_days_extracted') }}

),

mismatches as (

    select
        totals.account_id,
        totals.date,
        totals.currency,
        totals.spend as total_spend,
        coalesce(ad_level.spend, 0) as ad_spend,
        totals.impressions as total_impressions,
        coalesce(ad_level.impressions, 0) as ad_impressions,
    from totals
    inner join days on days.account_id = totals.account_id and days.date = totals.date
    left join ad_level on ad_level.account_id = totals.account_id and ad_level.date = totals.date
    where days.day_status != 'partial'
        and (
            abs(totals.spend - coalesce(ad_level.spend, 0)) > {{ meta_minor_unit('totals.currency') }}
            or totals.impressions != coalesce(ad_level.impressions, 0)
        )

),

failures as (

    select
        count(*) as n,
        string_agg(
            'account ' || account_id || ' on ' || strftime(date, '%Y-%m-%d') || ': spend '
            || cast(ad_spend as decimal(18, 2)) || ' vs total ' || cast(total_spend as decimal(18, 2))
            || ' ' || coalesce(currency, '') || ', impressions ' || ad_impressions
            || ' vs ' || total_impressions,
            '; ' order by account_id, date
        ) as detail,
    from mismatches

),

described as (

    select
        n,
        detail,
        'Incomplete: ' || detail || ' (' || n || ' account-day(s) whose ad-level rows do not sum to the '
        || 'account total: ads of some status missing? docs/DESIGN.md "How the numbers are made")' as message,
    from failures

)

-- error() sits in the filter so that dbt's `count(*)` over this query evaluates it (a projected column
-- would be pruned); the CASE keeps it from running when everything adds up.
select
    n as incomplete_account_days,
    detail,
from described
where case when n > 0 then error(message) is null else false end
