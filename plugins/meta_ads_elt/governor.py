"""Process-wide rate-limit governor for Graph API calls.

Every response (errors included) carries Meta's usage headers; the governor reads all four
(``X-Business-Use-Case-Usage``, ``X-Ad-Account-Usage``, ``X-App-Usage``, ``x-fb-ads-insights-throttle``)
and decides, per *scope* (an ad account or Page id, plus the app as a whole), how long the next call
must wait:

* below ``slow_from`` % (75) nothing happens;
* between ``slow_from`` and ``pause_at`` % (95) calls in that scope are spaced out, the gap growing
  quadratically up to ``max_spacing`` seconds, so we slow down *before* Meta blocks us;
* at or above ``pause_at`` %, or when Meta reports ``estimated_time_to_regain_access`` (minutes) or a
  throttle error, the scope is blocked until the regain time (at least ``min_pause`` seconds).

Meta keys ``X-Business-Use-Case-Usage`` by "the ID of the business associated with the token" (its
rate-limiting docs), by ad account or Page id in practice, and by the app when throttling globally. A
reading under a key the governor knows as a call scope (an account or Page it has paced calls for) is
filed there; a reading under any other key (a business id, say) is filed under the scope of the call
that received it, so it still slows the calls that spend that budget.

A wait longer than the caller's ``max_wait`` raises :class:`WaitTooLong` instead of sleeping (the hook
turns it into an error that says when to retry).

One governor is shared by every hook, thread and trigger in a process (:func:`get_governor`), and it is
thread-safe: waiting happens outside the lock, and slots are reserved under it so parallel threads
queue instead of bursting. **Across processes** (parallel Airflow tasks on different workers) nothing
is shared in memory; two things keep them in line: (1) Meta's usage headers *are* the shared state —
each process reads the same per-account counters, so all of them slow down together as the account's
usage rises and all honour the same regain time; (2) the DAG puts every task of an ad account in an
Airflow pool of that account (``meta_ads_elt.pools``), which bounds how many processes spend that
account's budget at once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

APP_SCOPE = "__app__"

USAGE_HEADERS = (
    "x-business-use-case-usage",
    "x-ad-account-usage",
    "x-app-usage",
    "x-fb-ads-insights-throttle",
)


@dataclass(frozen=True)
class Usage:
    """One usage reading: ``pct`` of the budget of ``scope`` used, and seconds until access returns."""

    scope: str
    pct: float
    regain_seconds: float = 0.0
    source: str = ""


def _header_items(headers: Any) -> dict[str, str]:
    """Lower-cased header map from a requests/aiohttp mapping or a batch item's ``[{name, value}]``."""
    if not headers:
        return {}
    if isinstance(headers, Mapping) or hasattr(headers, "items"):
        return {str(k).lower(): v for k, v in headers.items()}
    out: dict[str, str] = {}
    if isinstance(headers, Iterable):
        for item in headers:
            if isinstance(item, Mapping) and "name" in item:
                out[str(item["name"]).lower()] = item.get("value", "")
    return out


def _json(value: Any) -> Any:
    if isinstance(value, dict | list):
        return value
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return None


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def parse_usage(headers: Any, scope: str | None = None) -> list[Usage]:
    """Every usage reading in ``headers``; ``scope`` is the account/Page the call was about."""
    items = _header_items(headers)
    found: list[Usage] = []
    own = scope or APP_SCOPE

    buc = _json(items.get("x-business-use-case-usage"))
    if isinstance(buc, dict):
        for object_id, entries in buc.items():
            for entry in entries if isinstance(entries, list) else [entries]:
                if not isinstance(entry, dict):
                    continue
                pct = max(_num(entry.get(k)) for k in ("call_count", "total_cputime", "total_time"))
                regain = _num(entry.get("estimated_time_to_regain_access")) * 60.0  # minutes
                found.append(Usage(str(object_id).removeprefix("act_"), pct, regain, "buc"))

    acc = _json(items.get("x-ad-account-usage"))
    if isinstance(acc, dict):
        pct = _num(acc.get("acc_id_util_pct"))
        # reset_time_duration is only a wait when the account is actually at its limit
        regain = _num(acc.get("reset_time_duration")) if pct >= 100 else 0.0
        found.append(Usage(own, pct, regain, "ad-account"))

    app = _json(items.get("x-app-usage"))
    if isinstance(app, dict):
        pct = max(_num(app.get(k)) for k in ("call_count", "total_time", "total_cputime"))
        found.append(Usage(APP_SCOPE, pct, 0.0, "app"))

    ins = _json(items.get("x-fb-ads-insights-throttle"))
    if isinstance(ins, dict):
        found.append(Usage(APP_SCOPE, _num(ins.get("app_id_util_pct")), 0.0, "insights-app"))
        found.append(Usage(own, _num(ins.get("acc_id_util_pct")), 0.0, "insights-account"))
    return found


def regain_seconds(headers: Any) -> float:
    """The longest ``estimated_time_to_regain_access`` (in seconds) the headers announce, or 0."""
    return max((u.regain_seconds for u in parse_usage(headers)), default=0.0)


class WaitTooLong(Exception):
    """A call in ``scope`` would have to wait ``seconds`` (longer than the caller accepts)."""

    def __init__(self, scope: str, seconds: float) -> None:
        super().__init__(f"{scope}: {seconds:.0f} s")
        self.scope = scope
        self.seconds = seconds


@dataclass
class _ScopeState:
    blocked_until: float = 0.0
    spacing: float = 0.0
    next_slot: float = 0.0
    pct: float = 0.0
    waited: float = 0.0


