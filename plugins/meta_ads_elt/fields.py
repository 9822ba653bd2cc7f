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
JOB_STATUS_FIELDS = "id,async_status,async_percent_completion,date_start,date_stop"

# --- Ad objects (accounts, campaigns, ad sets, ads) --------------------------------------------

ACCOUNT_FIELDS = ("account_id", "name", "currency", "timezone_name", "timezone_offset_hours_utc")
CAMPAIGN_FIELDS = ("id", "name", "objective", "status", "created_time")
ADSET_FIELDS = ("id", "campaign_id", "name", "optimization_goal", "status", "created_time")
AD_FIELDS = ("id", "adset_id", "campaign_id", "name", "status", "created_time")
AD_OBJECTS_PAGE_LIMIT = 500

# --- Lead Ads ----------------------------------------------------------------------------------

LEADGEN_FORM_FIELDS = ("id", "name", "status", "leads_count", "questions")
"""Per form: ``leads_count`` sizes the lead-retrieval budget, ``questions`` (with options) the PII rule."""

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
    return f"id,updated_time,message_count,participants,messages.limit({messages_per_conversation}){{{nested}}}"


CONVERSATIONS_PRIMARY_KEY = ("conversation_id",)
MESSAGES_PRIMARY_KEY = ("message_id",)
