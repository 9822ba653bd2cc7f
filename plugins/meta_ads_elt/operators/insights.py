"""MetaInsightsOperator: ad-level daily Insights of one ad account through async report runs.

Guarantees
----------
* **Idempotent per window**: for data-interval day D it pulls the account-local dates
  ``[D - lookback_days + 1, D]`` and replaces exactly those ``insights/account_id=/date=`` partitions,
  empty dates included, atomically (:class:`~meta_ads_elt.lake.partitions.LakeWriter`). Restated days are re-pulled
  on every run; a rerun leaves identical data and never duplicates.
* **Re-attach on retry**: the running ``report_run_id``s are kept in ``<lake>/_state/insights/...``
  (keyed by account, window and a hash of the request), so an Airflow retry (or a worker that died
  while deferred) polls the same jobs instead of resubmitting. The state is removed once the window is
  written, and ignored when older than ``state_ttl_hours`` (results would be stale).
* **Every status**: each job (split children included) filters on ``ad.effective_status IN`` every
  status (``effective_statuses``): without it ``act_<id>/insights?level=ad`` leaves out archived and
  deleted ads (Meta, "Manage your ad object's status"), and their spend and actions would vanish from
  the re-pulled window.
* **Completeness control**: the same window at ``level=account`` (the account's own row aggregates every
  child, deleted ones included) lands in ``insights_account_totals``, one row per date, with Meta's clock
  and the account's local date when served (a date not over then is *partial*). dbt checks that the
  ad-level rows sum to it.
* **Splitting**: a job that ends ``Job Failed`` / ``Job Skipped`` or is refused with code 100 subcode
  1487534 is split - its date range halved down to one day, then its campaigns bisected with
  ``filtering`` on ``campaign.id``; the campaigns of a day come from an Insights ``level=campaign``
  query with the same status filter (never from the campaigns edge, which leaves out archived and
  deleted campaigns). A single day of a single campaign that fails ``MAX_JOB_ATTEMPTS`` times gives up
  that **day**: every other day of the window is written, that day's partitions stay exactly as they
  were, and the task then fails with :class:`~meta_ads_elt.errors.MetaDaysFailedError` naming the days
  (the DAG publishes the rest and marks them failed: :mod:`meta_ads_elt.failures`). A running job
  whose percentage has not moved for ``stall_timeout_minutes`` is resubmitted; a job still in Meta's queue (0 %) or finishing (100 %) only
  after ``queued_timeout_minutes``.
* **Bounded concurrency**: at most ``max_concurrent_jobs`` report runs at once; status polls of several
  jobs go out as one Graph batch call.
* **No worker slot while waiting**: with ``deferrable=True`` (default) it polls its jobs in the worker
  for the first ``worker_poll_seconds`` and defers to
  :class:`~meta_ads_elt.triggers.insights.MetaInsightsTrigger` only with jobs still running, so it never
  defers on jobs that are already done (the deferral race of apache/airflow#66374 / #71580);
  ``deferrable=False`` runs the same trigger in-process (for deployments without a triggerer).
* **Flat memory**: results are read in pages of ``page_limit`` rows (halved when Meta asks to reduce
  the amount of data) and streamed page by page into the lake writer.
* Fatal API errors (token, permission, parameter) fail the task at once without Airflow retries; the
  message says what to fix. Transient errors and throttles are retried inside the hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email.utils
import hashlib
import json
import queue
import threading
import time
import zoneinfo
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from meta_ads_elt import fields as F
from meta_ads_elt.config import check_operator_arguments, operator_default
from meta_ads_elt.errors import (
    MetaApiError,
    MetaBeyondRetentionError,
    MetaConfigError,
    MetaDataTooLargeError,
    MetaDaysFailedError,
    MetaFatalError,
    from_event,
    is_report_not_ready,
    is_retryable,
    to_event,
)
from meta_ads_elt.operators._base import MetaAccountOperator, interval_day
from meta_ads_elt.redaction import scrub
from meta_ads_elt.reports import DEFAULT, ReportConfig, months_back

if TYPE_CHECKING:
    from meta_ads_elt.lake.state import LakeState

PACE_TTL_DAYS = 7
"""Days a recorded job duration (``_state/<dataset>_pace/<account>``) is used as the next jobs' prior."""
MAX_JOB_ATTEMPTS = 3
"""Submissions of one smallest job (one day, one campaign) before the run gives up on its day."""
GIVEN_UP = "given_up"
"""Status of a smallest job that failed ``MAX_JOB_ATTEMPTS`` times: its day is not written this run."""


# ---- job planning (pure) -----------------------------------------------------------------------


