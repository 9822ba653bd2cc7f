"""MetaInsightsTrigger against the real sandbox when its status reads fail after the hook's retries.

The report runs are submitted by the operator as Airflow runs it (``execute`` up to ``TaskDeferred``);
the status reads (``GET /{report_run_id}``, alone or as batch items) then fail at the sandbox with
transient errors (codes 1/2, HTTP 500) until the fault is cleared. The trigger polls through a real hook
whose retries are kept short (2 attempts, 10 ms backoff), as a slow outage would outlast the default ones.
"""

from __future__ import annotations

import asyncio

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred
from meta_ads_elt.errors import MetaRetryableError, from_event, is_retryable
from meta_ads_elt.hooks.graph_api import MetaGraphApiHook
from meta_ads_elt.operators.insights import MetaInsightsOperator
from meta_ads_elt.triggers.insights import READ_ERROR_LIMIT
from sandbox_lake import use_connection

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("calm_governor")]

NOW = "2026-11-20T12:00:00+00:00"
D = "2026-11-19"
STATUS_READS_FAIL = {"transient_error_rate": 1.0, "endpoints": ["GET /{report_run_id}"]}
SUBMISSIONS = "POST /act_{id}/insights"


def insights_op(account: str, lake, lookback_days: int, **kw) -> MetaInsightsOperator:
    return MetaInsightsOperator(
        task_id="insights", account_id=f"act_{account}", lake_root=str(lake), data_interval_day=D,
        lookback_days=lookback_days, chunk_days=2, first_poll=0.2, poll_interval=0.5, **kw,
    )  # fmt: skip


def submitted_trigger(sb, monkeypatch, lake, lookback_days: int):
    """(the account, the trigger the operator deferred to with its submitted runs, polling through a
    hook with short retries)."""
    use_connection(monkeypatch, sb)
    account = sb.world()["accounts"][0]["account_id"]
    with pytest.raises(TaskDeferred) as deferred:
        insights_op(account, lake, lookback_days, worker_poll_seconds=0).execute({"run_id": "r"})
    trigger = deferred.value.trigger
    trigger._hook = lambda: MetaGraphApiHook(trigger.meta_conn_id, max_attempts=2, backoff_base=0.01)
    return account, trigger


@pytest.mark.parametrize("lookback_days", [2, 4], ids=["one job, a plain GET", "two jobs, a batch"])
def test_a_status_read_failing_after_the_hooks_retries_leaves_the_job_running(
    sandbox_factory, monkeypatch, tmp_path, lookback_days
):
    sb = sandbox_factory(now=NOW, job_base_seconds=0.2)
    account, trigger = submitted_trigger(sb, monkeypatch, tmp_path, lookback_days)
    run_ids = [j["report_run_id"] for j in trigger.jobs]
    submitted = sb.stats()["by_endpoint"][SUBMISSIONS]
    assert len(run_ids) == lookback_days // 2 and all(run_ids)

    sb.set_faults(STATUS_READS_FAIL)
    assert asyncio.run(trigger.poll(first_delay=0, max_polls=1)) is None  # no event: nothing to act on
    assert [(j["status"], j["read_errors"]) for j in trigger.jobs] == [("running", 1)] * len(run_ids)
    assert sb.stats()["by_endpoint"]["GET /{report_run_id}"] >= 2 * len(run_ids)  # the hook did retry

    sb.clear_faults()
    event = asyncio.run(trigger.poll(first_delay=0))
    assert event is not None and event.payload["status"] == "done"
    assert [j["report_run_id"] for j in event.payload["jobs"]] == run_ids
    assert all(j["read_errors"] == 0 for j in event.payload["jobs"])
    result = insights_op(account, tmp_path, lookback_days).execute_complete({"run_id": "r"}, event.payload)
    assert result["rows"] > 0
    assert sb.stats()["by_endpoint"][SUBMISSIONS] == submitted  # nothing resubmitted


def test_status_reads_unreadable_read_error_limit_times_in_a_row_fail_the_try_and_the_retry_reattaches(
    sandbox_factory, monkeypatch, tmp_path
):
    sb = sandbox_factory(now=NOW, job_base_seconds=0.2)
    account, trigger = submitted_trigger(sb, monkeypatch, tmp_path, 4)
    submitted = sb.stats()["by_endpoint"][SUBMISSIONS]

    sb.set_faults(STATUS_READS_FAIL)
    event = asyncio.run(trigger.poll(first_delay=0))
    assert event is not None and event.payload["status"] == "error"
    assert event.payload["polls"] == READ_ERROR_LIMIT
    error = from_event(event.payload["error"])
    assert is_retryable(error) and error.code in (1, 2) and error.http_status == 500
    with pytest.raises(MetaRetryableError) as raised:  # the try fails; Airflow retries it
        insights_op(account, tmp_path, 4).execute_complete({"run_id": "r"}, event.payload)
    assert not isinstance(raised.value, AirflowFailException)

    sb.clear_faults()
    result = insights_op(account, tmp_path, 4, deferrable=False).execute({"run_id": "r"})  # the retry
    assert result["rows"] > 0
    assert sb.stats()["by_endpoint"][SUBMISSIONS] == submitted  # it re-attached to the same runs
