"""Tokens, permissions and appsecret_proof."""

from __future__ import annotations

import hashlib
import hmac

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
