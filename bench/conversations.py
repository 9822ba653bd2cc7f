"""Benchmark: Graph API calls of our conversations pull vs the naive path of seed 004.

World: one Page (one ad account, ``America/Los_Angeles``) with ~1,000 conversations over 30 days, both
platforms, clock frozen at 2026-03-15T12:00Z. The sandbox runs in its own process; calls are counted
by the sandbox (``/_sandbox/stats``; every batch item counts as one call, as Meta counts them).

* **ours**: ``MetaConversationsOperator`` for the whole 30-day window, both platforms,
  ``messages_per_conversation=20`` (conversations and their 20 most recent messages arrive together).
* **naive** (seed 004, run for real against the same world): list the conversations (ids, default
  page size), then ``GET /<conversation>?fields=messages`` for each (following its paging), then
  ``GET /<message>?fields=id,created_time,from,to,message`` for each message.

The sandbox's conversations carry 2-18 messages (5 % also carry 22-35 old ones), not 20, and our cost
does not depend on that while the naive one grows by one call per message. So the key
``conversations_calls_ratio_vs_naive`` is for the issue's 1,000 conversations x 20 messages: our
measured calls / (the naive path's measured list and conversation calls + 20 message reads per
conversation). The fully measured ratio on the sandbox's own message counts is reported beside it.

Command: ``PYTHONPATH=plugins:include:. .venv/bin/python -m bench conversations``
"""

from __future__ import annotations

import json
import os
import tempfile
import time

import requests
from meta_sandbox.testing import start_sandbox

NOW = "2026-03-15T12:00:00Z"
DAYS = 30
MESSAGES = 20
PLATFORMS = ("messenger", "instagram")


def _ours(sb, page_id: str) -> dict:
    from meta_ads_elt import governor
    from meta_ads_elt.operators.conversations import MetaConversationsOperator

    os.environ["AIRFLOW_CONN_META_DEFAULT"] = json.dumps(
        {
            "conn_type": "meta_graph_api",
            "password": sb.token,
            # the Instagram pace of the sandbox's raised budget: as unpaced as the naive path
            "extra": sb.connection_extra(),
        }
    )
    # a fresh governor: usage readings of other benchmarks in this process must not pace this one
    governor._governor = governor.RateLimitGovernor()
    sb.reset_stats()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as lake:
        summary = MetaConversationsOperator(
            task_id="bench_conversations",
            page_id=page_id,
            lake_root=lake,
            lookback_days=DAYS,
            data_interval_day=NOW[:10],
            messages_per_conversation=MESSAGES,
        ).execute({"run_id": "bench"})
    seconds = time.perf_counter() - started
    return {"stats": sb.stats(), "summary": summary, "seconds": seconds}


def _naive(sb, page_id: str) -> dict:
    """Seed 004 step by step: list, then each conversation, then each message."""
    http = requests.Session()
    api = f"{sb.url}/v26.0"
    user = {"access_token": sb.token}
    token = http.get(f"{api}/{page_id}", params={**user, "fields": "access_token"}, timeout=60).json()
    auth = {"access_token": token["access_token"]}

    def pages(path: str, params: dict, key: str | None = None):
        params = dict(params)
        while True:
            body = http.get(f"{api}/{path}", params={**auth, **params}, timeout=60).json()
            edge = body[key] if key else body
            yield edge["data"]
            paging = edge.get("paging") or {}
            if not paging.get("next"):
                return
            if key:  # the nested edge's next page is read from the edge itself (default fields)
                path, key, params = f"{path}/{key}", None, {}
            params["after"] = paging["cursors"]["after"]

    sb.reset_stats()
    started = time.perf_counter()
    conversations = messages = 0
    for platform in PLATFORMS:
        for batch in pages(f"{page_id}/conversations", {"platform": platform}):
            for conversation in batch:
                conversations += 1
                for ids in pages(conversation["id"], {"fields": "messages"}, key="messages"):
                    for message in ids:
                        messages += 1
                        http.get(
                            f"{api}/{message['id']}",
                            params={**auth, "fields": "id,created_time,from,to,message"},
                            timeout=60,
                        )
    seconds = time.perf_counter() - started
    return {"stats": sb.stats(), "conversations": conversations, "messages": messages, "seconds": seconds}


def run(conversations_per_day: float = 37.0) -> dict:
    sb = start_sandbox(
        accounts=1, history_days=DAYS, now=NOW, conversations_per_day=conversations_per_day,
        budgets="app=10000000,user=10000000,pages=10000000,instagram=10000000",
    )  # fmt: skip
    try:
        page_id = sb.world()["pages"][0]["id"]
        ours = _ours(sb, page_id)
        naive = _naive(sb, page_id)
    finally:
        sb.stop()
    ours_calls = ours["stats"]["total"]
    naive_calls = naive["stats"]["total"]
    pulled = ours["summary"]["rows"]
    # the naive path's cost with 20 detailed messages per conversation: its measured list and
    # conversation reads, plus one read per message
    naive_without_messages = naive_calls - naive["messages"]
    naive_20 = naive_without_messages + MESSAGES * naive["conversations"]
    return {
        "conversations_calls_ratio_vs_naive": round(ours_calls / naive_20, 6),
        "conversations_calls_ours": ours_calls,
        "conversations_calls_naive_20_messages": naive_20,
        "conversations_calls_naive_measured": naive_calls,
        "conversations_calls_ratio_vs_naive_measured": round(ours_calls / naive_calls, 6),
        "conversations_pulled": pulled["conversations"],
        "conversations_messages_pulled": pulled["messages"],
        "conversations_naive_conversations": naive["conversations"],
        "conversations_naive_messages": naive["messages"],
        "conversations_calls_ours_by_endpoint": ours["stats"]["by_endpoint"],
        "conversations_seconds_ours": round(ours["seconds"], 2),
        "conversations_seconds_naive": round(naive["seconds"], 2),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
