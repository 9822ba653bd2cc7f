-- An action_type appears at most once (and never null) in one insights row's `actions`, so a count
-- read by action_type (int_insights_ad_daily) is never summed twice.
-- Checked over the lookback window (older days were checked when they were in it). One pass per row,
-- without a per-row aggregate: a (lower-cased) type is flagged when it is null or when its first
-- position in the row's list is not its own (it repeats an earlier one); ~2x cheaper than counting
-- the distinct types with list_unique, and it flags exactly the same rows.
with

window_rows as (

    select
        ad_id,
        date,
        extracted_at,
        [lower(action.action_type) for action in actions] as type_list,  -- noqa: RF01
    from {{ ref('stg_meta__insights') }}
    where date >= {{ meta_window_start() }}

)

select
    ad_id,
    date,
    extracted_at,
from window_rows
-- the type at position i is null, or first found at another position: a repeat (sqlfluff cannot parse
-- an indexed list comprehension)
where len([1 for t, i in type_list if t is null or list_position(type_list, t) <> i]) > 0  -- noqa: PRS
