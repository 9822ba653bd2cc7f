"""Each JSON example of seeds 002 (errors, batch, field expansion), 003 (leads) and 004 (conversations)
has the same keys and value types as the sandbox's answer to the same request.

The examples are copied verbatim from /work/shared/seeds (placeholders kept), minus the "..." the
docs use to elide fields.
"""

from __future__ import annotations

import json

import pytest
import requests

NOW = "2026-03-15T12:00:00Z"

# 002: error handling
ERROR_FULL = {
    "error": {
        "message": "Message describing the error",
        "type": "OAuthException",
        "code": 190,
        "error_subcode": 460,
        "error_user_title": "A title",
        "error_user_msg": "A message",
        "fbtrace_id": "EJplcsCHuLu",
    }
}
# 002: field expansion (unknown field)
ERROR_UNKNOWN_FIELD = {
    "error": {"message": "(#100) Unknown fields: my_name.", "type": "OAuthException", "code": 100}
}
# 002: field expansion, a limited nested edge
NESTED_EDGE = {
    "feed": {
        "data": [{"created_time": "2021-12-12T01:24:21+0000", "message": "This picture", "id": "<POST_ID>"}],
        "paging": {"previous": "https://graph.facebook.com/...", "next": "https://graph.facebook.com/..."},
    },
    "id": "<USER_ID>",
}
# 002: batch requests (success items with headers, and an error item)
BATCH_OK = [
    {
        "code": 200,
        "headers": [{"name": "Content-Type", "value": "text/javascript; charset=UTF-8"}],
        "body": '{"id":"…"}',
    }
]
BATCH_ERROR = [
    {
        "code": 403,
        "headers": [
            {"name": "WWW-Authenticate", "value": "OAuth…"},
            {"name": "Content-Type", "value": "text/javascript; charset=UTF-8"},
        ],
        "body": '{"error":{"type":"OAuthException"}}',
    }
]
BATCH_NO_HEADERS = [{"code": 200, "body": '{"name": "Page A Name", "id": "PAGE-A-ID"}'}]
# 003: a lead read by id (webhook-free read)
LEAD = {
    "created_time": "2015-02-28T08:49:14+0000",
    "id": "<LEAD_ID>",
    "ad_id": "<AD_ID>",
    "form_id": "<FORM_ID>",
    "field_data": [
        {"name": "car_make", "values": ["Honda"]},
        {"name": "full_name", "values": ["Joe Example"]},
    ],
}
# 003: a page of leads of a form
LEADS_PAGE = {
    "data": [LEAD],
    "paging": {"cursors": {"before": "OTc2Nz3M8MTgyMzU1NDMy", "after": "OTcxNjcyOTg8ANTI4NzE4"}},
}
# 003: custom disclaimer responses
DISCLAIMERS = {
    "custom_disclaimer_responses": [
        {"checkbox_key": "optional_1", "is_checked": "1"},
        {"checkbox_key": "optional_2", "is_checked": ""},
    ],
    "id": "1231231231",
}
# 004: list of conversations, conversation by user, messages of a conversation, one message
CONVERSATIONS = {
    "data": [
        {"id": "CONVERSATION-ID-1", "updated_time": "UNIX-TIMESTAMP"},
        {"id": "CONVERSATION-ID-2", "updated_time": "UNIX-TIMESTAMP"},
    ]
}
CONVERSATION_BY_USER = {"data": [{"id": "CONVERSATION-ID"}]}
MESSAGES = {
    "messages": {
        "data": [
            {"id": "Message ID-1", "created_time": "UNIX-TIMESTAMP-MOST-RECENT-MESSAGE"},
            {"id": "Message ID-2", "created_time": "UNIX-TIMESTAMP"},
        ]
    },
    "id": "Conversation ID",
}
MESSAGE_IG = {
    "id": "aWdGGiblWZ...",
    "created_time": "2022-07-12T19:11:07+0000",
    "to": {
        "data": [
            {"username": "INSTAGRAM-PROFESSIONAL-ACCOUNT-USERNAME", "id": "INSTAGRAM-PROFESSIONAL-ACCOUNT-ID"}
        ]
    },
    "from": {"username": "INSTAGRAM-USERNAME", "id": "INSTAGRAM-SCOPED-ID"},
    "message": "Hi Kitty!",
}


