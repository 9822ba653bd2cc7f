"""Tokens, permissions and appsecret_proof."""

from __future__ import annotations

import hashlib
import hmac
import time

import requests


def _proof(secret: str, token: str) -> str:
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def test_unknown_expired_and_missing_tokens(graph, error_of):
    status, body, _ = graph.get("me/adaccounts", token="nope")
    err = error_of(body)
    assert status == 400 and err["code"] == 190 and err["type"] == "OAuthException"
    status, body, _ = graph.get("me/adaccounts", token="sandbox-expired-token")
    err = error_of(body)
    assert status == 400 and (err["code"], err["error_subcode"]) == (190, 463)
    assert "expired" in err["message"]
    status, body, _ = graph.get("me/adaccounts", token="")
    assert status == 400 and error_of(body)["code"] == 104


def test_token_from_header_and_form_body(sandbox):
    url = f"{sandbox.url}/v26.0/me/adaccounts"
    for scheme in ("Bearer", "OAuth"):
        resp = requests.get(url, headers={"Authorization": f"{scheme} sandbox-token"}, timeout=10)
        assert resp.status_code == 200 and resp.json()["data"]
    status = requests.post(f"{sandbox.url}/v26.0/me", data={"access_token": "sandbox-token"}, timeout=10)
    assert status.status_code == 400  # POST /me is not a supported operation, but the token was read
    assert status.json()["error"]["code"] == 100


def test_missing_ads_permission_is_code_200(graph, world, error_of):
    status, body, _ = graph.get(
        f"{world['accounts'][0]['id']}/insights", token="sandbox-token-without-ads_read"
    )
    err = error_of(body)
    assert status == 400 and err["code"] == 200 and "ads_read" in err["message"]


def test_page_token_carries_the_user_tokens_permissions(sandbox, graph_for, world, error_of):
    user = graph_for(sandbox, token="sandbox-token-without-pages_show_list")
    status, body, _ = user.get("me/accounts")
    assert status == 400 and error_of(body)["code"] == 10
    page_tok = user.page_token(world["pages"][0]["id"])  # /<page>?fields=access_token still works
    assert graph_for(sandbox, token=page_tok).ok("me")["id"] == world["pages"][0]["id"]
    forged = page_tok[:-1] + ("0" if page_tok[-1] != "0" else "1")
    status, body, _ = graph_for(sandbox, token=forged).get("me")
    assert status == 400 and error_of(body)["code"] == 190


def test_appsecret_proof_checked_when_sent(graph, sandbox, error_of):
    ok = _proof(sandbox.app_secret, sandbox.token)
    assert graph.get("me/adaccounts", appsecret_proof=ok)[0] == 200
    status, body, _ = graph.get("me/adaccounts", appsecret_proof="0" * 64)
    err = error_of(body)
    assert status == 400 and err["code"] == 100 and err["type"] == "GraphMethodException"
    assert err["message"] == "Invalid appsecret_proof provided in the API argument"


def test_proof_is_over_the_token_actually_sent(graph, sandbox, world, graph_for):
    page_tok = graph.page_token(world["pages"][0]["id"])
    pg = graph_for(sandbox, token=page_tok)
    assert pg.get("me", appsecret_proof=_proof(sandbox.app_secret, page_tok))[0] == 200
    assert pg.get("me", appsecret_proof=_proof(sandbox.app_secret, sandbox.token))[0] == 400


def test_require_proof_flag(sandbox_factory, graph_for, error_of):
    sb = sandbox_factory(require_proof=True)
    g = graph_for(sb)
    status, body, _ = g.get("me/adaccounts")
    err = error_of(body)
    assert status == 400 and err["code"] == 100 and "appsecret_proof" in err["message"]
    assert g.get("me/adaccounts", appsecret_proof=_proof(sb.app_secret, sb.token))[0] == 200


def test_page_tokens_expire_after_page_token_seconds_and_a_new_read_issues_a_fresh_one(
    sandbox_factory, graph_for, graph, sandbox, world, error_of
):
    """Meta, for Page tokens from a short-lived user token: "These Page access tokens are valid for 1 hour"
    (https://developers.facebook.com/documentation/business-sdk/common-scenarios/token-switch, research
    meta_api_facts.md section 7). With ``page_token_seconds`` an older Page token is answered as an
    expired token is (190/463), on plain calls and batches; the user token gets a fresh one."""
    sb = sandbox_factory(page_token_seconds=1)
    user = graph_for(sb)
    page_id = sb.world()["pages"][0]["id"]
    old = user.page_token(page_id)
    page = graph_for(sb, token=old)
    assert page.ok("me")["id"] == page_id
    assert page.post("", batch=[{"method": "GET", "relative_url": "me"}])[0] == 200
    time.sleep(1.2)
    status, body, _ = page.get("me")
    err = error_of(body)
    assert status == 400 and (err["code"], err["error_subcode"]) == (190, 463)
    assert err == {
        **error_of(graph.get("me", token="sandbox-expired-token")[1]),
        "fbtrace_id": err["fbtrace_id"],
    }
    status, body, _ = page.post("", batch=[{"method": "GET", "relative_url": "me"}])
    assert status == 400 and (error_of(body)["code"], error_of(body)["error_subcode"]) == (190, 463)

    fresh = user.page_token(page_id)
    assert fresh != old
    assert graph_for(sb, token=fresh).ok("me")["id"] == page_id
    listed = {p["id"]: p["access_token"] for p in user.ok("me/accounts", fields="id,access_token")["data"]}
    assert graph_for(sb, token=listed[page_id]).ok("me")["id"] == page_id

    # the default world: Page tokens never expire (and are the same token at every read)
    default_token = graph.page_token(world["pages"][0]["id"])
    assert default_token == graph.page_token(world["pages"][0]["id"])
    assert graph_for(sandbox, token=default_token).ok("me")["id"] == world["pages"][0]["id"]
