"""Call accounting for benchmarks: calls by normalised endpoint, errors by code; resettable."""

from __future__ import annotations

import collections
import threading


class Stats:
    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with getattr(self, "_lock", threading.Lock()):
            self.total = 0
            self.by_endpoint: collections.Counter = collections.Counter()
            self.errors = 0
            self.by_error_code: collections.Counter = collections.Counter()
            self.dropped = 0
            self.batch_items = 0
            self.rows_served = 0
            self.page_seconds = 0.0

    def call(self, endpoint: str, batch_item: bool = False) -> None:
        with self._lock:
            self.total += 1
            self.by_endpoint[endpoint] += 1
            if batch_item:
                self.batch_items += 1

    def error(self, code: int) -> None:
        with self._lock:
            self.errors += 1
            self.by_error_code[str(code)] += 1

    def drop(self) -> None:
        with self._lock:
            self.dropped += 1

    def rows(self, n: int, seconds: float = 0.0) -> None:
        """Insights rows served, and the server time spent building their page."""
        with self._lock:
            self.rows_served += n
            self.page_seconds += seconds

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "total": self.total,
                "by_endpoint": dict(sorted(self.by_endpoint.items())),
                "errors": self.errors,
                "by_error_code": dict(self.by_error_code),
                "dropped": self.dropped,
                "batch_items": self.batch_items,
                "insights_rows_served": self.rows_served,
                "insights_page_seconds": round(self.page_seconds, 3),
            }
