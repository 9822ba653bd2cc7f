"""MetaConversationsOperator against the Graph API sandbox over HTTP.

Conversations started are computed from the lake with DESIGN.md's rule (a message that is its
conversation's first (``first_message_id``) or comes >= 168 h after the previous one, by the
Page-local date: observed when its sender is a person, inferred when it is beyond the 20 most recent
messages and its sender unknown) and reconciled with ``/_sandbox/truth``.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import zoneinfo
from pathlib import Path

import pytest
import requests
from airflow.sdk.exceptions import AirflowFailException
from meta_ads_elt.errors import MetaParameterError, MetaPermissionError, MetaRetryableError
from meta_ads_elt.operators._pages import utc_window
from meta_ads_elt.operators.conversations import MetaConversationsOperator
from sandbox_lake import STILL_CLOCK, calm_governor_in, read, sorted_rows, today, use_connection

API = "v26.0"
START_GAP = dt.timedelta(hours=168)


def run_conversations(lake: Path, page_id: str, day: dt.date, **kwargs) -> dict:
    op = MetaConversationsOperator(
        task_id=f"conversations_{page_id}",
        page_id=page_id,
        lake_root=str(lake),
        data_interval_day=day.isoformat(),
        **kwargs,
    )
    return op.execute({"run_id": "test"})


def starts_from_lake(
    messages: list[dict], conversations: list[dict], page_tz: dict[str, zoneinfo.ZoneInfo]
) -> tuple[collections.Counter, collections.Counter]:
    """DESIGN.md's conversations started, per (page, platform, Page-local date), from lake rows:
    (observed, inferred)."""
    first_ids = {c["first_message_id"] for c in conversations if c["first_message_id"]}
    by_conversation: dict[str, dict[str, dict]] = collections.defaultdict(dict)
    for m in messages:  # a message with its sender wins over the same message without (later snapshot)
        kept = by_conversation[m["conversation_id"]].get(m["message_id"])
        if kept is None or (kept["is_from_page"] is None and m["is_from_page"] is not None):
            by_conversation[m["conversation_id"]][m["message_id"]] = m
    observed: collections.Counter = collections.Counter()
    inferred: collections.Counter = collections.Counter()
    for rows in by_conversation.values():
        previous = None
        for m in sorted(rows.values(), key=lambda m: (m["created_time"], m["message_id"])):
            opens = (
                m["message_id"] in first_ids
                if previous is None
                else (m["created_time"] - previous["created_time"] >= START_GAP)
            )
            if opens and m["is_from_page"] is not True:
                local = m["created_time"].astimezone(page_tz[m["page_id"]]).date().isoformat()
                (inferred if m["is_from_page"] is None else observed)[
                    (m["page_id"], m["platform"], local)
                ] += 1
            previous = m
    return observed, inferred


def graph_get(sandbox, path: str, token: str, **params) -> dict:
    response = requests.get(
        f"{sandbox.url}/{API}/{path}", params={"access_token": token, **params}, timeout=30
    )
    response.raise_for_status()
    return response.json()


pytestmark = pytest.mark.usefixtures("calm_governor")


@pytest.fixture(scope="module")
def pulled(sandbox, world, tmp_path_factory):
    """One 28-day pull of every Page (both platforms), shared by the read-only checks."""
    lake = tmp_path_factory.mktemp("conversations_lake")
    with pytest.MonkeyPatch.context() as mp:
        calm_governor_in(mp)
        use_connection(mp, sandbox)
        day = today(sandbox)
        summaries = {p["id"]: run_conversations(lake, p["id"], day, lookback_days=28) for p in world["pages"]}
    return lake, day, summaries


def test_conversations_started_reconcile_per_page_platform_and_day(sandbox, world, pulled):
    lake, day, _ = pulled
    window_start = dt.datetime.combine(day - dt.timedelta(days=27), dt.time(), dt.UTC)
    page_tz = {p["id"]: zoneinfo.ZoneInfo(p["timezone_name"]) for p in world["pages"]}
    observed, inferred = starts_from_lake(
        read(lake, "messages").to_pylist(), read(lake, "conversations").to_pylist(), page_tz
    )
    counts = observed + inferred
    truth = sandbox.truth((day - dt.timedelta(days=30)).isoformat(), day.isoformat())
    expected = {(t["page_id"], t["platform"], t["date"]): t["conversations_started"] for t in truth["pages"]}
    beyond = {
        (t["page_id"], t["platform"], t["date"]): t["conversations_started_beyond_reach"]
        for t in truth["pages"]
    }
    compared = collections.Counter()
    for page in world["pages"]:
        tz = page_tz[page["id"]]
        local_today = dt.datetime.fromisoformat(truth["as_of"]).astimezone(tz).date()
        local_day = window_start.astimezone(tz).date()
        while local_day < local_today:
            # a start on this local date is inside the pull only if the whole date is after the window start
            if dt.datetime.combine(local_day, dt.time(), tz) >= window_start:
                for platform in ("messenger", "instagram"):
                    key = (page["id"], platform, local_day.isoformat())
                    assert counts.get(key, 0) == expected.get(key, 0), key
                    # one pull: a start is inferred exactly when the truth says it is beyond reach
                    assert inferred.get(key, 0) == beyond.get(key, 0), key
                    compared[platform] += expected.get(key, 0)
                    compared[f"{platform} inferred"] += inferred.get(key, 0)
            local_day += dt.timedelta(days=1)
    assert all(
        compared[k] > 0 for k in ("messenger", "instagram", "messenger inferred", "instagram inferred")
    )


def test_only_the_20_most_recent_messages_come_with_a_sender_and_older_ones_keep_their_time(pulled):
    lake, day, _ = pulled
    conversations = read(lake, "conversations").to_pylist()
    messages = read(lake, "messages").to_pylist()
    detailed = collections.Counter(m["conversation_id"] for m in messages if m["is_from_page"] is not None)
    bare = collections.defaultdict(list)
    for m in messages:
        if m["is_from_page"] is None:
            assert m["from_id"] is None and m["to_ids"] is None and m["message"] is None
            bare[m["conversation_id"]].append(m["created_time"])
    long = [c for c in conversations if c["message_count"] > 20]
    assert long, "the sandbox world has conversations longer than 20 messages"
    window_start, _ = utc_window(day, 28)
    for c in conversations:
        assert detailed[c["conversation_id"]] == min(c["message_count"], 20)
        assert c["messages_out_of_reach"] == max(0, c["message_count"] - 20)
        times = sorted(bare[c["conversation_id"]])
        assert sum(1 for t in times if t < window_start) <= 1, (
            "at most one message before the window (the anchor)"
        )
        if c["message_count"] > 20 and c["first_message_id"] is None:
            # the walk stopped at the window start: a message before it dates the silence before the window
            kept = [m["created_time"] for m in messages if m["conversation_id"] == c["conversation_id"]]
            assert min(kept) < window_start
    oldest = {}
    for m in sorted(messages, key=lambda m: (m["created_time"], m["message_id"]), reverse=True):
        oldest[m["conversation_id"]] = m["message_id"]
    stored = {m["message_id"] for m in messages}
    for c in conversations:
        if c["first_message_id"] in stored:  # a first message is the oldest one kept, never a later one
            assert oldest[c["conversation_id"]] == c["first_message_id"]
    assert any(
        c["message_count"] > 20
        and c["first_message_id"] in stored
        and c["first_message_id"] not in detailed_ids
        for c in conversations
        for detailed_ids in [{m["message_id"] for m in messages if m["is_from_page"] is not None}]
    ), "long conversations that opened inside the window name their first message, beyond reach"


def test_both_platforms_and_the_pages_own_messages_are_recognised(world, pulled):
    lake, _, summaries = pulled
    messages = read(lake, "messages").to_pylist()
    ig_of = {p["id"]: p["instagram_id"] for p in world["pages"]}
    for platform in ("messenger", "instagram"):
        rows = [m for m in messages if m["platform"] == platform and m["is_from_page"] is not None]
        assert rows and any(m["is_from_page"] for m in rows) and not all(m["is_from_page"] for m in rows)
        for m in rows:
            page_actor = m["page_id"] if platform == "messenger" else ig_of[m["page_id"]]
            assert m["is_from_page"] == (m["from_id"] == page_actor)
    for summary in summaries.values():
        assert set(summary["rows"]) == {"conversations", "messages"}
        assert summary["partitions"] == 2


def test_message_text_and_participant_names_stay_out_of_the_lake_by_default(sandbox, world, pulled):
    lake, _, _ = pulled
    secrets: set[str] = set()
    for page in world["pages"]:
        token = graph_get(sandbox, page["id"], "sandbox-token", fields="access_token")["access_token"]
        for platform in ("messenger", "instagram"):
            body = graph_get(
                sandbox, f"{page['id']}/conversations", token, platform=platform, limit=50,
                fields="participants,messages.limit(20){message}",
            )  # fmt: skip
            for conversation in body["data"]:
                secrets.update(m["message"] for m in conversation["messages"]["data"] if m.get("message"))
                for person in conversation["participants"]["data"]:
                    secrets.update(str(person[k]) for k in ("name", "username", "email") if person.get(k))
    # The Page is a participant of its own conversations: its name is public and kept (lake `pages/`).
    secrets -= {page["name"] for page in world["pages"]}
    assert secrets
    decoded = json.dumps(
        [read(lake, "messages").to_pylist(), read(lake, "conversations").to_pylist()], default=str
    )
    blobs = b"".join(p.read_bytes() for p in lake.rglob("*.parquet"))
    for secret in secrets:
        assert secret not in decoded
        assert secret.encode() not in blobs
    assert read(lake, "messages").column("message").null_count == read(lake, "messages").num_rows


def test_keep_message_text_keeps_it(sandbox, world, conn, tmp_path):
    run_conversations(
        tmp_path, world["pages"][0]["id"], today(sandbox), lookback_days=3, keep_message_text=True
    )
    rows = read(tmp_path, "messages").to_pylist()
    texts = [m["message"] for m in rows if m["is_from_page"] is not None]
    assert texts and all(texts)
    assert all(m["message"] is None for m in rows if m["is_from_page"] is None), "no text beyond reach"


def test_paging_stops_at_the_window_start_and_reruns_leave_identical_data(sandbox, world, conn, tmp_path):
    page_id = world["pages"][0]["id"]
    day = today(sandbox)
    sandbox.reset_stats()
    first = run_conversations(tmp_path, page_id, day, lookback_days=2, page_limit=25)
    listed = sum(v for k, v in sandbox.stats()["by_endpoint"].items() if "conversations" in k)
    before = {n: sorted_rows(read(tmp_path, n)) for n in ("conversations", "messages")}
    start, _ = utc_window(day, 2)  # two UTC days and the one-day timezone margin before them
    assert start == dt.datetime.combine(day - dt.timedelta(days=2), dt.time(), dt.UTC)
    assert before["conversations"] and all(c["updated_time"] >= start for c in before["conversations"])
    # newest first: the walk stops on the page holding the first older conversation, so each
    # platform costs the pages of its in-window conversations plus at most one, not the whole history
    per_platform = collections.Counter(r["platform"] for r in read(tmp_path, "conversations").to_pylist())
    bound = sum(per_platform.get(p, 0) // 25 + 1 for p in ("messenger", "instagram"))
    assert listed <= bound, sandbox.stats()["by_endpoint"]

    second = run_conversations(tmp_path, page_id, day, lookback_days=2, page_limit=25)
    assert {n: sorted_rows(read(tmp_path, n)) for n in ("conversations", "messages")} == before
    assert first["rows"] == second["rows"]
    assert sorted(p.name for p in (tmp_path / "messages" / f"page_id={page_id}").iterdir()) == [
        "platform=instagram",
        "platform=messenger",
    ]


def test_a_listing_not_newest_first_is_counted_and_read_to_the_end_losing_no_conversation(
    sandbox_factory, monkeypatch, tmp_path
):
    """Meta documents newest-first for a conversation's messages, not for the conversations list
    (meta_api_facts.md section 6). With each adjacent pair listed the other way round, a walk that stopped
    at the first conversation older than the window lost the in-window one listed after it. The break is
    counted in the manifest (`out_of_order`) and the walk reads on: the same conversations as in order."""
    sb = sandbox_factory(now=STILL_CLOCK)
    use_connection(monkeypatch, sb)
    day = today(sb)
    pages = [p["id"] for p in sb.world()["pages"]]
    for page_id in pages:
        run_conversations(tmp_path / "ordered", page_id, day, lookback_days=2, page_limit=25)
    sb.set_faults({"conversations_order": "pairs_swapped"})
    for page_id in pages:
        run_conversations(tmp_path / "swapped", page_id, day, lookback_days=2, page_limit=25)

    for name in ("conversations", "messages"):
        assert sorted_rows(read(tmp_path / "swapped", name)) == sorted_rows(read(tmp_path / "ordered", name))
    swapped = manifests(tmp_path / "swapped")
    assert sum(m["platforms"][p]["out_of_order"] for m in swapped for p in m["platforms"]) > 0
    ordered = manifests(tmp_path / "ordered")
    assert all(m["platforms"][p]["out_of_order"] == 0 for m in ordered for p in m["platforms"])


def test_items_listed_again_by_a_later_page_are_kept_once(sandbox_factory, monkeypatch, tmp_path):
    """An Inbox changes while it is paged: a message or conversation arriving at the head of a list paged
    by position makes the next page repeat the end of the one before (a CI run met it: one message twice
    in a partition, and dbt's uniqueness test failed the build). With that on every page (sandbox fault
    `arrivals_between_pages`), the lake holds each conversation and message once, the same rows as a
    calm read, and the manifest counts what was listed again (`relisted`)."""
    sb = sandbox_factory(now=STILL_CLOCK)
    use_connection(monkeypatch, sb)
    day = today(sb)
    pages = [p["id"] for p in sb.world()["pages"]]
    small_pages = {"lookback_days": 3, "page_limit": 5, "messages_per_conversation": 4}
    for page_id in pages:
        run_conversations(tmp_path / "calm", page_id, day, **small_pages)
    sb.set_faults({"arrivals_between_pages": True})
    for page_id in pages:
        run_conversations(tmp_path / "arrivals", page_id, day, **small_pages)

    conversations = read(tmp_path / "arrivals", "conversations").column("conversation_id").to_pylist()
    messages = read(tmp_path / "arrivals", "messages").column("message_id").to_pylist()
    assert len(set(conversations)) == len(conversations) and len(set(messages)) == len(messages)
    for name in ("conversations", "messages"):
        assert sorted_rows(read(tmp_path / "arrivals", name)) == sorted_rows(read(tmp_path / "calm", name))
    arrivals = manifests(tmp_path / "arrivals")
    assert sum(m["platforms"][p]["relisted"] for m in arrivals for p in m["platforms"]) > 0


def test_a_rerun_keeps_what_meta_no_longer_lists(sandbox_factory, monkeypatch, tmp_path):
    """A rerun of a date replaces its snapshot. When Meta no longer lists conversations the earlier pull of
    that date held (here: the app lost Advanced Access, which hides conversations with people who have no
    role on the app, seed 004; also deletions and Message Requests inactive 30 days), they still
    happened: the rerun keeps them and their messages, counted in the manifest (`carried_*`), instead of
    shrinking the date's snapshot to what the reduced token sees."""
    sb = sandbox_factory(now=STILL_CLOCK)
    day = today(sb)
    page_id = sb.world()["pages"][0]["id"]
    use_connection(monkeypatch, sb)
    run_conversations(tmp_path / "lake", page_id, day, lookback_days=7)
    first = {name: sorted_rows(read(tmp_path / "lake", name)) for name in ("conversations", "messages")}

    use_connection(monkeypatch, sb, token="sandbox-token-standard-access")
    run_conversations(tmp_path / "standard_only", page_id, day, lookback_days=7)
    assert 0 < len(read(tmp_path / "standard_only", "conversations")) < len(first["conversations"])
    run_conversations(tmp_path / "lake", page_id, day, lookback_days=7)  # the rerun

    for name in ("conversations", "messages"):
        assert sorted_rows(read(tmp_path / "lake", name)) == first[name]
    platforms = manifests(tmp_path / "lake")[-1]["platforms"].values()  # the rerun's
    assert sum(p["carried_conversations"] for p in platforms) == len(first["conversations"]) - len(
        read(tmp_path / "standard_only", "conversations")
    )
    assert sum(p["carried_messages"] for p in platforms) > 0


