{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook="{{ meta_delete_partitions('date') }}",
    )
}}
-- The completeness control as extracted: the account's own Insights row per account-local date.
with

source as (

    select * from {{ meta_lake_source('insights_account_totals') }}

),

renamed as (

    select
        cast(account_id as varchar) as account_id,
        cast(date as date) as date,
        upper(account_currency) as currency,
        cast(spend as decimal(18, 6)) as spend,
        cast(impressions as bigint) as impressions,
        cast(clicks as bigint) as clicks,
        timezone_name,
        served_at,
        cast(served_local_date as date) as served_local_date,
        _extracted_at as extracted_at,

    from source

)

select * from renamed
