"""Insights and ad-object extraction against the real sandbox over HTTP (no mocks of our code).

Every test runs the operators as Airflow would (``execute`` with a minimal context, the trigger driven
as the triggerer or ``dag.test`` drives it) and reconciles the lake with ``/_sandbox/truth``.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import gc
import glob
import hashlib
import hmac
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from decimal import Decimal
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from airflow.sdk.exceptions import TaskDeferred
from meta_ads_elt.errors import MetaBeyondRetentionError, MetaTokenError
from meta_ads_elt.governor import get_governor
from meta_ads_elt.operators.ad_objects import MetaAdObjectsOperator
from meta_ads_elt.operators.insights import MetaInsightsOperator, oldest_served_date

from tests.sandboxes import still_now

pytestmark = pytest.mark.e2e

NOW = "2026-11-20T12:00:00+00:00"
D = "2026-11-19"  # data-interval day: the UTC day before the sandbox's "now"
LOOKBACK = 28
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def connect(monkeypatch, sb, token=None, conn_id="meta_default"):
    extra = sb.connection_extra(timeout=20)
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}",
        json.dumps({"conn_type": "meta_graph_api", "password": token or sb.token, "extra": extra}),
    )


def accounts(sb):
    return [a["account_id"] for a in sb.world()["accounts"]]


def insights_op(account, lake, **kw):
    kw.setdefault("data_interval_day", D)
    kw.setdefault("lookback_days", LOOKBACK)
    kw.setdefault("deferrable", False)
    kw.setdefault("first_poll", 0.2)
    kw.setdefault("poll_interval", 1.0)
    return MetaInsightsOperator(
        task_id=f"insights_{account}", account_id=f"act_{account}", lake_root=str(lake), **kw
    )


def window():
    until = dt.date.fromisoformat(D)
    return (until - dt.timedelta(days=LOOKBACK - 1)).isoformat(), D


def lake_table(lake):
    files = glob.glob(f"{lake}/insights/**/*.parquet", recursive=True)
    return ds.dataset(files, format="parquet", partitioning="hive").to_table()


def lake_totals(lake):
    totals = collections.defaultdict(
        lambda: {"spend": Decimal(0), "impressions": 0, "clicks": 0, "leads": Decimal(0)}
    )
    for r in lake_table(lake).to_pylist():
        t = totals[(str(r["account_id"]), str(r["date"]))]
        t["spend"] += r["spend"] or 0
        t["impressions"] += r["impressions"] or 0
        t["clicks"] += r["clicks"] or 0
        t["leads"] += sum((a["value"] or 0) for a in (r["actions"] or []) if a["action_type"] == "lead")
    return {k: v for k, v in totals.items() if v["impressions"] or v["spend"]}


def truth_totals(sb, accts):
    since, until = window()
    return {
        (r["account_id"], r["date"]): {
            "spend": Decimal(r["spend"]),
            "impressions": r["impressions"],
            "clicks": r["clicks"],
            "leads": Decimal(r["leads_reported"]),
        }
        for r in sb.truth(since, until)["accounts"]
        if r["account_id"] in accts
    }


def assert_reconciles(sb, lake, accts):
    got, want = lake_totals(lake), truth_totals(sb, accts)
    assert want, "the truth has rows for the window"
    assert sorted(got) == sorted(want)
    for key in want:
        assert got[key] == want[key], key  # to the cent (decimals, never floats)


def no_duplicates(lake):
    keys = [(r["account_id"], str(r["date"]), r["ad_id"]) for r in lake_table(lake).to_pylist()]
    assert len(keys) == len(set(keys))


def event_of_rebuilt(trigger):
    """The first event of ``trigger`` rebuilt from its serialized form, as the triggerer rebuilds it."""
    path, kwargs = trigger.serialize()
    module, name = path.rsplit(".", 1)
    rebuilt = getattr(__import__(module, fromlist=[name]), name)(**json.loads(json.dumps(kwargs)))

    async def first():
        async for ev in rebuilt.run():
            return ev.payload

    return asyncio.run(first())


@pytest.fixture
def fixed_sandbox(sandbox_factory):
    return sandbox_factory(now=NOW)


def test_28_days_for_3_accounts_in_3_timezones_reconcile_and_rerun_is_identical(
    fixed_sandbox, monkeypatch, tmp_path
):
    sb = fixed_sandbox
    connect(monkeypatch, sb)
    world = sb.world()["accounts"]
    assert len({a["timezone_name"] for a in world}) == 3
    accts = [a["account_id"] for a in world]
    for a in accts:
        result = insights_op(a, tmp_path).execute({"run_id": "first"})
        assert result["partitions"] == LOOKBACK
    assert_reconciles(sb, tmp_path, accts)
    no_duplicates(tmp_path)
    # every date of the window is a partition (empty dates included)
    for a in accts:
        assert len(glob.glob(f"{tmp_path}/insights/account_id={a}/date=*")) == LOOKBACK
    manifests = glob.glob(f"{tmp_path}/_manifests/insights/*.json")
    with open(manifests[0]) as fh:
        m = json.load(fh)
    assert m["attribution_windows"] == ["7d_click", "1d_view"] and m["report_run_ids"] and m["rows"] > 0

    def content():
        t = lake_table(tmp_path).drop_columns(["_extracted_at", "_report_run_id"])
        return sorted(json.dumps(r, default=str, sort_keys=True) for r in t.to_pylist())

    before = content()
    for a in accts:
        insights_op(a, tmp_path).execute({"run_id": "second"})
    assert content() == before
    no_duplicates(tmp_path)
    assert not glob.glob(f"{tmp_path}/_state/insights/**/*.json", recursive=True)  # state cleared on success


def test_deferrable_run_defers_then_completes_from_the_trigger_event(fixed_sandbox, monkeypatch, tmp_path):
    """What the triggerer (or ``dag.test``) does: execute -> TaskDeferred -> trigger.run() -> execute_complete."""
    sb = fixed_sandbox
    connect(monkeypatch, sb)
    acct = accounts(sb)[0]
    op = insights_op(acct, tmp_path, deferrable=True, worker_poll_seconds=0)  # defer at once
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({"run_id": "d"})
    event = event_of_rebuilt(deferred.value.trigger)
    assert event["status"] == "done"
    result = MetaInsightsOperator(
        task_id="x",
        account_id=f"act_{acct}",
        lake_root=str(tmp_path),
        data_interval_day=D,
        lookback_days=LOOKBACK,
    ).execute_complete({"run_id": "d"}, event)
    assert result["rows"] > 0
    assert_reconciles(sb, tmp_path, [acct])


def asyncio_complaints(caplog, caught) -> list[str]:
    """What asyncio and aiohttp said about async generators, tasks or sessions left open at the end of an
    ``asyncio.run``: "an error occurred during closing of asynchronous generator" (``aclose(): asynchronous
    generator is already running`` / ``async generator ignored GeneratorExit``), "Task was destroyed but
    it is pending", "Unclosed client session" (logged, and a ResourceWarning)."""
    gc.collect()  # an unclosed session complains when it is collected
    logged = [r.getMessage() for r in caplog.records if r.name == "asyncio" and r.levelno >= logging.WARNING]
    warned = [
        str(w.message)
        for w in caught
        if issubclass(w.category, ResourceWarning) and "lient" in str(w.message)
    ]
    return logged + warned