def test_a_rerun_keeps_the_senders_of_messages_pushed_beyond_the_20_most_recent(
    sandbox_factory, monkeypatch, tmp_path
):
    """Meta gives details for a conversation's 20 most recent messages only (seed 004). Rerun days later,
    a date's pull finds newer messages in its conversations, and messages it saw with their sender come
    without: the rerun keeps the sender the earlier pull saw (the manifest's `senders_kept`)."""
    sb = sandbox_factory(now=STILL_CLOCK)
    use_connection(monkeypatch, sb)
    day = today(sb)
    page_id = sb.world()["pages"][0]["id"]
    run_conversations(tmp_path / "lake", page_id, day, lookback_days=7)
    seen = {
        m["message_id"]: m
        for m in read(tmp_path / "lake", "messages").to_pylist()
        if m["is_from_page"] is not None
    }

    sb.set_clock(advance_days=10)  # ten more days of messages
    run_conversations(tmp_path / "fresh", page_id, day, lookback_days=7)
    fresh = read(tmp_path / "fresh", "messages").to_pylist()
    assert any(m["message_id"] in seen and m["is_from_page"] is None for m in fresh), "none pushed beyond 20"
    run_conversations(tmp_path / "lake", page_id, day, lookback_days=7)  # the rerun of the date

    rerun = {m["message_id"]: m for m in read(tmp_path / "lake", "messages").to_pylist()}
    senders = ("from_id", "to_ids", "is_from_page")
    assert all(
        [rerun[i][k] for k in senders] == [m[k] for k in senders] for i, m in seen.items() if i in rerun
    )
    assert sum(p["senders_kept"] for p in manifests(tmp_path / "lake")[-1]["platforms"].values()) > 0


