{{ config(materialized='view') }}
-- cost_per_lead rolled up to (date, account_id): see macros/meta_cost_per_lead_rollup.sql.
{{ meta_cost_per_lead_rollup(keys=['account_id'], names=['account_name']) }}
