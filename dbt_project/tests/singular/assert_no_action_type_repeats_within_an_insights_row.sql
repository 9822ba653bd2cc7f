-- An action_type appears at most once (and never null) in one insights row's `actions`, so a count
-- read by action_type (int_insights_ad_daily) is never summed twice.
-- Checked over the lookback window (older days were checked when they were in it). One pass per row:
-- list_unique counts the distinct non-null (lower-cased) types, so a repeated or a null action_type
-- both make it smaller than the array's length.
select
    ad_id,
    date,
    extracted_at,
from {{ ref('stg_meta__insights') }}
where date >= {{ meta_window_start() }}
    and len(actions) <> list_unique([lower(action.action_type) for action in actions])  -- noqa: RF01
