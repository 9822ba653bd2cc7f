"""Short and empty pages on object edges, as Meta's "Paginated Results" documents them (paging.py)."""

from __future__ import annotations

import pytest
from facebook_business.adobjects.page import Page
from facebook_business.api import FacebookAdsApi
from facebook_business.session import FacebookSession
from meta_sandbox import paging

NOW = "2026-11-20T12:00:00Z"


def _walk(graph, path: str, **params) -> list[tuple[list[str], bool]]:
    """Every page of ``path``, following ``next``: (ids on the page, whether it has ``next``)."""
    pages, after = [], None
    while True:
        body = graph.ok(path, **params, **({"after": after} if after else {}))
        has_next = "next" in body.get("paging", {})
        pages.append(([item["id"] for item in body["data"]], has_next))
        if not has_next:
            return pages
        after = body["paging"]["cursors"]["after"]


def test_a_page_may_be_short_or_empty_and_still_have_next(sandbox_factory, graph_for):
    """ "A query may return fewer than the value of limit due to filtering"; "it is possible that a page
    may be empty but contain a next paging link. Stop paging when the next link no longer appears"
    (Graph API, "Paginated Results"). Paging on ``next`` gives every item once, in the order of the list
    without hidden entries; ``summary.total_count`` counts the items the viewer sees."""
    gapped, plain = sandbox_factory(now=NOW), sandbox_factory(now=NOW, paging_gaps=False)
    page_id = gapped.world()["pages"][0]["id"]
    walks = {}
    for name, handle in (("gapped", gapped), ("plain", plain)):
        graph = graph_for(handle)
        token_graph = graph_for(handle, token=graph.page_token(page_id))
        walks[name] = {
            limit: _walk(token_graph, f"{page_id}/conversations", platform="messenger", limit=limit)
            for limit in (1, 4)
        }
    gapped_pages, plain_pages = walks["gapped"][4], walks["plain"][4]
    assert any(ids == [] and has_next for ids, has_next in walks["gapped"][1]), "no empty page with next"
    assert any(len(ids) < 4 and has_next for ids, has_next in gapped_pages), "no short page with next"
    assert all(len(ids) == 4 for ids, has_next in plain_pages if has_next)
    assert [i for ids, _ in walks["gapped"][1] for i in ids] == [i for ids, _ in gapped_pages for i in ids]
    every = [cid for ids, _ in gapped_pages for cid in ids]
    assert every == [cid for ids, _ in plain_pages for cid in ids] and len(every) == len(set(every)) > 20
    token_graph = graph_for(gapped, token=graph_for(gapped).page_token(page_id))
    first = token_graph.ok(f"{page_id}/conversations", platform="messenger", limit=4, summary="true")
    assert first["summary"]["total_count"] == len(every)


def test_a_walk_never_skips_an_item_that_another_item_moved_past():
    """The hidden run after an item follows the item: when an item not yet served moves to the head of
    the list (a conversation that receives a message), the client's next page starts at or before the
    item that followed its cursor, so nothing is skipped (it may see an item again)."""
    items = [f"c{i}" for i in range(400)]
    key = 12345
    for moved in range(50, 400, 7):
        first = paging.gapped_cut({"limit": "40"}, key, items)
        after = paging.encode_cursor(first.vend - 1)
        reordered = [items[moved], *items[:moved], *items[moved + 1 :]]
        second = paging.gapped_cut({"limit": "40", "after": after}, key, reordered)
        unserved = [item for item in items[first.end :] if item != items[moved]]
        assert unserved and all(reordered.index(item) >= second.start for item in unserved), moved


@pytest.mark.filterwarnings("ignore:value of platform")
def test_the_sdk_cursor_stops_at_an_empty_page(sandbox_factory, graph_for, monkeypatch):
    """Why the hook pages on ``next`` itself: the SDK's ``Cursor`` ends the iteration at the first empty
    page, ``next`` or not (research/meta_api_facts.md section 4), and drops the rest of the list."""
    sb = sandbox_factory(now=NOW)
    page_id = sb.world()["pages"][0]["id"]
    graph = graph_for(sb)
    token = graph.page_token(page_id)
    every = [
        cid
        for ids, _ in _walk(
            graph_for(sb, token=token), f"{page_id}/conversations", platform="messenger", limit=1
        )
        for cid in ids
    ]
    monkeypatch.setattr(FacebookSession, "GRAPH", sb.url)
    api = FacebookAdsApi(FacebookSession(sb.app_id, sb.app_secret, token))
    listed = [
        c["id"]
        for c in Page(page_id, api=api).get_conversations(params={"platform": "messenger", "limit": 1})
    ]
    assert listed == every[: len(listed)] and len(listed) < len(every)