def test_conversations_updated_while_the_list_is_walked_are_taken_as_they_are_now(
    sandbox_factory, monkeypatch, tmp_path
):
    """A conversation that gets a message while the list is paged moves to its head, behind the cursor:
    a walk of several pages missed it (or held it as it was). With that before two pages (sandbox fault
    `updates_between_pages`: the sandbox's clock moves on to the next conversation's next message), the
    pull equals a calm one made afterwards at the same clock, and the manifest counts what the second
    read of the head took (`updated_during_walk`)."""
    sb = sandbox_factory(now=STILL_CLOCK)
    use_connection(monkeypatch, sb)
    day = today(sb)
    page_id = sb.world()["pages"][0]["id"]
    walk = {"lookback_days": 3, "page_limit": 5, "platforms": ["messenger"]}
    sb.set_faults({"updates_between_pages": 2})  # before the walk's 2nd and 3rd pages
    run_conversations(tmp_path / "walked", page_id, day, **walk)
    assert sb.now() != sb_time(STILL_CLOCK), "the fault moved no conversation"
    sb.set_faults({})
    run_conversations(tmp_path / "calm", page_id, day, **walk)

    for name in ("conversations", "messages"):
        assert sorted_rows(read(tmp_path / "walked", name)) == sorted_rows(read(tmp_path / "calm", name))
    manifest = only_manifest(tmp_path / "walked")
    assert manifest["platforms"]["messenger"]["updated_during_walk"] > 0


