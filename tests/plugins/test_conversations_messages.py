"""Conversation assembly: the 20-message rule, nested paging and message rows."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from meta_ads_elt.operators.conversations import (
    ConversationPull,
    ConversationState,
    ListingPage,
    message_row,
    next_cursor,
)

EXTRACTED = datetime(2026, 3, 1, tzinfo=UTC)


def _msg(i: int, sender: str = "u1") -> dict:
    return {
        "id": f"m_{i}",
        "created_time": f"2026-02-{10 + i % 10:02d}T10:00:00+0000",
        "from": {"id": sender, "name": "Someone"},
        "to": {"data": [{"id": "p1"}]},
        "message": "hello",
    }


def _conversation(count: int, shown: int, more: bool) -> dict:
    paging = {"cursors": {"after": "CUR"}, **({"next": "http://x/next"} if more else {})}
    return {
        "id": "t_1",
        "updated_time": "2026-02-20T10:00:00+0000",
        "message_count": count,
        "participants": {"data": [{"id": "u1", "name": "Ann", "email": "u1@facebook.com"}, {"id": "p1"}]},
        "messages": {"data": [_msg(i) for i in range(shown)], "paging": paging},
    }


def _bare(i: int, day: int) -> dict:
    """A message beyond the 20 most recent: Meta lists only its id and time (seed 004)."""
    return {"id": f"m_{i}", "created_time": f"2026-02-{day:02d}T09:00:00+0000"}


WINDOW_START = datetime(2026, 2, 5, tzinfo=UTC)


def test_a_long_conversation_keeps_20_messages_and_walks_ids_and_times_to_the_window_start():
    state = ConversationState(_conversation(count=35, shown=20, more=True), WINDOW_START)
    assert state.wants_more()  # the 21st and older: ids and times, until the window start
    url = urlsplit(state.more_request()["relative_url"])
    assert parse_qs(url.query) == {"fields": ["id,created_time"], "limit": ["100"], "after": ["CUR"]}
    state.add_page([_bare(20 + i, 9 - i) for i in range(6)], {"cursors": {"after": "C2"}, "next": "n"})
    assert not state.wants_more(), "a message older than the window start ends the walk"
    kept = [m["id"] for m in state.rows_to_keep()]
    # the 20 with details, the ones inside the window, and the first one before it (the anchor)
    assert kept[:20] == [f"m_{i}" for i in range(20)] and kept[20:] == [
        "m_20",
        "m_21",
        "m_22",
        "m_23",
        "m_24",
        "m_25",
    ]
    row = state.row(EXTRACTED)
    assert row["messages_out_of_reach"] == 15
    assert row["first_message_id"] is None, "the walk stopped before the conversation's first message"
    assert row["participant_ids"] == ["p1", "u1"]


def test_a_walk_that_reaches_the_end_names_the_first_message():
    state = ConversationState(_conversation(count=23, shown=20, more=True), WINDOW_START)
    state.add_page([_bare(20, 9), _bare(21, 8), _bare(22, 7)], {"cursors": {"after": "C2"}})
    assert not state.wants_more()
    row = state.row(EXTRACTED)
    assert row["first_message_id"] == "m_22" and row["messages_out_of_reach"] == 3
    rows = [message_row(m, "t_1", "p1", keep_text=True, extracted_at=EXTRACTED) for m in state.rows_to_keep()]
    bare = [r for r in rows if r["message_id"] in {"m_20", "m_21", "m_22"}]
    assert len(bare) == 3 and all(
        r["is_from_page"] is None and r["from_id"] is None and r["to_ids"] is None and r["message"] is None
        for r in bare
    ), "a message beyond reach keeps its time, never a guessed sender"


def test_a_short_conversation_names_its_first_message_without_more_calls():
    state = ConversationState(_conversation(count=4, shown=4, more=False), WINDOW_START)
    assert not state.wants_more()
    assert state.row(EXTRACTED)["first_message_id"] == "m_3"


def test_a_missing_message_count_is_unknown_never_zero():
    record = _conversation(count=0, shown=20, more=True)
    del record["message_count"]
    state = ConversationState(record, WINDOW_START)
    state.add_page([_bare(20, 9), _bare(21, 1)], {"cursors": {"after": "C2"}, "next": "n"})
    row = state.row(EXTRACTED)
    assert row["message_count"] is None and row["messages_out_of_reach"] is None
    assert row["first_message_id"] is None
    complete = ConversationState(record, WINDOW_START)
    complete.add_page([_bare(20, 9)], {"cursors": {"after": "C2"}})
    assert complete.row(EXTRACTED)["messages_out_of_reach"] == 1, "a complete walk counts them itself"


def test_a_short_first_page_asks_for_the_rest_of_the_20_in_one_batch_operation():
    state = ConversationState(_conversation(count=12, shown=5, more=True), WINDOW_START)
    assert state.wants_more()
    request = state.more_request()
    url = urlsplit(request["relative_url"])
    assert request["method"] == "GET" and url.path == "t_1/messages"
    assert parse_qs(url.query) == {
        "fields": ["id,created_time,from,to,message"],
        "limit": ["15"],
        "after": ["CUR"],
    }
    state.add_page([_msg(i) for i in range(5, 12)], {})
    assert not state.wants_more() and state.out_of_reach() == 0
    assert state.first_message_id() == "m_11"


def test_an_unreadable_page_ends_the_walk_and_leaves_the_first_message_unknown():
    state = ConversationState(_conversation(count=30, shown=20, more=True), WINDOW_START)
    state.stop()
    assert not state.wants_more() and state.first_message_id() is None and state.errors == 1


def test_next_cursor_needs_both_after_and_next():
    assert next_cursor({"cursors": {"after": "A"}, "next": "n"}) == "A"
    assert next_cursor({"cursors": {"after": "A"}}) is None


def test_message_rows_flag_the_pages_own_messages_and_drop_text_by_default():
    page_row = message_row(_msg(1, sender="ig1"), "t_1", "ig1", keep_text=False, extracted_at=EXTRACTED)
    user_row = message_row(_msg(2, sender="u1"), "t_1", "ig1", keep_text=True, extracted_at=EXTRACTED)
    assert page_row["is_from_page"] is True and page_row["message"] is None
    assert user_row["is_from_page"] is False and user_row["message"] == "hello"
    assert user_row["to_ids"] == ["p1"]
    assert user_row["created_time"] == datetime(2026, 2, 12, 10, tzinfo=UTC)


def _listed(day: int, hour: int = 10) -> dict:
    return {"id": f"t_{day}_{hour}", "updated_time": f"2026-02-{day:02d}T{hour:02d}:00:00+0000"}


def test_a_listing_page_in_newest_first_order_keeps_the_window_and_says_it_reached_older():
    page = ListingPage.of(
        [_listed(9), _listed(7), _listed(5), _listed(4), _listed(3)], WINDOW_START, after=None
    )
    assert [r["id"] for r, _ in page.in_window] == ["t_9_10", "t_7_10", "t_5_10"]
    assert page.reached_older and page.out_of_order == 0
    assert page.last_listed == datetime(2026, 2, 3, 10, tzinfo=UTC)


def test_a_listing_page_out_of_order_keeps_an_in_window_conversation_listed_after_an_older_one():
    """Meta does not state the list's order: a conversation in the window after an older one is kept, and
    the break is counted, against this page's rows and the last one of the page before."""
    page = ListingPage.of(
        [_listed(9), _listed(4), _listed(8), _listed(3)], WINDOW_START, after=_listed_time(8)
    )
    assert [r["id"] for r, _ in page.in_window] == ["t_9_10", "t_8_10"]
    assert page.reached_older
    assert page.out_of_order == 2  # t_9 after the previous page's 8th, t_8 after the 4th