class RateLimitGovernor:
    """Decides how long each call waits, from the usage Meta reports. Thread-safe; see module doc."""

    def __init__(
        self,
        *,
        slow_from: float = 75.0,
        pause_at: float = 95.0,
        max_spacing: float = 5.0,
        min_pause: float = 60.0,
        max_pause: float | None = None,
        clock=time.monotonic,
        sleep=time.sleep,
    ) -> None:
        self.slow_from = slow_from
        self.pause_at = pause_at
        self.max_spacing = max_spacing
        self.min_pause = min_pause
        # Optional cap on any single block (e.g. an operator-level SLA); None honours Meta's regain time.
        self.max_pause = max_pause
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._scopes: dict[str, _ScopeState] = {}
        self._call_scopes: set[str] = set()  # scopes calls were paced in (accounts, Pages)

    # -- decisions (pure) -------------------------------------------------------------------------
    def spacing_for(self, pct: float) -> float:
        """Seconds between calls in a scope whose usage is ``pct`` % (0 below ``slow_from``)."""
        if pct < self.slow_from:
            return 0.0
        if pct >= self.pause_at:
            return self.max_spacing
        frac = (pct - self.slow_from) / (self.pause_at - self.slow_from)
        return round(self.max_spacing * frac * frac, 3)

    def pause_for(self, usage: Usage) -> float:
        """Seconds to block a scope after a reading (0 if it need not be blocked)."""
        if usage.regain_seconds > 0:
            return self._cap(max(usage.regain_seconds, 1.0))
        if usage.pct >= self.pause_at:
            return self._cap(self.min_pause)
        return 0.0

    def _cap(self, seconds: float) -> float:
        return min(seconds, self.max_pause) if self.max_pause is not None else seconds

    # -- state ------------------------------------------------------------------------------------
    def _state(self, scope: str) -> _ScopeState:
        st = self._scopes.get(scope)
        if st is None:
            st = self._scopes[scope] = _ScopeState()
        return st

    def observe(self, headers: Any, scope: str | None = None) -> list[Usage]:
        """Record the usage headers of one response (success or error) made in ``scope``."""
        readings = parse_usage(headers, scope)
        if not readings:
            return readings
        now = self._clock()
        with self._lock:
            own = scope or APP_SCOPE
            # A business-use-case reading under an id that is no call scope (a business, an unknown
            # object) belongs to the budget of the call that received it.
            readings = [
                Usage(own, u.pct, u.regain_seconds, u.source)
                if u.source == "buc" and u.scope not in (own, APP_SCOPE) and u.scope not in self._call_scopes
                else u
                for u in readings
            ]
            # Several readings may target one scope (BUC + account + insights): the worst one wins.
            worst: dict[str, float] = {}
            for u in readings:
                worst[u.scope] = max(worst.get(u.scope, 0.0), u.pct)
                pause = self.pause_for(u)
                if pause:
                    st = self._state(u.scope)
                    st.blocked_until = max(st.blocked_until, now + pause)
            for sc, pct in worst.items():
                st = self._state(sc)
                st.pct = pct
                st.spacing = self.spacing_for(pct)
        return readings

    def block(self, scope: str | None, seconds: float) -> None:
        """Block ``scope`` for ``seconds`` (after a throttle error)."""
        now = self._clock()
        with self._lock:
            st = self._state(scope or APP_SCOPE)
            st.blocked_until = max(st.blocked_until, now + self._cap(max(seconds, 0.0)))

    def reserve(self, scope: str | None = None) -> float:
        """Reserve the next call slot in ``scope``; return how many seconds the caller must wait first."""
        now = self._clock()
        with self._lock:
            if scope:
                self._call_scopes.add(scope)
            app = self._state(APP_SCOPE)
            own = self._state(scope) if scope else app
            ready = max(now, app.blocked_until, own.blocked_until, own.next_slot, app.next_slot)
            own.next_slot = ready + own.spacing
            if own is not app:
                app.next_slot = max(app.next_slot, ready + app.spacing) if app.spacing else app.next_slot
            elif app.spacing:
                app.next_slot = ready + app.spacing
            delay = ready - now
            if delay > 0:
                own.waited += delay
        return delay

    def wait(self, scope: str | None = None, max_wait: float | None = None) -> float:
        """Block the calling thread until a call in ``scope`` may go out; return the seconds waited.

        :raises WaitTooLong: the wait would be longer than ``max_wait`` seconds (nothing slept).
        """
        delay = self.reserve(scope)
        if max_wait is not None and delay > max_wait:
            raise WaitTooLong(scope or APP_SCOPE, delay)
        if delay > 0:
            self._sleep(delay)
        return delay

    def sleep(self, seconds: float) -> None:
        """Sleep the time :meth:`reserve` returned (this governor's clock: tests give it a fake one)."""
        if seconds > 0:
            self._sleep(seconds)

    def waited(self, scope: str | None = None) -> float:
        """Seconds callers in ``scope`` (or all scopes) have waited so far."""
        with self._lock:
            if scope is None:
                return sum(s.waited for s in self._scopes.values())
            return self._scopes[scope].waited if scope in self._scopes else 0.0

    def usage(self, scope: str | None = None) -> float:
        with self._lock:
            st = self._scopes.get(scope or APP_SCOPE)
            return st.pct if st else 0.0


_governor: RateLimitGovernor | None = None
_governor_lock = threading.Lock()


def get_governor() -> RateLimitGovernor:
    """The one governor of this process."""
    global _governor
    with _governor_lock:
        if _governor is None:
            _governor = RateLimitGovernor()
        return _governor