def test_a_page_token_that_expires_during_the_pull_is_fetched_again_and_the_pull_completes(
    sandbox_factory, monkeypatch, tmp_path
):
    """Meta: Page tokens from a short-lived user token "are valid for 1 hour" (meta_api_facts.md section 7,
    [DOC] token-switch). Against a sandbox whose Page tokens live 1 s and a pull of many slow calls (small
    pages, 150 ms each), Meta refuses the Page token mid-pull (190/463): the hook fetches a new one with the
    Connection's user token and repeats the call, and the pull equals one made without expiry. On the old
    code the task failed on the first refusal."""
    walk = {"lookback_days": 3, "page_limit": 2, "messages_per_conversation": 3, "platforms": ["messenger"]}
    steady = sandbox_factory(now=STILL_CLOCK)
    use_connection(monkeypatch, steady)
    page_id = steady.world()["pages"][0]["id"]
    day = today(steady)
    run_conversations(tmp_path / "steady", page_id, day, **walk)

    expiring = sandbox_factory(now=STILL_CLOCK, page_token_seconds=1, latency_ms=150)
    use_connection(monkeypatch, expiring)
    run_conversations(tmp_path / "expiring", page_id, day, **walk)

    assert expiring.stats()["by_error_code"].get("190", 0) >= 1, expiring.stats()
    renewals = only_manifest(tmp_path / "expiring")["page_token_renewals"]
    assert renewals == expiring.stats()["by_error_code"]["190"]
    assert only_manifest(tmp_path / "steady")["page_token_renewals"] == 0
    for name in ("conversations", "messages"):
        assert sorted_rows(read(tmp_path / "expiring", name)) == sorted_rows(read(tmp_path / "steady", name))


