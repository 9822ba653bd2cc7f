"""Daily facts per (ad, account-local day) and how they are reported as of a clock date.

Guarantees (the truth and the insights rows are both built from these functions, so they agree):
- ``delivery(ad, day)`` is a pure function of (seed, ad, day): impressions, reach, clicks,
  inline link clicks, spend (integer cents) and the *final* conversion counts. About 4% of
  ad-days have no delivery (no row, no leads, no conversations).
- Delivery metrics are final at once. Conversions restate: ``offsite_conversion.fb_pixel_lead``,
  ``onsite_conversion.messaging_conversation_started_7d`` and ``..._messaging_first_reply`` are
  reported as ``floor(final * maturity(age))`` with age = (clock's local today - day), which grows
  monotonically to the final value at age >= 28 days.
- ``onsite_conversion.lead_grouped`` = the number of paid lead-form records of that ad created
  that local day (leads.py creates exactly that many); it does not restate.
- ``lead`` = ``onsite_conversion.lead_grouped`` + ``offsite_conversion.fb_pixel_lead``.
- Attribution split of a reported count V: ``value`` = V = ``7d_click`` + ``1d_view`` (the default
  attribution); ``1d_click`` <= ``7d_click`` <= ``28d_click``; ``1d_view`` <= ``7d_view`` <= ``28d_view``.
- ``tail_delivery(ad, day)``: a lead ad that stopped delivering (archived or deleted) still reports
  pixel leads on some of the ``TAIL_DAYS`` days after: no impressions, clicks or spend.
- ``partial(delivery, fraction, ...)``: the account's current local day as it stands: delivery
  metrics scaled by the share of the day gone, lead-form and conversation counts as created so far.
"""

from __future__ import annotations

import copy
import math

from meta_sandbox.rng import MASK64, mix64, poisson
from meta_sandbox.world import Ad

RESTATEMENT_DAYS = 28
NO_DELIVERY_RATE = 0.04
_INV = 1.0 / 18446744073709551616.0
_DAYK = 0x632BE59BD9B4E019


def maturity(age: int) -> float:
    """Share of a day's final conversions reported ``age`` days later (1.0 from 28 days on)."""
    if age >= RESTATEMENT_DAYS:
        return 1.0
    if age < 1:
        age = 1
    return 0.55 + 0.45 * (age / RESTATEMENT_DAYS) ** 0.7


def day_hash(ad: Ad, day: int) -> int:
    return mix64(ad.key ^ ((day * _DAYK) & MASK64))


def delivers(ad: Ad, day: int) -> bool:
    return (day_hash(ad, day) & 0xFFFFFFFF) * (1.0 / 4294967296.0) >= NO_DELIVERY_RATE


class Delivery:
    """One ad-day. Counts are ints; spend is integer cents (minor units)."""

    __slots__ = (
        "clicks",
        "conv_final",
        "day",
        "h",
        "impressions",
        "leads_onsite",
        "link_clicks",
        "pixel_final",
        "reach",
        "reply_final",
        "spend_cents",
    )

    def reported(self, today: int) -> tuple[int, int, int]:
        """(fb_pixel_lead, conversation starts, first replies) as reported on local day ``today``."""
        m = maturity(today - self.day)
        if m >= 1.0:
            return self.pixel_final, self.conv_final, self.reply_final
        return (
            math.floor(self.pixel_final * m),
            math.floor(self.conv_final * m),
            math.floor(self.reply_final * m),
        )


