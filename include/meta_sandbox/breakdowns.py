"""Insights ``breakdowns``: an ad-day's numbers split across breakdown values, consistently with the truth.

Guarantees (Meta, "Insights API Breakdowns"; see README.md):
- The sets served are the ones modelled below (``SETS``); any other set of ``breakdowns`` is refused
  with Meta's ``(#100) Current combination of data breakdown columns (...) is invalid``.
- Each (ad, local day) delivery is split across the set's values by weights that are a pure function
  of (seed, ad, day, value): ``spend`` (cents), ``impressions``, ``clicks``, inline link clicks and
  every action count (per attribution window) are split with the largest-remainder method, so the
  rows of a breakdown sum back **exactly** (to the cent) to the ad-level row. Conversions use their
  own weights, so cost per lead differs by breakdown value.
- ``reach`` is estimated per value (people see ads in several placements and on several devices):
  ``min(impressions, ceil(reach x share x 1.1))``; it does not sum to the ad-level reach.
- Type 1 breakdowns (``region``): "The Insights API will not return unsupported off-Meta metrics"
  - the pixel leads (``offsite_conversion.fb_pixel_lead``) are missing from those rows, and ``lead``
  counts on-Meta leads only.
- A value with nothing to report (no impressions, spend or action) has no row.
"""

from __future__ import annotations

import math

from meta_sandbox.errors import param_error
from meta_sandbox.metrics import WINDOWS
from meta_sandbox.params import list_param
from meta_sandbox.rng import MASK64, key, mix64

PLACEMENTS = (
    (("facebook", "feed"), 0.30),
    (("facebook", "facebook_reels"), 0.08),
    (("facebook", "marketplace"), 0.05),
    (("facebook", "facebook_stories"), 0.05),
    (("facebook", "right_hand_column"), 0.02),
    (("instagram", "feed"), 0.18),
    (("instagram", "instagram_stories"), 0.10),
    (("instagram", "instagram_reels"), 0.07),
    (("audience_network", "an_classic"), 0.08),
    (("messenger", "messenger_inbox"), 0.04),
    (("messenger", "messenger_stories"), 0.03),
)
PLATFORMS = (("facebook", 0.50), ("instagram", 0.35), ("audience_network", 0.08), ("messenger", 0.07))
AGES = (("18-24", 0.14), ("25-34", 0.28), ("35-44", 0.24), ("45-54", 0.17), ("55-64", 0.11), ("65+", 0.06))
GENDERS = (("female", 0.50), ("male", 0.46), ("unknown", 0.04))
DEVICE_PLATFORMS = (("mobile_app", 0.70), ("mobile_web", 0.20), ("desktop", 0.10))
IMPRESSION_DEVICES = (
    ("android_smartphone", 0.40),
    ("iphone", 0.35),
    ("desktop", 0.10),
    ("ipad", 0.05),
    ("android_tablet", 0.04),
    ("other", 0.06),
)
COUNTRIES = {
    "USD": (("US", 0.85), ("CA", 0.10), ("MX", 0.05)),
    "INR": (("IN", 0.90), ("AE", 0.06), ("SG", 0.04)),
    "EUR": (("DE", 0.80), ("AT", 0.12), ("CH", 0.08)),
}
REGIONS = {
    "USD": (("California", 0.40), ("Texas", 0.25), ("New York", 0.20), ("Ontario", 0.15)),
    "INR": (("Maharashtra", 0.45), ("Karnataka", 0.30), ("Delhi", 0.25)),
    "EUR": (("Berlin", 0.45), ("Bavaria", 0.35), ("Vienna", 0.20)),
}
TYPE_1 = frozenset({"region"})
"""Breakdowns whose rows leave off-Meta (pixel) actions out (Meta's "Type 1")."""

SETS = (
    ("publisher_platform", "platform_position"),
    ("age", "gender"),
    ("country",),
    ("device_platform",),
    ("publisher_platform",),
    ("age",),
    ("gender",),
    ("impression_device",),
    ("region",),
    ("publisher_platform", "impression_device"),
)
"""The breakdown sets the sandbox serves (order of the columns as the pipeline asks for them)."""

REACH_OVERLAP = 1.1
COUNT_OF = {
    "onsite_conversion.lead_grouped": "onsite",
    "offsite_conversion.fb_pixel_lead": "pixel",
    "onsite_conversion.messaging_conversation_started_7d": "conv",
    "onsite_conversion.messaging_first_reply": "reply",
}


def parse(params: dict) -> tuple[str, ...]:
    """The request's ``breakdowns`` in the order of the modelled set, or () when none."""
    asked = list_param(params, "breakdowns")
    if not asked:
        return ()
    for candidate in SETS:
        if set(candidate) == set(asked) and len(candidate) == len(asked):
            return candidate
    names = ", ".join(sorted({*asked, "action_type"}))
    raise param_error(f"(#100) Current combination of data breakdown columns ({names}) is invalid")