def sb_time(text: str) -> str:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat()


def test_instagram_reads_keep_to_metas_two_calls_a_second_and_lose_nothing(
    sandbox_factory, monkeypatch, tmp_path
):
    """Meta: "Instagram Conversations API: 2 calls per second per IG professional account", each batch item
    a call (meta_api_facts.md sections 2.2, 8). Against a sandbox keeping that quota (80002 above it) and
    a Connection at Meta's pace (the default), the pull is never refused and equals an unpaced one."""
    unpaced = sandbox_factory(now=STILL_CLOCK)
    use_connection(monkeypatch, unpaced)
    page_id = unpaced.world()["pages"][1]["id"]
    day = today(unpaced)
    run_conversations(tmp_path / "unpaced", page_id, day, lookback_days=2, messages_per_conversation=3)

    paced = sandbox_factory(now=STILL_CLOCK, budgets="instagram=2")
    assert paced.instagram_calls_per_second == 2
    use_connection(monkeypatch, paced)
    run_conversations(tmp_path / "paced", page_id, day, lookback_days=2, messages_per_conversation=3)

    assert paced.stats()["errors"] == 0, paced.stats()
    assert any(k.startswith("POST") for k in paced.stats()["by_endpoint"])  # batches were paced too
    for name in ("conversations", "messages"):
        assert sorted_rows(read(tmp_path / "paced", name)) == sorted_rows(read(tmp_path / "unpaced", name))


