{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ meta_delete_window('created_date') }}",
    )
}}
-- One row per lead (latest extraction), attributed to an ad account and dated in its timezone:
-- paid leads -> the account of the lead's ad (ad snapshots, else insights; is_attributed_to_ad);
-- organic leads -> the account that promotes the form's Page; paid leads without an ad id (seed
-- 003: ad previews, or a requester without advertiser privileges on the account) or with an ad no
-- configured account knows -> unattributed, kept, and given the Page's account only when exactly one
-- account promotes the Page; no account -> var('reporting_timezone').
with

leads as (

    select * from {{ ref('stg_meta__leads') }}
    {% if is_incremental() -%}
    -- local dates >= the window start can only come from UTC dates >= the day before it
    where created_date_utc >= {{ meta_window_start(offset_days=1) }}
    {%- endif %}
    qualify row_number() over (partition by lead_id order by extracted_at desc) = 1

),

ads as (

    select * from {{ ref('int_ads_resolved') }}

),

pages as (

    select * from {{ ref('int_pages_attributed') }}

),

accounts as (

    select * from {{ ref('int_accounts_current') }}

),

attributed as (

    select
        leads.lead_id,
        leads.page_id,
        leads.form_id,
        leads.platform,
        leads.is_organic,
        leads.created_time,
        leads.created_date_utc,
        case when not leads.is_organic then leads.ad_id end as ad_id,
        case when not leads.is_organic then coalesce(ads.adset_id, leads.adset_id) end as adset_id,
        case when not leads.is_organic then coalesce(ads.campaign_id, leads.campaign_id) end as campaign_id,
        case when not leads.is_organic then coalesce(ads.ad_name, leads.ad_name) end as ad_name,
        case when not leads.is_organic then coalesce(ads.adset_name, leads.adset_name) end as adset_name,
        case when not leads.is_organic then coalesce(ads.campaign_name, leads.campaign_name) end
            as campaign_name,
        not leads.is_organic and ads.account_id is not null as is_attributed_to_ad,
        case
            when leads.is_organic then pages.account_id
            when ads.account_id is not null then ads.account_id
            when pages.promoting_account_count = 1 then pages.account_id
        end as account_id,
        leads.extracted_at,
    from leads
    left join ads on ads.ad_id = leads.ad_id and not leads.is_organic
    left join pages on pages.page_id = leads.page_id

),

localized as (

    select
        attributed.*,
        coalesce(accounts.timezone_name, '{{ var("reporting_timezone") }}') as timezone_name,
        {{ meta_local_date(
            'attributed.created_time', "coalesce(accounts.timezone_name, '" ~ var('reporting_timezone') ~ "')"
        ) }} as created_date,
    from attributed
    left join accounts on accounts.account_id = attributed.account_id

)

select * from localized
{% if is_incremental() -%}
where created_date >= {{ meta_window_start() }}
{%- endif %}
