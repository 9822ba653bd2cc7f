"""The world's clock: "now" for the sandbox, settable and movable, thread-safe.

What is served depends on the clock's *date* only (per account timezone), never on the time of day
beyond which local dates are complete: every account serves the complete local days before its
local "today" (today's partial day is not served anywhere: insights, leads, messages).
"""

from __future__ import annotations

import datetime as dt
import threading

UTC = dt.UTC
EPOCH_DATE = dt.date(1970, 1, 1)


def parse_iso(value: str) -> dt.datetime:
    """Parse an ISO timestamp or date; naive values are taken as UTC."""
    text = value.strip().replace("Z", "+00:00")
    if len(text) == 10:
        parsed = dt.datetime.fromisoformat(text + "T00:00:00")
    else:
        parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def day_number(d: dt.date) -> int:
    """Days since 1970-01-01 (the integer the generators hash)."""
    return (d - EPOCH_DATE).days


def from_day_number(n: int) -> dt.date:
    return EPOCH_DATE + dt.timedelta(days=n)


def graph_time(ts: float) -> str:
    """Meta's timestamp format: 2024-01-31T12:00:00+0000."""
    return dt.datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


class Clock:
    """The sandbox's now. Default: the real current time, frozen at the offset chosen at start.

    With ``fixed=True`` (``--now``) the clock does not tick; otherwise it ticks with wall time from
    the configured instant, so job timing stays real while the date stays controllable.
    """

    def __init__(self, now: dt.datetime | None = None):
        self._lock = threading.Lock()
        self._fixed = now is not None
        self._anchor = now or dt.datetime.now(UTC)
        self._wall_anchor = dt.datetime.now(UTC)

    def now(self) -> dt.datetime:
        with self._lock:
            if self._fixed:
                return self._anchor
            return self._anchor + (dt.datetime.now(UTC) - self._wall_anchor)

    def set(self, now: dt.datetime | None = None, advance_days: float | None = None) -> dt.datetime:
        with self._lock:
            current = (
                self._anchor if self._fixed else self._anchor + (dt.datetime.now(UTC) - self._wall_anchor)
            )
            if now is not None:
                current = now
            if advance_days:
                current = current + dt.timedelta(days=advance_days)
            self._anchor = current
            self._wall_anchor = dt.datetime.now(UTC)
            if now is not None:
                self._fixed = True
            return current

    def local_today(self, tz) -> int:
        """The day number of today's date in timezone ``tz`` (days before it are complete)."""
        return day_number(self.now().astimezone(tz).date())