def values(breakdowns: tuple[str, ...], account) -> list[tuple[tuple[str, ...], float]]:
    """Every value of the set for ``account`` with its base weight (weights sum to 1)."""
    if breakdowns == ("publisher_platform", "platform_position"):
        return list(PLACEMENTS)
    single = {
        "publisher_platform": PLATFORMS,
        "age": AGES,
        "gender": GENDERS,
        "device_platform": DEVICE_PLATFORMS,
        "impression_device": IMPRESSION_DEVICES,
        "country": COUNTRIES.get(account.currency, (("US", 1.0),)),
        "region": REGIONS.get(account.currency, (("Unknown", 1.0),)),
    }
    out: list[tuple[tuple[str, ...], float]] = [((), 1.0)]
    for name in breakdowns:
        out = [((*v, value), w * weight) for v, w in out for value, weight in single[name]]
    return out


def largest_remainder(total: int, weights: list[float]) -> list[int]:
    """``total`` split in proportion to ``weights``: integers that sum to ``total`` exactly."""
    if total <= 0:
        return [0] * len(weights)
    scale = sum(weights)
    exact = [total * w / scale for w in weights]
    parts = [math.floor(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (parts[i] - exact[i], i))
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


class Splitter:
    """Splits the deliveries of one query's breakdown set (weights cached per ad-day)."""

    def __init__(self, breakdowns: tuple[str, ...], account) -> None:
        self.breakdowns = breakdowns
        self.values = values(breakdowns, account)
        self.salts = [key("breakdown", breakdowns, v) & MASK64 for v, _ in self.values]
        self.type1 = bool(TYPE_1 & set(breakdowns))

    def weights(self, h: int, purpose: int) -> list[float]:
        return [
            w * (0.6 + 0.8 * ((mix64(h ^ salt ^ purpose) >> 11) * (1.0 / 9007199254740992.0)))
            for (_, w), salt in zip(self.values, self.salts, strict=True)
        ]

    def split(self, dl, reported: tuple[int, int, int], windows_of) -> list[dict]:
        """Per value: impressions, reach, clicks, link, spend (cents), onsite, pixel, conv, reply and ``win``
        (action name -> window -> count), summing to the delivery's own numbers."""
        n = len(self.values)
        dw = self.weights(dl.h, 1)
        cw = self.weights(dl.h, 2)
        pixel, conv, reply = reported
        if self.type1:
            pixel = 0
        out = [{"win": {}} for _ in range(n)]
        for name, total, w in (
            ("impressions", dl.impressions, dw),
            ("clicks", dl.clicks, dw),
            ("link", dl.link_clicks, dw),
            ("spend", dl.spend_cents, dw),
            ("onsite", dl.leads_onsite, cw),
            ("pixel", pixel, cw),
            ("conv", conv, cw),
            ("reply", reply, cw),
        ):
            for row, part in zip(out, largest_remainder(total, w), strict=True):
                row[name] = part
        scale = sum(dw)
        for row, w in zip(out, dw, strict=True):
            row["reach"] = min(row["impressions"], math.ceil(dl.reach * w / scale * REACH_OVERLAP))
        for name, total in (
            ("onsite_conversion.lead_grouped", dl.leads_onsite),
            ("offsite_conversion.fb_pixel_lead", pixel),
            ("onsite_conversion.messaging_conversation_started_7d", conv),
            ("onsite_conversion.messaging_first_reply", reply),
        ):
            if not total:
                continue
            ad_level = windows_of(name, total)
            # Split the increments (1d -> 7d -> 28d) so every value keeps 1d <= 7d <= 28d and each window sums.
            for prefix in ("click", "view"):
                previous_parts = [0] * n
                previous = 0
                for span in ("1d", "7d", "28d"):
                    window = f"{span}_{prefix}"
                    parts = largest_remainder(ad_level[window] - previous, cw)
                    previous = ad_level[window]
                    for row, before, part in zip(out, previous_parts, parts, strict=True):
                        row["win"].setdefault(name, dict.fromkeys(WINDOWS, 0))[window] = before + part
                    previous_parts = [b + p for b, p in zip(previous_parts, parts, strict=True)]
            for row in out:  # a value's count is its default attribution, as at ad level: 7d_click + 1d_view
                windows = row["win"][name]
                row[COUNT_OF[name]] = windows["7d_click"] + windows["1d_view"]
        return out


def has_data(t: dict) -> bool:
    return bool(
        t["impressions"] or t["spend"] or t["clicks"] or t["onsite"] or t["pixel"] or t["conv"] or t["reply"]
    )


def empty_totals() -> dict:
    return {
        "impressions": 0,
        "reach": 0,
        "clicks": 0,
        "link": 0,
        "spend": 0,
        "onsite": 0,
        "pixel": 0,
        "conv": 0,
        "reply": 0,
        "win": {},
    }


def add(into: dict, t: dict) -> None:
    for k in ("impressions", "reach", "clicks", "link", "spend", "onsite", "pixel", "conv", "reply"):
        into[k] += t[k]
    for name, windows in t["win"].items():
        acc = into["win"].setdefault(name, dict.fromkeys(WINDOWS, 0))
        for w, v in windows.items():
            acc[w] += v
