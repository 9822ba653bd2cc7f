"""API field lists, action types and primary keys, declared once.

Shared by several modules: edit only your own section, with small insertions.
"""

from __future__ import annotations

# --- Insights (async report runs) -------------------------------------------------------------

INSIGHTS_FIELDS = (
    "account_id",
    "account_name",
    "account_currency",
    "campaign_id",
    "campaign_name",
    "adset_id",
    "adset_name",
    "ad_id",
    "ad_name",
    "date_start",
    "date_stop",
    "spend",
    "impressions",
    "clicks",
    "reach",
    "frequency",
    "cpm",
    "ctr",
    "inline_link_clicks",
    "actions",
    "action_values",
    "cost_per_action_type",
    "attribution_setting",
)
"""Requested on every async report (``level=ad``, ``time_increment=1``); the lake's ``insights`` columns."""
INSIGHTS_LEVEL = "ad"
INSIGHTS_ATTRIBUTION_WINDOWS = ("7d_click", "1d_view")
"""Default ``action_attribution_windows``: Meta's default setting, whose sum is each action's ``value``."""
INSIGHTS_PAGE_LIMIT = 500
"""Rows per results page (halved when Meta asks to reduce the amount of data)."""
INSIGHTS_PRIMARY_KEY = ("account_id", "date", "ad_id")
JOB_DONE = "Job Completed"
JOB_FAILED_STATUSES = ("Job Failed", "Job Skipped")
JOB_NOT_STARTED_STATUSES = ("Job Not Started", "Job Started")
"""A job in these states (at 0 %) waits in Meta's queue: it is not resubmitted before the queued wait."""
JOB_STATUS_FIELDS = "id,async_status,async_percent_completion,date_start,date_stop"

AD_EFFECTIVE_STATUSES = (
    "ACTIVE",
    "ADSET_PAUSED",
    "ARCHIVED",
    "CAMPAIGN_PAUSED",
    "DELETED",
    "DISAPPROVED",
    "IN_PROCESS",
    "PAUSED",
    "PENDING_BILLING_INFO",
    "PENDING_REVIEW",
    "PREAPPROVED",
    "WITH_ISSUES",
)
"""Every ``Ad.EffectiveStatus`` (facebook_business). Insights jobs filter on all of them: without a
status filter ``act_<id>/insights?level=ad`` leaves out ARCHIVED and DELETED ads (Meta, "Manage your ad
object's status"), whose spend and actions would then vanish from a re-pulled window."""
INSIGHTS_STATUS_FILTER_FIELD = "ad.effective_status"

ACCOUNT_TOTALS_FIELDS = ("account_currency", "spend", "impressions", "clicks")
"""The completeness control: the same window at ``level=account`` (the account's own row aggregates
every child, deleted ones included), the fields that ad-level rows must sum to."""
ACCOUNT_TOTALS_LEVEL = "account"

# --- Ad objects (accounts, campaigns, ad sets, ads) --------------------------------------------

ACCOUNT_FIELDS = ("account_id", "name", "currency", "timezone_name", "timezone_offset_hours_utc")
_STATUS_FIELDS = ("effective_status", "configured_status", "updated_time")
CAMPAIGN_FIELDS = ("id", "name", "objective", "status", "created_time", *_STATUS_FIELDS)
ADSET_FIELDS = ("id", "campaign_id", "name", "optimization_goal", "status", "created_time", *_STATUS_FIELDS)
AD_FIELDS = ("id", "adset_id", "campaign_id", "name", "status", "created_time", *_STATUS_FIELDS)
AD_OBJECTS_PAGE_LIMIT = 500
EDGE_EFFECTIVE_STATUSES = {
    "campaigns": ("ACTIVE", "ARCHIVED", "IN_PROCESS", "PAUSED", "WITH_ISSUES"),
    "adsets": ("ACTIVE", "ARCHIVED", "CAMPAIGN_PAUSED", "IN_PROCESS", "PAUSED", "WITH_ISSUES"),
    "ads": tuple(s for s in AD_EFFECTIVE_STATUSES if s != "DELETED"),
}
"""``effective_status`` asked of the object edges: live and ARCHIVED objects (edges leave ARCHIVED out
unless asked). DELETED objects are never returned by an edge (asking is an error), so the snapshot
reads them by id."""
DELETED_STATUS = "DELETED"

# --- Lead Ads ----------------------------------------------------------------------------------

LEADGEN_FORM_FIELDS = ("id", "name", "status", "leads_count", "organic_leads_count", "questions")
"""Per form: the two lead counts size the lead-retrieval budget and say whether the form has anything to
read (``operators.leads.leads_on_record``), ``questions`` (with options) give the PII rule."""

LEAD_FIELDS = (
    "id",
    "created_time",
    "ad_id",
    "ad_name",
    "adset_id",
    "adset_name",
    "campaign_id",
    "campaign_name",
    "form_id",
    "is_organic",
    "platform",
    "field_data",
    "custom_disclaimer_responses",
)
LEADS_PAGE_LIMIT = 500
"""Leads per page: the budget counts calls, not rows, so pages are as large as Meta allows."""
LEADS_FILTER_OVERLAP_MINUTES = 15
"""Sent ``time_created`` filter starts this much before the window (trimmed client-side)."""
LEADS_PRIMARY_KEY = ("lead_id",)
LEAD_ANSWERS_PRIMARY_KEY = ("lead_id", "question", "value")

# --- Conversations (Messenger / Instagram) -----------------------------------------------------

CONVERSATION_PLATFORMS = ("messenger", "instagram")
MESSAGE_FIELDS = ("id", "created_time", "from", "to", "message")
MESSAGES_WITH_DETAILS = 20
"""Meta serves details only for the 20 most recent messages of a conversation (seed 004)."""
MESSAGE_LISTING_FIELDS = ("id", "created_time")
"""What the ``messages`` edge gives for every message, older ones included (seed 004's default fields)."""
MESSAGES_LISTING_PAGE_LIMIT = 100
"""Messages per page when walking a long conversation's ids and times back to the window start."""
CONVERSATIONS_PAGE_LIMIT = 100
PAGE_INSTAGRAM_FIELD = "instagram_business_account"


def conversation_fields(messages_per_conversation: int = MESSAGES_WITH_DETAILS) -> str:
    """``fields`` for ``/<page>/conversations``: each conversation with its recent messages, one request."""
    nested = ",".join(MESSAGE_FIELDS)
    return (
        f"id,updated_time,message_count,participants,messages.limit({messages_per_conversation}){{{nested}}}"
    )


CONVERSATIONS_PRIMARY_KEY = ("conversation_id",)
MESSAGES_PRIMARY_KEY = ("message_id",)
