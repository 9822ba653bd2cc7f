"""MetaGraphApiHook against a tiny scripted HTTP stub (the real sandbox is covered in e2e/)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from meta_ads_elt.errors import (
    MetaConfigError,
    MetaParameterError,
    MetaRetryableError,
    MetaThrottledError,
    MetaTokenError,
)
from meta_ads_elt.governor import RateLimitGovernor
from meta_ads_elt.hooks.graph_api import MetaGraphApiHook
from meta_ads_elt.pacing import MARGIN_SECONDS, CallPacer

from tests.plugins.test_pacing import FakeTime

TOKEN = "stub-user-token-123"
SECRET = "stub-secret"


class Stub:
    """Scripted Graph stub: ``script`` maps a path to a list of responses (the last one repeats)."""

    def __init__(self):
        self.script: dict[str, list] = {}
        self.requests: list[dict] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _serve(self):
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode()) if length else {}
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                stub.requests.append(
                    {
                        "method": self.command,
                        "path": url.path,
                        "query": query,
                        "form": {k: v[0] for k, v in form.items()},
                    }
                )
                queue = stub.script.get(url.path) or stub.script.get("*") or [(404, {"error": {"code": 803}})]
                item = queue.pop(0) if len(queue) > 1 else queue[0]
                if callable(item):
                    item = item(query, form)
                if item == "drop":
                    self.connection.close()
                    return
                if item[0] == "sleep":
                    time.sleep(item[1])
                    item = (200, {"ok": True})
                status, body = item[0], item[1]
                headers = item[2] if len(item) > 2 else {}
                raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def stub():
    s = Stub()
    yield s
    s.close()


def connect(monkeypatch, stub, conn_id="meta_stub", password=TOKEN, **extra):
    extra = {"base_url": stub.url, "app_id": "app", "app_secret": SECRET, "timeout": 5, **extra}
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}",
        json.dumps({"conn_type": "meta_graph_api", "password": password, "extra": extra}),
    )
    return MetaGraphApiHook(conn_id, governor=RateLimitGovernor(), backoff_base=0.01, max_attempts=4)


def test_calls_go_to_the_connection_base_url_with_token_and_proof(monkeypatch, stub):
    from facebook_business.session import FacebookSession

    stub.script["/v26.0/act_1"] = [(200, {"id": "act_1"})]
    hook = connect(monkeypatch, stub)
    assert hook.call("GET", "act_1", {"fields": "id"}) == {"id": "act_1"}
    req = stub.requests[-1]
    assert req["query"]["access_token"] == TOKEN
    assert (
        req["query"]["appsecret_proof"]
        == hmac.new(SECRET.encode(), TOKEN.encode(), hashlib.sha256).hexdigest()
    )
    assert FacebookSession.GRAPH == "https://graph.facebook.com"  # class attribute untouched
    assert hook.url_for("act_1/insights") == f"{stub.url}/v26.0/act_1/insights"


def test_two_hooks_in_one_process_keep_their_own_base_urls(monkeypatch, stub):
    other = Stub()
    try:
        stub.script["*"] = [(200, {"who": "one"})]
        other.script["*"] = [(200, {"who": "two"})]
        one = connect(monkeypatch, stub, conn_id="meta_one")
        two = connect(monkeypatch, other, conn_id="meta_two")
        assert one.call("GET", "me")["who"] == "one"
        assert two.call("GET", "me")["who"] == "two"
        assert one.call("GET", "me")["who"] == "one"
    finally:
        other.close()


def test_no_proof_without_app_secret(monkeypatch, stub):
    stub.script["*"] = [(200, {})]
    hook = connect(monkeypatch, stub, app_secret="")
    hook.call("GET", "me")
    assert "appsecret_proof" not in stub.requests[-1]["query"]


def test_transient_errors_are_retried(monkeypatch, stub):
    stub.script["/v26.0/me"] = [
        (500, {"error": {"code": 2, "message": "Service temporarily unavailable", "is_transient": True}}),
        (502, "<html>Bad gateway</html>"),
        "drop",
        (200, {"id": "1"}),
    ]
    hook = connect(monkeypatch, stub)
    assert hook.call("GET", "me") == {"id": "1"}
    assert hook.calls == 4 and hook.retries == 3


def test_expired_token_fails_at_once_without_retries(monkeypatch, stub, caplog):
    stub.script["*"] = [
        (
            400,
            {
                "error": {
                    "code": 190,
                    "error_subcode": 463,
                    "type": "OAuthException",
                    "message": "Error validating access token: Session has expired",
                }
            },
        )
    ]
    hook = connect(monkeypatch, stub)
    with pytest.raises(MetaTokenError, match="Refresh the token") as info:
        hook.call("GET", "me")
    assert len(stub.requests) == 1
    assert (
        info.value.__cause__ is None and info.value.__context__ is None
    )  # no SDK/requests traceback chained
    assert TOKEN not in str(info.value) and TOKEN not in caplog.text


def throttled_then_ok(usage_key: str, regain_minutes: int) -> list:
    """An 80000 throttle whose ``X-Business-Use-Case-Usage`` (keyed by ``usage_key``) announces the regain
    time, then a success."""
    usage = {
        "type": "ads_insights",
        "call_count": 100,
        "total_cputime": 1,
        "total_time": 1,
        "estimated_time_to_regain_access": regain_minutes,
    }
    error = {"error": {"code": 80000, "error_subcode": 2446079, "message": "(#80000) too many calls"}}
    return [
        (400, error, {"X-Business-Use-Case-Usage": json.dumps({usage_key: [usage]})}),
        (200, {"data": []}),
    ]


def test_throttle_waits_for_the_announced_regain_time(monkeypatch, stub):
    stub.script["/v26.0/act_1/insights"] = throttled_then_ok("1", 1)
    hook = connect(monkeypatch, stub)
    slept = []
    hook.governor._sleep = slept.append
    hook.call("GET", "act_1/insights")
    assert slept and slept[0] == pytest.approx(60, abs=1)  # 1 minute, from the header of the error response
    assert hook.governor.waited("1") == pytest.approx(60, abs=1)


def test_a_regain_time_beyond_the_cap_fails_at_once_saying_when_to_retry(monkeypatch, stub):
    from meta_ads_elt.errors import MetaRateLimitWaitError

    # keyed by the business, as Meta documents
    stub.script["/v26.0/act_1/insights"] = throttled_then_ok("2181089985940348", 45)
    hook = connect(monkeypatch, stub)
    hook.max_wait_seconds = 30 * 60
    slept = []
    hook.governor._sleep = slept.append
    with pytest.raises(
        MetaRateLimitWaitError, match=r"about 45 min \(at \d{4}-\d\d-\d\d \d\d:\d\d UTC\)"
    ) as info:
        hook.call("GET", "act_1/insights")
    assert "max_rate_limit_wait_minutes=30" in str(info.value) and "re-run" in str(info.value)
    assert slept == [] and len(stub.requests) == 1  # no silent hour in a worker slot, no second call

    async def async_call():
        return await hook.acall("GET", "act_1/insights")

    import asyncio

    stub.script["/v26.0/act_1/insights"] = [(200, {"data": []})]
    with pytest.raises(MetaRateLimitWaitError, match="about 45 min"):  # the async path: the same refusal
        asyncio.run(async_call())
    assert len(stub.requests) == 1


def test_a_report_not_loadable_yet_is_retried(monkeypatch, stub):
    not_ready = {
        "error": {
            "code": 2601,
            "error_subcode": 1815107,
            "is_transient": True,
            "type": "OAuthException",
            "message": "Error accessing adreport job.",
        }
    }
    stub.script["/v26.0/r1/insights"] = [
        (400, not_ready),
        (400, not_ready),
        (200, {"data": [{"spend": "1.00"}]}),
    ]
    hook = connect(monkeypatch, stub)
    assert hook.call("GET", "r1/insights") == {"data": [{"spend": "1.00"}]}
    assert len(stub.requests) == 3


def test_throttle_gives_up_after_max_attempts(monkeypatch, stub):
    stub.script["*"] = [(400, {"error": {"code": 17, "message": "(#17) User request limit reached"}})]
    hook = connect(monkeypatch, stub)
    hook.governor._sleep = lambda s: None
    with pytest.raises(MetaThrottledError):
        hook.call("GET", "me")
    assert len(stub.requests) == hook.max_attempts


def test_bad_parameter_is_not_retried(monkeypatch, stub):
    stub.script["*"] = [(400, {"error": {"code": 100, "message": "(#100) level must be one of ad, adset"}})]
    hook = connect(monkeypatch, stub)
    with pytest.raises(MetaParameterError, match="level"):
        hook.call("POST", "act_1/insights", {"level": "x"})
    assert len(stub.requests) == 1


def test_timeout_is_a_retryable_network_error(monkeypatch, stub):
    stub.script["*"] = [("sleep", 2)]
    hook = connect(monkeypatch, stub, timeout=0.3)
    hook.max_attempts = 2
    with pytest.raises(MetaRetryableError, match="Network error"):
        hook.call("GET", "me")


def page(rows, after=None, nxt=True):
    body = {"data": rows}
    if after:
        body["paging"] = {"cursors": {"before": "B", "after": after}}
        if nxt:
            body["paging"]["next"] = f"https://evil.example/v26.0/x?access_token={TOKEN}&after={after}"
    return body


def test_paginate_follows_after_cursor_until_next_is_absent(monkeypatch, stub):
    def serve(query, form):
        after = query.get("after")
        if after is None:
            return (200, page([{"i": 1}, {"i": 2}], "C1"))
        if after == "C1":
            return (200, page([{"i": 3}], "C2"))
        return (200, page([{"i": 4}], "C3", nxt=False))

    stub.script["/v26.0/r1/insights"] = [serve]
    hook = connect(monkeypatch, stub)
    pages = list(hook.paginate("r1/insights", {"limit": 2}))
    assert [[r["i"] for r in p] for p in pages] == [[1, 2], [3], [4]]
    assert all(r["query"]["limit"] == "2" for r in stub.requests)


def test_paginate_detects_cursor_loops(monkeypatch, stub):
    stub.script["*"] = [(200, page([{"i": 1}], "SAME"))]
    hook = connect(monkeypatch, stub)
    with pytest.raises(MetaRetryableError, match="Cursor loop"):
        list(hook.paginate("r1/insights"))


def test_paginate_halves_the_page_size_when_asked_to_reduce_data(monkeypatch, stub):
    def serve(query, form):
        if int(query["limit"]) > 100:
            return (
                500,
                {
                    "error": {
                        "code": 1,
                        "message": "Please reduce the amount of data you're asking for, "
                        "then retry your request",
                    }
                },
            )
        return (200, page([{"i": 1}]))

    stub.script["*"] = [serve]
    hook = connect(monkeypatch, stub)
    assert list(hook.paginate("r1/insights", {"limit": 500})) == [[{"i": 1}]]
    assert [r["query"]["limit"] for r in stub.requests] == ["500", "250", "125", "62"]


def test_batch_chunks_by_50_and_retries_null_and_transient_items(monkeypatch, stub):
    seen = {}

    def serve(query, form):
        ops = json.loads(form["batch"][0])
        out = []
        for op in ops:
            n = seen.get(op["relative_url"], 0)
            seen[op["relative_url"]] = n + 1
            if op["relative_url"].startswith("7?") and n == 0:
                out.append(None)  # Meta timed this one out
            elif op["relative_url"].startswith("8?") and n == 0:
                out.append(
                    {"code": 500, "headers": [], "body": json.dumps({"error": {"code": 2, "message": "x"}})}
                )
            else:
                out.append(
                    {
                        "code": 200,
                        "headers": [{"name": "X-App-Usage", "value": '{"call_count": 1}'}],
                        "body": json.dumps({"id": op["relative_url"].split("?")[0]}),
                    }
                )
        return (200, out)

    stub.script["/v26.0/"] = [serve]
    hook = connect(monkeypatch, stub)
    reqs = [{"method": "GET", "path": (str(i),), "params": {"fields": "async_status"}} for i in range(60)]
    out = hook.batch(reqs)
    assert [o["body"]["id"] for o in out] == [str(i) for i in range(60)]
    assert all(o["code"] == 200 for o in out)
    sizes = [len(json.loads(r["form"]["batch"])) for r in stub.requests]
    assert sizes == [50, 10, 2]  # two chunks, then only the null and the transient item again
    assert json.loads(stub.requests[0]["form"]["batch"])[0]["relative_url"] == "0?fields=async_status"


def test_for_page_uses_the_page_token_and_its_own_proof(monkeypatch, stub, caplog):
    page_token = "page-token-abcdef-999"
    stub.script["/v26.0/555"] = [(200, {"id": "555", "access_token": page_token})]
    stub.script["/v26.0/555/conversations"] = [(200, {"data": [{"id": "t_1"}]})]
    hook = connect(monkeypatch, stub)
    caplog.set_level(logging.DEBUG)
    page_hook = hook.for_page("555")
    assert list(page_hook.paginate("555/conversations")) == [[{"id": "t_1"}]]
    q = stub.requests[-1]["query"]
    assert q["access_token"] == page_token
    assert q["appsecret_proof"] == hmac.new(SECRET.encode(), page_token.encode(), hashlib.sha256).hexdigest()
    assert hook.for_page("555") is page_hook  # fetched once
    assert page_token not in caplog.text


EXPIRED = (
    400,
    {
        "error": {
            "message": "Error validating access token: Session has expired on Friday, 01-Jan-21 00:00:00 PST.",
            "type": "OAuthException",
            "code": 190,
            "error_subcode": 463,
        }
    },
)


def page_tokens(*tokens: str):
    """``GET /555?fields=access_token...`` answers: each read issues the next token."""
    issued = list(tokens)
    return [lambda query, form: (200, {"id": "555", "name": "Shop", "access_token": issued.pop(0)})]


def test_a_refused_page_token_is_fetched_again_with_the_user_token_and_the_walk_goes_on(
    monkeypatch, stub, caplog, capsys
):
    """Meta: Page tokens from a short-lived user token "are valid for 1 hour" (meta_api_facts.md section 7):
    a call refused with 190 gets a new Page token from the user token and is made once more."""
    stub.script["/v26.0/555"] = page_tokens("page-token-old-111", "page-token-new-222")

    def conversations(query, form):
        if query["access_token"] != "page-token-new-222":
            return (
                EXPIRED
                if query.get("after")
                else (200, {"data": [{"id": "t_1"}], "paging": {"next": "n", "cursors": {"after": "c1"}}})
            )
        return (200, {"data": [{"id": "t_2"}]})

    stub.script["/v26.0/555/conversations"] = [conversations]
    hook = connect(monkeypatch, stub)
    caplog.set_level(logging.DEBUG)
    page_hook = hook.for_page("555")
    assert list(page_hook.paginate("555/conversations", scope="555")) == [[{"id": "t_1"}], [{"id": "t_2"}]]
    assert page_hook.token_renewals == 1 and page_hook.page_name == "Shop"
    renewal = [r for r in stub.requests if r["path"] == "/v26.0/555"][1]
    assert renewal["query"]["access_token"] == TOKEN and renewal["query"]["fields"] == "access_token"
    last = stub.requests[-1]["query"]
    assert last["access_token"] == "page-token-new-222" and last["after"] == "c1"
    assert (
        last["appsecret_proof"]
        == hmac.new(SECRET.encode(), b"page-token-new-222", hashlib.sha256).hexdigest()
    )
    logged = caplog.text + capsys.readouterr().out  # the hook's own log is structlog's, on stdout
    assert "Page 555: Meta refused its Page access token (code 190/463" in logged
    assert "page-token-old-111" not in logged and "page-token-new-222" not in logged


def test_a_page_token_refused_when_the_user_token_is_refused_too_stays_fatal(monkeypatch, stub):
    stub.script["/v26.0/555"] = [(200, {"id": "555", "access_token": "page-token-old-111"}), EXPIRED]
    stub.script["/v26.0/555/leadgen_forms"] = [EXPIRED]
    page_hook = connect(monkeypatch, stub).for_page("555")
    with pytest.raises(MetaTokenError, match="Refresh the token") as raised:
        page_hook.call("GET", "555/leadgen_forms")
    assert "page-token" not in str(raised.value) and TOKEN not in str(raised.value)
    assert page_hook.token_renewals == 0
    assert [r["path"] for r in stub.requests] == ["/v26.0/555", "/v26.0/555/leadgen_forms", "/v26.0/555"]


def test_a_page_token_refused_again_after_its_renewal_is_fatal_after_one_renewal(monkeypatch, stub):
    stub.script["/v26.0/555"] = page_tokens("page-token-old-111", "page-token-new-222")
    stub.script["/v26.0/555/leadgen_forms"] = [EXPIRED]
    page_hook = connect(monkeypatch, stub).for_page("555")
    with pytest.raises(MetaTokenError):
        page_hook.call("GET", "555/leadgen_forms")
    assert page_hook.token_renewals == 1
    assert [r["path"] for r in stub.requests].count("/v26.0/555/leadgen_forms") == 2


def test_a_user_token_refused_is_not_renewed(monkeypatch, stub):
    stub.script["/v26.0/me"] = [EXPIRED]
    hook = connect(monkeypatch, stub)
    with pytest.raises(MetaTokenError):
        hook.call("GET", "me")
    assert len(stub.requests) == 1


def test_batch_items_refused_for_the_page_token_are_asked_again_with_a_new_one(monkeypatch, stub):
    stub.script["/v26.0/555"] = page_tokens("page-token-old-111", "page-token-new-222")

    def serve(query, form):
        fresh = query["access_token"] == "page-token-new-222"
        out = []
        for op in json.loads(form["batch"][0]):
            if fresh or op["relative_url"].startswith("m_1"):
                out.append(
                    {"code": 200, "headers": [], "body": json.dumps({"id": op["relative_url"].split("?")[0]})}
                )
            else:
                out.append({"code": 400, "headers": [], "body": json.dumps(EXPIRED[1])})
        return (200, out)

    stub.script["/v26.0/"] = [serve]
    page_hook = connect(monkeypatch, stub).for_page("555")
    out = page_hook.batch([{"method": "GET", "path": (f"m_{i}",)} for i in range(1, 4)], scope="555")
    assert [(o["error"], o["body"]["id"]) for o in out] == [(None, "m_1"), (None, "m_2"), (None, "m_3")]
    assert page_hook.token_renewals == 1
    again = json.loads(stub.requests[-1]["form"]["batch"])
    assert [op["relative_url"] for op in again] == ["m_2", "m_3"]


def test_connection_is_validated_early(monkeypatch, stub):
    with pytest.raises(MetaConfigError, match="no access token"):
        _ = connect(monkeypatch, stub, password="").settings
    assert connect(monkeypatch, stub, api_version="26.0").settings.api_version == "v26.0"
    with pytest.raises(MetaConfigError, match="api_version"):
        _ = connect(monkeypatch, stub, api_version="latest").settings
    with pytest.raises(MetaConfigError, match="base_url"):
        _ = connect(monkeypatch, stub, base_url="graph.facebook.com").settings
    with pytest.raises(MetaConfigError, match="is not defined"):
        _ = MetaGraphApiHook("meta_missing_conn").settings


def test_sync_and_async_calls_send_the_same_request_under_the_same_policy(monkeypatch, stub):
    import asyncio

    transient = (
        500,
        {"error": {"code": 2, "message": "Service temporarily unavailable", "is_transient": True}},
    )
    params = {
        "fields": ["id", "name"],
        "time_range": {"since": "2026-11-01", "until": "2026-11-02"},
        "x": True,
    }
    stub.script["/v26.0/act_1/insights"] = [transient, (200, {"data": [1]}), transient, (200, {"data": [1]})]
    hook = connect(monkeypatch, stub)
    assert hook.call("GET", "act_1/insights", params) == {"data": [1]}
    assert asyncio.run(hook.acall("GET", "act_1/insights", params)) == {"data": [1]}
    sync_request, async_request = stub.requests[1], stub.requests[3]
    assert sync_request == async_request  # one encoding, one way of attaching token and proof
    assert sync_request["query"]["access_token"] == TOKEN
    assert (
        sync_request["query"]["appsecret_proof"]
        == hmac.new(SECRET.encode(), TOKEN.encode(), hashlib.sha256).hexdigest()
    )
    assert sync_request["query"]["time_range"] == '{"since":"2026-11-01","until":"2026-11-02"}'
    assert (hook.calls, hook.retries) == (4, 2)  # one retry each, counted alike

    stub.script["/v26.0/act_1"] = [(200, {})]
    hook.call("POST", "act_1", {"name": "n"})
    asyncio.run(hook.acall("POST", "act_1", {"name": "n"}))
    assert stub.requests[-2] == stub.requests[-1]
    assert stub.requests[-1]["form"] == {"name": "n"} and stub.requests[-1]["query"]["access_token"] == TOKEN


def test_async_fatal_and_throttle_follow_the_sync_policy(monkeypatch, stub):
    import asyncio

    stub.script["*"] = [(400, {"error": {"code": 100, "message": "(#100) level must be one of ad, adset"}})]
    hook = connect(monkeypatch, stub)
    with pytest.raises(MetaParameterError, match="level"):
        asyncio.run(hook.acall("GET", "act_1/insights"))
    assert len(stub.requests) == 1  # not retried
    stub.script["*"] = [(400, {"error": {"code": 17, "message": "(#17) User request limit reached"}})]
    with pytest.raises(MetaThrottledError):
        asyncio.run(hook.acall("GET", "act_1/insights"))
    assert len(stub.requests) == 1 + hook.max_attempts
    assert hook.governor.waited("1") > 0  # the throttle blocked the account in the governor


def test_the_async_session_has_the_connection_timeout(monkeypatch, stub):
    import asyncio

    stub.script["*"] = [("sleep", 2)]
    hook = connect(monkeypatch, stub, timeout=0.3)
    hook.max_attempts = 2

    async def main():
        async with hook.async_session() as session:
            assert session.timeout.total == pytest.approx(0.3)
            return await hook.acall("GET", "me", session=session)

    started = time.monotonic()
    with pytest.raises(MetaRetryableError, match="Network error on GET /me"):
        asyncio.run(main())
    assert time.monotonic() - started < 1.8  # two attempts of 0.3 s, not two of 2 s
    assert len(stub.requests) == 2


def test_batch_items_carry_the_error_classified_once(monkeypatch, stub):
    import asyncio

    def serve(query, form):
        ops = json.loads(form["batch"][0])
        bad = {"error": {"code": 100, "message": "Unsupported get request", "error_subcode": 33}}
        return (
            200,
            [
                {"code": 400, "headers": [], "body": json.dumps(bad)}
                if op["relative_url"].startswith("gone")
                else {"code": 200, "headers": [], "body": json.dumps({"id": op["relative_url"]})}
                for op in ops
            ],
        )

    stub.script["/v26.0/"] = [serve]
    hook = connect(monkeypatch, stub)
    requests = [{"method": "GET", "path": ("gone",)}, {"method": "GET", "path": ("r1",)}]
    for items in (hook.batch(requests), asyncio.run(hook.abatch(requests))):
        assert items[1]["error"] is None and items[1]["body"] == {"id": "r1"}
        from meta_ads_elt.errors import MetaObjectAccessError

        assert (
            isinstance(items[0]["error"], MetaObjectAccessError) and "GET /gone" in items[0]["error"].message
        )
    assert len(stub.requests) == 2  # a fatal item is answered, not asked again


def test_async_batch_chunks_and_retries_like_the_sync_batch(monkeypatch, stub):
    import asyncio

    seen = {}

    def serve(query, form):
        out = []
        for op in json.loads(form["batch"][0]):
            n = seen.get(op["relative_url"], 0)
            seen[op["relative_url"]] = n + 1
            if op["relative_url"].startswith("7?") and n == 0:
                out.append(None)
            else:
                out.append({"code": 200, "headers": [], "body": json.dumps({"id": op["relative_url"]})})
        return (200, out)

    stub.script["/v26.0/"] = [serve]
    hook = connect(monkeypatch, stub)
    reqs = [{"method": "GET", "path": (str(i),), "params": {"fields": "async_status"}} for i in range(60)]
    out = asyncio.run(hook.abatch(reqs))
    assert [o["body"]["id"].split("?")[0] for o in out] == [str(i) for i in range(60)]
    assert [len(json.loads(r["form"]["batch"])) for r in stub.requests] == [50, 10, 1]


def one_call_a_second() -> tuple[CallPacer, FakeTime]:
    """A pacer of 1 call a second on a clock that only moves when the pacer sleeps: every send after the
    first waits once, so the waits count the paced sends."""
    t = FakeTime()
    return CallPacer(1, 1.0, clock=t.clock, sleep=t.sleep), t


def test_every_attempt_of_a_call_is_paced_right_before_it_is_sent(monkeypatch, stub):
    """Meta's Instagram quota counts what reaches it: the hook's retries are calls too."""
    stub.script["/v26.0/me"] = [
        (500, {"error": {"code": 2, "message": "Service temporarily unavailable", "is_transient": True}}),
        "drop",
        (200, {"id": "1"}),
    ]
    pacer, t = one_call_a_second()
    assert connect(monkeypatch, stub).call("GET", "me", pacer=pacer) == {"id": "1"}
    assert len(stub.requests) == 3
    assert t.slept == [pytest.approx(1.0 + MARGIN_SECONDS)] * 2


def test_a_paced_batch_is_sent_in_calls_the_quota_lets_out_and_its_rounds_are_paced(monkeypatch, stub):
    """Each batch item is a call to Meta (meta_api_facts.md section 8): a batch call holds at most the
    quota, and waits for as many calls as it holds, in every round asking items again."""
    asked: dict[str, int] = {}

    def serve(query, form):
        out = []
        for op in json.loads(form["batch"][0]):
            asked[op["relative_url"]] = asked.get(op["relative_url"], 0) + 1
            if op["relative_url"] == "m_2" and asked["m_2"] == 1:
                out.append(None)  # Meta timed this one out: asked again in the next round
            else:
                out.append({"code": 200, "headers": [], "body": json.dumps({"id": op["relative_url"]})})
        return (200, out)

    stub.script["/v26.0/"] = [serve]
    pacer, t = one_call_a_second()
    out = connect(monkeypatch, stub).batch(
        [{"method": "GET", "path": (f"m_{i}",)} for i in range(3)], pacer=pacer
    )
    assert [o["body"]["id"] for o in out] == ["m_0", "m_1", "m_2"]
    sent = [[op["relative_url"] for op in json.loads(r["form"]["batch"])] for r in stub.requests]
    assert sent == [["m_0"], ["m_1"], ["m_2"], ["m_2"]]
    assert len(t.slept) == 3
    with pytest.raises(ValueError, match="2 calls do not fit a quota of 1"):  # a batch call sent directly
        connect(monkeypatch, stub).call(
            "POST", (), {"batch": [{"method": "GET", "relative_url": "m_0"}] * 2}, pacer=pacer
        )


def test_the_call_repeated_with_a_renewed_page_token_is_paced_and_the_renewal_is_not(monkeypatch, stub):
    stub.script["/v26.0/555"] = page_tokens("page-token-old-111", "page-token-new-222")

    def conversations(query, form):
        if query["access_token"] != "page-token-new-222" and query.get("after"):
            return EXPIRED
        return (200, page([{"id": "t_2"}]) if query.get("after") else page([{"id": "t_1"}], after="c1"))

    stub.script["/v26.0/555/conversations"] = [conversations]
    page_hook = connect(monkeypatch, stub).for_page("555")
    pacer, t = one_call_a_second()
    assert list(page_hook.paginate("555/conversations", scope="555", pacer=pacer)) == [
        [{"id": "t_1"}],
        [{"id": "t_2"}],
    ]
    assert [r["path"] for r in stub.requests].count("/v26.0/555/conversations") == 3
    assert page_hook.token_renewals == 1 and len(t.slept) == 2
