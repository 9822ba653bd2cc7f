"""Rolling-window usage counters, Meta's usage headers and throttle errors.

Budgets are calls per rolling window (``window_s`` seconds, default 300) per key:
- ``app``: all Graph calls (code 4 when exceeded) -> ``x-app-usage``;
- ``user``: per user token (code 17, subcode 2446079);
- ``ads_insights``: insights calls per ad account (code 80000, subcode 2446079);
- ``ads_management``: other ads calls per ad account (code 80004, subcode 2446079);
- ``pages``: Page/conversation calls per Page (code 80001);
- ``leadgen``: lead-retrieval calls per Page over 24 h: 200 x 24 x leads created on the Page in the
  last 90 days x ``leadgen_scale`` (code 80005), as Meta documents;
- ``instagram``: Conversations API calls about Instagram (the ``platform=instagram`` listing, an
  Instagram conversation or message read by id) per Instagram professional account, over
  ``instagram_window_s`` (code 80002): Meta's quota "Instagram Conversations API: 2 calls per second per
  IG professional account" (research/meta_api_facts.md section 2.2; 80002 is the Instagram BUC code,
  section 2.3). Batch items count one by one (section 8), so a batch of 50 Instagram reads is 50 calls.
  The usage headers leave this type out and its throttle says 0 minutes to regain (Meta documents
  neither for a per-second quota).
Headers report percentages of these budgets; ``estimated_time_to_regain_access`` is in minutes.
``x-business-use-case-usage`` is keyed by "the ID of the business associated with the token"
(Meta's rate-limiting docs) for the ads types when ``usage_key="business"`` (default), by the ad
account id with ``usage_key="account"``; the Page types are keyed by the Page id.
Refused calls are not counted, so access comes back once the window has rolled.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import threading
import time

from meta_sandbox.errors import GraphError

LEADGEN_WINDOW_S = 86400


@dataclasses.dataclass
class Budgets:
    window_s: float = 300.0
    app: int = 20_000
    user: int = 20_000
    ads_insights: int = 5_000
    ads_management: int = 5_000
    pages: int = 5_000
    leadgen_scale: float = 1.0
    instagram: int = 2
    instagram_window_s: float = 1.0

    @property
    def instagram_per_second(self) -> int:
        """The ``instagram`` budget as calls a second: what a client may send one Instagram account."""
        return max(1, int(self.instagram / self.instagram_window_s))

    @classmethod
    def parse(cls, text: str | dict | None) -> Budgets:
        """``"ads_insights=5,window_s=60"`` or a dict."""
        b = cls()
        if not text:
            return b
        items = (
            text.items()
            if isinstance(text, dict)
            else (part.split("=", 1) for part in str(text).split(",") if part.strip())
        )
        for name, value in items:
            name = str(name).strip()
            if not hasattr(b, name):
                raise ValueError(
                    f"unknown budget {name!r}; known: {[f.name for f in dataclasses.fields(cls)]}"
                )
            floats = ("window_s", "leadgen_scale", "instagram_window_s")
            setattr(b, name, float(value) if name in floats else int(float(value)))
        return b


CODES = {
    "app": (4, None, "(#4) Application request limit reached"),
    "user": (17, 2446079, "(#17) User request limit reached"),
    "ads_insights": (
        80000,
        2446079,
        "(#80000) There have been too many calls from this ad-account. Wait a bit "
        "and try again. For more info, please refer to "
        "https://developers.facebook.com/docs/graph-api/overview/rate-limiting.",
    ),
    "ads_management": (
        80004,
        2446079,
        "(#80004) There have been too many calls to this ad-account. Wait a bit "
        "and try again. For more info, please refer to "
        "https://developers.facebook.com/docs/graph-api/overview/rate-limiting.",
    ),
    "pages": (
        80001,
        None,
        "(#80001) There have been too many calls to this Page account. Wait a bit and try "
        "again. For more info, please refer to "
        "https://developers.facebook.com/docs/graph-api/overview/rate-limiting.",
    ),
    "instagram": (
        80002,
        None,
        "(#80002) There have been too many calls to this Instagram account. Wait a bit and try again. "
        "For more info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting.",
    ),
    "leadgen": (
        80005,
        None,
        "(#80005) There have been too many leadgen api calls to this Page. Wait a bit and "
        "try again. For more info, please refer to "
        "https://developers.facebook.com/docs/graph-api/overview/rate-limiting.",
    ),
}


@dataclasses.dataclass
class Scope:
    """What a request is about, for accounting: the BUC it charges and the object it is keyed by."""

    buc: str | None = None  # ads_insights | ads_management | pages | leadgen
    account_id: str | None = None  # numeric, no act_
    page_id: str | None = None
    insights: bool = False
    business_id: str | None = None  # the business owning the account (keys the ads usage header)
    ig_id: str | None = None  # an Instagram Conversations API call: the IG professional account it is about


USAGE_KEYS = ("business", "account")


class RateLimiter:
    def __init__(self, budgets: Budgets, usage_key: str = "business"):
        if usage_key not in USAGE_KEYS:
            raise ValueError(f"usage header key must be one of {USAGE_KEYS}, got {usage_key!r}")
        self.usage_key = usage_key
        self.budgets = budgets
        self._lock = threading.Lock()
        self._calls: dict[tuple, collections.deque] = collections.defaultdict(collections.deque)

    def _window(self, kind: str) -> float:
        if kind == "instagram":
            return self.budgets.instagram_window_s
        return LEADGEN_WINDOW_S if kind == "leadgen" else self.budgets.window_s

    def _count(self, key: tuple, now: float) -> int:
        q = self._calls.get(key)
        if not q:
            return 0
        horizon = now - self._window(key[0])
        while q and q[0] <= horizon:
            q.popleft()
        return len(q)

    def _regain_minutes(self, key: tuple, now: float, budget: int) -> int:
        q = self._calls.get(key)
        if not q:
            return 0
        excess = len(q) - budget  # calls that must leave the window before one more fits
        idx = max(0, min(len(q) - 1, excess))
        return max(1, math.ceil((q[idx] + self._window(key[0]) - now) / 60.0))

    def _keys(
        self, scope: Scope, user_key: str | None, leadgen_budget: int | None
    ) -> list[tuple[tuple, int]]:
        b = self.budgets
        keys = [(("app",), b.app)]
        if user_key:
            keys.append((("user", user_key), b.user))
        if scope.buc in ("ads_insights", "ads_management") and scope.account_id:
            keys.append(((scope.buc, scope.account_id), getattr(b, scope.buc)))
        elif scope.buc == "pages" and scope.page_id:
            keys.append((("pages", scope.page_id), b.pages))
        elif scope.buc == "leadgen" and scope.page_id:
            keys.append((("leadgen", scope.page_id), leadgen_budget or 0))
        if scope.ig_id:
            keys.append((("instagram", scope.ig_id), b.instagram))
        return keys

    def charge(self, scope: Scope, user_key: str | None, leadgen_budget: int | None = None) -> None:
        """Count one call, or raise the throttle error (with headers) if a budget is spent."""
        now = time.monotonic()
        with self._lock:
            keys = self._keys(scope, user_key, leadgen_budget)
            for key, budget in keys:
                if self._count(key, now) >= budget:
                    code, sub, msg = CODES[key[0]]
                    if key[0] == "instagram":
                        regain = 0  # a per-second quota: back within the minute
                    else:
                        regain = self._regain_minutes(key, now, budget) if budget > 0 else 1440
                    err = GraphError(msg, code, subcode=sub, transient=True if code in (4, 17) else None)
                    err.throttle = (key, regain)
                    raise err
            for key, _budget in keys:
                self._calls[key].append(now)

    def headers(
        self,
        scope: Scope,
        user_key: str | None,
        leadgen_budget: int | None = None,
        regain: dict | None = None,
    ) -> dict[str, str]:
        """Usage headers for a response (errors too)."""
        now = time.monotonic()
        b = self.budgets
        with self._lock:

            def pct(key, budget):
                return min(100, int(100 * self._count(key, now) / budget)) if budget > 0 else 100

            app_pct = pct(("app",), b.app)
            out = {
                "x-app-usage": json.dumps(
                    {"call_count": app_pct, "total_cputime": max(0, app_pct - 1), "total_time": app_pct}
                )
            }
            acc_pct = 0.0
            buc: dict = {}
            tier = "standard_access"
            if scope.account_id:
                kinds = ("ads_insights", "ads_management")
                entries = []
                for kind in kinds:
                    key = (kind, scope.account_id)
                    budget = getattr(b, kind)
                    p = pct(key, budget)
                    regain_m = regain.get(key, 0) if regain else 0
                    if p >= 100 and not regain_m:
                        regain_m = self._regain_minutes(key, now, budget)
                    if kind == scope.buc or self._count(key, now):
                        entries.append(
                            {
                                "type": kind,
                                "call_count": p,
                                "total_cputime": max(0, p - 1),
                                "total_time": p,
                                "estimated_time_to_regain_access": regain_m,
                                "ads_api_access_tier": tier,
                            }
                        )
                    if kind == (scope.buc if scope.buc in kinds else "ads_management"):
                        acc_pct = round(100.0 * self._count(key, now) / budget, 2) if budget else 100.0
                key = (
                    scope.business_id
                    if self.usage_key == "business" and scope.business_id
                    else scope.account_id
                )
                buc[key] = entries or [
                    {
                        "type": "ads_management",
                        "call_count": 0,
                        "total_cputime": 0,
                        "total_time": 0,
                        "estimated_time_to_regain_access": 0,
                        "ads_api_access_tier": tier,
                    }
                ]
            if scope.page_id:
                entries = []
                for kind in ("pages", "leadgen"):
                    key = (kind, scope.page_id)
                    budget = b.pages if kind == "pages" else (leadgen_budget or 0)
                    if kind != scope.buc and not self._count(key, now):
                        continue
                    p = pct(key, budget)
                    regain_m = regain.get(key, 0) if regain else 0
                    if p >= 100 and not regain_m and budget:
                        regain_m = self._regain_minutes(key, now, budget)
                    entries.append(
                        {
                            "type": kind,
                            "call_count": p,
                            "total_cputime": max(0, p - 1),
                            "total_time": p,
                            "estimated_time_to_regain_access": regain_m,
                        }
                    )
                if entries:
                    buc[scope.page_id] = entries
            out["x-business-use-case-usage"] = json.dumps(buc)
            out["x-ad-account-usage"] = json.dumps(
                {
                    "acc_id_util_pct": acc_pct,
                    "reset_time_duration": int(b.window_s) if acc_pct else 0,
                    "ads_api_access_tier": tier,
                }
            )
            if scope.insights:
                ins_pct = pct(("ads_insights", scope.account_id), b.ads_insights) if scope.account_id else 0
                out["x-fb-ads-insights-throttle"] = json.dumps(
                    {"app_id_util_pct": app_pct, "acc_id_util_pct": ins_pct, "ads_api_access_tier": tier}
                )
        return out

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
