"""Failure isolation against the sandbox (issue 15 item 4, issue 12 item 3): a day Meta cannot build or an
account the token lost access to is marked failed, and everything else is extracted, built, published and
equal to the truth.

Each extraction runs as Airflow runs it (``execute``); a task that raises gets the DAG's own
``on_failure_callback`` (its failure record), and ``publish`` / ``check_extractions`` run the same
functions the DAG's tasks call, on the task states such a run ends with (the trigger rules that let them
run are proven through real Airflow in tests/e2e/test_failure_isolation_in_airflow.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest
from marts_vs_truth import reconcile
from meta_ads_elt.callbacks import log_failed_try
from meta_ads_elt.dbt_runner import run_dbt_build
from meta_ads_elt.failures import ExtractionsFailedError, check_run, reconcile_failures, run_outcome, scope_of
from meta_ads_elt.operators.ad_objects import MetaAdObjectsOperator
from meta_ads_elt.operators.conversations import MetaConversationsOperator
from meta_ads_elt.operators.insights import MetaInsightsOperator
from meta_ads_elt.operators.leads import MetaLeadsOperator
from meta_ads_elt.publish import publish_marts
from meta_ads_elt.run_summary import summarize_marts
from sandbox_lake import use_connection

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("calm_governor")]

NOW = "2026-11-20T12:00:00Z"
D1 = dt.date(2026, 11, 19)  # the data-interval day whose run happens at NOW
LOOKBACK = 4
DAG_ID = "meta_ads_daily"


SCOPES: dict[str, tuple[str, str]] = {}  # task id -> (kind, entity), as the DAG declares them


def run_isolated(lake: Path, world: dict, day: dt.date, run_id: str) -> dict[str, str]:
    """Every extraction of the daily DAG for ``day``; a task that fails gets the DAG's failure callback.
    Returns the task states as Airflow would hold them (task id -> state)."""
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    states: dict[str, str] = {}

    def run(task) -> None:
        SCOPES[task.task_id] = scope_of(task)
        ti = SimpleNamespace(task_id=task.task_id, dag_id=DAG_ID, run_id=run_id, map_index=-1, try_number=1)
        context = {
            "ti": ti,
            "task": task,
            "run_id": run_id,
            "data_interval_start": start,
            "logical_date": start,
        }
        try:
            task.execute(context)
            states[task.task_id] = "success"
        except Exception as exc:  # as Airflow: the try fails, the callback records why
            states[task.task_id] = "failed"
            log_failed_try({**context, "exception": exc})

    common = {"lake_root": str(lake)}
    for account in world["accounts"]:
        number = account["account_id"]
        run(MetaInsightsOperator(
            task_id=f"insights.insights_{number}", account_id=account["id"], data_interval_day=day.isoformat(),
            lookback_days=LOOKBACK, deferrable=False, first_poll=0.1, poll_interval=0.5, **common,
        ))  # fmt: skip
        run(
            MetaAdObjectsOperator(task_id=f"insights.ad_objects_{number}", account_id=account["id"], **common)
        )
    for page in world["pages"]:
        page_args = {
            "page_id": page["id"],
            "data_interval_day": day.isoformat(),
            "lookback_days": LOOKBACK,
            **common,
        }
        run(MetaLeadsOperator(task_id=f"leads.leads_{page['id']}", **page_args))
        run(MetaConversationsOperator(task_id=f"conversations.conversations_{page['id']}", **page_args))
    return states


def build_and_publish(root: Path, lake: Path, day: dt.date, run_id: str, states: dict[str, str]):
    """The DAG's dbt_build and publish (with the run's failures); the run's outcome and the serving file."""
    outcome = run_outcome(
        lake_root=str(lake),
        dag_id=DAG_ID,
        run_id=run_id,
        day=day,
        lookback_days=LOOKBACK,
        states=states,
        scopes=SCOPES,
    )
    build = run_dbt_build(
        lake_root=lake, build_db_path=root / "build.duckdb", target_path=root / "target", log_path=root / "logs",
        window_end=day.isoformat(), lookback_days=LOOKBACK, threads=2, timeout=900,
    )  # fmt: skip
    serving = root / "marts.duckdb"
    published = publish_marts(
        build, serving_db_path=serving, parquet_dir=None, failures=reconcile_failures(str(lake), outcome)
    )
    return outcome, serving, published