def _listed_time(day: int) -> datetime:
    return datetime(2026, 2, day, 10, tzinfo=UTC)


def test_a_message_a_later_page_lists_again_is_kept_once_and_counted():
    """A message arriving at the head between two reads shifts a list paged by position: the next page
    starts with the last message of the page before. It is one message, kept once; the walk's position
    (the 20 with details, then ids and times) counts it once."""
    state = ConversationState(_conversation(count=35, shown=5, more=True), WINDOW_START)
    state.add_page([_msg(4), *(_msg(i) for i in range(5, 9))], {"cursors": {"after": "C2"}, "next": "n"})
    assert state.relisted == 1
    assert state.position == 9
    assert [m["id"] for m in state.rows_to_keep()] == [f"m_{i}" for i in range(9)]


def _stored_conversation(cid: str, day: int) -> dict:
    return {"conversation_id": cid, "updated_time": datetime(2026, 2, day, 10, tzinfo=UTC), "message_count": 2,
            "participant_ids": ["u1"], "messages_out_of_reach": 0, "first_message_id": None,
            "_extracted_at": EXTRACTED}  # fmt: skip


def _stored_message(mid: str, cid: str, day: int, text: str | None = "hi") -> dict:
    return {"message_id": mid, "conversation_id": cid, "created_time": datetime(2026, 2, day, 9, tzinfo=UTC),
            "from_id": "u1", "to_ids": ["p1"], "is_from_page": False, "message": text,
            "_extracted_at": EXTRACTED}  # fmt: skip


