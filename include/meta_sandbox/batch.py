"""``POST /`` (and ``/v<N>.0/``) with ``batch=[...]``: Graph batch requests.

Guarantees: at most 50 operations (more -> a ``GraphBatchException``, code 100, HTTP 400); each item
is served by ``Sandbox.handle`` as its own request (own token if its URL/body carries one, otherwise
the top-level token and proof, judged as of the batch's arrival, so that a Page token of
``--page-token-seconds`` expires for a whole batch or none of it), so it is counted, rate-limited and
faulted separately; results are
``{"code", "headers": [{"name", "value"}], "body": "<json string>"}`` in request order, or ``null``
when the fault profile nulls the item (a partial timeout, which the SDK retries).
``include_headers=false`` drops the headers.
"""

from __future__ import annotations

import json
import time
import urllib.parse

from meta_sandbox import auth, paging
from meta_sandbox.errors import GraphError
from meta_sandbox.params import loose_json
from meta_sandbox.ratelimit import Scope

MAX_BATCH = 50


def handle_batch(sandbox, req, version: str):
    from meta_sandbox.app import Request, Response

    sandbox.stats.call("POST /batch")
    decision = sandbox.faults.decide("POST /batch")
    if decision.latency_s or sandbox.options.latency_ms:
        time.sleep(decision.latency_s + sandbox.options.latency_ms / 1000.0)
    if decision.drop:
        sandbox.stats.drop()
        return Response(0, b"", drop=True)
    token = auth.token_from(req.params, req.headers)
    arrived = time.time()  # items sent with the batch's token are judged with it (--page-token-seconds)
    try:
        if decision.error is not None:
            raise decision.error
        auth.authenticate(
            token,
            sandbox.app_secret,
            req.params.get("appsecret_proof"),
            sandbox.options.require_proof,
            sandbox.options.page_token_seconds,
            arrived,
        )
        raw = req.params.get("batch")
        if raw in (None, ""):
            raise GraphError("(#100) The parameter batch is required", 100)
        ops = loose_json(raw) if isinstance(raw, str) else raw
        if not isinstance(ops, list):
            raise GraphError("(#100) The parameter batch must be a JSON array", 100)
        if len(ops) > MAX_BATCH:
            raise GraphError(
                f"Too many requests in batch message. Maximum batch size is {MAX_BATCH}",
                100,
                type_="GraphBatchException",
            )
    except GraphError as exc:
        sandbox.stats.error(exc.code)
        return sandbox._finish(exc.body(), exc.status, version, Scope(), None)
    include_headers = str(req.params.get("include_headers", "true")).lower() != "false"
    results = []
    for op in ops:
        if not isinstance(op, dict) or (not op.get("relative_url") and op.get("relative_url") != ""):
            results.append(
                {
                    "code": 400,
                    "headers": [],
                    "body": json.dumps(
                        GraphError("(#100) Each batch operation needs method and relative_url", 100).body()
                    ),
                }
            )
            continue
        method = str(op.get("method") or "GET").upper()
        rel = str(op.get("relative_url")).lstrip("/")
        path_part, _, query = rel.partition("?")
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        if op.get("body"):
            params.update(urllib.parse.parse_qsl(str(op["body"]), keep_blank_values=True))
        inherited = "access_token" not in params and bool(token)
        if inherited:
            params["access_token"] = token
            if req.params.get("appsecret_proof"):
                params["appsecret_proof"] = req.params["appsecret_proof"]
        path = (
            "/" + path_part
            if path_part.startswith("v") and "." in path_part.split("/")[0]
            else f"/{version}/{path_part}"
        )
        sub = Request(
            method, path, params, {}, req.base_url, batch_item=True, auth_time=arrived if inherited else None
        )
        resp = sandbox.handle(sub)
        if resp.null or resp.drop:
            results.append(None)
            continue
        item = {"code": resp.status}
        if include_headers:
            item["headers"] = [{"name": "Content-Type", "value": "text/javascript; charset=UTF-8"}] + [
                {"name": k, "value": v} for k, v in resp.headers.items()
            ]
        item["body"] = resp.body.decode()
        results.append(item)
    return Response(
        200,
        paging.dumps(results).encode(),
        sandbox._headers(version, Scope(), auth.token_from(req.params, req.headers), None, None),
    )