def test_short_nested_pages_are_completed_with_batch_requests(sandbox, world, conn, tmp_path):
    page_id = world["pages"][1]["id"]
    day = today(sandbox)
    run_conversations(tmp_path / "full", page_id, day, lookback_days=7)
    sandbox.reset_stats()
    summary = run_conversations(
        tmp_path / "short", page_id, day, lookback_days=7, messages_per_conversation=3
    )
    batch_calls = sum(p["batch_calls"] for p in only_manifest(tmp_path / "short")["platforms"].values())
    assert batch_calls >= 1
    endpoints = sandbox.stats()["by_endpoint"]
    assert any(k.startswith("POST") for k in endpoints), endpoints
    for name in ("conversations", "messages"):
        assert sorted_rows(read(tmp_path / "short", name)) == sorted_rows(read(tmp_path / "full", name))
    assert summary["rows"]["messages"] > 0


def test_a_messages_page_still_failing_after_the_retries_fails_the_task_and_loses_no_start(
    sandbox_factory, monkeypatch, tmp_path
):
    """A transient error on a conversation's messages page (Meta's code 1/2, HTTP 500) that outlives the
    hook's retries fails the task for Airflow's retry; the conversation is not kept with an unknown first
    message (which would drop its start from the marts), and nothing is written until the retry."""
    sb = sandbox_factory(now=STILL_CLOCK)
    use_connection(monkeypatch, sb)
    page_id = sb.world()["pages"][1]["id"]
    day = today(sb)
    run_conversations(tmp_path / "full", page_id, day, lookback_days=7)
    # every messages page read in a batch (the walk beyond the first nested page) fails transiently
    sb.set_faults({"transient_error_rate": 1.0, "endpoints": ["GET /{id}/messages"]})
    op = MetaConversationsOperator(
        task_id="conversations_retry",
        page_id=page_id,
        lake_root=str(tmp_path / "short"),
        data_interval_day=day.isoformat(),
        lookback_days=7,
        messages_per_conversation=3,
    )
    op.hook.max_attempts, op.hook.backoff_base = (
        2,
        0.01,
    )  # the hook's retries (its Page hook's too), kept short

    with pytest.raises(MetaRetryableError) as failed:
        op.execute({"run_id": "test"})

    assert not isinstance(failed.value, AirflowFailException)  # Airflow retries the task
    assert f"Page {page_id}: conversation " in str(failed.value)
    assert not list((tmp_path / "short").glob("messages/**/*.parquet"))  # nothing half-written

    sb.clear_faults()  # the Airflow retry
    run_conversations(tmp_path / "short", page_id, day, lookback_days=7, messages_per_conversation=3)
    for name in ("conversations", "messages"):
        assert sorted_rows(read(tmp_path / "short", name)) == sorted_rows(read(tmp_path / "full", name))


