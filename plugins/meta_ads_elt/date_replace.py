"""Make some dates of a DuckDB table equal those of another table with the same columns, rewriting as
little as possible.

Used by the publisher (``publish.py``) on the serving file's copy. Writing rows into a DuckDB file is
dear (each string column's compression is analysed and applied: ~4 CPU-s per 3M rows of a mart), while
a re-extracted date usually keeps its rows and changes a few columns (``as_of`` on every row, a metric
on some). So, for each date whose row count did not change, only the columns whose values changed are
updated, each row matched on the hash of its unchanged columns, and the result is checked against the
source's fingerprint; every other date (added, removed, other row count, or a check that failed) is
deleted and re-inserted whole.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

Fingerprints = Mapping[str, Sequence[Any]]  # ISO date -> [rows, sum of row hashes as text]
ROW_KEY = "_row_key"  # the update's join column (a mart with a column of that name is re-inserted)
UPDATE_MIN_ROWS = 122_880
"""Fewer rows (one DuckDB row group) are re-inserted: cheap, while an update reads the source three
times (a view, such as a rollup, is computed three times)."""


def replace_dates(
    con: Any,
    source: str,
    target: str,
    dates: Sequence[str],
    source_fp: Fingerprints,
    target_fp: Fingerprints,
    update_min_rows: int | None = None,
) -> None:
    """Make ``target``'s rows of ``dates`` (ISO dates) equal ``source``'s; both relations (qualified
    names) have the same columns, ``*_fp`` are their fingerprints by date (``publish._fingerprints``).
    Columns are updated only when the dates that kept their row count hold ``update_min_rows``
    (default :data:`UPDATE_MIN_ROWS`) rows or more."""
    if update_min_rows is None:
        update_min_rows = UPDATE_MIN_ROWS
    same_rows = [
        day
        for day in dates
        if day in source_fp and day in target_fp and source_fp[day][0] == target_fp[day][0]
    ]
    left = list(dates)
    if same_rows and sum(source_fp[day][0] for day in same_rows) >= update_min_rows:
        left = [day for day in dates if day not in same_rows]
        left += update_changed_columns(con, source, target, same_rows, source_fp)
    if left:
        _load_dates(con, "_replaced_dates", left)
        con.execute(f"delete from {target} where date in (select date from _replaced_dates)")
        con.execute(
            f"insert into {target} select * from {source} "
            "where date in (select date from _replaced_dates) order by date"
        )


def update_changed_columns(
    con: Any, source: str, target: str, dates: Sequence[str], source_fp: Fingerprints
) -> list[str]:
    """Update, on ``dates``, the columns of ``target`` whose values differ from ``source``'s, matching
    rows on the hash of the other columns; return the dates whose rows still differ afterwards (all of
    them when the other columns do not tell the source's rows apart)."""
    _load_dates(con, "_updated_dates", dates)
    on_dates = "where date in (select date from _updated_dates)"
    columns = [row[0] for row in con.execute(f"describe {source}").fetchall()]
    sums = ", ".join(f"sum(hash({_name(c)}))" for c in columns)
    source_sums = con.execute(f"select {sums} from {source} {on_dates}").fetchone()
    target_sums = con.execute(f"select {sums} from {target} {on_dates}").fetchone()
    changed = [c for c, new, old in zip(columns, source_sums, target_sums, strict=True) if new != old]
    kept = [c for c in columns if c not in changed]
    if not changed or ROW_KEY in columns:  # rows moved between dates or rows, or a clashing name
        return list(dates)
    key = "hash(" + ", ".join(_name(c) for c in kept) + ")"
    con.execute(
        f"create or replace temp table _updated_rows as select {key} as {ROW_KEY}, "
        + ", ".join(_name(c) for c in changed)
        + f" from {source} {on_dates}"
    )
    rows, keys = con.execute(f"select count(*), count(distinct {ROW_KEY}) from _updated_rows").fetchone()
    if rows != keys:  # the kept columns do not identify a row: a join could match rows many times
        con.execute("drop table _updated_rows")
        return list(dates)
    target_key = "hash(" + ", ".join(f"t.{_name(c)}" for c in kept) + ")"
    con.execute(
        f"update {target} as t set "
        + ", ".join(f"{_name(c)} = s.{_name(c)}" for c in changed)
        + f" from _updated_rows as s where t.date in (select date from _updated_dates) and {target_key} = s.{ROW_KEY}"
    )
    con.execute("drop table _updated_rows")
    updated = fingerprints(con, target, on_dates)
    return [day for day in dates if updated.get(day) != list(source_fp[day])]


def fingerprints(con: Any, qualified: str, where: str = "") -> dict[str, list]:
    """Per date (ISO, ``"null"`` for none): row count and the sum of the rows' hashes as text
    (order-independent, duplicates count); ``where`` narrows the rows."""
    rows = con.execute(
        f"select cast(date as varchar), count(*), cast(sum(hash(t)) as varchar) from {qualified} as t "
        f"{where} group by date"
    ).fetchall()
    return {str(day) if day is not None else "null": [count, digest] for day, count, digest in rows}


def _name(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _load_dates(con: Any, table: str, dates: Sequence[str]) -> None:
    """A temp table ``table`` (date) holding ``dates`` (ISO)."""
    rows = pa.table({"date": pa.array([dt.date.fromisoformat(d) for d in dates], pa.date32())})
    con.execute(f"create or replace temp table {table} (date date)")
    con.register("_dates_to_load", rows)
    try:
        con.execute(f"insert into {table} select date from _dates_to_load")
    finally:
        con.unregister("_dates_to_load")
