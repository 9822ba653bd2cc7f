-- One row per (date, ad_id): the latest extraction of the day with its reported counts, taken from
-- the `actions` array by the one action-type mapping (seed meta_action_types): only types flagged
-- counts_as_lead / counts_as_conversation_started are summed, so `lead` is never added to its
-- components (onsite_conversion.lead_grouped, offsite_conversion.fb_pixel_lead, ...).
-- A view: the marts filter it to their window, and DuckDB prunes the lake's date partitions.
with

insights as (

    select * from {{ ref('int_insights_deduplicated') }}

),

mapping as (

    select
        coalesce(list(lower(action_type)) filter (where counts_as_lead), []) as lead_action_types,
        coalesce(
            list(lower(action_type)) filter (where counts_as_conversation_started), []
        ) as conversation_started_action_types,
    from {{ ref('meta_action_types') }}

),

pivoted as (

    select
        insights.date,
        insights.account_id,
        insights.campaign_id,
        insights.adset_id,
        insights.ad_id,
        insights.account_name,
        insights.campaign_name,
        insights.adset_name,
        insights.ad_name,
        insights.currency,
        insights.spend,
        insights.impressions,
        insights.clicks,
        cast(coalesce(list_sum([
            action."value" for action in insights.actions
            if list_contains(mapping.lead_action_types, lower(action.action_type))
        ]), 0) as bigint) as leads_reported,
        cast(coalesce(list_sum([
            action."value" for action in insights.actions
            if list_contains(mapping.conversation_started_action_types, lower(action.action_type))
        ]), 0) as bigint) as conversations_started_reported,
        insights.attribution_setting,
        insights.extracted_at,
    from insights
    cross join mapping

)

select * from pivoted
