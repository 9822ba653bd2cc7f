"""Cursor paging as the SDK's ``Cursor`` expects it.

Guarantees: every page but the last carries ``paging.cursors.after`` and ``paging.next``; the last
page has cursors but no ``next``; a page is never empty unless the whole listing is empty (then the
response is ``{"data": []}``). Cursors are opaque (base64 of the row position, Meta-style ``ZD``
padding) and stable for a given listing.
"""

from __future__ import annotations

import base64
import json
import urllib.parse

from meta_sandbox.errors import GraphError

DEFAULT_LIMIT = 25
MAX_LIMIT = 5000
"""A larger ``limit`` is served as this many rows, with paging links to the rest: "Some edges may also have a
maximum on the limit value", for performance, and the answer still carries correct paging links (Graph API
"Paginated Results", cursor-based pagination, ``limit``: https://developers.facebook.com/docs/graph-api/results/).
The same for an edge expanded in ``fields`` (``insights.limit(500){...}``, seed 002). Meta documents neither
its insights default page size nor the cap's value (research/meta_api_facts.md sections 1.3 and 12): 25 and
5000 are this sandbox's choices."""
_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def encode_cursor(position: int) -> str:
    return base64.b64encode(str(position).encode()).decode().replace("=", "ZD")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.b64decode(cursor.replace("ZD", "=").encode(), validate=True).decode()
        return int(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise GraphError("(#100) The after parameter is not a valid cursor", 100) from exc


def window(params: dict, total: int, limit: int | None = None, *, arrived: int = 0) -> tuple[int, int]:
    """(start, end) of the requested page within ``total`` items. ``arrived``: items that arrived at the
    list's head since the page before (``after``) was served; paged by position, the page starts that many
    items earlier and repeats the end of the page before (never by a page's whole size, so a walk ends)."""
    if limit is None:
        raw = params.get("limit")
        try:
            limit = int(raw) if raw not in (None, "") else DEFAULT_LIMIT
        except ValueError as exc:
            raise GraphError("(#100) Param limit must be a positive integer", 100) from exc
    limit = max(1, min(limit, MAX_LIMIT))
    after = params.get("after")
    start = decode_cursor(after) + 1 if after else 0
    if params.get("offset") not in (None, "") and not after:
        start = int(params["offset"])
    if after:
        start -= min(arrived, limit - 1)
    start = max(0, start)
    return start, min(total, start + limit)


def paging_block(ctx, start: int, end: int, total: int, edge_path: str, params: dict) -> dict | None:
    if end <= start:
        return None
    block: dict = {"cursors": {"before": encode_cursor(start), "after": encode_cursor(end - 1)}}
    if end < total:
        query = {k: v for k, v in params.items() if k not in ("after", "before", "offset") and v is not None}
        query["after"] = encode_cursor(end - 1)
        block["next"] = f"{ctx.base_url}/{ctx.version}/{edge_path}?{urllib.parse.urlencode(query)}"
    if start > 0:
        query = {k: v for k, v in params.items() if k not in ("after", "before", "offset") and v is not None}
        query["before"] = encode_cursor(start)
        block["previous"] = f"{ctx.base_url}/{ctx.version}/{edge_path}?{urllib.parse.urlencode(query)}"
    return block


def page_json(
    ctx,
    rows_json: list[str],
    start: int,
    end: int,
    total: int,
    edge_path: str,
    params: dict,
    summary: dict | None = None,
) -> bytes:
    """A page built from pre-serialised rows (the fast path for insights)."""
    block = paging_block(ctx, start, end, total, edge_path, params)
    parts = ['{"data":[', ",".join(rows_json), "]"]
    if block:
        parts.append(',"paging":' + _DUMPS(block))
    if summary is not None:
        parts.append(',"summary":' + _DUMPS(summary))
    parts.append("}")
    return "".join(parts).encode()


def page_json_bytes(
    ctx, rows: list[bytes], start: int, end: int, total: int, edge_path: str, params: dict
) -> bytes:
    """Like ``page_json`` for rows that are already UTF-8 bytes (pre-rendered job results)."""
    block = paging_block(ctx, start, end, total, edge_path, params)
    tail = (',"paging":' + _DUMPS(block)).encode() if block else b""
    return b'{"data":[' + b",".join(rows) + b"]" + tail + b"}"


def page_dict(
    ctx,
    items: list,
    start: int,
    end: int,
    total: int,
    edge_path: str,
    params: dict,
    summary: dict | None = None,
) -> dict:
    out: dict = {"data": items}
    block = paging_block(ctx, start, end, total, edge_path, params)
    if block:
        out["paging"] = block
    if summary is not None:
        out["summary"] = summary
    return out


dumps = _DUMPS