def test_a_messages_page_meta_asks_to_make_smaller_is_read_in_smaller_pages_and_loses_no_start(
    sandbox_factory, monkeypatch, tmp_path
):
    """Meta's "Please reduce the amount of data you're asking for" (code 1, HTTP 500; meta_api_facts.md
    section 3, seed 001) on a conversation's messages page read in a batch: the same page is asked again
    with half the page size, as the hook's paginate does, instead of ending the walk (which kept the
    conversation with an unknown first message and dropped its start). Same rows as the full read."""
    sb = sandbox_factory(now=STILL_CLOCK)
    use_connection(monkeypatch, sb)
    page_id = sb.world()["pages"][1]["id"]
    day = today(sb)
    run_conversations(tmp_path / "full", page_id, day, lookback_days=7)
    # every edge page of more than 10 rows answers "reduce the amount of data" (the 17 remaining recent
    # messages after a nested page of 3, the 100-message listing pages, the 100-conversation listing)
    sb.set_faults({"too_much_data": {"max_page_rows": 10}})

    summary = run_conversations(
        tmp_path / "small", page_id, day, lookback_days=7, messages_per_conversation=3
    )

    assert only_manifest(tmp_path / "small")["platforms"]["messenger"]["listing_errors"] == 0
    assert sorted_rows(read(tmp_path / "small", "messages")) == sorted_rows(
        read(tmp_path / "full", "messages")
    )
    assert summary["rows"]["messages"] > 0

    # A conversation's first message is known when a page of its walk reached it, which depends on where
    # the pages end: a walk of smaller pages can stop at the anchor before it, as the rule allows (the
    # anchor, older than the window, decides the window's first message). Everything else is the same,
    # and so are the conversations started inside the window.
    def without_first(rows: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "first_message_id"} for r in rows]

    small, full = (sorted_rows(read(tmp_path / run, "conversations")) for run in ("small", "full"))
    assert without_first(small) == without_first(full)
    (page,) = [p for p in sb.world()["pages"] if p["id"] == page_id]
    page_tz = {page_id: zoneinfo.ZoneInfo(page["timezone_name"])}
    window_start = (day - dt.timedelta(days=6)).isoformat()

    def starts_in_window(run: str) -> list[dict]:
        lake = tmp_path / run
        counts = starts_from_lake(
            read(lake, "messages").to_pylist(), read(lake, "conversations").to_pylist(), page_tz
        )
        return [{key: n for key, n in c.items() if key[2] >= window_start} for c in counts]

    assert starts_in_window("small") == starts_in_window("full")
    assert sum(starts_in_window("full")[0].values()) > 0


