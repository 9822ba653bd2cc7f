"""A mapped batch attempts every account or Page, then fails naming each one that failed."""

from __future__ import annotations

import json

import pytest
from meta_ads_elt.batches import BatchFailed, BatchFailedFatally, _run_all, extract_pages
from meta_ads_elt.config import parse_config
from meta_ads_elt.errors import MetaPermissionError, MetaRetryableError


def extract(item):
    if item["id"] == "2":
        raise MetaPermissionError("(#200) Permission denied on act_2")
    if item["id"] == "3":
        raise MetaRetryableError("An unexpected error has occurred")
    return {"rows": 1}


def test_every_item_is_attempted_and_every_failure_named():
    attempted = []

    def one(item):
        attempted.append(item["id"])
        return extract(item)

    with pytest.raises(BatchFailed) as caught:
        _run_all([{"id": str(i)} for i in range(1, 5)], "id", one, parallel=2)
    assert sorted(attempted) == ["1", "2", "3", "4"]
    message = str(caught.value)
    assert "2 of 4 in this batch failed (2 extracted and written)" in message
    assert "2: MetaPermissionError" in message and "3: MetaRetryableError" in message
    assert not isinstance(caught.value, BatchFailedFatally), "a transient failure is worth a retry"


def test_a_batch_whose_failures_all_need_a_fix_fails_without_retries():
    with pytest.raises(BatchFailedFatally, match="1 of 2 in this batch failed"):
        _run_all([{"id": "1"}, {"id": "2"}], "id", extract, parallel=4)


def test_a_clean_batch_returns_what_each_item_wrote():
    assert _run_all([{"id": "1"}, {"id": "4"}], "id", extract, parallel=1) == {
        "extracted": ["1", "4"],
        "results": {"1": {"rows": 1}, "4": {"rows": 1}},
    }


def test_a_page_neither_listed_nor_discovered_fails_naming_it(monkeypatch, tmp_path):
    """A Page's settings are its pages: entry or the discover: settings; with neither, its item fails
    with that reason (before: AttributeError 'tuple' object has no attribute 'platforms')."""
    conn_id = "meta_batches_test"  # its own id: the pinned connection is kept for the process
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "meta_graph_api"}))
    config = parse_config(
        {
            "meta_conn_id": conn_id,
            "lake_root": str(tmp_path),
            "accounts": [{"id": "act_1"}],
            "pages": [{"id": "1"}],
        }
    )
    with pytest.raises(BatchFailed, match="Page 2 is not in pages: and pages: has no discover: sources"):
        extract_pages(config, [{"page_id": "2"}], {}, "conversations")
