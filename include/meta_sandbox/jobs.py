"""Async insights jobs (AdReportRun): lifecycle driven by wall-clock time since submission.

Lifecycle: ``Job Not Started`` (first 10% of the duration) -> ``Job Started`` (next 10%) ->
``Job Running`` (``async_percent_completion`` 1..99) -> ``Job Completed`` (100, ``time_completed``).
Duration = ``job_base_seconds + job_seconds_per_1k_rows * estimated_rows / 1000``. Under a fault
profile a job may instead end ``Job Failed`` (with v25+ ``error_*`` fields), ``Job Skipped``, or
stall forever in ``Job Running`` at a fixed percentage. Result rows are rendered page by page from
row keys computed once, when the job is first read after completion, so paging costs a few ms.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time

from meta_sandbox import rng
from meta_sandbox.insights import Query, row_keys


@dataclasses.dataclass(eq=False)
class Job:
    id: str
    account_id: str
    query: Query
    created: float  # unix time
    duration: float
    fate: str  # ok | failed | skipped | stalled | too_much_data
    stall_percent: int
    date_start: str
    date_stop: str
    params: dict
    keys: list | None = None
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def status(self, now: float | None = None) -> tuple[str, int]:
        now = time.time() if now is None else now
        elapsed = now - self.created
        frac = 1.0 if self.duration <= 0 else elapsed / self.duration
        if self.fate == "stalled" and frac >= 0.2:
            return "Job Running", self.stall_percent
        if frac < 0.1:
            return "Job Not Started", 0
        if frac < 0.2:
            return "Job Started", 0
        if frac < 1.0:
            return "Job Running", max(1, min(99, int((frac - 0.2) / 0.8 * 100)))
        if self.fate in ("failed", "too_much_data"):
            return "Job Failed", 100 if self.fate == "failed" else 0
        if self.fate == "skipped":
            return "Job Skipped", 0
        return "Job Completed", 100

    def finished_at(self) -> int:
        return int(self.created + max(0.0, self.duration))

    def ensure_keys(self, sandbox) -> list:
        with self.lock:
            if self.keys is None:
                self.keys = row_keys(sandbox, self.query)
            return self.keys


class JobStore:
    def __init__(self, seed: int):
        self._seed = seed
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self._prefix = 6 * 10**14 + rng.key(seed, "jobs") % 10**13

    def new_id(self) -> str:
        with self._lock:
            return str(self._prefix * 1000 + next(self._counter) * 7)

    def add(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.id] = job

    def get(self, ident: str) -> Job | None:
        return self._jobs.get(ident)

    def __len__(self) -> int:
        return len(self._jobs)
