-- The current snapshot of each ad account (latest extraction wins).
with

accounts as (

    select * from {{ ref('stg_meta__accounts') }}

),

latest as (

    select *
    from accounts
    qualify row_number() over (partition by account_id order by extracted_at desc) = 1

)

select * from latest
