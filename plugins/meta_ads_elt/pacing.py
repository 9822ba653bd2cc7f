"""A fixed per-second quota kept on the client: at most ``calls`` Graph calls in any ``per_seconds``.

For Meta's quotas counted per second rather than reported in usage headers, which the governor
(:mod:`meta_ads_elt.governor`) cannot see coming: "Instagram Conversations API: 2 calls per second per
IG professional account" (Meta's rate-limiting docs, research/meta_api_facts.md section 2.2), where each
item of a batch counts as a call (Graph batch requests, section 8).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

MARGIN_SECONDS = 0.1
"""Added to each wait: the call reaches Meta a little after the client counts it."""


class CallPacer:
    """Waits, before calls, so that at most ``calls`` go out in any ``per_seconds`` (not thread-safe:
    one per sequential reader)."""

    def __init__(
        self,
        calls: int,
        per_seconds: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if calls < 1:
            raise ValueError(f"calls must be at least 1, got {calls}")
        self.calls = calls
        self.per_seconds = per_seconds
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self.waited = 0.0

    def wait(self, n: int = 1) -> None:
        """Sleep until ``n`` more calls fit in the quota (``n`` <= ``calls``), then count them as sent."""
        if not 1 <= n <= self.calls:
            raise ValueError(f"{n} calls do not fit a quota of {self.calls}")
        now = self._clock()
        while True:
            while self._sent and self._sent[0] + self.per_seconds + MARGIN_SECONDS <= now:
                self._sent.popleft()
            if len(self._sent) + n <= self.calls:
                break
            pause = self._sent[0] + self.per_seconds + MARGIN_SECONDS - now
            self._sleep(pause)
            self.waited += pause
            now = self._clock()
        self._sent.extend([now] * n)
