"""MetaInsightsTrigger: serialize() round trip and run() for every terminal status."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from meta_ads_elt.errors import (
    MetaApiError,
    MetaFatalError,
    MetaRateLimitWaitError,
    MetaTokenError,
    classify,
    from_event,
)
from meta_ads_elt.triggers.insights import MetaInsightsTrigger, due_at, first_delay, next_poll_delay


class FakeHook:
    """Serves scripted batch replies: one list of per-job bodies per poll (items classified as the real
    hook classifies them: ``error`` set on an item with an HTTP error code)."""

    def __init__(self, script):
        self.script = list(script)
        self.calls = 0
        self.requests = []
        self.sessions = 0

    def async_session(self):
        self.sessions += 1
        return contextlib.nullcontext("session")

    async def acall(self, method, path, params=None, *, scope=None, session=None):
        self.calls += 1
        self.requests.append([{"method": method, "path": path, "params": params}])
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, Exception):
            raise step
        item = step[0]
        if isinstance(item, dict) and "code" in item:
            raise classify(item["code"], item["body"], item["headers"])
        return item

    async def abatch(self, requests, *, scope=None, session=None):
        self.calls += 1
        self.requests.append(requests)
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, Exception):
            raise step
        return [
            {**s, "error": classify(s["code"], s["body"], s["headers"])}
            if (isinstance(s, dict) and "code" in s)
            else {"code": 200, "headers": [], "body": s, "error": None}
            for s in step
        ]


def status(s, pct):
    return {"async_status": s, "async_percent_completion": pct}


def job(key, run_id, **kw):
    return {
        "key": key,
        "report_run_id": run_id,
        "status": "running",
        "since": key,
        "until": key,
        "submitted_at": time.time(),
        "progress_at": time.time(),
        "percent": 0.0,
        **kw,
    }


def make(script, jobs=None, **kw):
    jobs = jobs if jobs is not None else [job("2026-11-01", "r1"), job("2026-11-02", "r2")]
    kw = {"first_poll": 0.01, "poll_interval": 0.02, **kw}
    trig = MetaInsightsTrigger(meta_conn_id="meta_default", account_id="1", jobs=jobs, **kw)
    fake = FakeHook(script)
    trig._hook = lambda: fake
    return trig, fake


def run(trig):
    async def first():
        events = []
        async for ev in trig.run():
            events.append(ev)
        return events

    events = asyncio.run(first())
    assert len(events) == 1  # exactly one event
    return events[0].payload


def test_due_when_every_running_job_should_have_completed_by_its_rate():
    jobs = [job("2026-11-01", "r1")]
    script = [[status("Job Running", 30)], [status("Job Running", 60)]]
    trig, fake = make(script, jobs=jobs, probe_results=True, poll_interval=5)
    ev = run(trig)
    assert ev["status"] == "due" and fake.calls == 2  # no third read only to confirm it
    assert ev["jobs"][0]["status"] == "running" and ev["jobs"][0]["due_at"] <= time.time()


def test_a_job_whose_first_page_was_refused_is_polled_to_the_end():
    jobs = [job("2026-11-01", "r1", probe_failed=True)]
    script = [[status("Job Running", 30)], [status("Job Running", 60)], [status("Job Completed", 100)]]
    trig, fake = make(script, jobs=jobs, probe_results=True, poll_interval=5)
    ev = run(trig)
    assert ev["status"] == "done" and fake.calls == 3


def test_without_probe_results_the_trigger_never_says_due():
    trig, fake = make(
        [[status("Job Running", 30)], [status("Job Running", 60)], [status("Job Completed", 100)]],
        jobs=[job("2026-11-01", "r1")],
        poll_interval=5,
    )
    assert run(trig)["status"] == "done" and fake.calls == 3


def test_with_a_prior_the_first_read_comes_late_and_a_close_bound_makes_the_job_due():
    now = time.time()
    unread = job("2026-11-01", "r1", async_status="submitted", submitted_at=now, expected_seconds=10.0)
    assert first_delay([unread], now, first_poll=2, poll_interval=30) == pytest.approx(9.0)
    assert first_delay([unread], now, first_poll=2, poll_interval=5) == 5  # never past poll_interval
    without = job("2026-11-02", "r2", async_status="submitted", submitted_at=now)
    assert first_delay([unread, without], now, first_poll=2, poll_interval=30) == 2
    # one reading of 90 % after 9 s: it ends within 1 s (progress since submission at the slowest), a
    # ninth of the time elapsed: due at that bound, no second reading
    read = {
        **unread,
        "percent": 90.0,
        "first_percent": 90.0,
        "first_progress_at": now + 9,
        "progress_at": now + 9,
    }
    assert due_at(read, now + 9) == pytest.approx(now + 9 + 1.0 * 1.03 + 0.1)
    assert next_poll_delay([read], now + 9, 9, first_poll=2, poll_interval=30) == pytest.approx(1.13)
    # one reading of 10 % after 2 s: the bound (18 s away) is far: a second reading, not due
    early = {
        **read,
        "percent": 10.0,
        "first_percent": 10.0,
        "first_progress_at": now + 2,
        "progress_at": now + 2,
    }
    assert due_at(early, now + 2) is None


def test_serialize_round_trip():
    trig = MetaInsightsTrigger(
        meta_conn_id="c",
        account_id="42",
        jobs=[job("2026-11-01", "r1")],
        poll_interval=15,
        first_poll=2,
        stall_timeout_minutes=7,
        max_concurrent_jobs=3,
        queued_timeout_minutes=45,
        probe_results=True,
    )
    path, kwargs = trig.serialize()
    assert path == "meta_ads_elt.triggers.insights.MetaInsightsTrigger"
    clone = MetaInsightsTrigger(**kwargs)
    assert clone.serialize() == (path, kwargs)
    import json

    json.dumps(kwargs)  # plain JSON, as the triggerer stores it


def test_success_when_every_job_completes_after_progress():
    trig, fake = make(
        [
            [status("Job Running", 30), status("Job Not Started", 0)],
            [status("Job Completed", 100), status("Job Running", 60)],
            [status("Job Completed", 100), status("Job Completed", 100)],
        ]
    )
    ev = run(trig)
    assert ev["status"] == "done"
    assert all(j["status"] == "completed" for j in ev["jobs"])
    # completed jobs are no longer polled; several running jobs go out as one batch call
    assert [len(r) for r in fake.requests] == [2, 2, 1]
    assert fake.requests[0][0]["path"] == ("r1",)


@pytest.mark.parametrize("terminal", ["Job Failed", "Job Skipped"])
def test_failed_or_skipped_job_yields_split(terminal):
    trig, _ = make([[status("Job Running", 10), status(terminal, 40)]])
    ev = run(trig)
    assert ev["status"] == "failed"
    assert [j["status"] for j in ev["jobs"]] == ["running", "failed"]


def test_stalled_job_yields_split_stalled():
    old = time.time() - 3600
    trig, _ = make(
        [[status("Job Running", 10)]],
        jobs=[job("2026-11-01", "r1", submitted_at=old, progress_at=old, percent=10.0)],
        stall_timeout_minutes=1,
    )
    ev = run(trig)
    assert ev["status"] == "stalled"


def test_free_slot_for_pending_job_wakes_the_operator():
    jobs = [job("2026-11-01", "r1"), {"key": "2026-11-02", "status": "pending", "report_run_id": None}]
    trig, _ = make([[status("Job Completed", 100)]], jobs=jobs, max_concurrent_jobs=1)
    ev = run(trig)
    assert ev["status"] == "slots_free"


def test_expired_token_yields_error_event():
    expired = {
        "error": {
            "message": "Error validating access token: Session has expired",
            "code": 190,
            "error_subcode": 463,
            "type": "OAuthException",
        }
    }
    trig, _ = make([[{"code": 400, "headers": [], "body": expired}, status("Job Running", 1)]])
    ev = run(trig)
    assert ev["status"] == "error"
    error = from_event(ev["error"])
    assert isinstance(error, MetaTokenError) and error.code == 190 and error.subcode == 463
    assert "Refresh the token" in error.message


def test_fatal_exception_from_the_batch_call_becomes_an_error_event():
    trig, _ = make([classify(400, {"error": {"code": 190, "message": "expired"}})])
    ev = run(trig)
    assert ev["status"] == "error" and isinstance(from_event(ev["error"]), MetaTokenError)


def test_unexpected_exception_becomes_a_scrubbed_error_event():
    trig, _ = make([RuntimeError("boom access_token=SECRETSECRET")])
    ev = run(trig)
    assert ev["status"] == "error" and "boom" in ev["message"] and "SECRETSECRET" not in ev["message"]
    error = from_event(ev["error"])
    assert type(error) is MetaApiError and not isinstance(error, MetaFatalError)  # Airflow may retry
    assert "boom" in error.message and "SECRETSECRET" not in error.message


def test_unknown_report_id_counts_as_failed():
    missing = {"error": {"message": "Unsupported get request", "code": 100, "error_subcode": 33}}
    trig, _ = make([[{"code": 400, "headers": [], "body": missing}, status("Job Running", 5)]])
    ev = run(trig)
    assert ev["status"] == "failed" and ev["jobs"][0]["status"] == "failed"


def test_poll_delay_follows_progress_rate_and_is_bounded():
    now = 1000.0
    one_reading = {
        "status": "running",
        "percent": 50.0,
        "submitted_at": now - 4,
        "first_progress_at": now,
        "first_percent": 50.0,
        "progress_at": now,
    }
    # one reading bounds the finish (<= 4 s away): poll halfway to get a second reading
    assert next_poll_delay([one_reading], now, 1.0, first_poll=1, poll_interval=30) == pytest.approx(2.0)
    # a first reading of 1 % says little about the rate: read again soon instead of waiting for the bound
    tiny = {**one_reading, "percent": 1.0, "first_percent": 1.0, "submitted_at": now - 1.6}
    assert next_poll_delay([tiny], now, 1.0, first_poll=1, poll_interval=30) == pytest.approx(1.6)
    two_readings = {
        "status": "running",
        "percent": 50.0,
        "submitted_at": now - 10,
        "first_progress_at": now - 2,
        "first_percent": 25.0,
        "progress_at": now,
    }
    # two readings give the rate (12.5 %/s): poll just after the predicted end
    assert next_poll_delay([two_readings], now, 1.0, first_poll=1, poll_interval=30) == pytest.approx(4.22)
    assert next_poll_delay([two_readings], now, 1.0, first_poll=1, poll_interval=2) == 2
    # nothing moved yet: back off from the previous delay
    assert (
        next_poll_delay([{"status": "running", "percent": 0}], now, 2.0, first_poll=1, poll_interval=30)
        == 3.2
    )


def test_the_trigger_polls_over_one_session_of_the_hook():
    trig, fake = make(
        [[status("Job Running", 50), status("Job Running", 50)], [status("Job Completed", 100)] * 2]
    )
    assert run(trig)["status"] == "done"
    assert fake.sessions == 1 and fake.calls == 2  # the hook's session (its timeout), not one of its own


def test_the_operator_raises_the_error_the_trigger_met_as_its_own_class():
    from meta_ads_elt.errors import MetaDataTooLargeError, to_event
    from meta_ads_elt.operators.insights import MetaInsightsOperator

    op = MetaInsightsOperator(task_id="i", account_id="act_1")
    for error in (
        classify(400, {"error": {"code": 190, "message": "expired"}}),
        classify(500, {"error": {"code": 2, "message": "try later"}}),
        MetaDataTooLargeError("less"),
    ):
        with pytest.raises(type(error)) as info:
            op._on_event({"status": "error", "jobs": [], "error": to_event(error)})
        assert type(info.value) is type(error) and info.value.message == error.message
    with pytest.raises(MetaApiError, match="does not know") as info:  # another version's event
        op._on_event({"status": "split", "jobs": []})
    assert not isinstance(info.value, MetaFatalError)  # Airflow retries; the retry re-attaches


def test_a_single_job_is_polled_with_one_plain_get():
    trig, fake = make(
        [[status("Job Running", 50)], [status("Job Completed", 100)]], jobs=[job("2026-11-01", "r1")]
    )
    ev = run(trig)
    assert ev["status"] == "done"
    assert all(r[0]["method"] == "GET" and r[0]["path"] == ("r1",) for r in fake.requests)


def test_kwargs_survive_airflow_serde_as_dag_test_and_the_triggerer_use_it():
    from airflow.sdk.serde import deserialize, serialize

    trig = MetaInsightsTrigger(
        meta_conn_id="c", account_id="1", jobs=[job("2026-11-01", "r1"), job("2026-11-02", "r2")]
    )
    path, kwargs = trig.serialize()
    assert MetaInsightsTrigger(**deserialize(serialize(kwargs))).serialize() == (path, kwargs)


def test_a_job_waiting_in_metas_queue_is_not_resubmitted_before_the_queued_timeout():
    long_ago = time.time() - 30 * 60  # 30 minutes at 0 %: beyond the 20-minute stall timeout
    queued = job("2026-11-01", "r1", submitted_at=long_ago, progress_at=long_ago)
    trig, _ = make(
        [[status("Job Not Started", 0)], [status("Job Completed", 100)]],
        jobs=[queued],
        stall_timeout_minutes=20,
        queued_timeout_minutes=60,
    )
    assert run(trig)["status"] == "done"  # polled on instead of resubmitted
    queued = job("2026-11-01", "r1", submitted_at=time.time() - 61 * 60, progress_at=time.time() - 61 * 60)
    trig, _ = make(
        [[status("Job Not Started", 0)]], jobs=[queued], stall_timeout_minutes=20, queued_timeout_minutes=60
    )
    event = run(trig)
    assert event["status"] == "stalled"  # after an hour: resubmitted


def test_a_running_job_without_progress_is_still_resubmitted_after_the_stall_timeout():
    stuck = job(
        "2026-11-01",
        "r1",
        submitted_at=time.time() - 25 * 60,
        progress_at=time.time() - 25 * 60,
        percent=42.0,
    )
    trig, _ = make(
        [[status("Job Running", 42)]], jobs=[stuck], stall_timeout_minutes=20, queued_timeout_minutes=60
    )
    assert run(trig)["status"] == "stalled"


def test_a_fatal_error_travels_as_fatal_in_the_event():
    from meta_ads_elt.errors import rate_limit_wait_error

    trig, _ = make([rate_limit_wait_error("1", 3600, 1800)], jobs=[job("2026-11-01", "r1")])
    event = run(trig)
    error = from_event(event["error"])
    assert event["status"] == "error" and isinstance(error, MetaRateLimitWaitError)
    assert isinstance(error, MetaFatalError) and "max_rate_limit_wait_minutes" in error.message


def test_the_first_status_read_in_the_triggerer_waits_the_settle_time():
    """A job done at once is still read no sooner than ``settle_seconds`` after the trigger starts (an
    earlier event races the scheduler's handling of the deferring try: apache/airflow#66374)."""
    done = {"async_status": "Job Completed", "async_percent_completion": 100}
    trig, fake = make([[done, done]], settle_seconds=0.4)
    started = time.monotonic()
    event = run(trig)
    assert event["status"] == "done" and fake.calls == 1
    assert time.monotonic() - started >= 0.4


TRANSIENT = {"code": 500, "headers": [], "body": {"error": {"message": "try later", "code": 2}}}


def test_a_transient_status_read_error_leaves_the_job_running_and_a_good_read_resets_its_count():
    now = time.time()
    progressed = job(
        "2026-11-01", "r1", percent=30.0, first_percent=30.0, first_progress_at=now, due_at=now + 9
    )
    trig, fake = make(
        [[TRANSIENT, status("Job Running", 50)], [TRANSIENT, status("Job Running", 60)]],
        jobs=[progressed, job("2026-11-02", "r2")],
    )
    before = dict(trig.jobs[0])
    assert asyncio.run(trig.poll(first_delay=0, max_polls=2)) is None  # no event: nothing to act on
    unread = trig.jobs[0]
    assert unread["status"] == "running" and unread["read_errors"] == 2
    assert {k: unread[k] for k in before} == before  # progress and due time untouched
    assert trig.jobs[1]["read_errors"] == 0 and trig.jobs[1]["percent"] == 60.0
    fake.script = [[status("Job Running", 70), status("Job Completed", 100)]]
    assert asyncio.run(trig.poll(first_delay=0, max_polls=1)) is None
    assert trig.jobs[0]["read_errors"] == 0 and trig.jobs[0]["percent"] == 70.0


def test_a_status_read_unreadable_read_error_limit_times_in_a_row_ends_in_a_retryable_error():
    from meta_ads_elt.errors import is_retryable
    from meta_ads_elt.triggers.insights import READ_ERROR_LIMIT

    trig, fake = make([[TRANSIENT, status("Job Running", 5)]])
    ev = run(trig)
    assert ev["status"] == "error" and fake.calls == READ_ERROR_LIMIT
    error = from_event(ev["error"])
    assert is_retryable(error) and not isinstance(error, MetaFatalError)  # Airflow retries the task
    assert error.code == 2 and "2026-11-01" in error.message and "r1" in error.message
    assert [j["status"] for j in ev["jobs"]] == ["running", "running"]  # nothing resubmitted


def test_a_batch_call_failing_after_the_hooks_retries_leaves_every_job_running():
    from meta_ads_elt.errors import classify_transport

    trig, _ = make([classify_transport(ConnectionResetError("peer"))])
    assert asyncio.run(trig.poll(first_delay=0, max_polls=1)) is None
    assert [(j["status"], j["read_errors"]) for j in trig.jobs] == [("running", 1), ("running", 1)]


def test_a_refused_appsecret_proof_on_a_status_read_ends_the_poll():
    wrong_proof = {"error": {"message": "Invalid appsecret_proof provided in the API argument", "code": 100}}
    trig, _ = make([[{"code": 400, "headers": [], "body": wrong_proof}]], jobs=[job("2026-11-01", "r1")])
    ev = run(trig)
    assert ev["status"] == "error" and isinstance(from_event(ev["error"]), MetaFatalError)
    assert ev["jobs"][0]["status"] == "running"  # not resubmitted: a new run would be read the same way
