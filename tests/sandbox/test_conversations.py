"""Conversations API: listing, filters, nested messages, the 20-message rule, starts vs. truth."""

from __future__ import annotations

import collections
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

NOW = "2026-03-15T12:00:00Z"
NESTED = "id,updated_time,message_count,participants,messages.limit(500){id,created_time,from,to,message}"


@pytest.fixture(scope="module")
def sb(module_sandbox_factory, instagram_unpaced):
    return module_sandbox_factory(now=NOW, budgets=instagram_unpaced)


@pytest.fixture(scope="module")
def g(sb, graph_for):
    return graph_for(sb)


@pytest.fixture(scope="module")
def w(sb):
    return sb.world()


@pytest.fixture(scope="module")
def page(w):
    return w["pages"][0]


@pytest.fixture(scope="module")
def pg(sb, g, page, graph_for):
    return graph_for(sb, token=g.page_token(page["id"]))


@pytest.fixture(scope="module")
def all_convs(pg, page):
    out = {}
    for platform in ("messenger", "instagram"):
        out[platform] = pg.page_all(f"{page['id']}/conversations", platform=platform, fields=NESTED, limit=50)
    return out


def _t(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s.replace("+0000", "+00:00"))


def test_conversations_are_newest_first_and_split_by_platform(all_convs, page):
    for platform, convs in all_convs.items():
        assert convs
        times = [c["updated_time"] for c in convs]
        assert times == sorted(times, reverse=True)
        for c in convs:
            assert c["id"].startswith("t_")
            parts = c["participants"]["data"]
            if platform == "instagram":
                assert set(parts[0]) == {"username", "id"} and parts[1]["id"] == page["instagram_id"]
            else:
                assert set(parts[0]) == {"name", "email", "id"} and parts[1]["id"] == page["id"]


def test_platform_is_case_insensitive_and_default_fields(pg, page):
    body = pg.ok(f"{page['id']}/conversations", platform="INSTAGRAM", limit=2)
    assert set(body["data"][0]) == {"id", "updated_time"}
    assert "next" in body["paging"]


def test_user_id_filter_finds_one_conversation(pg, page, all_convs):
    conv = all_convs["messenger"][3]
    user = conv["participants"]["data"][0]["id"]
    found = pg.ok(f"{page['id']}/conversations", platform="messenger", user_id=user)["data"]
    assert found == [{"id": conv["id"]}], "seed 004: the lookup answers the conversation's id alone"
    asked = pg.ok(f"{page['id']}/conversations", platform="messenger", user_id=user, fields="id,updated_time")
    assert set(asked["data"][0]) == {"id", "updated_time"}


def test_nested_messages_expand_with_details_only_for_the_20_most_recent(all_convs, pg):
    convs = [c for p in all_convs.values() for c in p]
    long = [c for c in convs if c["message_count"] > 20]
    assert long, "the default world has long conversations"
    for c in convs:
        msgs = c["messages"]["data"]
        assert len(msgs) == c["message_count"]
        assert [m["created_time"] for m in msgs] == sorted((m["created_time"] for m in msgs), reverse=True)
        assert msgs[0]["created_time"] == c["updated_time"]
        for i, m in enumerate(msgs):
            if i < 20:
                assert {"id", "created_time", "from", "to", "message"} == set(m)
                assert isinstance(m["to"]["data"], list)
            else:
                assert set(m) == {"id", "created_time"}
    c = long[0]
    old = c["messages"]["data"][25 if c["message_count"] > 25 else 20]["id"]
    status, body, _ = pg.get(old, fields="id,created_time,from,message")
    assert status == 400
    assert body["error"]["code"] == 100 and body["error"]["error_subcode"] == 33
    assert "deleted" in body["error"]["message"]
    recent = pg.ok(c["messages"]["data"][0]["id"], fields="id,created_time,from,to,message")
    assert recent == c["messages"]["data"][0]


def test_nested_limit_pages_via_the_messages_edge(pg, all_convs):
    c = max(all_convs["messenger"], key=lambda c: c["message_count"])
    small = pg.ok(c["id"], fields="messages.limit(3){id,created_time}")
    assert len(small["messages"]["data"]) == 3 and "next" in small["messages"]["paging"]
    edge = pg.page_all(f"{c['id']}/messages", fields="id,created_time", limit=4)
    assert [m["id"] for m in edge] == [m["id"] for m in c["messages"]["data"]]


