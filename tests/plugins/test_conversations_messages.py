"""Conversation assembly: the 20-message rule, nested paging and message rows."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from meta_ads_elt.operators.conversations import ConversationState, message_row, next_cursor

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


def test_a_long_conversation_keeps_20_messages_and_counts_the_rest_out_of_reach():
    state = ConversationState(_conversation(count=35, shown=20, more=True))
    assert not state.wants_more()  # 20 read: the rest have no details, so no further call
    row = state.row(EXTRACTED)
    assert row["messages_out_of_reach"] == 15
    assert row["participant_ids"] == ["p1", "u1"]


def test_a_short_first_page_asks_for_the_rest_of_the_20_in_one_batch_operation():
    state = ConversationState(_conversation(count=12, shown=5, more=True))
    assert state.wants_more()
    request = state.more_request()
    url = urlsplit(request["relative_url"])
    assert request["method"] == "GET" and url.path == "t_1/messages"
    assert parse_qs(url.query) == {
        "fields": ["id,created_time,from,to,message"],
        "limit": ["7"],
        "after": ["CUR"],
    }
    state.add_page([_msg(i) for i in range(5, 12)], {})
    assert not state.wants_more() and state.out_of_reach() == 0


def test_messages_without_details_are_out_of_reach_not_errors():
    record = _conversation(count=3, shown=1, more=True)
    state = ConversationState(record)
    state.add_page([{"id": "m_old"}, {"id": "m_old2", "error": {"code": 100}}], {"cursors": {"after": "X"}, "next": "n"})
    assert not state.wants_more()
    assert state.out_of_reach() == 2


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
