-- Each Page promoted by an ad account, with the account whose timezone dates the Page's messages and
-- organic leads. A Page promoted by several accounts is attributed to the smallest account_id (documented
-- choice); promoting_account_count says whether that choice was needed (leads without an ad are
-- attributed to an account only when it is 1). Pages no account promotes fall back to
-- var('reporting_timezone') downstream.
with

accounts as (

    select * from {{ ref('int_accounts_current') }}

),

promoted as (

    select
        unnest(promoted_page_ids) as page_id,
        account_id,
        timezone_name,
    from accounts

),

attributed as (

    select
        page_id,
        min(account_id) as account_id,
        arg_min(timezone_name, account_id) as timezone_name,
        count(distinct account_id) as promoting_account_count,
    from promoted
    where page_id is not null
    group by page_id

)

select * from attributed
