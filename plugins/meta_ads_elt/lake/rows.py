"""Row conversion: API-shaped rows (numbers as strings, ISO dates and times, nested dicts) into Arrow
tables of the lake's schemas (:mod:`meta_ads_elt.schemas`), decimals rounded half-even to the schema's
scale. Data that does not fit raises :class:`LakeSchemaError` naming the column."""

from __future__ import annotations

import datetime as dt
import functools
import importlib.abc
import sys
import threading
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from meta_ads_elt.errors import DataContractError
from meta_ads_elt.schemas import DATASETS


class LakeSchemaError(DataContractError, ValueError):
    """Data handed to the writer does not match the dataset's schema or partitions."""


def _loose_type(t: pa.DataType) -> pa.DataType:
    """The type API values arrive in (numbers as strings), for a cast to ``t`` afterwards."""
    if pa.types.is_decimal(t) or pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_date(t):
        return pa.string()
    if pa.types.is_timestamp(t):
        return pa.string()
    if pa.types.is_boolean(t):
        return t
    if pa.types.is_list(t):
        return pa.list_(_loose_type(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _loose_type(f.type)) for f in t])
    return t


def _norm(value: Any, t: pa.DataType) -> Any:
    if value is None:
        return None
    if pa.types.is_list(t):
        return [_norm(v, t.value_type) for v in value]
    if pa.types.is_struct(t):
        return {f.name: _norm(value.get(f.name), f.type) for f in t} if isinstance(value, Mapping) else None
    if pa.types.is_timestamp(t) and isinstance(value, dt.datetime):
        value = value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return value.strftime("%Y-%m-%dT%H:%M:%S.%f+0000")
    if pa.types.is_boolean(t):
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes")
        return bool(value)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    if pa.types.is_string(t) and not isinstance(value, str):
        return str(value)
    if _loose_type(t) == pa.string() and not isinstance(value, str):
        return str(value)
    return value


def _quantize(value: str | None, scale: int) -> str | None:
    if value is None:
        return None
    try:
        return str(Decimal(value).quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_EVEN))
    except InvalidOperation:
        raise LakeSchemaError(f"not a decimal number: {value!r}") from None


def _cast(arr: pa.Array, t: pa.DataType) -> pa.Array:
    """Cast a loose array to ``t``; decimals are rounded half-even to the target scale."""
    if arr.type == t:
        return arr
    if pa.types.is_decimal(t):
        try:
            wide = arr.cast(pa.decimal128(38, 12))
            return pc.round(wide, t.scale, round_mode="half_to_even").cast(t)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return pa.array([_quantize(v, t.scale) for v in arr.to_pylist()], pa.string()).cast(t)
    if pa.types.is_timestamp(t) and pa.types.is_string(arr.type):
        out = None
        for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"):
            try:
                out = pc.strptime(arr, format=fmt, unit=t.unit)
                break
            except pa.ArrowInvalid:
                continue
        if out is None:
            parsed = [
                dt.datetime.fromisoformat(v.replace("+0000", "+00:00")) if v else None
                for v in arr.to_pylist()
            ]
            return pa.array(parsed, t)
        return out.cast(t)
    if pa.types.is_list(t):
        if pa.types.is_decimal(t.value_type) or pa.types.is_struct(t.value_type):
            flat = _cast(pc.list_flatten(arr), t.value_type)
            offsets = arr.offsets
            out = pa.ListArray.from_arrays(offsets, flat, mask=arr.is_null())
            return out.cast(t)
        return arr.cast(t)
    if pa.types.is_struct(t):
        children = [_cast(arr.field(f.name), f.type) for f in t]
        return pa.StructArray.from_arrays(children, fields=list(t), mask=arr.is_null())
    return arr.cast(t)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _epoch_us(value: dt.datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return (value - _EPOCH) // dt.timedelta(microseconds=1)


@functools.lru_cache(maxsize=256)
def _loose(t: pa.DataType) -> pa.DataType:
    return _loose_type(t)


def _to_array(values: list, t: pa.DataType) -> pa.Array:
    """Arrow array of API values: straight from the values when they have the shapes Meta sends
    (numbers as strings, nested dicts; Arrow ignores unknown struct keys), else normalised one by one."""
    if pa.types.is_timestamp(t):
        first = next((v for v in values if v is not None), None)
        if isinstance(first, dt.datetime):
            # Via epoch microseconds: pyarrow would import pandas (~1 s) for zone-aware datetimes.
            return pa.array([None if v is None else _epoch_us(v) for v in values], pa.int64()).cast(
                pa.timestamp("us", tz=t.tz)
            )
    try:
        return pa.array(values, _loose(t))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    if pa.types.is_timestamp(t) or pa.types.is_boolean(t):
        try:
            return pa.array(values, t)  # datetimes / bools as they are
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
    return pa.array([_norm(v, t) for v in values], _loose(t))


def rows_to_table(
    dataset_or_schema: str | pa.Schema, rows: Sequence[Mapping[str, Any]], *, extra: Sequence[str] = ()
) -> pa.Table:
    """Typed table from API-shaped rows (numbers as strings, ISO dates / times, nested dicts).

    ``extra`` names string columns to carry along (e.g. partition columns such as ``account_id``).
    Columns missing from a row become nulls; keys not in the schema are ignored.
    """
    skip_pandas_probe()
    schema = DATASETS[dataset_or_schema] if isinstance(dataset_or_schema, str) else dataset_or_schema
    arrays, fields = [], []
    for f in schema:
        values = [r.get(f.name) for r in rows]
        try:
            arr = _cast(_to_array(values, f.type), f.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, LakeSchemaError) as exc:
            raise LakeSchemaError(f"column {f.name!r}: {exc}") from None
        if not f.nullable and arr.null_count:
            raise LakeSchemaError(f"column {f.name!r} is required but {arr.null_count} row(s) lack it")
        arrays.append(arr)
        fields.append(f)
    for name in extra:
        arrays.append(
            pa.array([None if r.get(name) is None else str(r.get(name)) for r in rows], pa.string())
        )
        fields.append(pa.field(name, pa.string()))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


_probe_done = threading.Lock()
_probe_answered = False


def skip_pandas_probe() -> None:
    """Let pyarrow's one-time "is pandas installed?" probe answer "no" when pandas is not imported yet.

    The first ``pa.array()`` of a process imports pandas only to find out whether its argument is a
    pandas object (``pandas_api.is_series``): ~40 MB of RSS and ~0.5 s of CPU in a task process that
    never uses pandas. The values converted here are plain Python lists, never pandas objects, so the answer
    changes nothing for them. pyarrow keeps its pandas support: ``Table.to_pandas()`` /
    ``Table.from_pandas()`` import pandas when called (the probe's "no" is retried by every call that
    needs pandas). Until then, a pandas Series handed to ``pa.array()`` in the same process converts as
    a plain sequence. A process that imported pandas already is left as it is. The finder that answers
    "no" is installed for that one call only; a writer is created before a task starts its threads.
    """
    global _probe_answered
    with _probe_done:
        if _probe_answered:
            return
        _probe_answered = True
        if "pandas" in sys.modules:
            return
        sys.meta_path.insert(0, _NO_PANDAS)
        try:
            pa.array([], pa.null())
        finally:
            sys.meta_path.remove(_NO_PANDAS)


class _NoPandasFinder(importlib.abc.MetaPathFinder):
    """An import finder that reports pandas as not installed (used for pyarrow's probe only)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.partition(".")[0] == "pandas":
            raise ModuleNotFoundError(f"{name} is not imported for pyarrow's probe", name=name)


_NO_PANDAS = _NoPandasFinder()
