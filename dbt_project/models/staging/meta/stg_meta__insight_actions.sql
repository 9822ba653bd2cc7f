-- One row per insights row x element of its `actions` array (Meta's AdsActionStats), unnested once.
-- `value` is the count under the row's attribution setting (default 7d_click + 1d_view).
with

insights as (

    select
        account_id,
        date,
        ad_id,
        extracted_at,
        unnest(actions) as action,
    from {{ ref('stg_meta__insights') }}

),

renamed as (

    select
        account_id,
        date,
        ad_id,
        extracted_at,
        lower(action.action_type) as action_type,
        cast(action."value" as decimal(18,6)) as action_value,
        cast(action."1d_click" as decimal(18,6)) as value_1d_click,
        cast(action."7d_click" as decimal(18,6)) as value_7d_click,
        cast(action."28d_click" as decimal(18,6)) as value_28d_click,
        cast(action."1d_view" as decimal(18,6)) as value_1d_view,

    from insights

)

select * from renamed
