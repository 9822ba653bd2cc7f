"""Cursor paging as Meta serves it (the SDK's ``Cursor`` reads it up to the first empty page).

Guarantees: every page but the last carries ``paging.cursors.after`` and ``paging.next``; the last
page has cursors but no ``next``; an empty listing is ``{"data": []}``. Cursors are opaque (base64 of the
row position, Meta-style ``ZD`` padding) and stable for a given listing.

**Short and empty pages** (object edges, :func:`gapped_cut`): Meta, Graph API "Paginated Results"
(https://developers.facebook.com/docs/graph-api/results/, cursor-based pagination): "A query may return
fewer than the value of ``limit`` due to filtering. Do not depend on the number of results being fewer
than the ``limit`` value to indicate that your query reached the end of the list of data, use the absence
of ``next`` instead"; "Due to how pagination works with visibility and privacy, it is possible that a page
may be empty but contain a ``next`` paging link. Stop paging when the ``next`` link no longer appears."
The sandbox plays it by cutting each page over a list that also holds entries the viewer may not see,
then leaving those out: runs of hidden entries follow some items (and may open the list), so pages come
back short, some empty with ``next``, and the last page with items may still have ``next`` (to an empty
last page). The hidden entries are nothing else: not in ``summary.total_count``, the 20-message rule or
the truth. Meta documents neither how often this happens nor how long the runs are (the rates below are
this sandbox's choice); it does not say it of Insights result rows, which are not gapped. The SDK's
``Cursor`` stops at an empty page even when it has ``next`` (research/meta_api_facts.md section 4): a
client must page on ``next``. ``Options.paging_gaps`` (CLI ``--no-paging-gaps``) turns it off.
"""

from __future__ import annotations

import base64
import bisect
import dataclasses
import json
import urllib.parse
import zlib
from collections.abc import Sequence

from meta_sandbox import rng
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


SHORT_RUN_CHANCE = 0.05
"""Share of items followed by one or two entries the viewer may not see: short pages. With the walls, about
one entry in eight is hidden, near the document's only figure (``limit`` 10, 9 returned: "one item was
removed due to privacy filtering")."""
WALL_CHANCE = 0.0005
"""Share of items followed by a long run (:data:`WALL_LENGTH`), and the chance the list opens with one."""
WALL_LENGTH = 120
"""A run longer than a 100-item page, shorter than a 500-item one: pages of 100 or fewer items that start
in it come back empty (with ``next``), larger pages short."""


@dataclasses.dataclass(frozen=True)
class Cut:
    """A page of a gapped list: the visible items ``[start, end)`` and the cut ``[vstart, vend)`` over the
    list with its hidden entries (``vtotal`` long), which the cursors and ``next`` are made of."""

    start: int
    end: int
    vstart: int
    vend: int
    vtotal: int


def _hidden_run(h: int) -> int:
    u = rng.unit(h)
    if u < WALL_CHANCE:
        return WALL_LENGTH
    if u < WALL_CHANCE + SHORT_RUN_CHANCE:
        return 1 + rng.mix64(h) % 2
    return 0


def _positions(list_key: int, item_keys: Sequence[str]) -> tuple[list[int], int]:
    """(position of each visible item, length) of the list with its hidden entries. The run after an item
    follows the item's own key: an item that moves (a conversation updated to the head) takes its run
    along, and the others keep theirs."""
    position = _hidden_run(rng.mix64(list_key))
    positions = []
    for key in item_keys:
        positions.append(position)
        position += 1 + _hidden_run(rng.mix64(list_key ^ zlib.crc32(key.encode())))
    return positions, position if positions else 0


def gapped_cut(
    params: dict,
    list_key: int | None,
    item_keys: Sequence[str],
    limit: int | None = None,
    *,
    arrived: int = 0,
) -> Cut:
    """The page ``params`` ask for (``after``, ``offset``, ``limit``), cut over the list with its hidden
    entries (module doc). ``item_keys``: a stable key per item (its id), in list order. ``list_key``
    None: no hidden entries (every page full but the last)."""
    if list_key is None:
        start, end = window(params, len(item_keys), limit, arrived=arrived)
        return Cut(start, end, start, end, len(item_keys))
    positions, vtotal = _positions(list_key, item_keys)
    offset = params.get("offset")
    if offset not in (None, "") and not params.get("after"):
        offset_index = int(offset)
        params = {**params, "offset": positions[offset_index] if offset_index < len(positions) else vtotal}
    vstart, vend = window(params, vtotal, limit, arrived=arrived)
    return Cut(
        bisect.bisect_left(positions, vstart), bisect.bisect_left(positions, vend), vstart, vend, vtotal
    )


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
