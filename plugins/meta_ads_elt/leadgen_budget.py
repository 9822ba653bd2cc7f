"""The per-Page Lead Ads retrieval budget: count calls and stop *before* Meta would refuse one.

Meta's rule (seed 003): a Page may make ``200 x 24 x L`` lead-retrieval calls per rolling 24 h,
where ``L`` is the number of leads created on the Page in the last 90 days. Over it, requests fail.

What this module guarantees: :meth:`LeadRetrievalBudget.charge` raises
:class:`LeadRetrievalBudgetExceeded` (naming the Page, the limit and the calls counted) instead of
letting the caller make a call that would exceed the budget. The calls counted are the larger of

* the calls this process charged, plus those already used when the budget was created, and
* what Meta itself reports: the ``leadgen`` entry for the Page in ``X-Business-Use-Case-Usage``
  (``call_count`` in percent of the budget), fed in through :meth:`observe_usage`. That header is
  the only view of calls made by *other* runs in the same 24 h, so it wins when it is higher.

``L`` is decided by the caller (the leads operator uses the ``leads_count`` of the Page's forms,
which it reads anyway when it lists them; see ``operators/leads.py``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CALLS_PER_LEAD_PER_24H = 200 * 24


class LeadRetrievalBudgetExceeded(RuntimeError):
    """The next lead-retrieval call would exceed the Page's 24-hour budget. Not retryable today."""

    def __init__(self, page_id: str, limit: int, used: int, leads_90d: int) -> None:
        self.page_id = page_id
        self.limit = limit
        self.used = used
        self.leads_90d = leads_90d
        super().__init__(
            f"Lead retrieval budget of Page {page_id} would be exceeded: {used} calls counted of "
            f"{limit} allowed per 24 h (200 x 24 x {leads_90d} leads created in the last 90 days). "
            "Stopped before Meta refuses the call; retry after the 24-hour window has moved on, "
            "or shorten the lookback."
        )


@dataclass
class LeadRetrievalBudget:
    """Call counter for one Page's lead-retrieval budget (see the module docstring)."""

    page_id: str
    leads_last_90_days: int
    calls_used: int = 0
    reported_pct: float = field(default=0.0)

    @property
    def limit(self) -> int:
        return CALLS_PER_LEAD_PER_24H * max(0, int(self.leads_last_90_days))

    @property
    def used(self) -> int:
        """Calls counted so far: ours, or Meta's reported share of the limit if that is higher."""
        reported = int(-(-self.reported_pct * self.limit // 100))  # ceil: never under-count
        return max(self.calls_used, reported)

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def check(self, calls: int = 1) -> None:
        """Raise if ``calls`` more calls would exceed the budget (without counting them)."""
        if self.used + calls > self.limit:
            raise LeadRetrievalBudgetExceeded(self.page_id, self.limit, self.used, self.leads_last_90_days)

    def charge(self, calls: int = 1, *, force: bool = False) -> None:
        """Count ``calls`` about to be made; raise instead if they would exceed the budget.

        ``force`` counts calls already made (no check): the counter must never under-count.
        """
        if not force:
            self.check(calls)
        self.calls_used += calls

    def observe_usage(self, headers: Any) -> None:
        """Take Meta's own count from a response's ``X-Business-Use-Case-Usage`` header, if present."""
        self.observe_pct(leadgen_call_pct(headers, self.page_id))

    def observe_pct(self, pct: float | None) -> None:
        """Take Meta's own count, as the ``leadgen`` ``call_count`` percent of the budget."""
        if pct is not None:
            self.reported_pct = pct


def _buc_header(headers: Any) -> Any:
    """The raw BUC header from a response's header mapping or a batch item's ``[{name, value}]``."""
    if not headers:
        return None
    if isinstance(headers, Mapping) or hasattr(headers, "items"):
        pairs = headers.items()
    else:
        pairs = ((h.get("name"), h.get("value")) for h in headers if isinstance(h, Mapping))
    return next((v for k, v in pairs if str(k).lower() == "x-business-use-case-usage"), None)


def leadgen_call_pct(headers: Any, page_id: str) -> float | None:
    """The ``call_count`` percent of the ``leadgen`` entry for ``page_id`` in the BUC header, if any."""
    raw = _buc_header(headers)
    if not raw:
        return None
    try:
        usage = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return None
    if not isinstance(usage, Mapping):
        return None
    best: float | None = None
    for entry in usage.get(str(page_id)) or ():
        if isinstance(entry, Mapping) and str(entry.get("type", "")).lower() == "leadgen":
            try:
                pct = float(entry.get("call_count", 0))
            except (TypeError, ValueError):
                continue
            best = pct if best is None else max(best, pct)
    return best


class LeadgenUsageTap:
    """A rate-limit governor that also remembers each Page's ``leadgen`` usage from Meta's headers.

    The hook reports every response's headers (errors and batch items included) to its governor
    and to nothing else, so the leads operator hands the hook this thin wrapper around the
    process-wide governor: every decision is still the shared governor's; this only reads along.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self._pct: dict[str, float] = {}

    def observe(self, headers: Any, scope: str | None = None) -> Any:
        if scope:
            pct = leadgen_call_pct(headers, scope)
            if pct is not None:
                with self._lock:
                    self._pct[scope] = pct  # the latest reading: usage also falls as the 24 h window rolls
        return self._inner.observe(headers, scope)

    def leadgen_pct(self, page_id: str) -> float | None:
        with self._lock:
            return self._pct.get(str(page_id))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