def manifests(lake: Path) -> list[dict]:
    """The conversations runs' manifests of ``lake``, oldest first (their names begin with the time)."""
    return [
        json.loads(path.read_text()) for path in sorted((lake / "_manifests" / "messages").glob("*.json"))
    ]


def only_manifest(lake: Path) -> dict:
    (manifest,) = manifests(lake)
    return manifest


def test_a_token_without_pages_messaging_names_the_page_and_permission(sandbox, world, monkeypatch, tmp_path):
    use_connection(monkeypatch, sandbox, token="sandbox-token-without-pages_messaging")
    page_id = world["pages"][0]["id"]
    with pytest.raises(
        MetaPermissionError, match=rf"Page {page_id}: permission 'pages_messaging' is missing"
    ):
        run_conversations(tmp_path, page_id, today(sandbox), lookback_days=2)


def test_a_token_without_instagram_manage_messages_names_it(sandbox, world, monkeypatch, tmp_path):
    use_connection(monkeypatch, sandbox, token="sandbox-token-without-instagram_manage_messages")
    page_id = world["pages"][0]["id"]
    with pytest.raises(MetaPermissionError, match=rf"Page {page_id}: permission 'instagram_manage_messages'"):
        run_conversations(tmp_path, page_id, today(sandbox), lookback_days=2)
    assert not (tmp_path / "messages").exists(), "nothing is written when one platform fails"


def test_a_bad_page_id_names_the_page(sandbox, conn, tmp_path):
    with pytest.raises(MetaParameterError, match=r"Page 999000111 was not found"):
        run_conversations(tmp_path, "999000111", today(sandbox), lookback_days=2)


def test_a_standard_access_token_sees_only_people_with_a_role_on_the_app(
    sandbox, world, monkeypatch, tmp_path
):
    """Seed 004: the edge answers normally, without the conversations of everyone else. The lake holds
    exactly what the token sees (the truth's conversations_started_standard_access); the marts warn."""
    use_connection(monkeypatch, sandbox, token="sandbox-token-standard-access")
    page = world["pages"][0]
    day = today(sandbox)
    run_conversations(tmp_path, page["id"], day, lookback_days=28)
    page_tz = {page["id"]: zoneinfo.ZoneInfo(page["timezone_name"])}
    observed, inferred = starts_from_lake(
        read(tmp_path, "messages").to_pylist(), read(tmp_path, "conversations").to_pylist(), page_tz
    )
    truth = sandbox.truth((day - dt.timedelta(days=26)).isoformat(), (day - dt.timedelta(days=1)).isoformat())
    rows = [t for t in truth["pages"] if t["page_id"] == page["id"]]
    seen = observed + inferred
    for t in rows:
        assert (
            seen.get((page["id"], t["platform"], t["date"]), 0) == t["conversations_started_standard_access"]
        ), t
    assert sum(t["conversations_started"] for t in rows) > 5 * sum(
        t["conversations_started_standard_access"] for t in rows
    )


def test_a_user_without_the_messaging_task_is_named_with_the_fix(sandbox, world, monkeypatch, tmp_path):
    use_connection(monkeypatch, sandbox, token="sandbox-token-without-MESSAGING+MODERATE")
    page_id = world["pages"][0]["id"]
    with pytest.raises(MetaPermissionError, match=rf"Page {page_id}.*MESSAGING or MODERATE task"):
        run_conversations(tmp_path, page_id, today(sandbox), lookback_days=2, platforms=["messenger"])
