"""Failure records of old runs are pruned by a later publish; open failures (the gaps) are kept."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from meta_ads_elt.failures import (
    OPEN,
    RUN_RECORDS_KEPT_DAYS,
    RUNS,
    ExtractionFailure,
    RunOutcome,
    reconcile_failures,
)
from meta_ads_elt.lake.state import STATE_DIR, LakeState

NOW = dt.datetime(2026, 12, 3, 6, 0, tzinfo=dt.UTC)


def _failure(
    run_id: str, failed_at: dt.datetime, *, entity: str = "act_1", day: str = "2026-08-01"
) -> ExtractionFailure:
    return ExtractionFailure(
        kind="insights",
        entity=entity,
        task_id="insights.extract",
        data_date=day,
        dates=[day],
        reason="MetaApiError: (#2) Service temporarily unavailable.",
        action=f"airflow tasks clear meta_ads_daily -t insights.extract -s {day} -e {day} -y",
        run_id=run_id,
        failed_at=failed_at.isoformat(),
    )


def _record(state: LakeState, failure: ExtractionFailure, task_key: str) -> None:
    state.write(f"{RUNS}/{failure.run_id}/{task_key}", {**dataclasses.asdict(failure), "partial": False})


def _runs(lake: Path) -> set[str]:
    folder = lake / STATE_DIR / RUNS
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def test_a_publish_prunes_the_records_of_runs_older_than_the_retention_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    lake = tmp_path / "lake"
    state = LakeState(lake)
    old = NOW - dt.timedelta(days=RUN_RECORDS_KEPT_DAYS + 1)
    recent = NOW - dt.timedelta(days=RUN_RECORDS_KEPT_DAYS - 1)
    # an old run with two failed tasks; a run with one old and one recent record (cleared later: kept);
    # a run whose record has no readable failed_at (kept: nothing is deleted on a guess)
    _record(state, _failure("scheduled__2026-08-01T12:00:00+00:00", old), "insights.extract_0")
    _record(state, _failure("scheduled__2026-08-01T12:00:00+00:00", old), "insights.extract_1")
    _record(state, _failure("manual__2026-08-20T12:00:00+00:00", old), "insights.extract_0")
    _record(state, _failure("manual__2026-08-20T12:00:00+00:00", recent), "leads.extract_0")
    state.write(f"{RUNS}/scheduled__2026-08-02T12:00:00+00:00/insights.extract_0", {"kind": "insights"})
    # the old run's failure is still open: its gap was never filled
    still_open = _failure("scheduled__2026-08-01T12:00:00+00:00", old)
    state.write(still_open.key, dataclasses.asdict(still_open))

    open_failures = reconcile_failures(lake, RunOutcome(failures=[], landed={}), now=NOW)

    assert _runs(lake) == {
        "manual__2026-08-20T12_00_00_00_00",
        "scheduled__2026-08-02T12_00_00_00_00",
    }
    assert [f.key for f in open_failures] == [still_open.key]
    assert state.names(OPEN) == [still_open.key]


def test_a_publish_keeps_every_record_within_the_retention(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    state = LakeState(lake)
    for days_ago in (0, 30, RUN_RECORDS_KEPT_DAYS - 1):
        at = NOW - dt.timedelta(days=days_ago)
        _record(state, _failure(f"scheduled__{at.date()}", at, day=str(at.date())), "insights.extract_0")
    before = state.names(RUNS)

    reconcile_failures(lake, RunOutcome(failures=[], landed={}), now=NOW)

    assert state.names(RUNS) == before
    assert len(before) == 3


def test_a_gap_no_re_run_can_fill_is_recorded_with_what_can_be_done_instead(tmp_path: Path) -> None:
    """A backfilled day whose whole Insights window is older than Meta keeps (37 months) fails at once; its
    failure record says that no re-run fills the gap and from which date to backfill, not "re-run the task"."""
    from types import SimpleNamespace

    import pytest
    from meta_ads_elt.errors import MetaBeyondRetentionError
    from meta_ads_elt.failures import record_failed_task
    from meta_ads_elt.operators.insights import MetaInsightsOperator

    lake = tmp_path / "lake"
    task = MetaInsightsOperator(
        task_id="insights.extract", account_id="act_1", lake_root=str(lake), lookback_days=3
    )
    day = dt.date(2020, 1, 3)
    with pytest.raises(MetaBeyondRetentionError) as raised:
        task._served_window(
            *task._window({"data_interval_start": dt.datetime(2020, 1, 3, 12, tzinfo=dt.UTC)})
        )
    ti = SimpleNamespace(
        task_id=task.task_id, dag_id="meta_ads_daily", run_id="backfill__2020-01-03", map_index=0
    )
    context = {"ti": ti, "task": task, "data_interval_start": dt.datetime(2020, 1, 3, 12, tzinfo=dt.UTC)}
    record_failed_task(context, raised.value, f"MetaBeyondRetentionError: {raised.value}")
    record = LakeState(lake).read(f"{RUNS}/backfill__2020-01-03/insights.extract_0")
    assert record is not None and record["dates"] == ["2020-01-01", "2020-01-02", day.isoformat()]
    assert record["action"].startswith("none: Meta no longer serves these dates")
    assert "backfill dates from" in record["action"] and "airflow tasks clear" not in record["action"]
