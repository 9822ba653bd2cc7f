"""Failure isolation: one account, Page or day that cannot be extracted never holds back the rest.

The contract (DESIGN.md, "Failure isolation"):

* An extraction task that fails for good (its retries spent, or at once for a non-retryable error) leaves
  a **failure record** for its run: what (``kind``: insights, ad_objects, leads, conversations; the
  ``entity``: ``act_<id>`` or ``page <id>``), which dates were not refreshed, the reason, and what to
  do. Its ``on_failure_callback`` (:func:`record_failed_task`) writes it under
  ``<lake>/_state/failures/runs/<run_id>/``. The task's lake partitions are untouched: each task
  replaces its partitions in one commit, so a task that fails leaves the earlier data exactly as it was
  (an Insights task that gave up some *days* writes every other day and names those days).
* ``dbt_build`` runs when every extraction is done (trigger rule ``all_done``) and at least one succeeded
  (:func:`require_a_successful_extraction`), so the marts of a run with a failed account still build and
  publish. Not ``all_done_min_one_success``: that rule *skips* the build when any upstream task was
  skipped, and Airflow skips a mapped extraction with nothing to map (discovery found no Page), which
  would leave the marts unpublished in a run that ends green.
* ``publish`` (:func:`reconcile_failures`) reads the run's task states from Airflow, turns every failed
  or ``upstream_failed`` extraction into an **open failure** (``<lake>/_state/failures/open/``), closes
  the open failures whose dates a successful extraction of the same account or Page has now re-pulled
  (a retry or a later run's lookback window fills exactly the gap), and writes the open ones into the
  serving file: table ``_published_failures`` and column ``_published.open_failures``.
* ``check_extractions``, the last task (trigger rule ``all_done``), fails the DAG run when any
  extraction of the run failed, naming each with its reason and the command that fills the gap (the
  marts are published, but the run is not green), and when the marts were not published (``dbt_build``
  or ``publish`` did not succeed): it is the DAG's only leaf, so its verdict is the run's state.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from meta_ads_elt.redaction import scrub

if TYPE_CHECKING:
    from meta_ads_elt.lake.state import LakeState

log = logging.getLogger(__name__)

RUNS = "failures/runs"
OPEN = "failures/open"
FAILED_STATES = frozenset({"failed", "upstream_failed"})
KIND_OF_OPERATOR = {
    "MetaInsightsOperator": "insights",
    "MetaAdObjectsOperator": "ad_objects",
    "MetaLeadsOperator": "leads",
    "MetaConversationsOperator": "conversations",
}
RUN_RECORDS_KEPT_DAYS = 90
"""A run's failure records (``failures/runs/<run_id>/``) are read by that run's ``publish`` and
``check_extractions`` (again when they are cleared). A run whose newest record is older than this is
pruned by a later publish: the open failures (``failures/open/``) keep what is still missing. Ninety days
covers a quarter's re-runs; a record pruned before its run is cleared again reads "failed without
recording a cause"."""
MARTS_TASKS = ("dbt_build", "publish")
"""The tasks that build and publish the marts: a run in which either did not succeed published nothing."""
NOT_EXTRACTIONS = frozenset({*MARTS_TASKS, "check_extractions"})
"""Tasks of the DAG that are not extractions (everything else is)."""


class ExtractionsFailedError(AirflowFailException):
    """Some extraction of this run failed, or the marts were not published (each named in the message)."""


class NothingExtractedError(AirflowSkipException):
    """No extraction of this run succeeded: nothing new to build (the marts stay as last published)."""


@dataclasses.dataclass
class ExtractionFailure:
    """One extraction that could not be done: which account or Page, which dates, why, what to do."""

    kind: str
    entity: str
    task_id: str
    data_date: str
    dates: list[str]
    reason: str
    action: str
    run_id: str
    failed_at: str

    @property
    def key(self) -> str:
        return f"{OPEN}/{self.kind}/{self.entity}/{self.data_date}"

    def line(self) -> str:
        return (
            f"{self.kind} of {self.entity} for {self.data_date} failed (dates {_span(self.dates)} not refreshed; "
            f"what the lake had for them is kept): {self.reason} To fill the gap: {self.action}"
        )


