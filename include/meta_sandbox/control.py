"""Control routes under ``/_sandbox`` (no token needed; never counted, throttled or faulted).

- ``GET  /_sandbox/health``                       -> {"ok": true, "url", "now"}
- ``GET  /_sandbox/truth?since=&until=``          -> ground truth (see truth.py / DESIGN.md)
- ``GET  /_sandbox/stats``; ``POST /_sandbox/stats/reset``; ``DELETE /_sandbox/stats``
- ``GET  /_sandbox/world``                        -> ids of the world
- ``GET|POST /_sandbox/clock``                    -> {"now": ISO} / body {"now": ISO} or {"advance_days": N}
- ``GET|POST|DELETE /_sandbox/faults``            -> body: a fault profile, or {"profile": "chaos", ...}
- ``GET|POST /_sandbox/budgets``                  -> body: {"ads_insights": 5, "window_s": 60, ...};
                                                     POST also resets the usage counters
- ``POST /_sandbox/shutdown``                     -> stops the server
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import urllib.parse

from meta_sandbox import paging
from meta_sandbox.clock import day_number
from meta_sandbox.ratelimit import Budgets
from meta_sandbox.truth import truth


def _json(status: int, obj) -> object:
    from meta_sandbox.app import Response

    return Response(status, paging.dumps(obj).encode())


def _body(req) -> dict:
    if req.body:
        try:
            data = json.loads(req.body)
            if isinstance(data, dict):
                return data
        except ValueError:
            pass
    return {k: v for k, v in req.params.items()}


def _day(value: str | None, name: str):
    if not value:
        return None
    return day_number(dt.date.fromisoformat(value))


def control(sandbox, req, path: str):
    route = path.rstrip("/")
    method = req.method
    try:
        if route == "/_sandbox/health":
            return _json(200, {"ok": True, "now": sandbox.clock.now().isoformat(), "app_id": sandbox.app_id})
        if route == "/_sandbox/truth" and method == "GET":
            return _json(
                200,
                truth(
                    sandbox, _day(req.params.get("since"), "since"), _day(req.params.get("until"), "until")
                ),
            )
        if route == "/_sandbox/stats":
            if method == "DELETE":
                sandbox.stats.reset()
            return _json(200, sandbox.stats.snapshot())
        if route == "/_sandbox/stats/reset" and method == "POST":
            sandbox.stats.reset()
            return _json(200, sandbox.stats.snapshot())
        if route == "/_sandbox/world":
            return _json(200, sandbox.world_summary())
        if route == "/_sandbox/clock":
            if method == "POST":
                body = _body(req)
                adv = body.get("advance_days")
                sandbox.set_clock(body.get("now"), float(adv) if adv not in (None, "") else None)
            return _json(200, {"now": sandbox.clock.now().isoformat()})
        if route == "/_sandbox/faults":
            if method == "DELETE":
                sandbox.set_faults(None)
            elif method == "POST":
                body = _body(req)
                sandbox.set_faults(body or None)
            return _json(200, sandbox.faults.describe())
        if route == "/_sandbox/budgets":
            if method == "POST":
                budgets = Budgets.parse(_body(req))
                sandbox.ratelimiter.budgets = budgets
                sandbox.ratelimiter.reset()
            return _json(200, dataclasses.asdict(sandbox.ratelimiter.budgets))
        if route == "/_sandbox/shutdown" and method == "POST":
            server = getattr(sandbox, "server", None)
            if server is not None:
                import threading

                threading.Thread(target=server.shutdown, daemon=True).start()
            return _json(200, {"ok": True})
    except (ValueError, TypeError) as exc:
        return _json(
            400,
            {
                "error": {
                    "message": f"Bad control request: {exc}",
                    "type": "SandboxException",
                    "code": 100,
                    "fbtrace_id": "sandbox",
                }
            },
        )
    return _json(
        404,
        {
            "error": {
                "message": f"Unknown control route {method} {urllib.parse.quote(path)}",
                "type": "SandboxException",
                "code": 100,
                "fbtrace_id": "sandbox",
            }
        },
    )