def test_a_rerun_keeps_the_conversations_and_messages_meta_no_longer_lists_in_the_window():
    pull = ConversationPull(
        conversations=[_stored_conversation("t_listed", 20)],
        messages=[_stored_message("m_new", "t_listed", 19)],
    )
    earlier_conversations = [
        _stored_conversation("t_listed", 18),
        _stored_conversation("t_gone", 12),  # in the window, not listed any more: kept
        _stored_conversation("t_old", 2),  # before the window start (a longer lookback then): not kept
    ]
    earlier_messages = [
        _stored_message("m_new", "t_listed", 19),  # listed again: this pull's row
        _stored_message("m_deleted", "t_listed", 10),  # in the window, gone: kept
        _stored_message("m_anchor", "t_listed", 3),  # older than the window: this pull has its own anchor
        _stored_message("m_gone_1", "t_gone", 11),
        _stored_message("m_gone_0", "t_gone", 1),  # the carried conversation's anchor comes with it
        _stored_message("m_older", "t_old", 2),
    ]
    pull.keep_what_an_earlier_pull_saw(earlier_conversations, earlier_messages, WINDOW_START, keep_text=False)

    assert [c["conversation_id"] for c in pull.conversations] == ["t_listed", "t_gone"]
    assert pull.conversations[0]["updated_time"] == datetime(2026, 2, 20, 10, tzinfo=UTC)  # this pull's row
    assert [m["message_id"] for m in pull.messages] == ["m_new", "m_deleted", "m_gone_1", "m_gone_0"]
    assert all(m["message"] is None for m in pull.messages[1:])  # text is not kept when the config drops it
    assert (pull.carried_conversations, pull.carried_messages) == (1, 3)


def test_a_message_now_listed_without_details_keeps_the_sender_an_earlier_pull_saw():
    """Newer messages pushed it beyond the 20 most recent (seed 004): Meta lists its id and time only. The
    sender the earlier pull of the date saw does not change; unknown, it would make a start inferred."""
    bare = {**_stored_message("m_1", "t_listed", 19, text=None), "from_id": None, "to_ids": None,
            "is_from_page": None}  # fmt: skip
    pull = ConversationPull(conversations=[_stored_conversation("t_listed", 20)], messages=[bare])
    seen = _stored_message("m_1", "t_listed", 19, text="hello")
    pull.keep_what_an_earlier_pull_saw([], [seen], WINDOW_START, keep_text=False)
    assert pull.messages == [{**seen, "message": None}]
    assert (pull.senders_kept, pull.carried_messages) == (1, 0)
