{{ config(materialized='view') }}
-- One row per (date, ad_id): the latest extraction of the day with its reported counts, taken from
-- the `actions` array by the one action-type mapping (seed meta_action_types, inlined by the macro
-- meta_action_types when the model runs): only types flagged counts_as_lead /
-- counts_as_conversation_started are summed, so `lead` is never added to its components
-- (onsite_conversion.lead_grouped, offsite_conversion.fb_pixel_lead, ...). Meta's action types are
-- lower-case, as in the seed. A view: cost_per_lead and conversations_started each read it with
-- their window filter, which prunes the lake's date partitions, and DuckDB pipelines lake -> mart
-- (measured cheaper than writing 10M intermediate rows once and reading them twice).
-- depends_on: {{ ref('meta_action_types') }}
with

insights as (

    select * from {{ ref('int_insights_deduplicated') }}

),

pivoted as (

    select
        date,
        account_id,
        campaign_id,
        adset_id,
        ad_id,
        account_name,
        campaign_name,
        adset_name,
        ad_name,
        currency,
        spend,
        impressions,
        clicks,
        cast(coalesce(list_sum([
            action.value for action in actions
            if action.action_type in {{ meta_action_types('counts_as_lead') }}
        ]), 0) as bigint) as leads_reported,
        cast(coalesce(list_sum([
            action.value for action in actions
            if action.action_type in {{ meta_action_types('counts_as_conversation_started') }}
        ]), 0) as bigint) as conversations_started_reported,
        attribution_setting,
        extracted_at,
    from insights

)

select * from pivoted