def test_conversation_node_messages_default_fields(pg, all_convs):
    c = all_convs["instagram"][0]
    body = pg.ok(c["id"], fields="messages")
    assert set(body) == {"id", "messages"}
    assert set(body["messages"]["data"][0]) == {"id", "created_time"}
    msg = pg.ok(body["messages"]["data"][0]["id"])
    assert set(msg) == {"id", "created_time"}


def test_messaging_permissions(sb, page, graph_for, error_of):
    for missing, platform in (("pages_messaging", "messenger"), ("instagram_manage_messages", "instagram")):
        user = graph_for(sb, token=f"sandbox-token-without-{missing}")
        pgx = graph_for(sb, token=user.page_token(page["id"]))
        status, body, _ = pgx.get(f"{page['id']}/conversations", platform=platform)
        err = error_of(body)
        assert status == 400 and err["code"] == 10 and missing in err["message"]


def test_first_party_starts_reproduce_the_truth(sb, all_convs, page, w):
    """Starts computed from the API equal the truth's page rows: a user message with details that is
    first or comes >= 7 days after the previous one is an observed start; a message beyond the 20
    most recent (id and created_time only) in that position is the person's (inferred: a Page cannot
    open a conversation nor write after 7 days of silence), and only those are beyond reach."""
    tz = ZoneInfo(next(a for a in w["accounts"] if a["page_id"] == page["id"])["timezone_name"])
    truth = sb.truth()
    first_day = min(r["date"] for r in truth["accounts"])
    observed, inferred = collections.Counter(), collections.Counter()
    for platform, convs in all_convs.items():
        for c in convs:
            msgs = list(reversed(c["messages"]["data"]))  # chronological
            for i, m in enumerate(msgs):
                gap_ok = i == 0 or _t(m["created_time"]) - _t(msgs[i - 1]["created_time"]) >= dt.timedelta(
                    days=7
                )
                day = _t(m["created_time"]).astimezone(tz).date().isoformat()
                if not gap_ok or day < first_day:
                    continue
                if "from" not in m:
                    inferred[(platform, day)] += 1
                elif m["from"]["id"] not in (page["id"], page["instagram_id"]):
                    observed[(platform, day)] += 1
    rows = [r for r in truth["pages"] if r["page_id"] == page["id"]]
    expected = {
        (r["platform"], r["date"]): r["conversations_started"] for r in rows if r["conversations_started"]
    }
    assert dict(observed + inferred) == expected
    beyond = {
        (r["platform"], r["date"]): r["conversations_started_beyond_reach"]
        for r in rows
        if r["conversations_started_beyond_reach"]
    }
    assert dict(inferred) == beyond
    for platform in ("messenger", "instagram"):
        assert sum(n for (p, _), n in inferred.items() if p == platform) > 0, (
            "long conversations on both platforms"
        )


def test_some_long_conversations_start_inside_the_window(all_convs, sb):
    """Long threads are not confined to history before the window: some open inside it."""
    first_day = min(r["date"] for r in sb.truth()["accounts"])
    long_inside = [
        c
        for convs in all_convs.values()
        for c in convs
        if c["message_count"] > 20 and c["messages"]["data"][-1]["created_time"][:10] > first_day
    ]
    assert long_inside


def test_ad_attributed_starts_match_reported_messaging_actions_once_mature(sb, g, w):
    truth = sb.truth(since="2026-01-01", until="2026-02-10")  # all >= 28 days old: final
    acct = w["accounts"][0]
    rows = g.page_all(
        f"{acct['id']}/insights",
        level="account",
        time_increment=1,
        limit=500,
        fields="actions",
        time_range={"since": "2026-01-01", "until": "2026-02-10"},
    )
    reported = {
        r["date_start"]: sum(
            int(a["value"])
            for a in r.get("actions", [])
            if a["action_type"] == "onsite_conversion.messaging_conversation_started_7d"
        )
        for r in rows
    }
    from_truth = {
        r["date"]: r["conversations_started_reported"]
        for r in truth["accounts"]
        if r["account_id"] == acct["account_id"]
    }
    assert reported == from_truth
    pages = collections.Counter()
    for r in truth["pages"]:
        if r["page_id"] == acct["page_id"]:
            pages[r["date"]] += r["conversations_started"]
    # First-party starts include organic ones, so they are at least the ad-attributed ones.
    assert all(pages[d] >= n for d, n in reported.items())
    assert sum(pages.values()) > sum(reported.values())