def same_shape(example, actual, path="$", optional=frozenset()):
    """Same keys (except ``optional`` ones, which may be absent on either side) and same JSON types."""
    if isinstance(example, dict):
        assert isinstance(actual, dict), f"{path}: {type(actual)}"
        ek, ak = set(example) - optional, set(actual) - optional
        assert ek == ak, f"{path}: keys {sorted(ek)} != {sorted(ak)}"
        for k in ek:
            same_shape(example[k], actual[k], f"{path}.{k}", optional)
    elif isinstance(example, list):
        assert isinstance(actual, list) and actual, f"{path}: {actual!r}"
        for i, item in enumerate(actual):
            same_shape(example[min(i, len(example) - 1)], item, f"{path}[{i}]", optional)
    else:
        assert type(example) is type(actual), f"{path}: {type(example).__name__} != {type(actual).__name__}"


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
def pg(sb, g, w, graph_for):
    return graph_for(sb, token=g.page_token(w["pages"][0]["id"]))


def test_error_envelope_has_the_documented_keys(g, w):
    # A throttle/auth error with subcode: expired token (190/463); user title/msg on too-much-data errors.
    _, body, _ = g.get("me", token="sandbox-expired-token")
    same_shape(ERROR_FULL, body, optional=frozenset({"error_user_title", "error_user_msg"}))
    from meta_sandbox.errors import too_much_data

    same_shape(ERROR_FULL, too_much_data().body())


def test_unknown_field_error(g, w):
    _, body, _ = g.get(w["accounts"][0]["id"], fields="my_name")
    same_shape(ERROR_UNKNOWN_FIELD, body, optional=frozenset({"fbtrace_id"}))
    assert body["error"]["message"] == "(#100) Unknown fields: my_name."


def test_nested_edge_expansion(pg, w):
    page = w["pages"][0]
    conv = pg.ok(f"{page['id']}/conversations", platform="messenger", limit=1)["data"][0]["id"]
    body = pg.ok(conv, fields="messages.limit(1){created_time,message,id}")
    renamed = {"feed": body["messages"], "id": body["id"]}
    same_shape(NESTED_EDGE, renamed, optional=frozenset({"previous", "cursors"}))


def test_batch_items(sb, w):
    ops = [
        {"method": "GET", "relative_url": w["accounts"][0]["id"]},
        {"method": "GET", "relative_url": "me?access_token=bad"},
    ]
    items = requests.post(
        f"{sb.url}/v26.0/", data={"access_token": sb.token, "batch": json.dumps(ops)}, timeout=30
    ).json()
    same_shape(BATCH_OK[0], items[0])
    same_shape(BATCH_ERROR[0], items[1])
    assert isinstance(json.loads(items[1]["body"])["error"]["type"], str)
    items = requests.post(
        f"{sb.url}/v26.0/",
        data={"access_token": sb.token, "batch": json.dumps(ops[:1]), "include_headers": "false"},
        timeout=30,
    ).json()
    same_shape(BATCH_NO_HEADERS, items)


def test_lead_read_by_id(pg, w):
    form = w["pages"][0]["forms"][0]
    paid = next(
        lead
        for lead in pg.page_all(f"{form}/leads", fields="id,is_organic,ad_id", limit=100)
        if not lead["is_organic"] and "ad_id" in lead
    )  # ad-preview leads have no ad_id (seed 003)
    same_shape(LEAD, pg.ok(paid["id"]))


def test_leads_page(pg, w):
    body = pg.ok(
        f"{w['pages'][0]['forms'][0]}/leads",
        fields="created_time,id,ad_id,form_id,field_data",
        limit=500,
        filtering=[{"field": "time_created", "operator": "GREATER_THAN", "value": 1772000000}],
    )
    body["data"] = [lead for lead in body["data"] if "ad_id" in lead]  # organic leads have no ad_id
    same_shape(LEADS_PAGE, body)


def test_custom_disclaimer_responses(pg, w):
    lead = pg.ok(f"{w['pages'][0]['forms'][0]}/leads", fields="id", limit=1)["data"][0]["id"]
    same_shape(DISCLAIMERS, pg.ok(lead, fields="custom_disclaimer_responses"))


def test_conversations_list_by_user_and_messages(pg, w):
    page = w["pages"][0]["id"]
    body = pg.ok(f"{page}/conversations", platform="instagram", limit=2)
    same_shape(CONVERSATIONS, body, optional=frozenset({"paging"}))
    conv = body["data"][0]["id"]
    user = pg.ok(conv, fields="participants")["participants"]["data"][0]["id"]
    same_shape(
        CONVERSATION_BY_USER,
        pg.ok(f"{page}/conversations", platform="instagram", user_id=user),  # seed 004: the id alone
        optional=frozenset({"paging"}),
    )
    msgs = pg.ok(conv, fields="messages")
    same_shape(MESSAGES, msgs, optional=frozenset({"paging"}))
    message = pg.ok(msgs["messages"]["data"][0]["id"], fields="id,created_time,from,to,message")
    same_shape(MESSAGE_IG, message)