def test_the_trigger_leaves_nothing_open_for_asyncio_run_to_close(
    fixed_sandbox, monkeypatch, tmp_path, caplog
):
    """The trigger run to its event as ``airflow dags test`` runs it (``anext(trigger.run(), None)`` in
    ``asyncio.run``: airflow.sdk.execution_time.supervisor.InProcessTestSupervisor.run_trigger_in_process,
    which never closes the generator), and the operator's own wait in the worker (``deferrable=False``):
    ``asyncio.run`` closes every async generator still open at its end all at once, so a generator that
    yields holding an HTTP session or an inner generator was closed from two tasks and logged an ERROR."""
    sb = fixed_sandbox
    connect(monkeypatch, sb)
    acct = accounts(sb)[0]
    with pytest.raises(TaskDeferred) as deferred:
        insights_op(acct, tmp_path, deferrable=True, worker_poll_seconds=0).execute({"run_id": "c"})
    _, kwargs = deferred.value.trigger.serialize()
    trigger = type(deferred.value.trigger)(**{**kwargs, "settle_seconds": 0})  # no scheduler to wait for
    with caplog.at_level(logging.WARNING, logger="asyncio"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        event = asyncio.run(anext(trigger.run(), None))
        assert event is not None and event.payload["status"] == "done"
        assert asyncio_complaints(caplog, caught) == []
        caplog.clear()
        result = insights_op(acct, tmp_path / "worker").execute({"run_id": "w"})  # asyncio.run in the worker
        assert result["rows"] > 0
        assert asyncio_complaints(caplog, caught) == []


def test_a_deferred_job_due_by_its_rate_completes_from_the_due_event(sandbox_factory, monkeypatch, tmp_path):
    """The triggerer's trigger (rebuilt from its serialized form) wakes the operator with ``due``; the
    operator, in execute_complete, reads the first results page as the confirmation and lands the window."""
    from meta_ads_elt.triggers.insights import SETTLE_SECONDS

    # still running at the triggerer's first read (which waits SETTLE_SECONDS): its rate is learnt
    sb = sandbox_factory(now=NOW, job_base_seconds=SETTLE_SECONDS + 4)
    connect(monkeypatch, sb)
    acct = accounts(sb)[0]
    op = insights_op(acct, tmp_path, deferrable=True, worker_poll_seconds=0, first_poll=1.2, poll_interval=5)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({"run_id": "dd"})
    event = event_of_rebuilt(deferred.value.trigger)
    assert event["status"] == "due"
    result = insights_op(acct, tmp_path, deferrable=True).execute_complete({"run_id": "dd"}, event)
    with open(result["manifest"]) as fh:
        assert json.load(fh)["confirmed_by_first_page"] == [event["jobs"][0]["key"]]
    assert_reconciles(sb, tmp_path, [acct])


def test_jobs_done_within_the_worker_poll_never_defer(fixed_sandbox, monkeypatch, tmp_path):
    """The deferral race of apache/airflow#66374 / #71580: never defer on jobs that are already done."""
    sb = fixed_sandbox
    connect(monkeypatch, sb)
    acct = accounts(sb)[0]
    result = insights_op(acct, tmp_path, deferrable=True, worker_poll_seconds=10).execute({"run_id": "quick"})
    assert result["rows"] > 0  # finished in the worker: no TaskDeferred
    assert_reconciles(sb, tmp_path, [acct])


def test_a_reattaching_try_reads_its_jobs_before_deferring_even_with_no_worker_poll(
    fixed_sandbox, monkeypatch, tmp_path
):
    """A try that re-attaches to report runs Meta finished while the task was down completes in the
    worker instead of deferring on finished work (apache/airflow#66374), whatever worker_poll_seconds."""
    sb = fixed_sandbox
    connect(monkeypatch, sb)
    acct = accounts(sb)[0]
    with pytest.raises(TaskDeferred) as deferred:  # try 1 submits and defers at once; the task then dies
        insights_op(acct, tmp_path, deferrable=True, worker_poll_seconds=0).execute({"run_id": "down"})
    run_ids = [j["report_run_id"] for j in deferred.value.trigger.jobs]
    time.sleep(3)  # the sandbox's runs finish meanwhile
    calls_before = sb.stats()["total"]
    result = insights_op(acct, tmp_path, deferrable=True, worker_poll_seconds=0).execute({"run_id": "down"})
    assert result["rows"] > 0  # no TaskDeferred: the re-attaching try read its finished runs
    assert sb.stats()["total"] > calls_before
    assert_reconciles(sb, tmp_path, [acct])
    assert run_ids and all(run_ids)


def test_jobs_still_running_defer_with_their_last_polled_status(sandbox_factory, monkeypatch, tmp_path):
    sb = sandbox_factory(now=NOW, job_base_seconds=6)
    connect(monkeypatch, sb)
    acct = accounts(sb)[0]
    op = insights_op(acct, tmp_path, deferrable=True, worker_poll_seconds=2.5, first_poll=1.5)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({"run_id": "slow"})
    jobs = deferred.value.trigger.jobs
    assert sb.stats()["by_endpoint"].get("GET /{report_run_id}", 0) >= 1  # checked before deferring
    assert all(j["status"] == "running" and j["async_status"] != "submitted" for j in jobs)


def test_a_retry_reattaches_to_running_jobs_instead_of_resubmitting(sandbox_factory, monkeypatch, tmp_path):
    sb = sandbox_factory(now=NOW, job_base_seconds=2)
    connect(monkeypatch, sb)
    acct = accounts(sb)[0]
    with pytest.raises(TaskDeferred):  # try 1 dies deferred
        insights_op(acct, tmp_path, deferrable=True, chunk_days=7, worker_poll_seconds=0).execute(
            {"run_id": "r"}
        )
    submitted = sb.stats()["by_endpoint"].get("POST /act_{id}/insights")
    assert submitted == 4
    result = insights_op(acct, tmp_path, chunk_days=7).execute({"run_id": "r"})  # try 2
    assert sb.stats()["by_endpoint"].get("POST /act_{id}/insights") == submitted  # nothing resubmitted
    assert result["rows"] > 0
    assert_reconciles(sb, tmp_path, [acct])


@pytest.mark.slow
def test_chaos_profile_still_reconciles(sandbox_factory, monkeypatch, tmp_path):
    """10 % transient errors, throttle bursts, 20 % failed jobs, dropped connections, null batch items."""
    sb = sandbox_factory(now=NOW, faults="chaos", job_base_seconds=0.3)
    connect(monkeypatch, sb)
    gov = get_governor()
    # The sandbox announces 1-minute regain times; this test caps a single wait to stay fast
    # (the waiting itself is covered in test_governor / test_graph_api_hook).
    monkeypatch.setattr(gov, "max_pause", 2.0)
    accts = accounts(sb)
    for a in accts:
        insights_op(a, tmp_path, chunk_days=7).execute({"run_id": "chaos"})
    assert_reconciles(sb, tmp_path, accts)
    no_duplicates(tmp_path)
    stats = sb.stats()
    assert stats["errors"] > 0 or stats["dropped"] > 0  # faults really happened


def test_failed_jobs_are_split_by_dates_then_campaigns(sandbox_factory, monkeypatch, tmp_path):
    # Jobs estimated above 5 rows end "Job Failed": one day of 8 ads is too much, one campaign (4 ads) fits.
    sb = sandbox_factory(now=NOW, faults=json.dumps({"too_much_data": {"max_rows": 5}}))
    connect(monkeypatch, sb)
    acct = accounts(sb)[0]
    result = insights_op(acct, tmp_path, lookback_days=3, chunk_days=3).execute({"run_id": "split"})
    with open(result["manifest"]) as fh:
        manifest = json.load(fh)
    assert any("#c" in key for key in manifest["report_run_ids"])  # split by campaign
    since = (dt.date.fromisoformat(D) - dt.timedelta(days=2)).isoformat()
    truth = {
        (r["account_id"], r["date"]): Decimal(r["spend"])
        for r in sb.truth(since, D)["accounts"]
        if r["account_id"] == acct
    }
    got = {k: v["spend"] for k, v in lake_totals(tmp_path).items()}
    assert got == truth
    # the campaign split kept the archived and deleted campaigns' ads (no default campaigns listing)
    retired = {
        (r["ad_id"], r["date"])
        for r in sb.truth(since, D)["archived_or_deleted_ads"]
        if r["account_id"] == acct
    }
    rows = {(str(r["ad_id"]), str(r["date"])) for r in lake_table(tmp_path).to_pylist()}
    assert retired and retired <= rows


def test_pages_shrink_when_meta_asks_for_less_data(sandbox_factory, monkeypatch, tmp_path):
    sb = sandbox_factory(now=NOW, faults=json.dumps({"too_much_data": {"max_page_rows": 40}}))
    connect(monkeypatch, sb)
    acct = accounts(sb)[0]
    insights_op(acct, tmp_path, chunk_days=28).execute({"run_id": "pages"})
    assert_reconciles(sb, tmp_path, [acct])


def test_stalled_jobs_are_resubmitted(sandbox_factory, monkeypatch, tmp_path):
    sb = sandbox_factory(now=NOW, job_base_seconds=0.2, faults=json.dumps({"jobs": {"stalled_rate": 0.5}}))
    connect(monkeypatch, sb)
    acct = accounts(sb)[0]
    insights_op(acct, tmp_path, chunk_days=7, stall_timeout_minutes=0.02).execute({"run_id": "stall"})
    assert sb.stats()["by_endpoint"]["POST /act_{id}/insights"] > 4
    assert_reconciles(sb, tmp_path, [acct])


def test_restated_conversions_are_picked_up_after_the_clock_moves(fixed_sandbox, monkeypatch, tmp_path):
    sb = fixed_sandbox
    connect(monkeypatch, sb)
    acct = accounts(sb)[0]
    insights_op(acct, tmp_path).execute({"run_id": "day1"})
    before = lake_totals(tmp_path)
    sb.set_clock(advance_days=3)  # later conversions get reported for the same days
    insights_op(acct, tmp_path).execute({"run_id": "day1-rerun"})
    after = lake_totals(tmp_path)
    assert_reconciles(sb, tmp_path, [acct])
    assert any(before[k]["leads"] != after[k]["leads"] for k in before)  # something was restated


def test_expired_token_fails_at_once_with_a_clear_message(sandbox, monkeypatch, tmp_path):
    connect(monkeypatch, sandbox, token="sandbox-expired-token")
    acct = accounts(sandbox)[0]
    sandbox.reset_stats()
    started = time.monotonic()
    with pytest.raises(MetaTokenError, match="Refresh the token"):
        insights_op(acct, tmp_path).execute({"run_id": "expired"})
    assert time.monotonic() - started < 5
    # one call per job submitted concurrently at most; none of them retried
    assert sandbox.stats()["by_endpoint"].get("POST /act_{id}/insights", 0) <= 4
    assert not glob.glob(f"{tmp_path}/insights/**/*.parquet", recursive=True)


def test_token_and_proof_never_reach_the_logs(sandbox, monkeypatch, tmp_path, caplog, capsys):
    connect(monkeypatch, sandbox)
    proof = hmac.new(sandbox.app_secret.encode(), sandbox.token.encode(), hashlib.sha256).hexdigest()
    caplog.set_level(logging.DEBUG)  # urllib3 logs every request line, query string included
    acct = accounts(sandbox)[0]
    insights_op(acct, tmp_path, lookback_days=3).execute({"run_id": "logs"})
    MetaAdObjectsOperator(task_id="o", account_id=acct, lake_root=str(tmp_path)).execute({"run_id": "logs"})
    out = capsys.readouterr()
    for text in (caplog.text, out.out, out.err):
        assert sandbox.token not in text
        assert proof not in text
    assert "access_token=***" in caplog.text  # the request lines were logged, scrubbed


def test_ad_objects_snapshot_holds_every_object_with_its_status(fixed_sandbox, monkeypatch, tmp_path):
    sb = fixed_sandbox
    connect(monkeypatch, sb)
    world = sb.world()["accounts"][0]
    acct = world["account_id"]
    insights_op(acct, tmp_path).execute({"run_id": "first"})  # the DAG runs the snapshot after the insights
    op = MetaAdObjectsOperator(task_id="o", account_id=f"act_{acct}", lake_root=str(tmp_path))
    counts = op.execute({"run_id": "snap"})
    seen_in_insights = {str(r["ad_id"]) for r in lake_table(tmp_path).to_pylist()}
    expected = {
        o["id"]: o
        for o in world["objects"]
        if o["effective_status"] != "DELETED" or o["id"] in seen_in_insights or o["level"] != "ad"
    }
    ads = {r["ad_id"]: r for r in ds.dataset(f"{tmp_path}/ads", partitioning="hive").to_table().to_pylist()}
    want_ads = {i for i, o in expected.items() if o["level"] == "ad"}
    assert set(ads) == want_ads and counts["ads"] == len(want_ads)
    assert {r["effective_status"] for r in ads.values()} >= {"ACTIVE", "ARCHIVED", "DELETED"}
    for ad_id, row in ads.items():
        assert (row["effective_status"], row["configured_status"]) == (
            expected[ad_id]["effective_status"],
            expected[ad_id]["configured_status"],
        ), ad_id
        assert row["updated_time"] is not None
    assert seen_in_insights <= set(ads)  # every ad with rows has a snapshot row (deleted ones read by id)
    campaigns = ds.dataset(f"{tmp_path}/campaigns", partitioning="hive").to_table().to_pylist()
    assert "DELETED" in {r["effective_status"] for r in campaigns}
    table = ds.dataset(f"{tmp_path}/accounts", partitioning="hive").to_table().to_pylist()
    assert table[0]["currency"] == world["currency"] and table[0]["timezone_name"] == world["timezone_name"]
    assert table[0]["promoted_page_ids"] == [world["page_id"]]
    # A rerun replaces the snapshot, and carries the deleted objects forward without reading them again.
    batches = sb.stats()["by_endpoint"].get("POST /batch", 0)
    assert op.execute({"run_id": "snap2"}) == counts
    assert sb.stats()["by_endpoint"].get("POST /batch", 0) == batches
    again = ds.dataset(f"{tmp_path}/ads", partitioning="hive").to_table()
    assert again.num_rows == len(want_ads) and {str(x) for x in again.column("account_id").to_pylist()} == {
        acct
    }


def test_archived_and_deleted_ads_reconcile_and_vanish_without_the_status_filter(
    fixed_sandbox, monkeypatch, tmp_path
):
    sb = fixed_sandbox
    connect(monkeypatch, sb)
    acct = accounts(sb)[0]
    since, until = window()
    retired = {
        (r["ad_id"], r["date"]): r
        for r in sb.truth(since, until)["archived_or_deleted_ads"]
        if r["account_id"] == acct
    }
    assert {r["effective_status"] for r in retired.values()} == {"ARCHIVED", "DELETED"}
    assert any(
        r["spend"] == "0.00" and r["leads_reported"] for r in retired.values()
    )  # actions after deletion

    def ad_rows(lake):
        return {(str(r["ad_id"]), str(r["date"])): r for r in lake_table(lake).to_pylist()}

    insights_op(acct, tmp_path / "every").execute({"run_id": "every"})
    rows = ad_rows(tmp_path / "every")
    for key, want in retired.items():
        got = rows[key]
        leads = sum(a["value"] for a in got["actions"] or [] if a["action_type"] == "lead")
        assert (got["spend"], got["impressions"], leads) == (
            Decimal(want["spend"]),
            want["impressions"],
            want["leads_reported"],
        ), key
    assert_reconciles(sb, tmp_path / "every", [acct])

    insights_op(acct, tmp_path / "default", effective_statuses=None).execute({"run_id": "default"})
    assert not set(ad_rows(tmp_path / "default")) & set(retired)  # Meta leaves them all out
    lost = sum(Decimal(r["spend"]) for r in retired.values())
    got = sum(v["spend"] for v in lake_totals(tmp_path / "default").values())
    want = sum(v["spend"] for v in truth_totals(sb, [acct]).values())
    assert lost > 0 and got == want - lost


def test_account_totals_land_beside_the_rows_one_per_date(fixed_sandbox, monkeypatch, tmp_path):
    sb = fixed_sandbox
    connect(monkeypatch, sb)
    acct = accounts(sb)[0]
    sb.reset_stats()
    insights_op(acct, tmp_path).execute({"run_id": "totals"})
    # the time zone and the daily totals in ONE call: insights expanded in the account's fields
    calls = sb.stats()["by_endpoint"]
    assert calls.get("GET /act_{id}") == 1 and "GET /act_{id}/insights" not in calls
    files = glob.glob(f"{tmp_path}/insights_account_totals/**/*.parquet", recursive=True)
    totals = ds.dataset(files, format="parquet", partitioning="hive").to_table().to_pylist()
    assert len(totals) == LOOKBACK and len({str(t["date"]) for t in totals}) == LOOKBACK
    truth = truth_totals(sb, [acct])
    for t in totals:
        want = truth[(acct, str(t["date"]))]
        assert (t["spend"], t["impressions"], t["clicks"]) == (
            want["spend"],
            want["impressions"],
            want["clicks"],
        )
        assert t["timezone_name"] == "America/Los_Angeles"
        assert str(t["served_local_date"]) == "2026-11-20"  # 04:00 in Los Angeles at the sandbox's 12:00Z
        assert t["served_at"].isoformat().startswith("2026-11-20T12:00")  # Meta's clock, not ours
    assert lake_totals(tmp_path) == {k: v for k, v in truth.items()}  # the ad rows sum to the totals


def test_account_totals_beyond_500_days_come_from_the_edge_s_second_page(
    sandbox_factory, monkeypatch, tmp_path
):
    """A backfill longer than one page (``limit=500``): the expanded edge serves the first 500 days, the
    rest is read from the edge after that page's cursor. Were that second page dropped, its days would
    get zeros and the completeness control would flag (or hide) the wrong days."""
    sb = sandbox_factory(now=NOW, history_days=600, accounts=1)
    connect(monkeypatch, sb)
    acct = accounts(sb)[0]
    days = 520
    since = (dt.date.fromisoformat(D) - dt.timedelta(days=days - 1)).isoformat()
    truth = {r["date"]: r for r in sb.truth(since, D)["accounts"] if r["account_id"] == acct}
    # a row for every date, the 20 past the first page delivering: zeros there would show
    assert len(truth) == days and all(truth[d]["impressions"] > 0 for d in sorted(truth)[500:])
    sb.reset_stats()
    insights_op(acct, tmp_path, lookback_days=days).execute({"run_id": "backfill"})
    files = glob.glob(f"{tmp_path}/insights_account_totals/**/*.parquet", recursive=True)
    totals = ds.dataset(files, format="parquet", partitioning="hive").to_table().to_pylist()
    assert sorted(str(t["date"]) for t in totals) == sorted(truth)
    for t in totals:
        want = truth[str(t["date"])]
        got = (t["spend"], t["impressions"], t["clicks"], t["account_currency"])
        assert got == (Decimal(want["spend"]), want["impressions"], want["clicks"], want["currency"]), want
    ad_sums = {date: v["spend"] for (_, date), v in lake_totals(tmp_path).items()}
    assert ad_sums == {d: Decimal(r["spend"]) for d, r in truth.items()}  # the control holds on every day
    # the totals: the account node with the edge expanded (first 500 rows), then one page of the edge
    calls = sb.stats()["by_endpoint"]
    assert (calls.get("GET /act_{id}"), calls.get("GET /act_{id}/insights")) == (1, 1)


def test_a_day_still_going_on_is_extracted_as_it_stands_and_marked_partial(
    sandbox_factory, monkeypatch, tmp_path
):
    sb = sandbox_factory(now="2026-11-20T03:00:00Z")  # 19:00 on the 19th in Los Angeles; the 20th elsewhere
    connect(monkeypatch, sb)
    for acct in accounts(sb):
        result = insights_op(acct, tmp_path).execute({"run_id": "partial"})
        with open(result["manifest"]) as fh:
            manifest = json.load(fh)
        la = acct == accounts(sb)[0]
        assert manifest["partial_dates"] == (["2026-11-19"] if la else [])
    truth = {(r["account_id"], r["date"]): r for r in sb.truth("2026-11-19", "2026-11-19")["accounts"]}
    assert [k for k, r in truth.items() if r["partial"]] == [(accounts(sb)[0], "2026-11-19")]
    assert_reconciles(sb, tmp_path, accounts(sb))  # the partial day as it stood, to the cent


def test_a_job_at_100_percent_whose_results_are_not_loadable_yet_is_read_once_they_are(
    sandbox_factory, monkeypatch, tmp_path
):
    sb = sandbox_factory(now=NOW, faults={"jobs": {"running_at_100_seconds": 0.5, "unreadable_reads": 2}})
    connect(monkeypatch, sb)
    acct = accounts(sb)[0]
    insights_op(acct, tmp_path).execute({"run_id": "2601"})
    assert sb.stats()["by_error_code"].get("2601", 0) >= 2  # answered 2601, retried, not failed
    assert sb.stats()["by_endpoint"]["POST /act_{id}/insights"] == 1
    assert_reconciles(sb, tmp_path, [acct])


def test_a_job_due_by_its_progress_is_confirmed_by_its_first_results_page(
    sandbox_factory, monkeypatch, tmp_path
):
    """Two progress readings give the job's rate; when it should be done, its first results page is read
    (Meta serves none before ``Job Completed``) instead of a status read that would only confirm it."""
    sb = sandbox_factory(now=NOW, job_base_seconds=3)
    connect(monkeypatch, sb)
    acct = accounts(sb)[0]
    result = insights_op(acct, tmp_path, first_poll=1.2).execute({"run_id": "due"})
    with open(result["manifest"]) as fh:
        manifest = json.load(fh)
    assert manifest["confirmed_by_first_page"] == list(manifest["report_run_ids"])
    stats = sb.stats()
    assert "2601" not in stats["by_error_code"]  # never read before it was done
    assert stats["by_endpoint"]["GET /{report_run_id}"] >= 2  # the readings that gave its rate
    assert_reconciles(sb, tmp_path, [acct])


def test_the_next_run_reads_the_status_once_just_before_the_job_took_last_time(
    sandbox_factory, monkeypatch, tmp_path
):
    """The account's last job of that size took T: the next one's first status read comes at 0.9 T; its
    upper-bound finish is then close, so its first page is read at that bound (one status read)."""
    sb = sandbox_factory(now=NOW, job_base_seconds=3)
    connect(monkeypatch, sb)
    acct = accounts(sb)[0]
    insights_op(acct, tmp_path, first_poll=1.2, poll_interval=5).execute({"run_id": "day1"})
    pace = glob.glob(f"{tmp_path}/_state/insights_pace/{acct}*")
    assert pace, "the run recorded how long its job took"
    sb.reset_stats()
    result = insights_op(acct, tmp_path, first_poll=1.2, poll_interval=5).execute({"run_id": "day2"})
    with open(result["manifest"]) as fh:
        manifest = json.load(fh)
    stats = sb.stats()
    assert stats["by_endpoint"]["GET /{report_run_id}"] == 1 and "2601" not in stats["by_error_code"]
    assert manifest["confirmed_by_first_page"] == list(manifest["report_run_ids"])
    assert_reconciles(sb, tmp_path, [acct])


def test_a_first_page_refused_as_not_ready_sends_the_job_back_to_status_reads(
    sandbox_factory, monkeypatch, tmp_path
):
    sb = sandbox_factory(now=NOW, job_base_seconds=3, faults={"jobs": {"unreadable_reads": 1}})
    connect(monkeypatch, sb)
    acct = accounts(sb)[0]
    result = insights_op(acct, tmp_path, first_poll=1.2).execute({"run_id": "early"})
    with open(result["manifest"]) as fh:
        manifest = json.load(fh)
    assert manifest["confirmed_by_first_page"] == []  # refused once (2601): polled, then read
    assert sb.stats()["by_error_code"].get("2601") == 1  # the probe is not retried as a transient error
    assert sb.stats()["by_endpoint"]["POST /act_{id}/insights"] == 1
    assert_reconciles(sb, tmp_path, [acct])


def test_a_queued_job_is_not_resubmitted_before_the_queued_timeout(sandbox_factory, monkeypatch, tmp_path):
    sb = sandbox_factory(now=NOW, faults={"jobs": {"queued_minutes": 0.05}})  # 3 s at 0 % in Meta's queue
    connect(monkeypatch, sb)
    acct = accounts(sb)[0]
    insights_op(acct, tmp_path, stall_timeout_minutes=0.01, queued_timeout_minutes=5).execute({"run_id": "q"})
    assert sb.stats()["by_endpoint"]["POST /act_{id}/insights"] == 1  # waited, not resubmitted after 0.6 s
    assert_reconciles(sb, tmp_path, [acct])
    sb.reset_stats()
    from meta_ads_elt.errors import MetaJobFailedError

    with pytest.raises(MetaJobFailedError):  # impatient: every resubmission queues again, until it gives up
        insights_op(
            acct,
            tmp_path / "impatient",
            lookback_days=1,
            stall_timeout_minutes=5,
            queued_timeout_minutes=0.01,
        ).execute({"run_id": "q2"})
    assert sb.stats()["by_endpoint"]["POST /act_{id}/insights"] > 3  # resubmitted after the (short) wait


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ({"effective_statuses": ["ACTIVE", "REMOVED"]}, "REMOVED"),
        ({"attribution_windows": ["7d_click", "2d_click"]}, "2d_click"),
    ],
)
def test_a_setting_meta_rejects_fails_at_once_naming_the_value(
    sandbox, monkeypatch, tmp_path, setting, value
):
    """Refused by our config validation when the operator is built (a window Meta does not offer) or by
    Meta's answer (a status it does not know): either way at once, naming the value."""
    from meta_ads_elt.config import ConfigError
    from meta_ads_elt.errors import MetaParameterError

    connect(monkeypatch, sandbox)
    started = time.monotonic()
    with pytest.raises((MetaParameterError, ConfigError)) as raised:
        insights_op(accounts(sandbox)[0], tmp_path, **setting).execute({"run_id": "bad"})
    assert value in str(raised.value) and time.monotonic() - started < 10
    assert not glob.glob(f"{tmp_path}/insights/**/*.parquet", recursive=True)


