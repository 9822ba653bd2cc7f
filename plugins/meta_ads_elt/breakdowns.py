"""Meta's rules for Insights breakdowns, as a table: which combinations exist, which drop off-Meta
actions, which need an opt-in, which fields they exclude. Report specs are checked against it when
the config is read, before any call.

Source: Meta, "Insights API Breakdowns",
https://developers.facebook.com/docs/marketing-api/insights/breakdowns (the page as updated
2026-05-08): its sections "Combining breakdowns" (the permutation table, verbatim below),
"Restrictions for off-Meta action metrics" (Type 1 / Type 2), "Generic breakdowns" (the breakdowns
that exist, their notes) and "Hourly breakdowns"; and "If ``action_breakdowns`` parameter is not
specified, ``action_type`` is implicitly added" ("Action breakdown"). Names are checked against the
SDK's enums too (``facebook_business.adobjects.adsinsights.AdsInsights.Breakdowns`` /
``.ActionBreakdowns``), so a typo is named as such.
"""

from __future__ import annotations

from collections.abc import Iterable

SOURCE_URL = "https://developers.facebook.com/docs/marketing-api/insights/breakdowns"

JOINABLE_ACTION_BREAKDOWNS = frozenset({"action_type", "action_target_id", "action_destination"})
"""'Permutations marked with an asterisk (*) can be joined with action_type, action_target_id and
action_destination which is the name for action_target_id.'"""

_CAROUSEL = ("action_carousel_card_id", "action_carousel_card_name")

PERMUTATIONS: tuple[tuple[frozenset[str], bool], ...] = tuple(
    (frozenset(names), starred)
    for names, starred in (
        # "Combining breakdowns" (the table as published; True = marked with an asterisk)
        (("action_converted_product_id",), False),
        (("action_type",), True),
        (("action_type", "action_converted_product_id"), False),
        (("action_target_id",), True),
        (("action_device",), True),
        (("action_device", "impression_device"), True),
        (("action_device", "publisher_platform"), True),
        (("action_device", "publisher_platform", "impression_device"), True),
        (("action_device", "publisher_platform", "platform_position"), True),
        (("action_device", "publisher_platform", "platform_position", "impression_device"), True),
        (("action_reaction",), False),
        (("action_type", "action_reaction"), False),
        (("age",), True),
        (("gender",), True),
        (("age", "gender"), True),
        (("app_id", "skan_conversion_id"), False),
        (("country",), True),
        (("region",), True),
        (("publisher_platform",), True),
        (("publisher_platform", "impression_device"), True),
        (("publisher_platform", "platform_position"), True),
        (("publisher_platform", "platform_position", "impression_device"), True),
        (("product_id",), True),
        (("hourly_stats_aggregated_by_advertiser_time_zone",), True),
        (("hourly_stats_aggregated_by_audience_time_zone",), True),
        # "action_carousel_card_id / action_carousel_card_name" rows: either name
        *(((card,), False) for card in _CAROUSEL),
        *(((card, "impression_device"), False) for card in _CAROUSEL),
        *(((card, "country"), False) for card in _CAROUSEL),
        *(((card, "age"), False) for card in _CAROUSEL),
        *(((card, "gender"), False) for card in _CAROUSEL),
        *(((card, "age", "gender"), False) for card in _CAROUSEL),
    )
)
"""Meta's "Combining breakdowns" table: the only permutations of breakdowns and action breakdowns
that exist ("Due to storage constraints, only some permutations of breakdowns are available")."""

SINGLE_BREAKDOWNS = frozenset(
    {
        "device_platform",
        "dma",
        "impression_device",
        "place_page_id",
        "frequency_value",
        "user_segment_key",
        "ad_format_asset",
        "body_asset",
        "call_to_action_asset",
        "description_asset",
        "image_asset",
        "link_url_asset",
        "title_asset",
        "video_asset",
    }
)
"""Breakdowns of the "Generic breakdowns" table that the permutation table does not list: available on
their own (with the implicit ``action_type``), never combined with another breakdown."""

OFF_META_ACTIONS_NOT_RETURNED = frozenset(
    {
        "region",
        "dma",
        "hourly_stats_aggregated_by_audience_time_zone",
        "hourly_stats_aggregated_by_advertiser_time_zone",
    }
)
"""Type 1: "The Insights API will not return unsupported off-Meta metrics (for example, an actions
metric with Type 1 breakdowns)": pixel and other off-Meta conversions are missing from ``actions``."""

OFF_META_ACTIONS_WITHOUT_BREAKDOWN = frozenset(
    {
        "action_device",
        "action_destination",
        "action_target_id",
        "product_id",
        *_CAROUSEL,
        "action_canvas_component_name",
    }
)
"""Type 2: "Off-Meta web metrics will continue to be returned from the API, however will not contain the
breakdown value. The mobile metrics will not be returned anymore when queried with these breakdowns."
(``action_destination`` / ``action_target_id`` are what the pipeline never asks for by default.)"""