@dataclass
class ReportJob:
    """One async report run: a date range, optionally restricted to some campaigns."""

    since: str
    until: str
    campaign_ids: list[str] | None = None
    report_run_id: str | None = None
    status: str = "pending"  # pending | running | completed | failed | stalled | given_up
    percent: float = 0.0
    async_status: str = ""
    submitted_at: float | None = None
    progress_at: float | None = None
    first_progress_at: float | None = None
    first_percent: float = 0.0
    zero_at: float | None = None
    due_at: float | None = None  # when the job should have completed, by its progress rate
    probe_failed: bool = False  # its first results page was refused as not ready: poll it to the end
    expected_seconds: float | None = None  # how long the account's last job of this size took (a prior)
    reach_withheld: bool = False  # submitted without reports.REACH_FIELDS (ReportConfig.withholds_reach)
    done_by: float | None = None  # when it was seen completed
    read_errors: int = 0  # status reads in a row that failed with a retryable error (this try's)
    attempts: int = 0
    error: str | None = None
    error_subcode: int | None = None
    key: str = field(default="")

    def __post_init__(self) -> None:
        if not self.key:
            self.key = job_key(self.since, self.until, self.campaign_ids)

    @property
    def days(self) -> int:
        return (dt.date.fromisoformat(self.until) - dt.date.fromisoformat(self.since)).days + 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReportJob:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def job_key(since: str, until: str, campaign_ids: Sequence[str] | None) -> str:
    key = since if since == until else f"{since}..{until}"
    if campaign_ids:
        digest = hashlib.sha256(",".join(sorted(campaign_ids)).encode()).hexdigest()[:6]
        key += f"#c{len(campaign_ids)}-{digest}"
    return key


def plan_window(day: dt.date, lookback_days: int) -> tuple[dt.date, dt.date]:
    """The account-local dates a run for data-interval day ``day`` replaces: ``[day-lookback+1, day]``."""
    if lookback_days < 1:
        raise MetaConfigError(f"lookback_days must be >= 1, got {lookback_days}")
    return day - dt.timedelta(days=lookback_days - 1), day


INSIGHTS_RETENTION_MONTHS = 37
"""Meta keeps Insights for 37 months: a time range starting further back is refused with code 3018, "The
start date of the time range cannot be beyond 37 months from the current date" (Graph API reference, Ad
Account, "Error Codes"). Older dates of a window are not asked for (:func:`oldest_served_date`)."""


def oldest_served_date(today: dt.date) -> dt.date:
    """The oldest date whose Insights Meta serves on (UTC) ``today``: :data:`INSIGHTS_RETENTION_MONTHS`
    back, plus one day, because Meta does not say in which time zone its "current date" is."""
    return months_back(today, INSIGHTS_RETENTION_MONTHS) + dt.timedelta(days=1)


def _since_and_today(job: ReportJob) -> tuple[dt.date, dt.date]:
    """The job's first date and Meta's (UTC) date now: what
    :meth:`~meta_ads_elt.reports.ReportConfig.withholds_reach` compares."""
    return dt.date.fromisoformat(job.since), dt.datetime.now(dt.UTC).date()


def plan_chunks(since: dt.date, until: dt.date, chunk_days: int) -> list[ReportJob]:
    """Split ``[since, until]`` into consecutive jobs of at most ``chunk_days`` days (newest last)."""
    if chunk_days < 1:
        raise MetaConfigError(f"chunk_days must be >= 1, got {chunk_days}")
    jobs, start = [], since
    while start <= until:
        end = min(until, start + dt.timedelta(days=chunk_days - 1))
        jobs.append(ReportJob(start.isoformat(), end.isoformat()))
        start = end + dt.timedelta(days=1)
    return jobs


