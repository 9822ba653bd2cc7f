"""A list that changes while it is paged, against the real sandbox over HTTP.

An ad edited, a lead or a conversation arriving between two page reads can make a later page list an item
again: a list paged by position shifts, and Meta's cursor "will always point to the item" (Graph API
"Paginated Results"), which may itself move. The sandbox fault ``arrivals_between_pages`` plays that on
every page; ``too_much_data.max_page_rows`` makes the pages small (the hook halves them until Meta serves
them), so every list takes many pages. Each snapshot must hold every object once, the same rows as a
calm read.
"""

from __future__ import annotations

import pytest
from meta_ads_elt.operators.ad_objects import MetaAdObjectsOperator
from meta_ads_elt.operators.leads import MetaLeadsOperator
from sandbox_lake import read, sorted_rows, today, use_connection

pytestmark = pytest.mark.e2e

SMALL_PAGES = {"too_much_data": {"max_page_rows": 4}}
DATASETS = {"campaigns": "campaign_id", "adsets": "adset_id", "ads": "ad_id", "leads": "lead_id"}


def extract(lake, world, day) -> None:
    context = {"run_id": "test"}
    for account in world["accounts"]:
        MetaAdObjectsOperator(task_id="objects", account_id=account["id"], lake_root=str(lake)).execute(
            context
        )
    for page in world["pages"]:
        MetaLeadsOperator(
            task_id="leads", page_id=page["id"], lake_root=str(lake), data_interval_day=day.isoformat(),
            lookback_days=7, page_limit=4,
        ).execute(context)  # fmt: skip


def test_objects_and_leads_a_later_page_lists_again_are_kept_once(sandbox_factory, monkeypatch, tmp_path):
    sb = sandbox_factory(
        now="2026-11-20T12:00:00Z", faults=SMALL_PAGES
    )  # a still clock: no arrival between the reads
    use_connection(monkeypatch, sb)
    world, day = sb.world(), today(sb)
    extract(tmp_path / "calm", world, day)
    sb.set_faults({**SMALL_PAGES, "arrivals_between_pages": True})
    extract(tmp_path / "arrivals", world, day)

    for dataset, id_column in DATASETS.items():
        ids = read(tmp_path / "arrivals", dataset).column(id_column).to_pylist()
        assert ids and len(set(ids)) == len(ids), f"{dataset}: an object written twice"
        assert sorted_rows(read(tmp_path / "arrivals", dataset)) == sorted_rows(
            read(tmp_path / "calm", dataset)
        )
