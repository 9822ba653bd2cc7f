-- One row per (date, page_id, platform) with a lead, date = the Page's local day (timezone of the
-- account promoting it; var('reporting_timezone') if none), platform from the lead's `platform`
-- (ig -> instagram, else messenger): paid leads attributed to an ad (leads_collected), paid leads
-- the pipeline cannot attribute to an ad (leads_collected_unattributed: no ad id, seed 003's ad
-- previews and requesters without advertiser privileges, or an ad no configured account knows) and
-- organic leads. Nothing the lake holds is left out: this is where unattributed leads are seen per
-- Page. Only extracted days (as conversations_started_by_page).
-- page_name: the Page's latest snapshot; account_name: the promoting account's.
-- Rebuilt each run from int_leads_attributed (small).
with

leads as (

    select * from {{ ref('int_leads_attributed') }}

),

pages as (

    select * from {{ ref('int_pages_attributed') }}

),

extracted_days as (

    select * from {{ ref('int_account_days_extracted') }}

),

page_names as (

    select * from {{ ref('int_pages_current') }}

),

accounts as (

    select * from {{ ref('int_accounts_current') }}

),

localized as (

    select
        {{ meta_local_date(
            'leads.created_time', "coalesce(pages.timezone_name, '" ~ var('reporting_timezone') ~ "')"
        ) }} as date,
        leads.page_id,
        case when leads.platform = 'ig' then 'instagram' else 'messenger' end as platform,
        pages.account_id as promoting_account_id,
        leads.is_organic,
        leads.is_attributed_to_ad,
        leads.extracted_at,
    from leads
    left join pages on pages.page_id = leads.page_id

),

per_page_day as (

    select
        date,
        page_id,
        platform,
        any_value(promoting_account_id) as account_id,
        cast(count(*) filter (where is_attributed_to_ad) as bigint) as leads_collected,
        cast(count(*) filter (where not is_organic and not is_attributed_to_ad) as bigint)
            as leads_collected_unattributed,
        cast(count(*) filter (where is_organic) as bigint) as organic_leads,
        max(extracted_at) as as_of,
    from localized
    group by date, page_id, platform

),

final as (

    -- day_status: the promoting account's for the day; a Page no account promotes takes it from its
    -- leads' latest extraction (as conversations_started_by_page does).
    select
        per_page_day.*,
        coalesce(
            extracted_days.day_status,
            {{ meta_day_status(
                'per_page_day.date',
                meta_local_date('per_page_day.as_of', "'" ~ var('reporting_timezone') ~ "'"),
            ) }}
        ) as day_status,
        page_names.page_name,
        accounts.account_name,
    from per_page_day
    left join page_names on page_names.page_id = per_page_day.page_id
    left join accounts on accounts.account_id = per_page_day.account_id
    left join extracted_days
        on extracted_days.account_id = per_page_day.account_id
        and extracted_days.date = per_page_day.date
    where extracted_days.account_id is not null
        or (
            per_page_day.account_id is null
            and exists (
                select 1
                from extracted_days as any_extracted
                where any_extracted.date = per_page_day.date
            )
        )

)

select * from final
