"""A fixed per-second quota kept on the client: at most ``calls`` Graph calls in any ``per_seconds``.

For Meta's quotas counted per second rather than reported in usage headers, which the governor
(:mod:`meta_ads_elt.governor`) cannot see coming: "Instagram Conversations API: 2 calls per second per
IG professional account" (Meta's rate-limiting docs, research/meta_api_facts.md section 2.2), where each
item of a batch counts as a call (Graph batch requests, section 8).

Where it is waited in: in the hook, around each HTTP send (``MetaGraphApiHook._send``:
:meth:`CallPacer.sending`), for every attempt of a call, retries and repeats included; callers hand their
pacer to the hook's ``call``, ``paginate`` and ``batch`` (``pacer=``) and never wait in it themselves.

When a call counts: Meta counts it at some moment between its send and its answer, and under load (Pages
pulled in parallel threads, on the client and on the server) that moment can lag the send by more than
any fixed margin. So a call is counted from the moment its answer is back, the latest moment Meta can
have counted it, and the next call over the quota waits for that moment plus ``per_seconds``: two calls
``calls`` apart then reach Meta at least ``per_seconds`` apart whatever the delays. The price is one
call's round trip per ``calls`` calls (e.g. 2 Instagram calls per 1.1 s plus a round trip).
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterator

MARGIN_SECONDS = 0.1
"""Added to each wait (10 % of Meta's one-second window): how Meta measures its second, which Meta does not
document (research/meta_api_facts.md section 2.2). It does not cover the delay between a send and the
moment Meta counts the call, which no fixed margin bounds under load: a call is counted from its answer
instead (:meth:`CallPacer.sending`). Counted at its send with this margin, 12 Pages' Instagram pulls in 10
threads on 2 busy cores still drew 2 refusals (80002) from the sandbox; counted at its answer, none."""


class CallPacer:
    """Waits, before calls, so that at most ``calls`` reach Meta in any ``per_seconds`` (not thread-safe:
    one per sequential reader, e.g. one per Page and platform walk; the hook sends a batch's calls one
    after the other)."""

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

    @contextlib.contextmanager
    def sending(self, n: int = 1) -> Iterator[None]:
        """:meth:`wait` for ``n`` calls, make them in the block, and count them from the block's end (their
        answer, or their failure: the latest moment Meta can have counted them; see the module docstring)."""
        self.wait(n)
        try:
            yield
        finally:
            answered = self._clock()
            for _ in range(n):
                self._sent.pop()
            self._sent.extend([answered] * n)