def _span(dates: list[str]) -> str:
    if not dates:
        return "-"
    if len(dates) <= 3:
        return ", ".join(dates)
    return f"{dates[0]}..{dates[-1]} ({len(dates)} days)"


def window(day: dt.date, lookback_days: int) -> list[str]:
    """The dates a run for data-interval day ``day`` re-pulls: ``[day - lookback + 1, day]``."""
    return [(day - dt.timedelta(days=i)).isoformat() for i in range(lookback_days - 1, -1, -1)]


def scope_of(task: Any) -> tuple[str, str]:
    """(kind, entity) of a task: from the operator's class and its account or Page, else the task id."""
    kind = KIND_OF_OPERATOR.get(type(task).__name__, str(getattr(task, "task_id", "task")).split(".")[-1])
    if getattr(task, "account_id", None):
        return kind, f"act_{str(task.account_id).removeprefix('act_')}"
    if getattr(task, "page_id", None):
        return kind, f"page {task.page_id}"
    return kind, "all"


def _task_key(task_id: str, map_index: int | None) -> str:
    return task_id if map_index is None or map_index < 0 else f"{task_id}_{map_index}"


def fill_action(dag_id: str, task_id: str, day: str) -> str:
    return (
        f"fix the cause, then re-run the task {task_id} of the run for {day} with its downstream tasks "
        f"(UI: Clear, with 'Downstream'; CLI: airflow tasks clear {dag_id} -t '^{task_id}$' -s {day} -e {day} "
        "--downstream --yes). The next daily runs also re-pull these dates while they are in the lookback window."
    )


def _data_date(context: Mapping[str, Any]) -> dt.date:
    start = context.get("data_interval_start") or context.get("logical_date")
    if start is None:
        return dt.datetime.now(dt.UTC).date()
    return start.astimezone(dt.UTC).date() if getattr(start, "tzinfo", None) else start.date()


def _state_store(lake_root: Any) -> LakeState:
    from meta_ads_elt.lake.state import LakeState  # imported here: the DAG file imports this module

    return LakeState(lake_root)


def record_failed_task(context: Mapping[str, Any], exception: BaseException | None, cause: str) -> None:
    """``on_failure_callback`` part: write this task's failure record for its run (no retry follows).

    Never raises: a callback must not fail its runner.
    """
    try:
        ti, task = context["ti"], context.get("task")
        lake_root = getattr(task, "lake_root", None)
        if lake_root is None or ti.task_id in NOT_EXTRACTIONS:
            return
        kind, entity = scope_of(task)
        day = _data_date(context)
        dates = list(
            getattr(exception, "failed_dates", None)
            or window(day, int(getattr(task, "lookback_days", 1) or 1))
        )
        record = ExtractionFailure(
            kind=kind,
            entity=entity,
            task_id=ti.task_id,
            data_date=day.isoformat(),
            dates=sorted(dates),
            reason=scrub(cause),
            # an error no re-run can fix says what can be done instead (e.g. MetaBeyondRetentionError)
            action=getattr(exception, "gap_action", None)
            or fill_action(ti.dag_id, ti.task_id, day.isoformat()),
            run_id=str(ti.run_id),
            failed_at=dt.datetime.now(dt.UTC).isoformat(),
        )
        _state_store(lake_root).write(
            f"{RUNS}/{ti.run_id}/{_task_key(ti.task_id, getattr(ti, 'map_index', None))}",
            {**dataclasses.asdict(record), "partial": bool(getattr(exception, "failed_dates", None))},
        )
        log.error("%s", record.line())
    except Exception:  # pragma: no cover - a callback must never fail the callback runner
        log.warning("could not record the failure of %s", context.get("ti"), exc_info=True)


@dataclasses.dataclass
class RunOutcome:
    """What the extractions of one run did: the failures, and the dates each (kind, entity) re-pulled."""

    failures: list[ExtractionFailure]
    landed: dict[tuple[str, str], set[str]]
    unpublished: dict[str, str | None] = dataclasses.field(default_factory=dict)
    """``dbt_build`` / ``publish`` -> state, for those of them that did not succeed (the marts were not
    published); empty when both succeeded or the states do not name them (a build run outside Airflow)."""


