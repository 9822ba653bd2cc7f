"""Pages short or empty but with ``next``, against the real sandbox over HTTP.

Meta, Graph API "Paginated Results": "it is possible that a page may be empty but contain a next paging
link. Stop paging when the next link no longer appears"; "A query may return fewer than the value of
limit due to filtering". The sandbox plays it on every object edge (``meta_sandbox.paging``). Read one
item a page, every entry the viewer may not see is an empty page with ``next``: the extractors must
land the same rows as with their own page sizes, and as a sandbox that serves every page full.
"""

from __future__ import annotations

import pytest
import requests
from meta_ads_elt.operators.ad_objects import MetaAdObjectsOperator
from meta_ads_elt.operators.conversations import MetaConversationsOperator
from meta_ads_elt.operators.leads import MetaLeadsOperator
from sandbox_lake import STILL_CLOCK, read, sorted_rows, today, use_connection

pytestmark = pytest.mark.e2e

ONE_A_PAGE = {"page_limit": 1}
DATASETS = ("campaigns", "adsets", "ads", "leads", "conversations", "messages")


def extract(lake, world, day, **pages) -> None:
    context = {"run_id": "test"}
    for account in world["accounts"]:
        MetaAdObjectsOperator(task_id="objects", account_id=account["id"], lake_root=str(lake)).execute(
            context
        )
    for page in world["pages"]:
        common = {"page_id": page["id"], "lake_root": str(lake), "data_interval_day": day.isoformat()}
        MetaLeadsOperator(task_id="leads", lookback_days=7, **common, **pages).execute(context)
        MetaConversationsOperator(
            task_id="conversations", lookback_days=3, platforms=["messenger"], **common, **pages
        ).execute(context)


def empty_pages_with_next(sandbox, page_id: str) -> int:
    """Empty pages with ``next`` of the Page's Messenger conversations read one a page (straight HTTP)."""
    api = f"{sandbox.url}/v26.0"
    token = requests.get(
        f"{api}/{page_id}", params={"access_token": sandbox.token, "fields": "access_token"}, timeout=30
    ).json()["access_token"]
    params, empty = {"access_token": token, "platform": "messenger", "limit": 1}, 0
    while True:
        body = requests.get(f"{api}/{page_id}/conversations", params=params, timeout=30).json()
        if "next" not in body.get("paging", {}):
            return empty
        empty += not body["data"]
        params["after"] = body["paging"]["cursors"]["after"]


def test_one_item_a_page_through_empty_pages_lands_what_full_pages_land(
    sandbox_factory, monkeypatch, tmp_path
):
    gapped = sandbox_factory(now=STILL_CLOCK)
    world = gapped.world()
    assert empty_pages_with_next(gapped, world["pages"][0]["id"]) > 0
    use_connection(monkeypatch, gapped)
    day = today(gapped)
    extract(tmp_path / "one_a_page", world, day, **ONE_A_PAGE)
    extract(tmp_path / "own_sizes", world, day)
    plain = sandbox_factory(now=STILL_CLOCK, paging_gaps=False)
    use_connection(monkeypatch, plain)
    extract(tmp_path / "full_pages", world, day)

    for dataset in DATASETS:
        rows = sorted_rows(read(tmp_path / "full_pages", dataset))
        assert rows, dataset
        assert sorted_rows(read(tmp_path / "one_a_page", dataset)) == rows, dataset
        assert sorted_rows(read(tmp_path / "own_sizes", dataset)) == rows, dataset
