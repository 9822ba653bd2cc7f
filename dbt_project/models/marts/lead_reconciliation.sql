-- One row per (date, account_id): leads collected (Lead Ads, paid) vs reported (insights `lead`),
-- and first-party conversations started (Pages the account promotes, both platforms) vs reported
-- (messaging_conversation_started_7d), with the differences (first-party minus reported); the
-- ad-level spend and impressions beside the account's own totals (the completeness control), and the
-- day's day_status.
-- leads_collected_unattributed: paid leads of the Pages only this account promotes that carry no ad
-- the pipeline knows (seed 003: ad previews, no advertiser privileges); never in leads_collected.
-- first_party_starts_far_below_reported flags days where first-party starts are far below the paid
-- starts Meta reports: the signature of a token with Standard Access (seed 004), which sees only
-- conversations with people who have a role on the app. first_party_starts_far_below_reported_7d
-- applies the same rule to the sums over the account's 7 days centred on the date (days without a
-- row count as zero): Meta may report a start on another day than the one it was started on (on the
-- ad's impression day, research/transform_anchors.md), which one day's comparison takes for missing
-- starts. The warnings (assert_first_party_starts_are_not_far_below_reported, the run summary) use it.
-- account_name and currency: the account's (currency: its cost_per_lead rows', else its snapshot's);
-- reporting currency columns: macros/meta_reporting_currency.sql; attribution_settings (the settings
-- leads_reported was counted under): macros/meta_attribution_settings.sql.
-- first_party_starts_may_miss_message_requests: some Page the account promotes was first pulled for the
-- date 30+ days after it began (conversations_started_by_page.message_requests_may_be_missing; null when
-- no conversations pull covered the date).
-- Rebuilt from the marts each run (small).
with

leads as (

    select
        date,
        account_id,
        sum(leads_collected) as leads_collected,
        sum(leads_reported) as leads_reported,
        sum(spend) as spend,
        sum(impressions) as impressions,
        any_value(currency) as currency,
        {{ meta_attribution_settings('attribution_setting') }} as attribution_settings,
    from {{ ref('cost_per_lead') }}
    group by all

),

extracted_days as (

    select * from {{ ref('int_account_days_extracted') }}

),

account_totals as (

    select
        totals.account_id,
        totals.date,
        totals.spend,
        totals.impressions,
    from {{ ref('stg_meta__account_totals') }} as totals
    where
        exists (
            select 1 from extracted_days
            where extracted_days.account_id = totals.account_id and extracted_days.date = totals.date
        )
    qualify
        row_number() over (partition by totals.account_id, totals.date order by totals.extracted_at desc) = 1

),

conversations_reported as (

    select
        date,
        account_id,
        sum(conversations_started_reported) as conversations_started_reported,
    from {{ ref('conversations_started') }}
    group by all

),

pages as (

    select * from {{ ref('int_pages_attributed') }}

),

accounts as (

    select * from {{ ref('int_accounts_current') }}

),

fx_rates as (

    select * from {{ ref('int_fx_rates') }}

),

conversations_first_party as (

    select
        by_page.date,
        pages.account_id,
        sum(by_page.conversations_started) as conversations_started,
    from {{ ref('conversations_started_by_page') }} as by_page
    inner join pages on pages.page_id = by_page.page_id
    group by all

),

first_pulls as (

    select
        first_pulls.date,
        pages.account_id,
        bool_or(first_pulls.message_requests_may_be_missing) as message_requests_may_be_missing,
    from {{ ref('int_page_days_first_pulled') }} as first_pulls
    inner join pages on pages.page_id = first_pulls.page_id
    group by all

),

leads_unattributed as (

    select
        unattributed.created_date as date,
        unattributed.account_id,
        count(*) as leads_collected_unattributed,
    from {{ ref('int_leads_attributed') }} as unattributed
    inner join extracted_days
        on extracted_days.account_id = unattributed.account_id
        and extracted_days.date = unattributed.created_date
    where not unattributed.is_organic
        and not unattributed.is_attributed_to_ad
    group by all

),

spine as (

    select
        date,
        account_id
    from leads
    union
    select
        date,
        account_id
    from conversations_reported
    union
    select
        date,
        account_id
    from conversations_first_party
    union
    select
        date,
        account_id
    from leads_unattributed
    union
    select
        date,
        account_id
    from account_totals
    where spend > 0 or impressions > 0

),

final as (

    select
        spine.date,
        spine.account_id,
        cast(coalesce(leads.leads_collected, 0) as bigint) as leads_collected,
        cast(coalesce(leads.leads_reported, 0) as bigint) as leads_reported,
        cast(coalesce(leads.leads_collected, 0) - coalesce(leads.leads_reported, 0) as bigint)
            as leads_difference,
        cast(coalesce(conversations_first_party.conversations_started, 0) as bigint) as conversations_started,
        cast(
            coalesce(conversations_reported.conversations_started_reported, 0) as bigint
        ) as conversations_started_reported,
        cast(
            coalesce(conversations_first_party.conversations_started, 0)
            - coalesce(conversations_reported.conversations_started_reported, 0) as bigint
        ) as conversations_started_difference,
        cast(coalesce(leads_unattributed.leads_collected_unattributed, 0) as bigint)
            as leads_collected_unattributed,
        (
            coalesce(conversations_reported.conversations_started_reported, 0)
            >= {{ var('standard_access_min_reported_starts') }}
            and coalesce(conversations_first_party.conversations_started, 0)
            < {{ var('standard_access_max_first_party_share') }}
            * coalesce(conversations_reported.conversations_started_reported, 0)
        ) as first_party_starts_far_below_reported,
        cast(coalesce(leads.spend, 0) as decimal(18, 2)) as spend,
        cast(coalesce(leads.impressions, 0) as bigint) as impressions,
        cast(account_totals.spend as decimal(18, 2)) as account_total_spend,
        cast(account_totals.impressions as bigint) as account_total_impressions,
        coalesce(extracted_days.day_status, 'partial') as day_status,
        accounts.account_name,
        coalesce(leads.currency, accounts.currency) as currency,
        {{ meta_reporting_columns(
            'coalesce(leads.spend, 0)', 'coalesce(leads.currency, accounts.currency)', 'fx_rates'
        ) }},
        leads.attribution_settings,
    from spine
    left join leads
        on leads.date = spine.date and leads.account_id = spine.account_id
    left join conversations_reported
        on conversations_reported.date = spine.date and conversations_reported.account_id = spine.account_id
    left join conversations_first_party
        on conversations_first_party.date = spine.date
        and conversations_first_party.account_id = spine.account_id
    left join leads_unattributed
        on leads_unattributed.date = spine.date and leads_unattributed.account_id = spine.account_id
    left join account_totals
        on account_totals.date = spine.date and account_totals.account_id = spine.account_id
    left join extracted_days
        on extracted_days.date = spine.date and extracted_days.account_id = spine.account_id
    left join accounts on accounts.account_id = spine.account_id
    -- used by meta_reporting_columns (templated, so sqlfluff does not see it)
    left join fx_rates  -- noqa: ST11
        on {{ meta_fx_join('fx_rates', 'coalesce(leads.currency, accounts.currency)', 'spine.date') }}

),

with_7_days_around as (

    select
        final.*,
        (
            sum(final.conversations_started_reported) over seven_days_around
            >= {{ var('standard_access_min_reported_starts') }}
            and sum(final.conversations_started) over seven_days_around
            < {{ var('standard_access_max_first_party_share') }}
            * sum(final.conversations_started_reported) over seven_days_around
        ) as first_party_starts_far_below_reported_7d,
        first_pulls.message_requests_may_be_missing as first_party_starts_may_miss_message_requests,
    from final
    left join first_pulls on first_pulls.date = final.date and first_pulls.account_id = final.account_id
    window seven_days_around as (
        partition by final.account_id order by final.date
        range between interval 3 days preceding and interval 3 days following
    )

)

select * from with_7_days_around