def published_failures(serving: Path) -> list[dict]:
    with duckdb.connect(str(serving), read_only=True) as con:
        cursor = con.execute("select * from _published_failures order by entity, kind")
        names = [c[0] for c in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        open_counts = {n for (n,) in con.execute("select distinct open_failures from _published").fetchall()}
    assert open_counts == {len(rows)}, "_published.open_failures counts the open failures"
    return rows


def window(day: dt.date) -> list[str]:
    return [(day - dt.timedelta(days=i)).isoformat() for i in range(LOOKBACK - 1, -1, -1)]


def test_half_the_async_jobs_failing_publishes_every_other_account_day_and_names_the_failed_ones(
    sandbox_factory, monkeypatch, tmp_path
):
    sb = sandbox_factory(now=NOW, faults="jobs_half_fail")
    use_connection(monkeypatch, sb)
    world = sb.world()
    lake = tmp_path / "lake"
    states = run_isolated(lake, world, D1, "half")
    outcome, serving, _ = build_and_publish(tmp_path, lake, D1, "half", states)

    failed = {
        (f.entity.removeprefix("act_"), day)
        for f in outcome.failures
        if f.kind == "insights"
        for day in f.dates
    }
    assert failed, "with half the jobs failing, some day's smallest job fails three times (seeded)"
    all_days = {(a["account_id"], day) for a in world["accounts"] for day in window(D1)}
    assert failed < all_days, "the other days of the failed accounts landed"
    for failure in outcome.failures:
        assert failure.kind == "insights" and "Meta could not build the Insights report" in failure.reason
        assert f"-t '^{failure.task_id}$' -s {D1} -e {D1} --downstream" in failure.action
    for account, day in failed:  # the lake has nothing for a failed day (a fresh lake: no earlier data)
        assert not list((lake / "insights" / f"account_id={account}" / f"date={day}").glob("*.parquet"))

    named = {
        (r["entity"].removeprefix("act_"), day)
        for r in published_failures(serving)
        for day in r["dates"].split(",")
    }
    assert named == failed
    # A Page takes its days from the account that promotes it: a day never extracted for that account
    # shows once the gap is filled (named through the account-day); every other Page-day is exact.
    its_pages = {
        (p["id"], day) for p in world["pages"] for account, day in failed if p.get("account_id") == account
    }
    result = reconcile(str(serving), sb.truth(window(D1)[0], D1.isoformat()), window(D1)[0], D1.isoformat(),
                       skip_account_days=failed, skip_page_days=its_pages)  # fmt: skip
    assert result.account_days == len(all_days) - len(failed) and result.page_days > 0
    assert result.equal, "\n".join(result.differences[:30])
    assert "FAILED extractions" in summarize_marts(serving)
    with pytest.raises(ExtractionsFailedError, match="insights act_"):
        check_run(outcome)


def lake_files(lake: Path, account: str) -> dict[str, str]:
    """Every lake file of an account (path -> sha256)."""
    files = [p for dataset in ("insights", "insights_account_totals", "accounts", "campaigns", "adsets", "ads")
             for p in (lake / dataset).glob(f"account_id={account}/**/*") if p.is_file()]  # fmt: skip
    return {str(p.relative_to(lake)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_an_account_that_loses_access_mid_history_is_named_and_keeps_its_data(
    sandbox_factory, monkeypatch, tmp_path
):
    sb = sandbox_factory(now=NOW)
    use_connection(monkeypatch, sb)
    world = sb.world()
    lake = tmp_path / "lake"
    lost = world["accounts"][0]["account_id"]
    states = run_isolated(lake, world, D1, "day1")
    assert set(states.values()) == {"success"}
    outcome, serving, _ = build_and_publish(tmp_path, lake, D1, "day1", states)
    assert outcome.failures == [] and published_failures(serving) == []
    before = lake_files(lake, lost)
    assert any("insights/" in path for path in before)

    sb.set_faults(
        {"lost_access": {"accounts": [lost]}}
    )  # the client removed the token's user from the account
    sb.set_clock(advance_days=1)
    d2 = D1 + dt.timedelta(days=1)
    states = run_isolated(lake, world, d2, "day2")
    assert {task for task, state in states.items() if state != "success"} == {
        f"insights.insights_{lost}",
        f"insights.ad_objects_{lost}",
    }
    outcome, serving, _ = build_and_publish(tmp_path, lake, d2, "day2", states)

    assert lake_files(lake, lost) == before, "the earlier data of the account stays exactly as it was"
    rows = published_failures(serving)
    assert {(r["kind"], r["entity"]) for r in rows} == {
        ("insights", f"act_{lost}"),
        ("ad_objects", f"act_{lost}"),
    }
    for row in rows:
        assert "lost access" in row["reason"] and "MetaObjectAccessError" in row["reason"]
        assert str(row["data_date"]) == d2.isoformat() and "airflow tasks clear" in row["action"]
    skipped = {(lost, day) for day in window(d2)}
    # Its Page takes its days from the account: the day never extracted for the account appears once the gap
    # is filled; the Page's other days are equal to the truth.
    its_pages = {(p["id"], d2.isoformat()) for p in world["pages"] if p.get("account_id") == lost}
    result = reconcile(str(serving), sb.truth(window(d2)[0], d2.isoformat()), window(d2)[0], d2.isoformat(),
                       skip_account_days=skipped, skip_page_days=its_pages)  # fmt: skip
    assert result.account_days > 0 and result.skipped_account_days == len(skipped)
    assert result.equal, "\n".join(result.differences[:30])
    with pytest.raises(ExtractionsFailedError, match=f"insights act_{lost}"):
        check_run(outcome)

    # Access restored: the retry of day 2 fills exactly the gap and closes the failures.
    sb.clear_faults()
    states = run_isolated(lake, world, d2, "day2-retry")
    outcome, serving, _ = build_and_publish(tmp_path, lake, d2, "day2-retry", states)
    assert outcome.failures == [] and published_failures(serving) == []
    result = reconcile(str(serving), sb.truth(window(d2)[0], d2.isoformat()), window(d2)[0], d2.isoformat())
    assert result.equal, "\n".join(result.differences[:30])
    check_run(outcome)


def test_a_page_the_token_lost_is_left_out_by_the_access_check_and_fails_alone(
    sandbox_factory, monkeypatch, tmp_path
):
    from meta_ads_elt.access import AccessCheckError, PageAccess, preflight
    from meta_ads_elt.hooks.graph_api import MetaGraphApiHook

    sb = sandbox_factory(now=NOW)
    use_connection(monkeypatch, sb)
    world = sb.world()
    lost = world["pages"][0]["id"]
    sb.set_faults({"lost_access": {"pages": [lost]}})  # the Page was deleted or its role removed: 100/33
    pages = [PageAccess(p["id"]) for p in world["pages"]]
    with pytest.raises(AccessCheckError, match=lost):  # strict: the check as a config validation
        preflight(MetaGraphApiHook("meta_default"), True, pages)
    report = preflight(MetaGraphApiHook("meta_default"), True, pages, isolate_pages=True)  # the DAG's check
    assert list(report.page_problems) == [lost]

    lake = tmp_path / "lake"
    states = run_isolated(lake, world, D1, "page")
    assert {task for task, state in states.items() if state != "success"} == {
        f"leads.leads_{lost}",
        f"conversations.conversations_{lost}",
    }
    outcome = run_outcome(
        lake_root=str(lake),
        dag_id=DAG_ID,
        run_id="page",
        day=D1,
        lookback_days=LOOKBACK,
        states=states,
        scopes=SCOPES,
    )
    assert {(f.kind, f.entity) for f in outcome.failures} == {
        ("leads", f"page {lost}"),
        ("conversations", f"page {lost}"),
    }
    for failure in outcome.failures:
        assert lost in failure.reason and "fatal" not in failure.reason.lower()
    with pytest.raises(ExtractionsFailedError, match=f"leads page {lost}"):
        check_run(outcome)