def run_outcome(
    *,
    lake_root: Any,
    dag_id: str,
    run_id: str,
    day: dt.date,
    lookback_days: int,
    states: Mapping[str, str | None],
    scopes: Mapping[str, tuple[str, str]],
) -> RunOutcome:
    """Failures and re-pulled dates of the run from its task ``states`` (task key -> state).

    ``scopes`` maps task ids to (kind, entity) for tasks that failed without a record of their own
    (``upstream_failed`` ones, or a try ended from outside before its callback could write).
    """
    from meta_ads_elt.lake.partitions import safe_name

    state_store = _state_store(lake_root)
    records = {
        name.rsplit("/", 1)[1]: state_store.read(name) or {} for name in state_store.names(f"{RUNS}/{run_id}")
    }
    full_window = window(day, lookback_days)
    failures: list[ExtractionFailure] = []
    landed: dict[tuple[str, str], set[str]] = {}
    upstream_cause = {
        key: record.get("reason", "")
        for key, record in records.items()
        if states.get(record.get("task_id", key))
    }
    for key, state in sorted(states.items()):
        task_id = key
        if task_id in NOT_EXTRACTIONS:
            continue
        record = records.get(safe_name(key))
        scope = (record["kind"], record["entity"]) if record else scopes.get(task_id)
        if state == "success" and scope:
            landed.setdefault(scope, set()).update(full_window)
            continue
        if state not in FAILED_STATES:
            continue
        if record:
            failure = ExtractionFailure(
                **{f.name: record[f.name] for f in dataclasses.fields(ExtractionFailure)}
            )
            if record.get("partial") and scope:
                landed.setdefault(scope, set()).update(set(full_window) - set(failure.dates))
        else:
            kind, entity = scope or (task_id.split(".")[-1], "all")
            if state == "upstream_failed":
                reason = (
                    "not run: a task it depends on failed"
                    + (
                        f" ({'; '.join(sorted(set(upstream_cause.values())))[:400]})"
                        if upstream_cause
                        else ""
                    )
                    + "."
                )
            else:
                reason = "the task failed without recording a cause (ended from outside: see its log)."
            failure = ExtractionFailure(
                kind=kind,
                entity=entity,
                task_id=task_id,
                data_date=day.isoformat(),
                dates=full_window,
                reason=reason,
                action=fill_action(dag_id, task_id, day.isoformat()),
                run_id=run_id,
                failed_at=dt.datetime.now(dt.UTC).isoformat(),
            )
        failures.append(failure)
    unpublished = {task: states[task] for task in MARTS_TASKS if task in states and states[task] != "success"}
    return RunOutcome(failures, landed, unpublished)


def reconcile_failures(
    lake_root: Any, outcome: RunOutcome, *, now: dt.datetime | None = None
) -> list[ExtractionFailure]:
    """Open this run's failures, close (or narrow) the earlier ones whose dates this run re-pulled, and
    prune the records of runs older than :data:`RUN_RECORDS_KEPT_DAYS`; the open failures after this
    run, oldest first."""
    state_store = _state_store(lake_root)
    current: dict[str, ExtractionFailure] = {}
    for name in state_store.names(OPEN):
        data = state_store.read(name)
        if not data:
            continue
        failure = ExtractionFailure(**{f.name: data[f.name] for f in dataclasses.fields(ExtractionFailure)})
        remaining = sorted(set(failure.dates) - outcome.landed.get((failure.kind, failure.entity), set()))
        if not remaining:
            state_store.delete(name)
            log.info("%s: the gap of %s for %s is filled", failure.entity, failure.kind, failure.data_date)
            continue
        if remaining != failure.dates:
            failure.dates = remaining
            state_store.write(name, dataclasses.asdict(failure))
        current[failure.key] = failure
    for failure in outcome.failures:
        state_store.write(failure.key, dataclasses.asdict(failure))
        current[failure.key] = failure
    prune_run_records(state_store, now=now or dt.datetime.now(dt.UTC))
    return sorted(current.values(), key=lambda f: (f.data_date, f.kind, f.entity))


