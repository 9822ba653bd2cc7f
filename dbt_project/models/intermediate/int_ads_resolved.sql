{{ config(materialized="table") }}
-- Every known ad with its ad set, campaign and account: from the ad snapshots, plus ads seen only in
-- insights (e.g. deleted ads still reporting), so leads can be attributed to an account.
with

ads as (

    select * from {{ ref('stg_meta__ads') }}
    qualify row_number() over (partition by ad_id order by extracted_at desc) = 1

),

adsets as (

    select * from {{ ref('stg_meta__adsets') }}
    qualify row_number() over (partition by adset_id order by extracted_at desc) = 1

),

campaigns as (

    select * from {{ ref('stg_meta__campaigns') }}
    qualify row_number() over (partition by campaign_id order by extracted_at desc) = 1

),

insights_ads as (

    select
        ad_id,
        arg_max(adset_id, extracted_at) as adset_id,
        arg_max(campaign_id, extracted_at) as campaign_id,
        arg_max(account_id, extracted_at) as account_id,
        arg_max(ad_name, extracted_at) as ad_name,
        arg_max(adset_name, extracted_at) as adset_name,
        arg_max(campaign_name, extracted_at) as campaign_name,
    from {{ ref('stg_meta__insights') }}
    where ad_id not in (select ads.ad_id from ads)
    group by ad_id

),

from_snapshots as (

    select
        ads.ad_id,
        ads.adset_id,
        ads.campaign_id,
        ads.account_id,
        ads.ad_name,
        adsets.adset_name,
        campaigns.campaign_name,
    from ads
    left join adsets on adsets.adset_id = ads.adset_id
    left join campaigns on campaigns.campaign_id = ads.campaign_id

),

resolved as (

    select * from from_snapshots
    union all by name
    select * from insights_ads

)

select * from resolved