def split_job(job: ReportJob, campaign_ids: Sequence[str] | None = None) -> list[ReportJob]:
    """Children of a failed job: halves of its dates; at one day, halves of its campaigns.

    ``campaign_ids`` are the campaigns with stats that day, used when a one-day job has no campaign filter yet.
    Returns ``[]`` when the job cannot be split further (one day, one campaign).
    """
    if job.days > 1:
        since = dt.date.fromisoformat(job.since)
        mid = since + dt.timedelta(days=job.days // 2 - 1)
        return [
            ReportJob(job.since, mid.isoformat(), job.campaign_ids),
            ReportJob((mid + dt.timedelta(days=1)).isoformat(), job.until, job.campaign_ids),
        ]
    campaigns = list(job.campaign_ids) if job.campaign_ids else sorted(campaign_ids or [])
    if len(campaigns) <= 1:
        if not job.campaign_ids and campaigns:
            return [ReportJob(job.since, job.until, campaigns)]
        return []
    half = len(campaigns) // 2
    return [
        ReportJob(job.since, job.until, campaigns[:half]),
        ReportJob(job.since, job.until, campaigns[half:]),
    ]


def replan(jobs: list[ReportJob], campaign_ids_of) -> list[ReportJob]:
    """Apply a trigger's verdict: split failed jobs, reset stalled ones to pending (resubmit).

    A smallest job (one day, one campaign) that failed ``MAX_JOB_ATTEMPTS`` times becomes ``given_up``.

    ``campaign_ids_of(day)`` lists the campaigns with stats on ``day`` (for one-day jobs split by campaign).
    """
    out: list[ReportJob] = []
    for job in jobs:
        if job.status == "stalled" and job.attempts >= MAX_JOB_ATTEMPTS:
            job.status = "failed"  # resubmitting did not help: treat it like a failed job and split it
        if job.status == "failed":
            one_day = job.days == 1 and not job.campaign_ids
            children = split_job(job, campaign_ids_of(job.since) if one_day else None)
            if children:
                out.extend(children)
                continue
            if job.attempts >= MAX_JOB_ATTEMPTS:
                # Given up: its day is left out of this run (the lake keeps that day as it was); the
                # operator lands every other day, then fails naming the days (MetaDaysFailedError).
                job.status = GIVEN_UP
                out.append(job)
                continue
            job.status, job.report_run_id, job.percent = "pending", None, 0.0
        elif job.status == "stalled":
            job.status, job.report_run_id, job.percent = "pending", None, 0.0
        out.append(job)
    return out


# ---- the operator ------------------------------------------------------------------------------


class MetaInsightsOperator(MetaAccountOperator):
    """Extract ad-level daily Insights of one ad account into the lake (see module docstring).

    Arguments of every operator (``account_id``, ``meta_conn_id``, ``lake_root``,
    ``max_rate_limit_wait_minutes``): :class:`~meta_ads_elt.operators._base.MetaAccountOperator`; the
    defaults of arguments that carry a config key are that key's (``insights.*``, ``lookback_days``).

    :param data_interval_day: the day D (``YYYY-MM-DD``); default: UTC date of ``data_interval_start``.
    :param lookback_days: dates re-pulled (and replaced) per run, ending at D.
    :param attribution_windows: ``action_attribution_windows`` (default 7d_click + 1d_view).
    :param chunk_days: days per report job; default: the whole window in one job (fewest calls), split
        only when Meta refuses it. Smaller chunks finish sooner in parallel at the cost of more calls.
    :param max_concurrent_jobs: report runs in flight at once.
    :param poll_interval: longest wait between status polls (s); the first poll comes after ``first_poll``.
    :param stall_timeout_minutes: resubmit a running job whose progress has not moved for this long.
    :param queued_timeout_minutes: resubmit a job still in Meta's queue (0 %) or finishing (100 %) only
        after this long.
    :param effective_statuses: ``ad.effective_status`` values every job filters on (default: all of
        them, so archived and deleted ads are included). ``None`` or empty sends no status filter: Meta
        then leaves archived and deleted ads out (for diagnosis only; the completeness test fails).
    :param page_limit: rows per results page.
    :param read_concurrency: report results read in parallel.
    :param deferrable: wait in the triggerer (True) or in the worker (False).
    :param worker_poll_seconds: with ``deferrable``, poll in the worker this long before deferring (jobs
        that finish quickly never defer).
    :param report: the Insights report to run (an entry of ``insights.reports``: a
        :class:`~meta_ads_elt.reports.ReportConfig` or its dict); default: the ad x day report into
        ``insights``. Any other report lands in ``insights_<name>`` with its breakdown columns, and its
        re-attach state is keyed by a hash of its spec.
    """

    template_fields: Sequence[str] = (*MetaAccountOperator.template_fields, "data_interval_day")
    ui_color = "#e7f0fe"

    def __init__(
        self,
        *,
        data_interval_day: str | None = None,
        lookback_days: int = operator_default("lookback_days"),
        attribution_windows: Sequence[str] = operator_default("attribution_windows"),
        chunk_days: int | None = operator_default("chunk_days"),
        max_concurrent_jobs: int = operator_default("max_concurrent_jobs"),
        poll_interval: float = operator_default("poll_interval"),
        first_poll: float = 2.0,
        stall_timeout_minutes: float = operator_default("stall_timeout_minutes"),
        page_limit: int = F.INSIGHTS_PAGE_LIMIT,
        read_concurrency: int = 4,
        state_ttl_hours: float = 12.0,
        deferrable: bool = operator_default("deferrable"),
        queued_timeout_minutes: float = operator_default("queued_timeout_minutes"),
        effective_statuses: Sequence[str] | None = operator_default("effective_statuses"),
        worker_poll_seconds: float = operator_default("worker_poll_seconds"),
        report: ReportConfig | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.report = DEFAULT if report is None else ReportConfig.model_validate(report)
        check_operator_arguments(
            type(self).__name__,
            lookback_days=lookback_days,
            attribution_windows=attribution_windows,
            chunk_days=chunk_days,
            max_concurrent_jobs=max_concurrent_jobs,
            poll_interval=poll_interval,
            stall_timeout_minutes=stall_timeout_minutes,
            deferrable=deferrable,
        )
        self.data_interval_day = data_interval_day
        self.lookback_days = lookback_days
        self.attribution_windows = list(attribution_windows)
        self.chunk_days = chunk_days
        self.max_concurrent_jobs = max_concurrent_jobs
        self.poll_interval = poll_interval
        self.first_poll = first_poll
        self.stall_timeout_minutes = stall_timeout_minutes
        self.page_limit = page_limit
        self.read_concurrency = read_concurrency
        self.state_ttl_hours = state_ttl_hours
        self.deferrable = deferrable
        self.queued_timeout_minutes = queued_timeout_minutes
        self.effective_statuses = list(effective_statuses or [])
        self.worker_poll_seconds = worker_poll_seconds

    # -- small helpers ----------------------------------------------------------------------------
    def _window(self, context: Any) -> tuple[dt.date, dt.date]:
        """The run's window (:func:`plan_window`): what its job state is keyed by."""
        return plan_window(interval_day(context, self.data_interval_day), self.lookback_days)

    def _served_window(self, since: dt.date, until: dt.date) -> tuple[dt.date, dt.date]:
        """The window less its dates older than Meta keeps Insights (:func:`oldest_served_date`; they keep
        what the lake has), decided once, when the jobs are planned: their dates are what the run writes
        (:meth:`_load`), whenever it ends. Raises :class:`~meta_ads_elt.errors.MetaBeyondRetentionError`
        when that leaves none."""
        oldest = oldest_served_date(dt.datetime.now(dt.UTC).date())
        if until < oldest:
            raise MetaBeyondRetentionError(
                f"act_{self.numeric_account_id}: the window {since}..{until} is older than Meta keeps Insights "
                f"({INSIGHTS_RETENTION_MONTHS} months; the oldest date it serves today is {oldest}, code 3018 "
                "for older ones). Nothing was asked for and the lake keeps what it has for these dates; "
                f"backfill dates from {oldest} on. This is not retried.",
                gap_action=f"none: Meta no longer serves these dates (Insights are kept {INSIGHTS_RETENTION_MONTHS} "
                f"months); backfill dates from {oldest} on.",
            )
        return max(since, oldest), until

    def _dates_beyond_retention(self, context: Any, since: dt.date) -> list[str]:
        """The dates of the run's window before ``since`` (the window :meth:`_window` kept)."""
        first, _ = plan_window(interval_day(context, self.data_interval_day), self.lookback_days)
        return [(first + dt.timedelta(days=i)).isoformat() for i in range((since - first).days)]

    def _status_filter(self) -> list[dict[str, Any]]:
        if not self.effective_statuses:
            return []
        return [
            {
                "field": F.INSIGHTS_STATUS_FILTER_FIELD,
                "operator": "IN",
                "value": list(self.effective_statuses),
            }
        ]

    def _request_params(self, job: ReportJob) -> dict[str, Any]:
        """The job's POST parameters; records on it whether they leave reach out (for the manifest)."""
        report = self.report
        first_date, today = _since_and_today(job)
        job.reach_withheld = report.withholds_reach(first_date, today)
        params: dict[str, Any] = {
            "level": report.level,
            "fields": report.fields_for(first_date, today),
            "time_range": {"since": job.since, "until": job.until},
            "time_increment": report.time_increment,
            "action_attribution_windows": report.windows(self.attribution_windows),
        }
        if report.breakdowns:
            params["breakdowns"] = list(report.breakdowns)
        if report.action_breakdowns != ("action_type",):
            params["action_breakdowns"] = list(report.action_breakdowns)
        filtering = self._status_filter()
        if job.campaign_ids:
            filtering.append({"field": "campaign.id", "operator": "IN", "value": list(job.campaign_ids)})
        if filtering:
            params["filtering"] = filtering
        return params

    def _state_name(self, since: dt.date, until: dt.date) -> str:
        if (
            not self.report.is_default
        ):  # keyed by a hash of the report's spec: a changed report never re-attaches
            digest = self.report.spec_digest(self.attribution_windows, self.effective_statuses)
            return f"{self.report.dataset}/{self.numeric_account_id}/{since}_{until}_{digest}"
        spec = {
            "fields": F.INSIGHTS_FIELDS,
            "level": F.INSIGHTS_LEVEL,
            "windows": self.attribution_windows,
            "statuses": self.effective_statuses,
        }
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]
        return f"insights/{self.numeric_account_id}/{since}_{until}_{digest}"

    @cached_property
    def _state(self) -> LakeState:
        from meta_ads_elt.lake.state import LakeState  # the lake (pyarrow) is not imported at DAG parse

        return LakeState(self.lake_root)

    def _save_jobs(self, name: str, jobs: list[ReportJob]) -> None:
        self._state.write(name, {"saved_at": time.time(), "jobs": [j.to_dict() for j in jobs]})

    def _load_jobs(self, name: str) -> list[ReportJob] | None:
        doc = self._state.read(name)
        if not doc or time.time() - float(doc.get("saved_at", 0)) > self.state_ttl_hours * 3600:
            return None
        return [ReportJob.from_dict(j) for j in doc.get("jobs", [])]

    def _pace_name(self) -> str:
        return f"{self.report.dataset}_pace/{self.numeric_account_id}"

    @cached_property
    def _pace(self) -> dict[str, float]:
        """How long the account's last jobs took, by days in the job (``{"28": 8.2}``): the first status
        read of a job of that size comes just before it (:func:`~meta_ads_elt.triggers.insights.first_delay`).
        Ignored after ``PACE_TTL_DAYS``."""
        doc = self._state.read(self._pace_name()) or {}
        if time.time() - float(doc.get("saved_at", 0)) > PACE_TTL_DAYS * 86400:
            return {}
        return {str(k): float(v) for k, v in (doc.get("seconds_by_days") or {}).items()}

    def _save_pace(self, jobs: list[ReportJob]) -> None:
        """Record how long this run's jobs took (``done_by``: set when that is known, not for a job already
        done at a first read without prior), by days; kept jobs of other sizes stay."""
        took: dict[str, float] = {}
        for job in jobs:
            if job.done_by and job.submitted_at and job.attempts == 1:
                key = str(job.days)
                took[key] = max(took.get(key, 0.0), round(job.done_by - job.submitted_at, 3))
        if took:
            self._state.write(
                self._pace_name(), {"saved_at": time.time(), "seconds_by_days": {**self._pace, **took}}
            )

    @cached_property
    def _campaigns_by_day(self) -> dict[str, list[str]]:
        return {}

    def _campaign_ids(self, day: str) -> list[str]:
        """The campaigns with stats on ``day``, archived and deleted ones included: an ids-only Insights
        query at ``level=campaign`` with the jobs' status filter (the campaigns edge would leave archived
        and deleted campaigns out, and their rows with them)."""
        if day not in self._campaigns_by_day:
            params: dict[str, Any] = {
                "level": "campaign",
                "fields": "campaign_id",
                "time_range": {"since": day, "until": day},
                "limit": 500,
            }
            if self._status_filter():
                params["filtering"] = self._status_filter()
            ids: set[str] = set()
            for page in self.hook.paginate((f"act_{self.numeric_account_id}", "insights"), params):
                ids.update(str(r["campaign_id"]) for r in page if r.get("campaign_id"))
            self._campaigns_by_day[day] = sorted(ids)
        return self._campaigns_by_day[day]

    # -- submission -------------------------------------------------------------------------------
    def _submit_one(self, job: ReportJob) -> list[ReportJob]:
        try:
            body = self.hook.call(
                "POST", (f"act_{self.numeric_account_id}", "insights"), self._request_params(job)
            )
        except MetaDataTooLargeError as err:
            job.status, job.error = "failed", err.message
            return replan([job], self._campaign_ids)
        run_id = str(body.get("report_run_id") or body.get("id") or "")
        if not run_id:
            raise MetaFatalError(f"Insights job submission for {job.key} returned no report_run_id")
        now = time.time()
        job.report_run_id, job.status, job.percent = run_id, "running", 0.0
        job.submitted_at = job.progress_at = now
        job.first_progress_at, job.first_percent, job.zero_at = None, 0.0, None
        job.due_at, job.probe_failed, job.done_by, job.read_errors = None, False, None, 0
        job.expected_seconds = self._pace.get(str(job.days))
        job.attempts += 1
        job.async_status = "submitted"
        return [job]

    def _submit_pending(self, jobs: list[ReportJob]) -> list[ReportJob]:
        """Submit pending jobs while fewer than ``max_concurrent_jobs`` run; returns the new job list."""
        while True:
            running = sum(j.status == "running" for j in jobs)
            slots = self.max_concurrent_jobs - running
            pending = [j for j in jobs if j.status == "pending"][: max(slots, 0)]
            if not pending:
                return jobs
            with ThreadPoolExecutor(max_workers=min(8, len(pending))) as pool:
                results = list(pool.map(self._submit_one, pending))
            replaced = {id(j): r for j, r in zip(pending, results, strict=True)}
            jobs = [x for j in jobs for x in replaced.get(id(j), [j])]
            self.log.info(
                "act_%s: submitted %d report job(s): %s",
                self.numeric_account_id,
                len(pending),
                ", ".join(f"{j.key}={j.report_run_id}" for r in results for j in r if j.report_run_id),
            )

    def _trigger(self, jobs: list[ReportJob], *, deferred: bool = False):
        """The trigger polling ``jobs``: in the worker, or (``deferred``) in the triggerer, where its first
        status read waits :data:`~meta_ads_elt.triggers.insights.SETTLE_SECONDS`."""
        from meta_ads_elt.triggers.insights import SETTLE_SECONDS, MetaInsightsTrigger

        return MetaInsightsTrigger(
            meta_conn_id=self.meta_conn_id,
            account_id=self.numeric_account_id,
            jobs=[j.to_dict() for j in jobs],
            poll_interval=self.poll_interval,
            first_poll=self.first_poll,
            stall_timeout_minutes=self.stall_timeout_minutes,
            max_concurrent_jobs=self.max_concurrent_jobs,
            queued_timeout_minutes=self.queued_timeout_minutes,
            probe_results=True,
            settle_seconds=SETTLE_SECONDS if deferred else 0.0,
        )

    # -- Airflow entry points ---------------------------------------------------------------------
    def execute(self, context: Any) -> dict[str, Any] | None:
        since, until = self._window(context)
        name = self._state_name(since, until)
        jobs = self._load_jobs(name)
        reattached = bool(jobs)
        if jobs:
            for job in jobs:  # each try gets the trigger's whole READ_ERROR_LIMIT of unreadable status reads
                job.read_errors = 0
            self.log.info(
                "act_%s: re-attaching to %d report job(s) of a previous try: %s",
                self.numeric_account_id,
                len(jobs),
                ", ".join(f"{j.key}={j.report_run_id}" for j in jobs if j.report_run_id),
            )
        else:
            since, until = self._served_window(since, until)
            jobs = plan_chunks(since, until, self.chunk_days or self.lookback_days)
            self.log.info(
                "act_%s: window %s..%s (%d days) in %d job(s)",
                self.numeric_account_id,
                since,
                until,
                (until - since).days + 1,
                len(jobs),
            )
            if beyond := self._dates_beyond_retention(context, since):
                self.log.warning(
                    "act_%s: %s..%s not asked for: older than Meta keeps Insights (%d months); the lake "
                    "keeps what it has for these dates",
                    self.numeric_account_id,
                    beyond[0],
                    beyond[-1],
                    INSIGHTS_RETENTION_MONTHS,
                )
        return self._advance(context, jobs, name, reattached=reattached)

    def _advance(
        self, context: Any, jobs: list[ReportJob], name: str, reattached: bool = False
    ) -> dict[str, Any] | None:
        while True:
            jobs = self._submit_pending(jobs)
            self._save_jobs(name, jobs)
            trigger = self._trigger(jobs)
            if self.deferrable:
                # Poll in the worker first: jobs done within seconds never defer, and the triggerer only
                # ever gets jobs that were still running at the last poll. A re-attaching try reads its
                # jobs once at once whatever ``worker_poll_seconds`` says: runs Meta finished while the
                # task was down must not defer (a task that defers on finished work can fail upstream:
                # apache/airflow#66374).
                event = asyncio.run(
                    _first_event(trigger, timeout=self.worker_poll_seconds, poll_now=reattached)
                )
                reattached = False
                if event is None:
                    still_running = [ReportJob.from_dict(j) for j in trigger.jobs]
                    self._save_jobs(name, still_running)
                    self.defer(
                        trigger=self._trigger(still_running, deferred=True), method_name="execute_complete"
                    )
            else:
                event = asyncio.run(_next_event(trigger))
            outcome = self._on_event(event)
            if isinstance(outcome, dict):
                return self._load(context, outcome["jobs"], name)
            jobs = outcome

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any] | None:
        since, until = self._window(context)
        name = self._state_name(since, until)
        self.log.info(
            "act_%s: resumed on the trigger's %r event", self.numeric_account_id, event.get("status")
        )
        outcome = self._on_event(event)
        if isinstance(outcome, dict):
            return self._load(context, outcome["jobs"], name)
        return self._advance(context, outcome, name)

    def _on_event(self, event: dict[str, Any]) -> dict[str, Any] | list[ReportJob]:
        """The trigger's event (:mod:`meta_ads_elt.triggers.insights`): ``done`` -> the event (results
        ready); ``failed`` / ``stalled`` / ``slots_free`` -> the re-planned job list; ``error`` -> the
        error the trigger met, raised as the class it was given where it was raised (``from_event``)."""
        from meta_ads_elt.triggers.insights import DONE, DUE, ERROR, OPERATOR_ACTS

        status = event.get("status")
        jobs = [ReportJob.from_dict(j) for j in event.get("jobs", [])]
        if status == DONE:
            return {"jobs": jobs}
        if status == DUE:
            return self._probe(jobs)
        if status in OPERATOR_ACTS:
            self.log.warning("act_%s: %s (%s)", self.numeric_account_id, status, event.get("message"))
            return replan(jobs, self._campaign_ids)
        if status == ERROR and isinstance(event.get("error"), dict):
            raise from_event(event["error"])
        # An event of another version of the trigger: not fatal, the retry re-attaches to the same runs.
        raise MetaApiError(
            f"Insights trigger of act_{self.numeric_account_id} sent an event this operator does not know "
            f"(status {status!r}); retry the task (it re-attaches to the same report runs)"
        )

    @cached_property
    def _first_pages(self) -> dict[str, dict[str, Any]]:
        """First results page of each job read by :meth:`_probe` (job key -> page body), used by the read."""
        return {}

    @cached_property
    def _probed(self) -> list[str]:
        """Keys of the jobs whose completion their first results page confirmed (for the manifest)."""
        return []

    def _probe(self, jobs: list[ReportJob]) -> dict[str, Any] | list[ReportJob]:
        """The trigger's ``due`` event: read each running job's first results page. A page served means
        the job is ``Job Completed`` (Meta serves no results before), so that read replaces the last
        status read; a page refused as not ready (:func:`~meta_ads_elt.errors.is_report_not_ready`) marks the
        job ``probe_failed``, polled to the end. Returns the event for :meth:`_load` when every job is
        done, else the job list (back to polling)."""
        from meta_ads_elt.triggers.insights import ENDS_THE_POLL

        for job in jobs:
            if job.status != "running":
                continue
            try:
                self._first_pages[job.key] = self.hook.call(
                    "GET",
                    (job.report_run_id, "insights"),
                    {"limit": self.page_limit},
                    scope=self.numeric_account_id,
                    retry_if=lambda err: is_retryable(err) and not is_report_not_ready(err),
                )
            except MetaApiError as err:
                if isinstance(err, ENDS_THE_POLL):
                    raise
                # Not ready (or any other answer): the status reads decide, as for every job.
                job.probe_failed = True
                self.log.info(
                    "act_%s: first page of %s not served at its estimate (%s); polling its status",
                    self.numeric_account_id,
                    job.key,
                    err.kind,
                )
                continue
            job.status, job.percent, job.async_status = "completed", 100.0, F.JOB_DONE
            job.done_by = time.time()
            self._probed.append(job.key)
        if all(j.status in ("completed", GIVEN_UP) for j in jobs):
            return {"jobs": jobs}
        return jobs

    # -- the completeness control ------------------------------------------------------------------
    def _account_totals(self, dates: list[dt.date], extracted_at: dt.datetime) -> list[dict[str, Any]]:
        """One ``level=account`` row per date (zeros where Meta has none), with Meta's clock when served.

        No status filter: the account's own row aggregates every child, whatever its status ("If you read
        stats for an ad object, we include the stats of all children objects").
        """
        from meta_ads_elt.hooks.graph_api import field_expansion

        node = f"act_{self.numeric_account_id}"
        params = {
            "level": F.ACCOUNT_TOTALS_LEVEL,
            "time_increment": 1,
            "time_range": {"since": dates[0].isoformat(), "until": dates[-1].isoformat()},
            "limit": 500,
        }
        # One call for the account's time zone and its daily rows: the insights edge expanded in the
        # node's fields (Graph API field expansion, seed 002), not a node read plus an edge read.
        expansion = field_expansion("insights", params, F.ACCOUNT_TOTALS_FIELDS)
        account, headers = self.hook.call(
            "GET", (node,), {"fields": f"timezone_name,{expansion}"}, with_headers=True
        )
        tz_name = str(account.get("timezone_name") or "UTC")
        # The expanded edge's first page (none when the window has no rows); more than 500 days: the
        # rest from the edge itself, after that page's cursor. Its fields as every GET sends them (the
        # SDK's comma-separated form), as inside the expansion; a JSON list is only the async POST's form.
        edge_params = {**params, "fields": ",".join(F.ACCOUNT_TOTALS_FIELDS)}
        first = account.get("insights") or {}
        rows = [r for page in self.hook.paginate((node, "insights"), edge_params, first=first) for r in page]
        served_at = _server_time(headers) or extracted_at
        served_local_date = served_at.astimezone(zoneinfo.ZoneInfo(tz_name)).date()
        by_date = {str(r.get("date_start")): r for r in rows}
        out = []
        for d in dates:
            r = by_date.get(d.isoformat(), {})
            out.append(
                {
                    "account_id": self.numeric_account_id,
                    "date": d.isoformat(),
                    "account_currency": r.get("account_currency"),
                    "spend": r.get("spend", "0"),
                    "impressions": r.get("impressions", "0"),
                    "clicks": r.get("clicks", "0"),
                    "timezone_name": tz_name,
                    "served_at": served_at,
                    "served_local_date": served_local_date,
                    "_extracted_at": extracted_at,
                }
            )
        partial = [d.isoformat() for d in dates if d >= served_local_date]
        if partial:
            self.log.warning(
                "act_%s: %s not over yet in %s when served (partial numbers, restated later)",
                self.numeric_account_id,
                ", ".join(partial),
                tz_name,
            )
        return out

    # -- reading results into the lake ------------------------------------------------------------
    def _load(self, context: Any, jobs: list[ReportJob], name: str) -> dict[str, Any]:
        _, until = self._window(context)
        since = min(dt.date.fromisoformat(j.since) for j in jobs)  # as planned (_served_window)
        given_up = [j for j in jobs if j.status == GIVEN_UP]
        failed_dates = sorted({j.since for j in given_up})
        jobs = [j for j in jobs if j.status != GIVEN_UP and not (j.days == 1 and j.since in failed_dates)]
        dates = [
            d
            for d in (since + dt.timedelta(days=i) for i in range((until - since).days + 1))
            if d.isoformat() not in failed_dates
        ]
        if dates:
            result = self._write(context, jobs, dates, since, until, failed_dates)
        self._save_pace(jobs)
        self._state.delete(name)
        if failed_dates:
            raise self._days_failed(given_up, failed_dates, landed=len(dates))
        return result

    def _days_failed(
        self, given_up: list[ReportJob], failed_dates: list[str], *, landed: int
    ) -> MetaDaysFailedError:
        causes = sorted({scrub(j.error or j.async_status or "Job Failed") for j in given_up})
        return MetaDaysFailedError(
            f"act_{self.numeric_account_id}: Meta could not build the Insights report for {len(failed_dates)} "
            f"day(s) {', '.join(failed_dates)} ({MAX_JOB_ATTEMPTS} tries at the smallest split, one day and one "
            f"campaign: {'; '.join(causes)[:300]}). The other {landed} day(s) of the window landed; the failed "
            "days keep what the lake had before.",
            failed_dates=failed_dates,
        )

    def _write(
        self,
        context: Any,
        jobs: list[ReportJob],
        dates: list[dt.date],
        since: dt.date,
        until: dt.date,
        failed_dates: list[str],
    ) -> dict[str, Any]:
        partitions = [{"account_id": self.numeric_account_id, "date": d.isoformat()} for d in dates]
        run_id = str((context or {}).get("run_id") or f"manual-{until}")
        extracted_at = dt.datetime.now(dt.UTC)
        totals = self._account_totals(dates, extracted_at) if self.report.is_default else None
        from meta_ads_elt.lake.partitions import LakeWriter
        from meta_ads_elt.lake.rows import rows_to_table
        from meta_ads_elt.schemas import INSIGHTS_ACCOUNT_TOTALS, report_schema

        report, schema = self.report, report_schema(self.report)
        writer = LakeWriter(self.lake_root)
        if report.time_increment != 1:
            # Buckets of 7 days, a month or the whole window start where each run's window starts: the
            # previous run's buckets would overlap this run's, so the account's whole dataset is replaced
            # (its date partitions: a date= directory that names no date is left alone, with a warning).
            known = writer.partition_dates(report.dataset, {"account_id": self.numeric_account_id})
            partitions += [
                {"account_id": self.numeric_account_id, "date": d.isoformat()}
                for d in known
                if d.isoformat() not in {p["date"] for p in partitions}
            ]
        flag = None if report.is_default else report.off_meta_actions
        lock = threading.Lock()
        progress = {"rows": 0, "pages": 0}
        t0 = time.monotonic()

        def read(job: ReportJob, tx) -> int:
            rows = 0
            pages = self.hook.paginate(
                (job.report_run_id, "insights"),
                {"limit": self.page_limit},
                scope=self.numeric_account_id,
                first=self._first_pages.pop(job.key, None),
            )
            for page in prefetch(pages):  # the next page downloads while this one is converted and written
                if getattr(self, "_killed", False):
                    raise RuntimeError("task killed")
                if (
                    failed_dates
                ):  # a multi-day job's rows of a day given up elsewhere: that day stays as it was
                    page = [r for r in page if r.get("date_start") not in failed_dates]
                for r in page:
                    r["date"] = r.get("date_start")
                    r["account_id"] = self.numeric_account_id
                    r["_report_run_id"] = job.report_run_id
                    r["_extracted_at"] = extracted_at
                    if flag is not None:
                        r["off_meta_actions"] = flag
                tx.write(rows_to_table(schema, page, extra=("account_id", "date")))
                rows += len(page)
                with lock:
                    progress["rows"] += len(page)
                    progress["pages"] += 1
                    if progress["pages"] % 20 == 0:
                        self._log_progress(progress["rows"], t0)
            return rows

        workers = max(1, min(self.read_concurrency, len(jobs)))
        with contextlib.ExitStack() as stack:
            tx = stack.enter_context(
                writer.replace_partitions(report.dataset, partitions, run_id=run_id, schema=schema)
            )
            if (
                totals is not None
            ):  # the completeness control is pulled with the default report, checked per report
                totals_tx = stack.enter_context(
                    writer.replace_partitions("insights_account_totals", partitions, run_id=run_id)
                )
                totals_tx.write(rows_to_table(INSIGHTS_ACCOUNT_TOTALS, totals, extra=("account_id", "date")))
            pool = stack.enter_context(ThreadPoolExecutor(max_workers=workers))
            counts = list(pool.map(lambda j: read(j, tx), jobs))
        manifest = {
            "run_id": run_id,
            "account_id": self.numeric_account_id,
            "since": since.isoformat(),
            "until": until.isoformat(),
            "rows": tx.rows,
            "calls": self.hook.calls,
            "report_run_ids": {j.key: j.report_run_id for j in jobs},
            "confirmed_by_first_page": sorted(self._probed),
            "rows_by_job": {j.key: c for j, c in zip(jobs, counts, strict=True)},
            "attribution_windows": self.attribution_windows,
            "effective_statuses": self.effective_statuses,
            "partial_dates": [
                t["date"] for t in totals or () if dt.date.fromisoformat(t["date"]) >= t["served_local_date"]
            ],
            "level": report.level,
            "fields": report.request_fields,
            # jobs of a report with breakdowns starting over 13 months back: reach left out (reports.REACH_FIELDS)
            "reach_withheld_jobs": sorted(j.key for j in jobs if j.reach_withheld),
            "extracted_at": extracted_at.isoformat(),
            "partitions": [p["date"] for p in partitions],
            "failed_dates": failed_dates,
            # the window's dates older than Meta keeps Insights: not asked for, left as the lake had them
            "dates_beyond_retention": self._dates_beyond_retention(context, since),
            "rate_limit_wait_seconds": round(self.hook.governor.waited(self.numeric_account_id), 3),
        }
        if not report.is_default:
            manifest.update(
                report=report.name,
                breakdowns=list(report.breakdowns),
                action_breakdowns=list(report.action_breakdowns),
                time_increment=report.time_increment,
                off_meta_actions=report.off_meta_actions,
                spec_digest=report.spec_digest(self.attribution_windows, self.effective_statuses),
            )
        path = writer.write_manifest(report.dataset, manifest)
        self._log_progress(tx.rows, t0, final=True)
        return {"rows": tx.rows, "calls": self.hook.calls, "manifest": path, "partitions": len(partitions)}

    def _log_progress(self, rows: int, t0: float, final: bool = False) -> None:
        self.log.info(
            "act_%s: %s%d rows, %d calls so far, %.1fs waited for rate limits, %.1fs reading",
            self.numeric_account_id,
            "done: " if final else "",
            rows,
            self.hook.calls,
            self.hook.governor.waited(self.numeric_account_id),
            time.monotonic() - t0,
        )

    def on_kill(self) -> None:
        # The report runs are left alone (Meta has no cancel); their ids stay in _state/ so a retry
        # re-attaches. Readers stop at the next page; the lake transaction then discards its staging.
        self._killed = True
        self.log.warning(
            "act_%s: killed; running report jobs stay recorded for re-attachment", self.numeric_account_id
        )


