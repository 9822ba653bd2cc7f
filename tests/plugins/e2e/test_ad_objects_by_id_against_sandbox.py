"""Ad objects read by id (the ids the account's edges no longer list) against the real sandbox over HTTP.

Only Meta's "does not exist or cannot be loaded" (100/33) makes an id missing (manifest
``unreadable_ids``); a transient item error that outlived the hook's retries fails the task for Airflow's
retry, and a refused request fails at once: neither is recorded as "the object is gone".
"""

from __future__ import annotations

import json

import pytest
from airflow.sdk.exceptions import AirflowFailException
from meta_ads_elt.errors import MetaParameterError, MetaRetryableError
from meta_ads_elt.lake.partitions import LakeWriter
from meta_ads_elt.operators.ad_objects import MetaAdObjectsOperator
from sandbox_lake import read, use_connection

pytestmark = pytest.mark.e2e

NOW = "2026-11-20T12:00:00+00:00"
UNKNOWN_AD_ID = "999000111222333"  # no object of the sandbox's world has this id: Meta answers 100/33


@pytest.fixture
def sb(sandbox_factory, monkeypatch):
    handle = sandbox_factory(now=NOW)
    use_connection(monkeypatch, handle)
    return handle


def snapshot(lake, account, run_id):
    op = MetaAdObjectsOperator(task_id="objects", account_id=account["id"], lake_root=str(lake))
    op.execute({"run_id": run_id})
    return op


def ads(lake) -> dict[str, dict]:
    return {str(r["ad_id"]): r for r in read(lake, "ads").to_pylist()}


def last_manifest(lake) -> dict:
    *_, newest = sorted((lake / "_manifests" / "ad_objects").glob("*.json"))
    return json.loads(newest.read_text())


def previous_snapshot_with(lake, account_id: str, extra_ids: list[str]) -> dict[str, dict]:
    """The account's ads snapshot plus one row per ``extra_ids``: ads the last run saw ACTIVE, which the
    account's edges no longer list (read by id on the next run)."""
    rows = list(ads(lake).values())
    template = {k: v for k, v in rows[0].items() if k != "account_id"}
    extra = [{**template, "ad_id": i, "id": i, "effective_status": "ACTIVE"} for i in extra_ids]
    partition = {"account_id": account_id}
    with LakeWriter(str(lake)).replace_partitions("ads", [partition], run_id="previous") as tx:
        tx.write(
            [{k: v for k, v in r.items() if k != "account_id"} for r in rows] + extra, partition=partition
        )
    return ads(lake)


def deleted_ad_of(account) -> str:
    (deleted, *_) = [
        o["id"] for o in account["objects"] if o["level"] == "ad" and o["effective_status"] == "DELETED"
    ]
    return deleted


def test_an_id_meta_no_longer_answers_for_is_missing_and_a_deleted_ad_is_read(sb, tmp_path):
    account = sb.world()["accounts"][0]
    snapshot(tmp_path, account, "first")
    deleted = deleted_ad_of(account)
    previous_snapshot_with(tmp_path, account["account_id"], [deleted, UNKNOWN_AD_ID])

    snapshot(tmp_path, account, "second")

    now = ads(tmp_path)
    assert now[deleted]["effective_status"] == "DELETED"  # "Query by its own ID: Yes"
    assert UNKNOWN_AD_ID not in now
    assert last_manifest(tmp_path)["unreadable_ids"] == {"ads": [UNKNOWN_AD_ID]}


@pytest.mark.parametrize(
    "faults",
    [
        # every read by id (a batch item "GET /{id}") answers Meta's transient code 1 or 2 (HTTP 500)
        {"transient_error_rate": 1.0, "endpoints": ["GET /{id}"]},
        # every batch item comes back null: "Responses for requests that are not successful will be null"
        # (Meta, Batch Requests, the timeouts of a partially completed batch)
        {"null_batch_item_rate": 1.0},
    ],
    ids=["transient_item_error", "null_item"],
)
def test_a_transient_item_failure_fails_the_task_for_a_retry_and_is_not_recorded_as_missing(
    sb, tmp_path, faults
):
    account = sb.world()["accounts"][0]
    snapshot(tmp_path, account, "first")
    deleted = deleted_ad_of(account)
    previous = previous_snapshot_with(tmp_path, account["account_id"], [deleted])
    manifests = len(list((tmp_path / "_manifests" / "ad_objects").glob("*.json")))
    sb.set_faults(faults)
    op = MetaAdObjectsOperator(task_id="objects", account_id=account["id"], lake_root=str(tmp_path))
    op.hook.max_attempts, op.hook.backoff_base = 2, 0.01  # the hook's retries, kept short

    with pytest.raises(MetaRetryableError) as failed:
        op.execute({"run_id": "second"})

    assert not isinstance(failed.value, AirflowFailException)  # Airflow retries the task
    assert deleted in str(failed.value) and "after 2 attempts" in str(failed.value)  # names the id
    assert ads(tmp_path) == previous  # the previous snapshot is kept, nothing dropped
    assert len(list((tmp_path / "_manifests" / "ad_objects").glob("*.json"))) == manifests

    sb.clear_faults()  # the Airflow retry
    snapshot(tmp_path, account, "second")
    assert ads(tmp_path)[deleted]["effective_status"] == "DELETED"
    assert last_manifest(tmp_path)["unreadable_ids"] == {}


def test_a_refused_read_by_id_fails_at_once_with_the_fix_and_is_not_recorded_as_missing(sb, tmp_path):
    account = sb.world()["accounts"][0]
    snapshot(tmp_path, account, "first")
    page_id = account["page_id"]  # an id that is not an ad: Meta refuses the ad fields on a Page (code 100)
    previous = previous_snapshot_with(tmp_path, account["account_id"], [page_id])
    sb.reset_stats()

    with pytest.raises(MetaParameterError, match=f"id {page_id} .*was refused.*Fix the parameter") as failed:
        snapshot(tmp_path, account, "second")

    assert failed.value.code == 100 and failed.value.subcode is None
    assert sb.stats()["by_endpoint"].get("POST /batch") == 1  # not retried
    assert ads(tmp_path) == previous
