{{ config(severity='warn') }}
-- Warns (never fails the build) on each Page-day whose account has first-party conversation starts far
-- below the paid starts Meta reports over the 7 days around it
-- (lead_reconciliation.first_party_starts_far_below_reported_7d: a start Meta reports on another day
-- than the one it was started on does not count as missing):
-- the signature of a token whose app has only Standard Access for the Conversations API (seed 004:
-- conversations with people who have no role on the app are hidden, so the API answers normally
-- with almost nothing). Fix: Advanced Access for pages_messaging / instagram_manage_messages.
select
    reconciliation.date,
    reconciliation.account_id,
    pages.page_id,
    reconciliation.conversations_started,
    reconciliation.conversations_started_reported,
from {{ ref('lead_reconciliation') }} as reconciliation
inner join {{ ref('int_pages_attributed') }} as pages
    on pages.account_id = reconciliation.account_id
where reconciliation.first_party_starts_far_below_reported_7d
