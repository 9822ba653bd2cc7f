"""Graph batch requests."""

from __future__ import annotations

import json

import requests


def _batch(sb, ops, **extra):
    data = {"access_token": sb.token, "batch": json.dumps(ops), **extra}
    return requests.post(f"{sb.url}/v26.0/", data=data, timeout=30)


def test_batch_round_trip_and_per_item_shape(sandbox, world):
    sandbox.reset_stats()
    acct = world["accounts"][0]["id"]
    ops = [
        {"method": "GET", "relative_url": f"{acct}?fields=name,currency"},
        {"method": "GET", "relative_url": "me/adaccounts?fields=id"},
        {"method": "GET", "relative_url": "123/"},
    ]
    resp = _batch(sandbox, ops)
    assert resp.status_code == 200
    items = resp.json()
    assert [i["code"] for i in items] == [200, 200, 400]
    for item in items:
        assert isinstance(item["body"], str) and isinstance(item["headers"], list)
        assert all(set(h) == {"name", "value"} for h in item["headers"])
    assert json.loads(items[0]["body"])["currency"] == world["accounts"][0]["currency"]
    assert json.loads(items[2]["body"])["error"]["code"] == 100
    stats = sandbox.stats()["by_endpoint"]
    assert stats["POST /batch"] == 1 and stats["GET /act_{id}"] == 1 and stats["GET /me/adaccounts"] == 1


def test_batch_at_root_and_item_tokens_and_include_headers(sandbox, world):
    ops = [
        {"method": "GET", "relative_url": "me?access_token=sandbox-expired-token"},
        {
            "method": "POST",
            "relative_url": f"{world['accounts'][1]['id']}/insights",
            "body": "fields=%5B%22spend%22%5D&level=account",
        },
    ]
    resp = requests.post(
        f"{sandbox.url}/",
        data={"access_token": sandbox.token, "batch": json.dumps(ops), "include_headers": "false"},
        timeout=30,
    )
    items = resp.json()
    assert "headers" not in items[0]
    assert json.loads(items[0]["body"])["error"]["error_subcode"] == 463
    assert items[1]["code"] == 200 and json.loads(items[1]["body"])["report_run_id"]


def test_more_than_50_operations_is_an_error(sandbox):
    resp = _batch(sandbox, [{"method": "GET", "relative_url": "me"}] * 51)
    err = resp.json()["error"]
    assert resp.status_code == 400 and err["type"] == "GraphBatchException"
    assert "Maximum batch size is 50" in err["message"]


def test_batch_needs_a_top_level_token(sandbox):
    resp = requests.post(f"{sandbox.url}/v26.0/", data={"batch": "[]"}, timeout=30)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == 104


def test_null_items_under_a_fault_profile(sandbox_factory):
    sb = sandbox_factory(faults="null_batch")
    items = _batch(sb, [{"method": "GET", "relative_url": "me"}] * 30).json()
    nulls = sum(1 for i in items if i is None)
    assert 3 <= nulls <= 27 and all(i is None or i["code"] == 200 for i in items)


def test_batch_items_count_against_rate_limits(sandbox_factory):
    sb = sandbox_factory(budgets="user=5")
    items = _batch(sb, [{"method": "GET", "relative_url": "me"}] * 8).json()
    assert [i["code"] for i in items] == [200] * 5 + [400] * 3
    assert json.loads(items[-1]["body"])["error"]["code"] == 17
