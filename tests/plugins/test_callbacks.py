"""Every failed try logs its cause: in the task process (an exception) and outside it (the scheduler)."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

from meta_ads_elt.callbacks import log_failed_try, log_retried_try, try_log_path
from meta_ads_elt.errors import MetaTokenError
from meta_ads_elt.redaction import register_secret


def _ti(map_index: int = -1) -> SimpleNamespace:
    return SimpleNamespace(
        dag_id="meta_ads_daily",
        run_id="backfill__2026-11-01T00:00:00+00:00",
        task_id="insights.insights_1001",
        map_index=map_index,
        try_number=2,
    )


def test_a_try_that_raised_logs_its_cause_and_the_next_step(caplog):
    register_secret("EAAB-secret-token")
    error = MetaTokenError("(#190) Error validating access token EAAB-secret-token: expired")
    with caplog.at_level(logging.ERROR, logger="meta_ads_elt.callbacks"):
        log_retried_try({"ti": _ti(), "exception": error})
        log_failed_try({"ti": _ti(), "exception": error})
    retried, failed = (record.getMessage() for record in caplog.records)
    assert retried.startswith(
        "Try 2 of insights.insights_1001 (run backfill__2026-11-01T00:00:00+00:00) failed"
    )
    assert "MetaTokenError: (#190) Error validating access token" in retried
    assert retried.endswith("Airflow retries the task.") and failed.endswith(
        "no retry left: the task has failed."
    )
    assert "EAAB-secret-token" not in caplog.text


def test_a_try_ended_by_the_scheduler_gets_the_cause_appended_to_its_own_log(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(tmp_path))
    path = try_log_path(_ti())
    assert path == (
        tmp_path
        / "dag_id=meta_ads_daily"
        / "run_id=backfill__2026-11-01T00:00:00+00:00"
        / "task_id=insights.insights_1001"
        / "attempt=2.log"
    )
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"event": "Pausing task as DEFERRED.", "level": "info"}) + "\n")

    log_retried_try({"ti": _ti()})  # the DAG processor's context has no exception

    first, last = (json.loads(line) for line in path.read_text().splitlines())
    assert first["event"] == "Pausing task as DEFERRED."
    assert last["level"] == "error" and last["timestamp"]
    assert "raised no error" in last["event"] and "apache/airflow#66374" in last["event"]
    assert last["event"].endswith("Airflow retries the task.")


def test_a_mapped_try_and_a_missing_log_folder_are_handled(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(tmp_path))
    assert try_log_path(_ti(map_index=3)).parent.name == "map_index=3"
    log_failed_try({"ti": _ti()})  # no log folder for this try: nothing is created, nothing raises
    assert not any(tmp_path.iterdir())