def delivery(ad: Ad, day: int, lead_mean: float, conv_mean: float) -> Delivery | None:
    """Facts of one ad-day, or None without delivery.

    ``lead_mean`` / ``conv_mean`` are the per-ad daily means (the Page's daily mean split over its
    lead / messaging ads), passed in so this stays a pure function of its arguments.
    """
    h = mix64(ad.key ^ ((day * _DAYK) & MASK64))
    if (h & 0xFFFFFFFF) * (1.0 / 4294967296.0) < NO_DELIVERY_RATE:
        return None
    h1 = mix64(h)
    h2 = mix64(h1)
    h3 = mix64(h2)
    u1 = (h >> 32) * (1.0 / 4294967296.0)
    u2 = (h1 & 0xFFFFFFFF) * (1.0 / 4294967296.0)
    u3 = (h1 >> 32) * (1.0 / 4294967296.0)
    u4 = (h2 & 0xFFFFFFFF) * (1.0 / 4294967296.0)
    u5 = (h2 >> 32) * (1.0 / 4294967296.0)
    weekly = 1.12 if day % 7 in (5, 6) else 0.95  # 1970-01-01 was a Thursday: 2,3 = Sat,Sun
    d = Delivery()
    d.day = day
    d.h = h3
    impressions = int(ad.base_impressions * (0.55 + 0.9 * u1) * weekly) + 1
    d.impressions = impressions
    d.reach = max(1, int(impressions / (1.05 + 0.6 * u2)))
    clicks = int(impressions * ad.ctr * (0.7 + 0.6 * u3))
    d.clicks = clicks
    d.link_clicks = int(clicks * (0.55 + 0.35 * u4))
    account = ad.adset.campaign.account
    d.spend_cents = max(1, int(impressions * account.cpm * (0.8 + 0.4 * u5) / 10.0))
    if ad.form is not None:
        d.leads_onsite = poisson(lead_mean, (h3 & 0xFFFFFFFF) * (1.0 / 4294967296.0))
        d.pixel_final = poisson(lead_mean * 0.4, (h3 >> 32) * (1.0 / 4294967296.0))
        d.conv_final = 0
        d.reply_final = 0
    else:
        d.leads_onsite = 0
        d.pixel_final = 0
        d.conv_final = poisson(conv_mean, (h3 & 0xFFFFFFFF) * (1.0 / 4294967296.0))
        d.reply_final = d.conv_final - (1 if d.conv_final and (h3 >> 32) & 3 == 0 else 0)
    return d


_TAILK = 0x7A11D4E5C0FFEE01


def tail_delivery(ad: Ad, day: int, lead_mean: float) -> Delivery | None:
    """Pixel leads still tracked on a day after a lead ad stopped delivering (no delivery metrics)."""
    if ad.form is None:
        return None
    h = mix64(ad.key ^ ((day * _DAYK) & MASK64) ^ _TAILK)
    pixel = poisson(lead_mean * 0.4, (h & 0xFFFFFFFF) * (1.0 / 4294967296.0))
    if pixel <= 0:
        return None
    d = Delivery()
    d.day, d.h = day, mix64(h)
    d.impressions = d.reach = d.clicks = d.link_clicks = d.spend_cents = 0
    d.leads_onsite = d.conv_final = d.reply_final = 0
    d.pixel_final = pixel
    return d


def partial(dl: Delivery, fraction: float, leads_so_far: int, conversations_so_far: int) -> Delivery:
    """``dl`` as it stands when ``fraction`` of its local day has gone (1.0: the whole day)."""
    if fraction >= 1.0:
        return dl
    p = copy.copy(dl)
    p.impressions = int(dl.impressions * fraction)
    p.reach = min(int(dl.reach * fraction), p.impressions)
    p.clicks = min(int(dl.clicks * fraction), p.impressions)
    p.link_clicks = min(int(dl.link_clicks * fraction), p.clicks)
    p.spend_cents = int(dl.spend_cents * fraction)
    p.leads_onsite = leads_so_far
    p.pixel_final = int(dl.pixel_final * fraction)
    p.conv_final = conversations_so_far
    p.reply_final = min(conversations_so_far, int(dl.reply_final * fraction))
    return p


def shows(dl: Delivery | None) -> bool:
    """Whether an ad-day has anything to report (an Insights row exists)."""
    return dl is not None and bool(
        dl.impressions or dl.spend_cents or dl.leads_onsite or dl.pixel_final or dl.conv_final
    )


WINDOWS = ("1d_click", "7d_click", "28d_click", "1d_view", "7d_view", "28d_view")


def split_windows(value: int, h: int) -> dict[str, int]:
    """Split a reported count into attribution windows with value = 7d_click + 1d_view."""
    if value <= 0:
        return dict.fromkeys(WINDOWS, 0)
    u = (h & 0xFFFF) / 65536.0
    view1 = int(value * 0.25 * u + 0.5 * ((h >> 16) & 1)) if value > 1 else 0
    view1 = min(view1, value)
    click7 = value - view1
    click1 = click7 - int(click7 * 0.3 * (((h >> 20) & 0xFF) / 256.0))
    extra28 = int(click7 * 0.12 * (((h >> 28) & 0xFF) / 256.0) + 0.3)
    view7 = view1 + int(0.5 * view1 + 0.2)
    return {
        "1d_click": click1,
        "7d_click": click7,
        "28d_click": click7 + extra28,
        "1d_view": view1,
        "7d_view": view7,
        "28d_view": view7 + (1 if view7 else 0),
    }
