"""check_extractions' verdict (meta_ads_elt.failures.check_run): the DAG's only leaf, so its verdict is
the run's state. A run whose marts were not built or published is never green, even when every
extraction succeeded (the Airflow-level case: tests/e2e/test_discovered_config_in_airflow.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from meta_ads_elt.failures import ExtractionsFailedError, check_run, run_outcome

DAY = dt.date(2026, 11, 30)
SCOPES = {"insights.insights_1": ("insights", "act_1"), "leads.leads_9": ("leads", "page 9")}


def outcome(tmp_path, **states):
    return run_outcome(
        lake_root=str(tmp_path), dag_id="meta_ads_daily", run_id="r1", day=DAY, lookback_days=3,
        states={"insights.insights_1": "success", "leads.leads_9": "success", **states}, scopes=SCOPES,
    )  # fmt: skip


def test_every_extraction_and_the_publish_succeeded(tmp_path):
    result = outcome(tmp_path, dbt_build="success", publish="success", check_extractions="running")
    assert result.failures == [] and result.unpublished == {}
    check_run(result)


@pytest.mark.parametrize(
    ("dbt_build", "publish"), [("failed", "upstream_failed"), ("success", "failed"), ("skipped", "skipped")]
)
def test_a_run_that_did_not_publish_fails_and_says_so(tmp_path, dbt_build, publish):
    result = outcome(tmp_path, dbt_build=dbt_build, publish=publish)
    assert result.failures == [] and set(result.unpublished) == {"dbt_build", "publish"} - (
        {"dbt_build"} if dbt_build == "success" else set()
    )
    with pytest.raises(
        ExtractionsFailedError, match=f"marts were NOT published by this run .*publish {publish}"
    ):
        check_run(result)


def test_failed_extractions_and_no_publish_are_both_named(tmp_path):
    result = outcome(tmp_path, **{"leads.leads_9": "failed", "dbt_build": "skipped", "publish": "skipped"})
    with pytest.raises(ExtractionsFailedError) as raised:
        check_run(result)
    message = str(raised.value)
    assert "1 extraction(s) of this run failed: leads page 9" in message
    assert "NOT published" in message and "published with every other" not in message