def test_a_task_killed_mid_write_leaves_the_lake_valid(sandbox_factory, tmp_path):
    sb = sandbox_factory(now=NOW, latency_ms=30)
    acct = accounts(sb)[0]
    lake = tmp_path / "lake"
    script = textwrap.dedent(f"""
        import json, os
        os.environ["AIRFLOW_CONN_META_DEFAULT"] = json.dumps({{"conn_type": "meta_graph_api",
            "password": {sb.token!r}, "extra": {{"base_url": {sb.url!r}}}}})
        from meta_ads_elt.operators.insights import MetaInsightsOperator
        op = MetaInsightsOperator(task_id="t", account_id="{acct}", lake_root={str(lake)!r}, data_interval_day="{D}",
                                  lookback_days={LOOKBACK}, deferrable=False, first_poll=0.2, page_limit=5,
                                  read_concurrency=1)
        op.execute({{"run_id": "{{run}}"}})
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([f"{REPO}/plugins", f"{REPO}/include"])}
    # a first complete run
    subprocess.run(
        [sys.executable, "-c", script.replace("{run}", "complete")],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    before = lake_table(lake).num_rows
    assert before > 0
    posted = sb.stats()["by_endpoint"]["POST /act_{id}/insights"]
    # a second run, killed while it streams pages into the staging area
    proc = subprocess.Popen(
        [sys.executable, "-c", script.replace("{run}", "killed")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pages_before = sb.stats()["by_endpoint"].get("GET /{report_run_id}/insights", 0)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # kill once it is streaming result pages into its transaction
        if sb.stats()["by_endpoint"].get("GET /{report_run_id}/insights", 0) >= pages_before + 5:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert lake_table(lake).num_rows == before  # readers see the complete previous data
    no_duplicates(lake)
    # the retry re-attaches to the killed try's jobs (no resubmission) and completes the window
    subprocess.run(
        [sys.executable, "-c", script.replace("{run}", "retry")],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert sb.stats()["by_endpoint"]["POST /act_{id}/insights"] == posted * 2
    assert lake_table(lake).num_rows == before
    no_duplicates(lake)


def test_a_backfill_across_metas_37_months_lands_the_dates_meta_still_serves(
    sandbox_factory, monkeypatch, tmp_path
):
    """Meta keeps Insights 37 months and refuses an older start with code 3018 (Ad Account reference,
    "Error Codes"). A backfill whose window crosses that line gets the dates Meta still serves, equal to
    the truth, and leaves the older ones as the lake had them; a window wholly older fails at once,
    naming the first date to backfill from, without a call."""
    now = still_now()
    sb = sandbox_factory(now=now, history_days=1160, accounts=1)
    connect(monkeypatch, sb)
    acct = accounts(sb)[0]
    oldest = oldest_served_date(dt.date.fromisoformat(now[:10]))
    day = oldest + dt.timedelta(days=9)  # a 28-day window with its 18 oldest dates beyond the line
    beyond = [(day - dt.timedelta(days=27 - i)).isoformat() for i in range(18)]
    # the lake already holds a day now beyond the line (extracted back when Meta served it)
    kept_date = dt.date.fromisoformat(beyond[5])
    kept = {"account_id": acct, "date": kept_date, "date_start": kept_date, "date_stop": kept_date, "ad_id": "9",
            "adset_id": "8", "campaign_id": "7", "spend": Decimal("1.50"), "impressions": 10,
            "_extracted_at": dt.datetime(2023, 1, 1, tzinfo=dt.UTC)}  # fmt: skip
    from bench.lake_generator import write_rows

    write_rows(tmp_path, "insights", [kept], replace=False)

    result = insights_op(acct, tmp_path, data_interval_day=day.isoformat()).execute({"run_id": "old"})
    manifest = json.loads(Path(result["manifest"]).read_text())
    assert manifest["dates_beyond_retention"] == beyond and manifest["since"] == oldest.isoformat()
    assert sb.stats()["by_error_code"].get("3018", 0) == 0
    truth = {
        (r["account_id"], r["date"]): (Decimal(r["spend"]), r["impressions"])
        for r in sb.truth(oldest.isoformat(), day.isoformat())["accounts"]
        if r["impressions"]
    }
    assert len(truth) == 10, "the world delivers on the 10 dates Meta still serves"
    got = {k: (v["spend"], v["impressions"]) for k, v in lake_totals(tmp_path).items()}
    assert got == {**truth, (acct, beyond[5]): (Decimal("1.50"), 10)}

    sb.reset_stats()
    with pytest.raises(MetaBeyondRetentionError, match=f"backfill dates from {oldest} on"):
        insights_op(acct, tmp_path, data_interval_day=beyond[-1]).execute({"run_id": "older"})
    assert sb.stats()["total"] == 0
