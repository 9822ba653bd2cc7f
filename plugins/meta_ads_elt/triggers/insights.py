"""MetaInsightsTrigger: polls async Insights report runs without holding a worker slot.

The trigger only polls. It receives the operator's jobs (``report_run_id`` + window + status), polls the
running ones through the Graph batch API (one HTTP call for up to 50 jobs, over the hook's aiohttp
session with the Connection's timeout; token, ``appsecret_proof`` and retries are the hook's), sleeps
with ``await asyncio.sleep`` (a short first poll, then an interval derived from each job's observed
progress rate, capped by ``poll_interval``), and yields exactly ONE event, whose ``status`` has one
meaning (:data:`EVENT_STATUSES`):

* ``done`` - every job is ``Job Completed`` (or was given up by the operator: ``given_up`` jobs are never
  polled); the operator reads the results;
* ``failed`` - some job ended ``Job Failed`` / ``Job Skipped`` or its report run no longer exists (an
  unknown or expired id: :func:`~meta_ads_elt.errors.is_missing_object`); the operator splits it (or
  gives its day up);
* ``stalled`` - some running job made no progress for ``stall_timeout_minutes``; the operator resubmits
  it. A job still waiting in Meta's queue (``Job Not Started`` / ``Job Started`` at 0 %), or at 100 % but
  not yet ``Job Completed``, is left alone for ``queued_timeout_minutes`` (default 60): resubmitting a
  queued job only adds load to a busy account;
* ``slots_free`` - fewer than ``max_concurrent_jobs`` jobs run and some are ``pending``; the operator
  submits them;
* ``due`` (only with ``probe_results``) - every job still running should have completed by now, by the
  rate its progress showed: instead of a last status read that would only confirm it, the operator reads
  each job's first results page, which is that confirmation (Meta answers a results read of a job not
  ``Job Completed`` with code 2601, :data:`~meta_ads_elt.errors.REPORT_NOT_READY`). A job whose first page
  is not ready is marked ``probe_failed`` and polled to the end like any other;
* ``error`` - a call failed (e.g. an expired token), a job's status stayed unreadable for
  :data:`READ_ERROR_LIMIT` reads in a row, or the trigger met an unexpected exception:
  ``error`` holds it as :func:`meta_ads_elt.errors.to_event` wrote it, and the operator raises
  :func:`~meta_ads_elt.errors.from_event` of it: the class decided where the error was raised, so a
  fatal error fails the task without Airflow retries and a transient one is retried.

A status read that still fails with a retryable error after the hook's own retries (codes 1/2, HTTP
5xx, ``is_transient``, a dropped connection, a batch item Meta left null) says nothing about the report
run: the job stays as it was (``running``, its progress and due time untouched), ``read_errors`` counts
its consecutive unreadable reads (reset by a good one), and the poll goes on at its next delay.

Every event also carries ``jobs`` (as last polled), ``account_id``, ``polls``, ``calls`` and a scrubbed
``message`` for the log.

Each job dict is ``ReportJob.to_dict()`` from :mod:`meta_ads_elt.operators.insights` (plain JSON).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from meta_ads_elt.errors import (
    MetaApiError,
    MetaConfigError,
    MetaPermissionError,
    MetaRateLimitWaitError,
    MetaTokenError,
    in_context,
    is_retryable,
    to_event,
)
from meta_ads_elt.fields import JOB_DONE, JOB_FAILED_STATUSES, JOB_STATUS_FIELDS
from meta_ads_elt.redaction import scrub

MIN_POLL = 0.25
CLOSE_BOUND = 0.25
"""A job with a single progress reading whose upper-bound finish is at most this share of its elapsed
time away is treated as exactly estimated: waiting for that bound costs less than a second reading
(e.g. a first reading at 88 % after 0.9 of the time the account's last job of that size took)."""
EARLY_SHARE = 0.9
"""With a prior (``expected_seconds``: how long the account's last job of that size took), the first
reading comes after this share of it: a late reading whose upper bound is close (:data:`CLOSE_BOUND`)."""
DUE_SLACK = 0.05
"""Seconds a wake-up may come before a job's ``due_at`` and still count as due (the sleep that ends at
it is computed a moment after the estimate)."""

SETTLE_SECONDS = 8.0
"""The triggerer's first status read comes no sooner than this after the trigger starts. An event fired
before the scheduler has processed the executor's report of the deferring try (its process exited
"successfully") makes Airflow fail the try it has just re-queued ("finished with state success, but
the task instance's state attribute is queued": apache/airflow#66374, #71580), seen when a job was
done at the first read 2-4 s after deferring at load 5+. A real Meta job rarely completes sooner; a
job that does waits these seconds longer."""

DONE = "done"
FAILED = "failed"
STALLED = "stalled"
SLOTS_FREE = "slots_free"
DUE = "due"
ERROR = "error"
EVENT_STATUSES = (DONE, FAILED, STALLED, SLOTS_FREE, DUE, ERROR)
"""The ``status`` of a trigger event, one meaning each (module docstring)."""
OPERATOR_ACTS = (FAILED, STALLED, SLOTS_FREE)
"""Statuses after which the operator re-plans its jobs and defers again."""
ENDS_THE_POLL = (MetaTokenError, MetaPermissionError, MetaRateLimitWaitError, MetaConfigError)
"""Errors of a status read that end the poll (an ``error`` event): their fix is the token, a permission,
the Connection or time, and every other job's read (or a resubmitted job's) would meet them too. A
retryable error leaves the job ``running`` (:data:`READ_ERROR_LIMIT`); any other error of one job's read
(an unknown or expired report id, 100/33: report ids live 30 days; or another refusal of that one run)
marks that job ``failed``, to be resubmitted."""
READ_ERROR_LIMIT = 5
"""Consecutive status reads of one job that may fail with a retryable error before the poll ends with that
error (an ``error`` event: the error is not fatal, so Airflow retries the task, and the retry re-attaches to
the same report runs). Each of these reads was already retried by the hook (``max_attempts``, with
backoff), so five in a row, spread over the poll's delays, is an outage of the API rather than a blip:
holding the task longer would only hide it. Marking the job ``failed`` instead would resubmit a report
run that is most likely fine on Meta's side, spending the account's resubmissions up to
:class:`~meta_ads_elt.errors.MetaDaysFailedError`."""


def _eta(job: dict, now: float) -> tuple[float, bool]:
    """(seconds until the job should complete, whether the estimate is exact) from its progress so far.

    Two progress readings give the rate; with one reading the rate is only bounded from below (the job
    started progressing after the last 0 % reading), so the estimate is an upper bound.
    """
    pct = float(job.get("percent") or 0.0)
    first_pct, first_at = float(job.get("first_percent") or 0.0), job.get("first_progress_at")
    last_at = float(job.get("progress_at") or now)
    if first_at is not None and pct > first_pct and last_at > first_at:
        rate = (pct - first_pct) / (last_at - first_at)
        return max(0.0, (100.0 - pct) / rate - (now - last_at)), True
    origin = float(job.get("zero_at") or job.get("submitted_at") or now)
    seen_at = float(first_at or now)
    rate = pct / max(seen_at - origin, 1e-3)
    return max(0.0, (100.0 - pct) / rate - (now - seen_at)), False


def _usable_eta(job: dict, now: float) -> tuple[float, bool]:
    """(seconds until the job should complete, whether to act on it): exact, or an upper bound that is
    close (:data:`CLOSE_BOUND`)."""
    eta, exact = _eta(job, now)
    observed = now - float(job.get("zero_at") or job.get("submitted_at") or now)
    return eta, exact or eta <= CLOSE_BOUND * observed


def first_delay(jobs: list[dict], now: float, *, first_poll: float, poll_interval: float) -> float:
    """The wait before the first status read: ``first_poll``, or, when every running job is still unread
    and has a prior (``expected_seconds``), until :data:`EARLY_SHARE` of the soonest one has passed (at
    most ``poll_interval``)."""
    waits = []
    for job in jobs:
        if job.get("status") != "running":
            continue
        if job.get("async_status") != "submitted" or not job.get("expected_seconds"):
            return first_poll
        start = float(job.get("submitted_at") or now)
        waits.append(start + EARLY_SHARE * float(job["expected_seconds"]) - now)
    return min(poll_interval, max(first_poll, min(waits))) if waits else first_poll


def _after_eta(eta: float) -> float:
    """The wait for a job whose exact estimate says it completes in ``eta`` seconds: just after it."""
    return eta * 1.03 + 0.1


def due_at(job: dict, now: float) -> float | None:
    """When a running job should have completed, if its progress gave an exact rate (two readings
    between 0 and 100 %) or a close upper bound (:data:`CLOSE_BOUND`); None otherwise."""
    if job.get("status") != "running" or not 0 < float(job.get("percent") or 0.0) < 100:
        return None
    eta, usable = _usable_eta(job, now)
    return now + _after_eta(eta) if usable else None


def next_poll_delay(
    jobs: list[dict], now: float, previous: float, *, first_poll: float, poll_interval: float
) -> float:
    """Seconds until the next poll, at least ``MIN_POLL`` and at most ``poll_interval``.

    * every running job has an exact rate (or a close upper bound, :data:`CLOSE_BOUND`): just after the
      slowest one should finish (so one poll usually finds everything done);
    * some job has a single reading: a second reading soon (see below), to learn its rate;
    * no job has shown progress yet: back off (x1.6) from the previous wait.
    """
    exact, bounds = [], []
    for job in jobs:
        if job.get("status") != "running":
            continue
        pct = float(job.get("percent") or 0.0)
        if not 0 < pct < 100:
            return min(poll_interval, max(first_poll, previous * 1.6))
        eta, is_exact = _usable_eta(job, now)
        if is_exact:
            exact.append(eta)
        else:
            # Second reading after as long again as the first one took to show progress (a reliable
            # rate), but no later than halfway to the upper-bound finish.
            observed = now - float(job.get("zero_at") or job.get("submitted_at") or now)
            bounds.append(min(eta * 0.5, max(MIN_POLL, observed)))
    if bounds:
        return min(poll_interval, max(MIN_POLL, min(bounds)))
    if exact:
        return min(poll_interval, max(MIN_POLL, _after_eta(max(exact))))
    return min(poll_interval, max(first_poll, previous * 1.6))


class MetaInsightsTrigger(BaseTrigger):
    """Poll report runs until all completed, one needs the operator, or a fatal error (see module doc).

    :param meta_conn_id: Airflow connection (read asynchronously in the triggerer).
    :param account_id: numeric ad account id (the governor scope of the polls).
    :param jobs: ``ReportJob.to_dict()`` items; ``running`` ones are polled.
    :param poll_interval: upper bound of the wait between polls (seconds).
    :param first_poll: wait before the first poll (seconds).
    :param stall_timeout_minutes: a running job whose percentage has not moved for this long is
        reported as ``stalled``.
    :param queued_timeout_minutes: a job at 0 % (not started: Meta's queue) or at 100 % (finishing) is
        reported as ``stalled`` only after this long.
    :param max_concurrent_jobs: when fewer jobs run and some are ``pending``, the operator is woken.
    :param probe_results: wake the operator with ``due`` when every running job should have completed,
        for it to read their first results pages instead of a last status read (module docstring).
    :param settle_seconds: ``run()`` makes its first status read no sooner (the operator passes
        :data:`SETTLE_SECONDS` to the trigger it defers to; 0 for its polls in the worker).
    """

    def __init__(
        self,
        *,
        meta_conn_id: str,
        account_id: str,
        jobs: list[dict[str, Any]],
        poll_interval: float = 30.0,
        first_poll: float = 2.0,
        stall_timeout_minutes: float = 20.0,
        max_concurrent_jobs: int = 10,
        queued_timeout_minutes: float = 60.0,
        probe_results: bool = False,
        settle_seconds: float = 0.0,
    ) -> None:
        super().__init__()
        self.meta_conn_id = meta_conn_id
        self.account_id = str(account_id)
        self.jobs = [dict(j) for j in jobs]
        self.poll_interval = float(poll_interval)
        self.first_poll = float(first_poll)
        self.stall_timeout_minutes = float(stall_timeout_minutes)
        self.max_concurrent_jobs = int(max_concurrent_jobs)
        self.queued_timeout_minutes = float(queued_timeout_minutes)
        self.probe_results = bool(probe_results)
        self.settle_seconds = float(settle_seconds)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "meta_conn_id": self.meta_conn_id,
                "account_id": self.account_id,
                "jobs": self.jobs,
                "poll_interval": self.poll_interval,
                "first_poll": self.first_poll,
                "stall_timeout_minutes": self.stall_timeout_minutes,
                "max_concurrent_jobs": self.max_concurrent_jobs,
                "queued_timeout_minutes": self.queued_timeout_minutes,
                "probe_results": self.probe_results,
                "settle_seconds": self.settle_seconds,
            },
        )

    def _hook(self):
        from meta_ads_elt.hooks.graph_api import MetaGraphApiHook

        return MetaGraphApiHook(self.meta_conn_id)

    def _apply(self, job: dict, answer: dict | MetaApiError | None, now: float) -> None:
        """Fold one status read (the body, or the error the hook classified) into the job dict."""
        if answer is None:
            return
        if isinstance(answer, MetaApiError):
            self._unreadable(job, answer)
            return
        job["read_errors"] = 0
        body = answer if isinstance(answer, dict) else {}
        status = str(body.get("async_status") or "")
        pct = float(body.get("async_percent_completion") or 0.0)
        # Seen unfinished before (or read at its prior): when it is seen done tells how long it took; a
        # job already done at a first read without prior only says "less than the first wait".
        timed = job.get("async_status") not in (None, "", "submitted") or bool(job.get("expected_seconds"))
        job["async_status"] = status
        if pct <= 0 and status != JOB_DONE:
            job["zero_at"] = now
        if pct > float(job.get("percent") or 0.0):
            if job.get("first_progress_at") is None:
                job["first_progress_at"], job["first_percent"] = now, pct
            job["percent"] = pct
            job["progress_at"] = now
        if status == JOB_DONE:
            job["status"] = "completed"
            if timed:
                job["done_by"] = now
            job["percent"] = 100.0
        elif status in JOB_FAILED_STATUSES:
            job["status"] = "failed"
            job["error_subcode"] = body.get("error_subcode")
            job["error"] = scrub(body.get("error_message") or status)
        else:
            waited = now - float(job.get("progress_at") or job.get("submitted_at") or now)
            pct_now = float(job.get("percent") or 0.0)
            waiting_in_queue = pct_now <= 0 or pct_now >= 100  # not started yet, or finishing
            limit = self.queued_timeout_minutes if waiting_in_queue else self.stall_timeout_minutes
            if waited > limit * 60:
                job["status"] = "stalled"
        job["due_at"] = due_at(job, now)

    def _unreadable(self, job: dict, error: MetaApiError) -> None:
        """A status read of ``job`` that failed with ``error`` (module docstring, :data:`ENDS_THE_POLL`)."""
        if isinstance(error, ENDS_THE_POLL):
            raise error
        if is_retryable(error):
            job["read_errors"] = int(job.get("read_errors") or 0) + 1
            what = f"act_{self.account_id}: status of report run {job.get('report_run_id')} ({job['key']})"
            if job["read_errors"] >= READ_ERROR_LIMIT:
                raise in_context(error, f"{what} unreadable {job['read_errors']} times in a row")
            self.log.warning(
                "%s unreadable (%d of %d in a row), still polled as running: %s",
                what,
                job["read_errors"],
                READ_ERROR_LIMIT,
                scrub(error.message),
            )
            return
        job["status"] = "failed"
        job["async_status"] = f"unreadable ({error.code})"
        job["error"] = error.message
        job["due_at"] = None

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Yield :meth:`poll`'s event once it has returned: at the yield this generator holds no session
        and no inner generator, so whoever drops it suspended there has nothing to close. ``airflow dags
        test`` does (``anext(trigger.run(), None)`` in ``asyncio.run``), and ``asyncio.run`` then closes
        every live async generator at once: an HTTP session or an inner generator still open at the
        yield was closed from two tasks ("aclose(): asynchronous generator is already running")."""
        delay = first_delay(
            self.jobs, time.time(), first_poll=self.first_poll, poll_interval=self.poll_interval
        )
        event = await self.poll(first_delay=max(self.settle_seconds, delay))
        if event is not None:  # always without max_polls
            yield event

    async def poll(self, *, first_delay: float, max_polls: int | None = None) -> TriggerEvent | None:
        """Poll the running jobs until an event is due (returned; the HTTP session is closed by then) or,
        with ``max_polls``, until that many status reads found none (None; ``self.jobs`` then holds what
        the last read saw)."""
        polls = 0
        hook = None
        try:
            hook = self._hook()
            delay = first_delay
            async with hook.async_session() as session:
                while True:
                    running = [j for j in self.jobs if j.get("status") == "running"]
                    if running:
                        await asyncio.sleep(delay)
                        if self._results_due(time.time()):
                            return TriggerEvent(
                                self._payload(DUE, polls, hook, message="results due: " + _keys(running))
                            )
                        answers = await self._poll(hook, running, session)
                        polls += 1
                        now = time.time()
                        for job, answer in zip(running, answers, strict=True):
                            self._apply(job, answer, now)
                        self.log.info(
                            "act_%s: %s",
                            self.account_id,
                            ", ".join(
                                f"{j['key']} {j.get('async_status') or j['status']} {j.get('percent', 0):.0f}%"
                                for j in self.jobs
                            ),
                        )
                    event = self._decide(polls, hook)
                    if event is not None:
                        return event
                    if max_polls is not None and polls >= max_polls:
                        return None
                    delay = next_poll_delay(
                        self.jobs,
                        time.time(),
                        delay,
                        first_poll=self.first_poll,
                        poll_interval=self.poll_interval,
                    )
        except Exception as exc:
            if not isinstance(exc, MetaApiError):  # a bug or an unexpected library error: retried by Airflow
                exc = MetaApiError(
                    f"Insights trigger of act_{self.account_id} failed: {type(exc).__name__}: {scrub(exc)}"
                )
            return TriggerEvent(self._payload(ERROR, polls, hook, message=exc.message, error=to_event(exc)))

    async def _poll(self, hook, running: list[dict], session) -> list[dict | MetaApiError]:
        """Each running job's status read: its body, or the error the hook classified. One plain GET
        for one job, one Graph batch call for several; a retryable error of the batch itself (the call,
        or items Meta still left null at the hook's last attempt) is every job's answer."""
        if len(running) == 1:
            try:
                body = await hook.acall(
                    "GET",
                    (running[0]["report_run_id"],),
                    {"fields": JOB_STATUS_FIELDS},
                    scope=self.account_id,
                    session=session,
                )
            except MetaApiError as err:
                return [err]
            return [body]
        try:
            items = await hook.abatch(
                [
                    {"method": "GET", "path": (j["report_run_id"],), "params": {"fields": JOB_STATUS_FIELDS}}
                    for j in running
                ],
                scope=self.account_id,
                session=session,
            )
        except MetaApiError as err:
            if not is_retryable(err):
                raise
            return [err] * len(running)
        return [item["error"] or item["body"] for item in items]

    def _results_due(self, now: float) -> bool:
        """``probe_results`` and every job still running should have completed by ``now`` (and had no
        first page refused yet); nothing else waits for the operator."""
        if not self.probe_results:
            return False
        running = [j for j in self.jobs if j.get("status") == "running"]
        return (
            bool(running)
            and all(j.get("status") in ("running", "completed", "given_up") for j in self.jobs)
            and all(
                j.get("due_at") is not None and j["due_at"] <= now + DUE_SLACK and not j.get("probe_failed")
                for j in running
            )
        )

    def _payload(self, status: str, polls: int, hook, **extra) -> dict[str, Any]:
        return {
            "status": status,
            "account_id": self.account_id,
            "jobs": self.jobs,
            "polls": polls,
            "calls": hook.calls if hook is not None else 0,
            **extra,
        }

    def _decide(self, polls: int, hook) -> TriggerEvent | None:
        statuses = [j.get("status") for j in self.jobs]
        for status in (FAILED, STALLED):
            if status in statuses:
                keys = [j["key"] for j in self.jobs if j.get("status") == status]
                return TriggerEvent(self._payload(status, polls, hook, message=f"{status}: {keys}"))
        running = statuses.count("running")
        if "pending" in statuses and running < self.max_concurrent_jobs:
            free = self.max_concurrent_jobs - running
            return TriggerEvent(self._payload(SLOTS_FREE, polls, hook, message=f"{free} slot(s) free"))
        if all(s in ("completed", "given_up") for s in statuses):  # given up: the operator skips its day
            return TriggerEvent(self._payload(DONE, polls, hook, message="every job done"))
        return None


def _keys(jobs: list[dict]) -> str:
    return ", ".join(str(j.get("key")) for j in jobs)
