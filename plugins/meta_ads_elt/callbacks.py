"""Task callbacks: every failed try says why, in its own log, and what happens next.

A try that fails *inside* the task process already has its traceback in its log; the callback adds one
line with the cause and the next step (retry or none). A try can also be failed *outside* the task:
Airflow's scheduler fails a try whose executor report disagrees with its state, which after a deferral
is a known Airflow race (apache/airflow#66374, #71580), or a try whose worker stopped heartbeating.
Its log then just stops, and the scheduler's message goes only to the scheduler log and the task's
Audit Log. For those, Airflow runs the callback in the DAG processor, and this module appends the cause
to that try's log file itself (local task logs, shared by all components in ``airflow standalone`` and
in our docker-compose), so the UI's log view of the try ends with the reason.

The last failed try of an extraction also leaves its failure record for the run
(:func:`meta_ads_elt.failures.record_failed_task`): the publish marks that account or Page failed.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from meta_ads_elt.failures import record_failed_task
from meta_ads_elt.redaction import scrub

log = logging.getLogger(__name__)

EXTERNAL_CAUSE = (
    "the task raised no error: Airflow ended this try from outside (its scheduler marks a try failed when "
    "the executor's report disagrees with the task's state, a known race right after a deferral: "
    "apache/airflow#66374, #71580; or the worker stopped heartbeating). The scheduler's own message is "
    "in this task's Audit Log ('state mismatch')"
)


def log_retried_try(context: dict[str, Any]) -> None:
    """``on_retry_callback``: the cause of the failed try, and that Airflow retries it."""
    _log_cause(context, retried=True)


def log_failed_try(context: dict[str, Any]) -> None:
    """``on_failure_callback``: the cause of the last failed try; no retry follows."""
    _log_cause(context, retried=False)


def _log_cause(context: dict[str, Any], *, retried: bool) -> None:
    ti = context["ti"]
    exception = context.get("exception")
    next_step = "Airflow retries the task" if retried else "no retry left: the task has failed"
    where = f"{ti.task_id} (run {ti.run_id})"
    if exception is not None:
        # In the task process: this logger writes into the try's own log.
        cause = f"{type(exception).__name__}: {scrub(str(exception))}"
        log.error("Try %s of %s failed: %s. %s.", ti.try_number, where, cause, next_step)
        if not retried:
            record_failed_task(context, exception, cause)
        return
    message = f"Try {ti.try_number} of {where} failed: {EXTERNAL_CAUSE}. {next_step}."
    log.error("%s", message)  # the DAG processor's log
    if not retried:
        record_failed_task(context, None, EXTERNAL_CAUSE + ".")
    try:
        path = try_log_path(ti)
        if path.parent.is_dir():
            with path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(_log_record(message)) + "\n")
    except Exception:  # a callback must never fail the callback runner
        log.warning("could not append the failure cause to the log of %s", where, exc_info=True)


def _log_record(message: str) -> dict[str, str]:
    """One line in the JSON format of Airflow 3's task logs (what the UI's log view parses)."""
    return {
        "timestamp": datetime.now(UTC).isoformat(),
        "level": "error",
        "event": message,
        "logger": __name__,
    }


def try_log_path(ti: Any, base_log_folder: str | None = None, filename_template: str | None = None) -> Path:
    """The local log file of ``ti``'s try, rendered like Airflow's file task handler does."""
    import jinja2
    from airflow.configuration import conf

    folder = base_log_folder or conf.get("logging", "base_log_folder")
    template = filename_template or conf.get("logging", "log_filename_template")
    relative = jinja2.Template(template).render(ti=ti, try_number=ti.try_number)
    return Path(folder).expanduser() / relative