def _server_time(headers: Any) -> dt.datetime | None:
    """Meta's clock: the response's ``Date`` header, if any."""
    value = headers.get("Date") if headers is not None else None
    try:
        return email.utils.parsedate_to_datetime(value).astimezone(dt.UTC) if value else None
    except (TypeError, ValueError):
        return None


def prefetch(iterator: Iterator[Any], depth: int = 1) -> Iterator[Any]:
    """Iterate ``iterator`` in a background thread, at most ``depth`` items ahead (bounded memory)."""
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            items.put(exc)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


async def _first_event(
    trigger, timeout: float | None = None, poll_now: bool = False
) -> dict[str, Any] | None:
    """The trigger's event, or None if it fired none within ``timeout`` seconds (the trigger's job dicts
    then hold the statuses of its last poll). ``poll_now``: read the jobs' statuses once first, without
    waiting ``first_poll``."""
    if poll_now:
        event = await trigger.poll(first_delay=0, max_polls=1)
        if event is not None:
            return event.payload
    if timeout is None:
        return await _next_event(trigger)
    if timeout <= 0:
        return None
    try:
        return await asyncio.wait_for(_next_event(trigger), timeout)
    except TimeoutError:
        return None


async def _next_event(trigger) -> dict[str, Any]:
    """The payload of the trigger's next event (an error event if the trigger ends without one)."""
    async with contextlib.aclosing(trigger.run()) as events:  # closed here, not by asyncio.run's end
        async for event in events:
            return event.payload
    error = MetaApiError("the Insights trigger ended without an event")
    return {"status": "error", "message": error.message, "error": to_event(error)}
