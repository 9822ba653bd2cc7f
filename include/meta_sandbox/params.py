"""Request parameter parsing: merged query/form params, ``fields`` (CSV with field expansion, or a
JSON array), and lenient JSON for ``filtering`` / ``time_range`` (single quotes, unquoted keys)."""

from __future__ import annotations

import dataclasses
import json
import re

from meta_sandbox.errors import GraphError, param_error


@dataclasses.dataclass
class FieldSpec:
    """One requested field, e.g. ``messages.limit(5){id,from}`` -> name, modifiers, subfields."""

    name: str
    modifiers: dict[str, str] = dataclasses.field(default_factory=dict)
    subfields: list[FieldSpec] | None = None

    @property
    def limit(self) -> int | None:
        value = self.modifiers.get("limit")
        return int(value) if value and value.isdigit() else None


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "{(":
            depth += 1
        elif ch in "})":
            depth -= 1
            if depth < 0:
                raise param_error("Syntax error in the fields parameter: unbalanced brackets")
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise param_error("Syntax error in the fields parameter: unbalanced brackets")
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


_MOD = re.compile(r"\.(\w+)\(([^)]*)\)")


def _subfields_brace(text: str) -> int:
    """Where ``{subfields}`` start: the first ``{`` outside a modifier's parentheses (a modifier may hold
    JSON, e.g. ``insights.time_range({'since':'2026-11-01','until':'2026-11-19'}){spend}``)."""
    depth = 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "{" and depth == 0:
            return i
    return -1


def _parse_one(text: str) -> FieldSpec:
    sub = None
    brace = _subfields_brace(text)
    if brace >= 0:
        if not text.endswith("}"):
            raise param_error(f"Syntax error in the fields parameter near '{text}'")
        sub = parse_fields(text[brace + 1 : -1])
        text = text[:brace]
    head, _, rest = text.partition(".")
    mods = {m.group(1): m.group(2) for m in _MOD.finditer("." + rest)} if rest else {}
    if not re.fullmatch(r"[A-Za-z0-9_]+", head):
        raise param_error(f"Syntax error in the fields parameter near '{text}'")
    return FieldSpec(head, mods, sub)


def parse_fields(value) -> list[FieldSpec]:
    """``a,b,c.limit(2){x,y}`` or ``["a","b"]`` (the SDK's async POST form)."""
    if value is None:
        return []
    if isinstance(value, list):
        items = value
    else:
        text = str(value).strip()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except ValueError:
                items = loose_json(text)
            if not isinstance(items, list):
                raise param_error("fields must be a list")
        else:
            return [_parse_one(p) for p in _split_top(text)]
    out = []
    for item in items:
        out.extend(_parse_one(p) for p in _split_top(str(item)))
    return out


_UNQUOTED_KEY = re.compile(r"([{,]\s*)([A-Za-z_][A-Za-z0-9_.]*)(\s*:)")
_BARE_WORD = re.compile(r"(:\s*)([A-Za-z_][A-Za-z0-9_.]*)(\s*[,}\]])")


def loose_json(text: str):
    """Parse JSON the way Graph does: also single quotes, unquoted keys and bare enum words."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    fixed = text.replace("'", '"')
    fixed = _UNQUOTED_KEY.sub(r'\1"\2"\3', fixed)

    def _word(m: re.Match) -> str:
        word = m.group(2)
        if word in ("true", "false", "null"):
            return m.group(0)
        return f'{m.group(1)}"{word}"{m.group(3)}'

    fixed = _BARE_WORD.sub(_word, fixed)
    try:
        return json.loads(fixed)
    except ValueError as exc:
        raise GraphError(f"(#100) Invalid JSON in parameter: {text[:80]}", 100) from exc


def json_param(params: dict, name: str, default=None):
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, list | dict):
        return value
    text = str(value).strip()
    if text[:1] in "[{":
        return loose_json(text)
    return text


def list_param(params: dict, name: str) -> list[str] | None:
    """A list parameter sent as a JSON array or CSV."""
    value = json_param(params, name)
    if value is None:
        return None
    if isinstance(value, list):
        return [str(v) for v in value]
    return [v.strip() for v in str(value).split(",") if v.strip()]


def int_param(params: dict, name: str, default: int | None = None, minimum: int = 0) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(str(value))
    except ValueError as exc:
        raise param_error(f"Param {name} must be an integer") from exc
    if number < minimum:
        raise param_error(f"Param {name} must be at least {minimum}")
    return number