def prune_run_records(state_store: LakeState, *, now: dt.datetime) -> list[str]:
    """Delete the failure records of the runs whose newest record is older than
    :data:`RUN_RECORDS_KEPT_DAYS`; the run ids pruned. A record without a readable ``failed_at`` counts
    as new (kept), so nothing is deleted on a guess."""
    cutoff = now - dt.timedelta(days=RUN_RECORDS_KEPT_DAYS)
    newest: dict[str, dt.datetime] = {}
    for name in state_store.names(RUNS):
        run = name.removeprefix(f"{RUNS}/").split("/", 1)[0]
        failed_at = _failed_at(state_store.read(name)) or now
        newest[run] = max(newest.get(run, failed_at), failed_at)
    pruned = sorted(run for run, at in newest.items() if at < cutoff)
    for run in pruned:
        state_store.delete_all(f"{RUNS}/{run}")
    if pruned:
        log.info(
            "Pruned the failure records of %d run(s) older than %d days (%s)",
            len(pruned),
            RUN_RECORDS_KEPT_DAYS,
            ", ".join(pruned[:5]) + (", ..." if len(pruned) > 5 else ""),
        )
    return pruned


def _failed_at(record: Mapping[str, Any] | None) -> dt.datetime | None:
    try:
        at = dt.datetime.fromisoformat(str((record or {})["failed_at"]))
    except (KeyError, ValueError):
        return None
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def check_run(outcome: RunOutcome, open_failures: Iterable[ExtractionFailure] = ()) -> None:
    """Fail (no retry) when an extraction of this run failed or the marts were not published; each
    failure on its own log line."""
    still_open = [f for f in open_failures if f.run_id not in {x.run_id for x in outcome.failures}]
    for failure in still_open:
        log.warning("Still open from an earlier run: %s", failure.line())
    if not outcome.failures and not outcome.unpublished:
        log.info("Every extraction of this run succeeded and the marts were published.")
        return
    for failure in outcome.failures:
        log.error("%s", failure.line())
    problems = []
    if outcome.failures:
        names = ", ".join(f"{f.kind} {f.entity}" for f in outcome.failures)
        problems.append(
            f"{len(outcome.failures)} extraction(s) of this run failed: {names}. Each is listed above (and, once "
            "published, in the serving file's table _published_failures) with its reason and the command that "
            "fills the gap."
        )
    if outcome.unpublished:
        states = ", ".join(f"{task} {state or 'not run'}" for task, state in outcome.unpublished.items())
        problems.append(
            f"The marts were NOT published by this run ({states}): BI tools still read the last published "
            "marts. See those tasks' logs for why; once fixed, clear dbt_build of this run with its downstream "
            "tasks."
        )
    elif outcome.failures:
        problems.append("The marts were published with every other account and Page.")
    raise ExtractionsFailedError(" ".join(problems))


def require_a_successful_extraction(ti: Any, extraction_task_ids: Iterable[str]) -> None:
    """``dbt_build``'s gate: skip the build when extractions of this run failed and none succeeded.

    The task's trigger rule is ``all_done`` (see the module docstring); a run whose extractions were all
    skipped (nothing to extract) still builds.
    """
    states = ti.get_task_states(dag_id=ti.dag_id, task_ids=sorted(extraction_task_ids), run_ids=[ti.run_id])
    seen = list(dict(states.get(ti.run_id, {})).values())
    if "success" in seen or not FAILED_STATES.intersection(seen):
        return
    raise NothingExtractedError(
        f"No extraction of this run succeeded ({sum(s in FAILED_STATES for s in seen)} failed or not run): "
        "nothing new to build; the marts stay as last published. check_extractions names each failure."
    )


def task_states(context: Mapping[str, Any]) -> dict[str, str | None]:
    """This run's task states from Airflow (task id, or ``<task id>_<map index>`` for mapped tasks)."""
    ti = context["ti"]
    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id])
    return dict(states.get(ti.run_id, {}))
