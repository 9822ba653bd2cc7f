"""The per-Page Lead Ads retrieval budget, decided by what Meta says.

Meta's rule (seed 003): a Page may make ``200 x 24 x L`` lead-retrieval calls per rolling 24 h,
where ``L`` is the number of leads created on the Page in the last 90 days. Over it, requests fail
(code 80005, with ``estimated_time_to_regain_access``).

What this module guarantees:

* Meta is the authority. The ``leadgen`` entry of the Page in ``X-Business-Use-Case-Usage`` (the
  share of the budget used, counting other runs' calls too) stops the run before a call once it
  reads 100 %; a refusal (a throttle error while that reading is full) ends the run at once with
  :class:`LeadRetrievalBudgetExceeded` naming the regain time, instead of sleeping for hours.
* Our own count never blocks a call Meta would allow. The forms' lead counts are *all-time* counts
  (Meta's budget counts 90 days), so ``200 x 24 x`` their sum (``leads_count`` plus
  ``organic_leads_count``: ``operators.leads.leads_on_record``) is only an upper bound of the limit:
  the run stops on it only when even that bound is spent. A form that omits a count makes the bound
  unknown (no local stop); a form whose counts are both 0 has nothing to fetch and costs no call.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

CALLS_PER_LEAD_PER_24H = 200 * 24


class LeadRetrievalBudgetExceeded(AirflowFailException):
    """Meta's lead-retrieval budget of the Page is spent: not retryable before Meta says so."""

    def __init__(
        self,
        page_id: str,
        *,
        reported_pct: float | None = None,
        calls_used: int = 0,
        ceiling: int | None = None,
        regain_minutes: float | None = None,
    ) -> None:
        self.page_id = page_id
        self.reported_pct = reported_pct
        self.calls_used = calls_used
        self.ceiling = ceiling
        self.regain_minutes = regain_minutes
        if reported_pct is not None and reported_pct >= 100:
            why = f"Meta reports {reported_pct:g} % of its leadgen budget used"
        else:
            why = f"{calls_used} calls made, the most the forms' leads_count allows ({ceiling})"
        regain = f" Meta expects access again in about {regain_minutes:g} minutes." if regain_minutes else ""
        super().__init__(
            f"Lead retrieval budget of Page {page_id} is spent: {why} (200 x 24 x leads created in the "
            f"last 90 days, per 24 h).{regain} Nothing was written; retry after the 24-hour window has "
            "moved on, or shorten the lookback."
        )


@dataclass
class LeadRetrievalBudget:
    """Call counter for one Page's lead-retrieval budget (see the module docstring).

    :param leads_count: the sum of the forms' all-time lead counts (``leads_on_record``), or None when a
        form did not report them (unknown).
    """

    page_id: str
    leads_count: int | None
    calls_used: int = 0
    reported_pct: float | None = None
    regain_minutes: float | None = None

    @property
    def ceiling(self) -> int | None:
        """``200 x 24 x leads_count``: an upper bound of Meta's limit (None when unknown)."""
        return None if self.leads_count is None else CALLS_PER_LEAD_PER_24H * max(0, int(self.leads_count))

    @property
    def spent_per_meta(self) -> bool:
        return self.reported_pct is not None and self.reported_pct >= 100

    def check(self, calls: int = 1) -> None:
        """Raise if Meta says the budget is spent, or ``calls`` more would pass even the upper bound."""
        ceiling = self.ceiling
        if self.spent_per_meta or (ceiling is not None and self.calls_used + calls > ceiling):
            raise self.exceeded()

    def exceeded(self) -> LeadRetrievalBudgetExceeded:
        return LeadRetrievalBudgetExceeded(
            self.page_id,
            reported_pct=self.reported_pct,
            calls_used=self.calls_used,
            ceiling=self.ceiling,
            regain_minutes=self.regain_minutes,
        )

    def charge(self, calls: int = 1) -> None:
        """Count calls already made (never checked: the counter must never under-count)."""
        self.calls_used += calls

    def observe(self, reading: LeadgenReading | None) -> None:
        """Take Meta's latest ``leadgen`` reading for the Page (None: no reading yet)."""
        if reading is not None:
            self.reported_pct = reading.pct
            self.regain_minutes = reading.regain_minutes or None


@dataclass(frozen=True)
class LeadgenReading:
    """The ``leadgen`` entry of one Page in ``X-Business-Use-Case-Usage``."""

    pct: float  # call_count: percent of the 24-hour budget used
    regain_minutes: float = 0.0


def _buc_header(headers: Any) -> Any:
    """The raw BUC header from a response's header mapping or a batch item's ``[{name, value}]``."""
    if not headers:
        return None
    if isinstance(headers, Mapping) or hasattr(headers, "items"):
        pairs = headers.items()
    else:
        pairs = ((h.get("name"), h.get("value")) for h in headers if isinstance(h, Mapping))
    return next((v for k, v in pairs if str(k).lower() == "x-business-use-case-usage"), None)


def leadgen_reading(headers: Any, page_id: str) -> LeadgenReading | None:
    """The ``leadgen`` entry for ``page_id`` in the BUC header, if any (the highest, if several)."""
    raw = _buc_header(headers)
    if not raw:
        return None
    try:
        usage = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return None
    if not isinstance(usage, Mapping):
        return None
    best: LeadgenReading | None = None
    for entry in usage.get(str(page_id)) or ():
        if isinstance(entry, Mapping) and str(entry.get("type", "")).lower() == "leadgen":
            try:
                reading = LeadgenReading(
                    float(entry.get("call_count", 0)),
                    float(entry.get("estimated_time_to_regain_access") or 0),
                )
            except (TypeError, ValueError):
                continue
            if best is None or reading.pct > best.pct:
                best = reading
    return best


def leadgen_call_pct(headers: Any, page_id: str) -> float | None:
    """The ``call_count`` percent of the ``leadgen`` entry for ``page_id`` in the BUC header, if any."""
    reading = leadgen_reading(headers, page_id)
    return None if reading is None else reading.pct


class LeadgenUsageTap:
    """A rate-limit governor that also remembers each Page's ``leadgen`` reading from Meta's headers.

    The hook reports every response's headers (errors and batch items included) to its governor
    and to nothing else, so the leads operator hands the hook this thin wrapper around the
    process-wide governor: every decision is still the shared governor's, with one exception:
    when Meta refuses a call of a Page whose leadgen budget it reports spent, the hook would block
    the Page until Meta's regain time (hours) and retry; :meth:`block` raises
    :class:`LeadRetrievalBudgetExceeded` instead, which ends the task at once.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self._readings: dict[str, LeadgenReading] = {}

    def observe(self, headers: Any, scope: str | None = None) -> Any:
        if scope:
            reading = leadgen_reading(headers, scope)
            if reading is not None:
                with self._lock:
                    self._readings[scope] = reading  # the latest: usage also falls as the 24 h window rolls
        return self._inner.observe(headers, scope)

    def reading(self, page_id: str) -> LeadgenReading | None:
        with self._lock:
            return self._readings.get(str(page_id))

    def leadgen_pct(self, page_id: str) -> float | None:
        reading = self.reading(page_id)
        return None if reading is None else reading.pct

    def block(self, scope: str | None, seconds: float) -> None:
        reading = self.reading(scope) if scope else None
        if reading is not None and reading.pct >= 100:
            raise LeadRetrievalBudgetExceeded(
                str(scope), reported_pct=reading.pct, regain_minutes=reading.regain_minutes or None
            )
        self._inner.block(scope, seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
