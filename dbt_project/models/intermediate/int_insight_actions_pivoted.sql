-- Reported counts per insights row (ad_id, date, extraction), from the one action-type mapping
-- (seed meta_action_types): only types flagged counts_as_* are summed, so `lead` is never added to
-- its components (onsite_conversion.lead_grouped, offsite_conversion.fb_pixel_lead, ...).
with

actions as (

    select * from {{ ref('stg_meta__insight_actions') }}

),

action_types as (

    select * from {{ ref('meta_action_types') }}
    where counts_as_lead or counts_as_conversation_started

),

pivoted as (

    select
        actions.ad_id,
        actions.date,
        actions.extracted_at,
        sum(actions.action_value) filter (where action_types.counts_as_lead) as leads_reported,
        sum(actions.action_value) filter (
            where action_types.counts_as_conversation_started
        ) as conversations_started_reported,
    from actions
    inner join action_types on action_types.action_type = actions.action_type
    group by all

)

select * from pivoted
