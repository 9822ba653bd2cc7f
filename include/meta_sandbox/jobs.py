"""Async insights jobs (AdReportRun): lifecycle driven by wall-clock time since submission.

Lifecycle: ``Job Not Started`` (first 10% of the duration) -> ``Job Started`` (next 10%) ->
``Job Running`` (``async_percent_completion`` 1..99) -> ``Job Completed`` (100, ``time_completed``).
Duration = ``job_base_seconds + job_seconds_per_1k_rows * estimated_rows / 1000``. Under a fault
profile a job may instead end ``Job Failed`` (with v25+ ``error_*`` fields), ``Job Skipped``, or
stall forever in ``Job Running`` at a fixed percentage; it may first wait ``queued`` seconds in
``Job Not Started`` at 0 % (Meta's queue), and say ``Job Running`` at 100 % for ``finishing``
seconds before ``Job Completed``. Reading the results of a job that is not ``Job Completed`` (and
the first ``unreadable_reads`` reads of a completed one) answers code 2601, subcode 1815107,
``is_transient`` (the body Meta sends: facebook-python-business-sdk#293).

Serving results: a large job (>= ``PRERENDER_MIN_ROWS`` rows) renders its rows in the background
while it runs, into zlib-compressed chunks (~7x smaller), and reports ``Job Completed`` only once
they are ready, so reading a 500-row page is a decompress-and-join (a few ms) — like Meta, where the
work happens while the job runs. Small jobs, and jobs whose chunks were evicted by the memory bound,
render each page on the fly.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
import zlib

from meta_sandbox import rng
from meta_sandbox.insights import Query, render_rows, row_keys

PRERENDER_MIN_ROWS = 2000
CHUNK_ROWS = 256
CACHE_BYTES = 512 * 1024 * 1024  # compressed rows kept across all jobs


class Rendered:
    """A job's rows as compressed chunks of newline-separated JSON rows."""

    def __init__(self):
        self.chunks: list[bytes] = []
        self.nbytes = 0
        self.total = 0

    def rows(self, start: int, end: int) -> list[bytes]:
        out: list[bytes] = []
        first, last = start // CHUNK_ROWS, (end - 1) // CHUNK_ROWS
        for ci in range(first, last + 1):
            rows = zlib.decompress(self.chunks[ci]).split(b"\n")
            base = ci * CHUNK_ROWS
            out.extend(rows[max(start, base) - base : min(end, base + len(rows)) - base])
        return out


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
    keys: object | None = None
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    rendered: Rendered | None = None
    prerendering: bool = False  # a background render is under way
    rendered_at: float = 0.0
    queued: float = 0.0  # seconds in "Job Not Started" before the work starts
    finishing: float = 0.0  # seconds at 100 % "Job Running" after the work is done
    unreadable_reads: int = 0  # result reads of the completed job that still answer 2601

    def status(self, now: float | None = None) -> tuple[str, int]:
        now = time.time() if now is None else now
        elapsed = now - self.created - self.queued
        if elapsed < 0:
            return "Job Not Started", 0
        frac = 1.0 if self.duration <= 0 else elapsed / self.duration
        if self.fate == "stalled" and frac >= 0.2:
            return "Job Running", self.stall_percent
        if frac < 0.1:
            return "Job Not Started", 0
        if frac < 0.2:
            return "Job Started", 0
        if frac < 1.0:
            return "Job Running", max(1, min(99, int((frac - 0.2) / 0.8 * 100)))
        if self.prerendering:  # the time is up but the rows are not ready yet
            return "Job Running", 99
        if self.fate in ("failed", "too_much_data"):
            return "Job Failed", 100 if self.fate == "failed" else 0
        if self.fate == "skipped":
            return "Job Skipped", 0
        if elapsed < max(0.0, self.duration) + self.finishing:
            return "Job Running", 100
        return "Job Completed", 100

    def finished_at(self) -> int:
        return int(
            max(self.created + self.queued + max(0.0, self.duration) + self.finishing, self.rendered_at)
        )

    def ensure_keys(self, sandbox) -> list:
        with self.lock:
            if self.keys is None:
                self.keys = row_keys(sandbox, self.query)
            return self.keys

    def prerender(self, sandbox, store: JobStore) -> None:
        """Render every row into compressed chunks (runs on the store's background thread)."""
        try:
            keys = self.ensure_keys(sandbox)
            rendered = Rendered()
            for i in range(0, len(keys), CHUNK_ROWS):
                blob = "\n".join(render_rows(sandbox, self.query, keys[i : i + CHUNK_ROWS])).encode()
                chunk = zlib.compress(blob, 1)
                rendered.chunks.append(chunk)
                rendered.nbytes += len(chunk)
            rendered.total = len(keys)
            self.rendered = rendered
            store.account_bytes(self)
        finally:
            self.rendered_at = time.time()
            self.prerendering = False


class JobStore:
    def __init__(self, seed: int):
        self._seed = seed
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._rendered: list[Job] = []  # jobs holding rendered chunks, oldest first
        self._executor = None
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

    def start_prerender(self, sandbox, job: Job) -> None:
        import concurrent.futures

        with self._lock:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="jobs"
                )
            job.prerendering = True
        self._executor.submit(job.prerender, sandbox, self)

    def account_bytes(self, job: Job) -> None:
        """Keep the rendered chunks of all jobs under CACHE_BYTES (oldest dropped: they render on the fly)."""
        with self._lock:
            self._rendered.append(job)
            total = sum(j.rendered.nbytes for j in self._rendered if j.rendered)
            while total > CACHE_BYTES and len(self._rendered) > 1:
                old = self._rendered.pop(0)
                if old.rendered:
                    total -= old.rendered.nbytes
                    old.rendered = None