OFF_META_ACTIONS = ("complete", "not_returned", "web_only")
"""Values of the ``off_meta_actions`` column every report row carries (flagged in the data)."""

NEEDS_ADS_MANAGER_OPT_IN = {
    "dma": '"May need to be enabled via Ads Manager reporting breakdown menu"',
}
"""Breakdowns an account must enable in Ads Manager first. (``frequency_value``,
``hourly_stats_aggregated_by_audience_time_zone`` and ``impression_device`` "may be unavailable for
some ad accounts" from 2026-08-06 for *synchronous* requests only: "you can retrieve the data through
an asynchronous report job", which is what the pipeline uses.)"""

UNAVAILABLE_WITH_BREAKDOWNS = frozenset(
    {
        "app_store_clicks",
        "newsfeed_avg_position",
        "newsfeed_clicks",
        "relevance_score",
        "newsfeed_impressions",
    }
)
"""'Do not request the following fields when specifying a breakdown'."""

HOURLY = frozenset(
    {"hourly_stats_aggregated_by_advertiser_time_zone", "hourly_stats_aggregated_by_audience_time_zone"}
)
NOT_WITH_HOURLY_FIELDS = ("unique_", "reach", "frequency", "video_")
"""Hourly breakdowns "do not support unique fields, which are any fields prepended with unique_*,
reach or frequency" ('reach and frequency fields will return 0'), and "video_* fields cannot be
requested with any hourly stats breakdowns"."""

DYNAMIC_CREATIVE_ASSETS = frozenset(
    {
        "ad_format_asset",
        "body_asset",
        "call_to_action_asset",
        "description_asset",
        "image_asset",
        "link_url_asset",
        "title_asset",
        "video_asset",
    }
)
DYNAMIC_CREATIVE_METRICS = frozenset({"impressions", "clicks", "spend", "reach", "actions", "action_values"})
"""'All Dynamic Creative asset breakdowns only support a limited set of metrics'."""

NOT_AT_ACCOUNT_LEVEL = {
    "place_page_id": "Account-level insights and page_place_id are not compatible with each other",
    "image_asset": "image_asset and video_asset breakdowns are not available at the ad account level",
    "video_asset": "image_asset and video_asset breakdowns are not available at the ad account level",
}
REACH_ONLY = {"frequency_value": "frequency_value is used with reach only"}
"""A reach distribution, not a spend report: the pipeline's reports always carry spend."""

NOT_WITH_REGION_FIELDS = (
    "video_p25_watched_actions",
    "video_p50_watched_actions",
    "video_p75_watched_actions",
    "video_p95_watched_actions",
    "video_p100_watched_actions",
    "video_avg_time_watched_actions",
)
"""Video actions 'do not support region breakdown'."""


def is_allowed(breakdowns: Iterable[str], action_breakdowns: Iterable[str]) -> bool:
    """Whether Meta serves this combination: it is a row of the permutation table, or a starred row
    joined with action_type / action_target_id / action_destination, or a generic breakdown on its own."""
    names = frozenset(breakdowns) | frozenset(action_breakdowns or ("action_type",))
    rest = names - JOINABLE_ACTION_BREAKDOWNS
    if not rest:
        return True  # action_type, action_target_id, action_destination: starred rows joined together
    for permutation, starred in PERMUTATIONS:
        if names == permutation or (starred and rest == permutation):
            return True
    return len(rest) == 1 and next(iter(rest)) in SINGLE_BREAKDOWNS


def allowed_with(breakdowns: Iterable[str]) -> list[str]:
    """The breakdown combinations Meta serves (with the implicit ``action_type``) that share a breakdown
    with ``breakdowns`` (all of them when none does): what an error message offers instead."""
    rows = sorted(
        {
            ", ".join(sorted(p - JOINABLE_ACTION_BREAKDOWNS))
            for p, starred in PERMUTATIONS
            if starred and p - JOINABLE_ACTION_BREAKDOWNS
        }
    )
    rows += sorted(SINGLE_BREAKDOWNS)
    wanted = frozenset(breakdowns)
    related = [row for row in rows if wanted & set(row.split(", "))]
    return related or rows


def off_meta_actions(breakdowns: Iterable[str], action_breakdowns: Iterable[str]) -> str:
    """``not_returned`` (Type 1), ``web_only`` (Type 2) or ``complete``: what the rows' ``actions`` hold."""
    names = set(breakdowns) | set(action_breakdowns)
    if names & OFF_META_ACTIONS_NOT_RETURNED:
        return "not_returned"
    if names & OFF_META_ACTIONS_WITHOUT_BREAKDOWN:
        return "web_only"
    return "complete"
