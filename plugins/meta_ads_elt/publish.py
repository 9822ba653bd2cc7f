"""Publish the marts of the dbt build file to BI tools: the serving DuckDB file and the Parquet copies.

Entry point: :func:`publish_marts` (paths resolved and defaulted as the DAG and ``make run`` give them);
:func:`publish` does the work.

Guarantees
----------
* **Atomic for readers.** The serving file ``data/marts.duckdb`` is written aside, fsynced and
  ``os.replace``-d over the old one: a reader holding the old file keeps reading it, the next
  connection sees the new marts. The Parquet copies are **immutable versions**
  (``data/marts/_versions/<version>/<mart>.parquet``, never modified once written) behind **one
  pointer**, the symlink ``data/marts/_current -> _versions/<version>``, swapped with one rename; the
  contract paths ``data/marts/<mart>.parquet`` are symlinks to ``_current/<mart>.parquet``, so all
  marts flip together and a reader opening a contract path gets one complete version.
* **Safe for readers that open a path twice.** DuckDB's ``read_parquet``, ``pyarrow.parquet.read_table``
  and ``pandas.read_parquet`` read a file's footer in one open and its data in another; when a publish
  swapped the file between the two, they read new bytes at the old footer's offsets
  (``TProtocolException: Invalid data``). Each new version of a mart's file therefore starts as a copy
  of the previous version and never writes over a byte the previous version's row groups use: such a
  reader still reads the previous version, whole. (Only a file grown beyond 4x its live data is written
  afresh: a reader straddling that one publish can fail once; its next read succeeds.) A reader can
  also open a version's own file (``os.path.realpath`` of the contract path, or
  :func:`current_parquet_files`) as often as it likes; superseded versions stay on disk for
  ``retain_minutes`` after the publish that replaced them, then are removed.
* **Only what changed is copied.** Each mart's rows are fingerprinted per ``date`` (row count and a sum
  of row hashes, in DuckDB). The serving file starts as a copy of the previous one (when it is ours,
  with the same storage version) and only the dates whose fingerprint changed are replaced: on a date
  that kept its row count only the columns whose values changed are updated (rows matched on the
  others, the result checked against the build's fingerprint), any other date is deleted and
  re-inserted (``date_replace.py``); a mart whose columns changed is rewritten whole. In a mart's new Parquet file the
  unchanged dates' row groups stay as they are and each changed date is encoded as its own row
  group(s) (``parquet_splice.py`` rewrites the footer); an unchanged mart's file is hard-linked.
* **Nothing replaced unless everything was written**: a failure leaves the published state as it was
  and removes the half-written version.
* The serving file uses DuckDB storage ``v1.0.0`` by default, so BI drivers bundling DuckDB 1.x can
  open it (DuckDB 2.0's own format cannot be read by DuckDB < 2.0).
* **Self-describing.** The marts' dbt descriptions (table and column comments in the build file,
  dbt ``persist_docs``) become table and column comments of the serving file and key-value metadata of
  each Parquet copy: ``description`` (the mart's), ``column_descriptions`` (JSON, column -> text) and
  ``PANDAS_ATTRS`` (the same as JSON, which ``pandas.read_parquet`` turns into ``DataFrame.attrs``).
* Publishers are serialised by an ``flock`` on a sidecar file (never on a file readers open).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import functools
import io
import itertools
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa

from meta_ads_elt.date_replace import fingerprints, replace_dates
from meta_ads_elt.marts import BREAKDOWN_MARTS, MARTS, REPO_ROOT, ROLLUPS, local_path
from meta_ads_elt.parquet_splice import (
    MAGIC,
    Footer,
    ParquetSpliceError,
    check_same_schema,
    chunk_bytes,
    footer_bytes,
    read_file_footer,
    shift_row_group,
)

VERSIONS_DIR = "_versions"
CURRENT_LINK = "_current"
MANIFEST = "manifest.json"
DEFAULT_RETAIN_MINUTES = 60
DEFAULT_SERVING_STORAGE_VERSION = "v1.0.0"
"""Readable by every DuckDB >= 1.0 (checked with DuckDB 1.4.3); DuckDB 2.0 writes this when asked."""
ROWS_PER_ROW_GROUP = 1_000_000
PARQUET_WORKERS = 2
"""Marts whose Parquet files are written at once (the two big marts' dates are encoded side by side)."""
PARQUET_OPTIONS = {
    "compression": "zstd",
    "store_schema": False,  # types from Parquet's own logical types, as any reader sees them
    "store_decimal_as_integer": True,
    "write_statistics": True,
}


PUBLISHED_DESCRIPTIONS = {
    "_published": (
        "What the last publish wrote: per mart its rows, first and last date, when (published_at) and "
        "which version (data/marts/_versions/<version> holds its Parquet copies)."
    ),
    "_published_dates": "Internal: each relation's row count and row-hash sum per date, compared by the next publish.",
}


class PublishError(RuntimeError):
    """The build file lacks a mart, or the serving copy could not be written."""


Fingerprints = dict[str, list]  # ISO date -> [rows, sum of row hashes as text]
Descriptions = dict[str, Any]  # {"description": text or None, "columns": {column: text}}


# ---- small helpers -----------------------------------------------------------------------------


@contextlib.contextmanager
def _publish_lock(serving: Path) -> Iterator[None]:
    """Serialise publishers (never readers): an flock on a sidecar file, not on the serving file."""
    lock_path = serving.with_name(serving.name + ".publish.lock")
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


def _swap_symlink(link: Path, target: str, token: str) -> None:
    """Point ``link`` at ``target`` with one rename (atomic for readers); works over a regular file."""
    if link.is_symlink() and os.readlink(link) == target:
        return
    tmp = link.with_name(f".{link.name}.{token}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)


def _columns(con: Any, qualified: str) -> list[list[str]]:
    return [[row[0], row[1]] for row in con.execute(f"describe {qualified}").fetchall()]


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _descriptions(con: Any, relation: str) -> Descriptions:
    """The build file's comments on ``relation`` (a table or a view) and on its columns."""
    row = con.execute(
        "select comment from duckdb_tables() where database_name = 'build' and schema_name = 'main' "
        "and table_name = $name union all "
        "select comment from duckdb_views() where database_name = 'build' and schema_name = 'main' "
        "and view_name = $name",
        {"name": relation},
    ).fetchone()
    columns = con.execute(
        "select column_name, comment from duckdb_columns() where database_name = 'build' "
        "and schema_name = 'main' and table_name = $name and comment is not null order by column_index",
        {"name": relation},
    ).fetchall()
    return {"description": row[0] if row else None, "columns": dict(columns)}


def _comment_serving(con: Any, relations: Sequence[str], descriptions: Mapping[str, Descriptions]) -> None:
    """The descriptions as table and column comments of the serving file (attached as ``serve``)."""
    for relation in relations:
        target = f'serve.main."{relation}"'
        described = descriptions[relation]
        if described["description"]:
            con.execute(f"comment on table {target} is {_sql_text(described['description'])}")
        for column, text in described["columns"].items():
            con.execute(f'comment on column {target}."{column}" is {_sql_text(text)}')
    for table, text in PUBLISHED_DESCRIPTIONS.items():
        con.execute(f"comment on table serve.main.{table} is {_sql_text(text)}")


def parquet_metadata(described: Descriptions) -> dict[str, str]:
    """A mart's descriptions as a Parquet file's key-value metadata (every value a string)."""
    columns = json.dumps(described["columns"], ensure_ascii=False)
    attrs = {"description": described["description"], "column_descriptions": described["columns"]}
    return {
        "description": described["description"] or "",
        "column_descriptions": columns,
        "PANDAS_ATTRS": json.dumps(attrs, ensure_ascii=False),
    }


def _fingerprints(con: Any, qualified: str) -> Fingerprints:
    """Per date: row count and the sum of the rows' hashes (``date_replace.fingerprints``, which checks
    the dates it updated with the same definition)."""
    return fingerprints(con, qualified)


def _changed(new: Fingerprints, old: Mapping[str, Any]) -> list[str]:
    return sorted(d for d in set(new) | set(old) if list(new.get(d) or []) != list(old.get(d) or []))


def _version_id(now: dt.datetime) -> str:
    return f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:6]}"


# ---- the serving DuckDB file -------------------------------------------------------------------


def _reusable_serving(con: Any, serving: Path, staging: Path, storage_version: str | None) -> bool:
    """Copy the current serving file to ``staging`` and attach it as ``serve``, when it can be updated."""
    if not serving.is_file():
        return False
    shutil.copyfile(serving, staging)
    try:
        con.execute(f"attach '{_quote(staging)}' as serve")
    except Exception:  # not a DuckDB file we can open: write a fresh one
        staging.unlink(missing_ok=True)
        return False
    tags = con.execute("select tags from duckdb_databases() where database_name = 'serve'").fetchone()[0]
    ours = con.execute(
        "select count(*) from information_schema.tables where table_catalog = 'serve' and table_name = '_published'"
    ).fetchone()[0]
    if not ours or not str((tags or {}).get("storage_version", "")).startswith(storage_version or "v2"):
        con.execute("detach serve")
        staging.unlink(missing_ok=True)
        return False
    return True


def _write_serving(
    con: Any,
    serving: Path,
    staging: Path,
    relations: Sequence[str],
    build_fp: Mapping[str, Fingerprints],
    columns: Mapping[str, list],
    storage_version: str | None,
    incremental: bool,
) -> dict[str, str]:
    """Write the serving file's relations into ``staging`` (attached as ``serve``); their modes."""
    modes: dict[str, str] = {}
    if not (incremental and _reusable_serving(con, serving, staging, storage_version)):
        options = f" (storage_version '{storage_version}')" if storage_version else ""
        con.execute(f"attach '{_quote(staging)}' as serve{options}")
        incremental = False
    existing = {
        row[0]
        for row in con.execute(
            "select table_name from information_schema.tables where table_catalog = 'serve'"
        ).fetchall()
    }
    for stale in existing - {*relations, "_published", "_published_dates", "_published_failures"}:
        con.execute(f'drop table if exists serve.main."{stale}"')
    stored = _stored_fingerprints(con) if incremental and "_published_dates" in existing else {}
    for relation in relations:
        source, target = f'build.main."{relation}"', f'serve.main."{relation}"'
        if not incremental or relation not in existing or _columns(con, target) != columns[relation]:
            con.execute(f"drop table if exists {target}")
            con.execute(f"create table {target} as select * from {source} order by date")
            modes[relation] = "full"
            continue
        before = stored[relation] if relation in stored else _fingerprints(con, target)
        changed = _changed(build_fp[relation], before)
        if "null" in changed:  # rows without a date cannot be matched by date: rewrite the relation
            con.execute(f"drop table {target}")
            con.execute(f"create table {target} as select * from {source} order by date")
            modes[relation] = "full"
            continue
        modes[relation] = f"{len(changed)} date(s) replaced" if changed else "unchanged"
        if changed:
            replace_dates(con, source, target, changed, build_fp[relation], before)
    return modes


def _stored_fingerprints(con: Any) -> dict[str, Fingerprints]:
    stored: dict[str, Fingerprints] = {}
    for relation, day, count, digest in con.execute(
        "select relation, cast(date as varchar), row_count, row_hash from serve.main._published_dates"
    ).fetchall():
        stored.setdefault(relation, {})[day if day is not None else "null"] = [count, digest]
    return stored


def _record_published(
    con: Any,
    marts: Sequence[str],
    published_at: dt.datetime,
    version: str,
    fingerprints: Mapping[str, Fingerprints],
    failures: Sequence[Mapping[str, Any]] = (),
) -> dict[str, int]:
    """``_published`` (what BI users read: rows and dates per mart, when, which version, how many
    extractions are still failed), ``_published_failures`` (each failed extraction: account or Page,
    dates not refreshed, reason, how to fill the gap) and ``_published_dates`` (each relation's
    fingerprint per date: what the next publish compares)."""
    _record_failures(con, failures)
    con.execute("drop table if exists serve.main._published_dates")
    con.execute(
        "create table serve.main._published_dates (relation varchar, date date, row_count bigint, row_hash varchar)"
    )
    rows = [
        (relation, None if day == "null" else dt.date.fromisoformat(day), count, digest)
        for relation, by_date in fingerprints.items()
        for day, (count, digest) in by_date.items()
    ]
    if rows:
        fingerprint_rows = pa.table(  # noqa: F841 (read by the next statement, by name)
            dict(
                zip(
                    ("relation", "date", "row_count", "row_hash"),
                    map(list, zip(*rows, strict=True)),
                    strict=True,
                )
            )
        )
        con.execute("insert into serve.main._published_dates select * from fingerprint_rows")
    con.execute("drop table if exists serve.main._published")
    con.execute(
        "create table serve.main._published (mart varchar, row_count bigint, min_date date, max_date date, "
        "published_at timestamptz, version varchar, open_failures bigint)"
    )
    for mart in marts:
        con.execute(
            f'insert into serve.main._published select ?, count(*), min(date), max(date), ?, ?, ? from serve.main."{mart}"',
            [mart, published_at, version, len(failures)],
        )
    return dict(con.execute("select mart, row_count from serve.main._published").fetchall())


FAILURE_COLUMNS = (
    ("kind", "varchar"),
    ("entity", "varchar"),
    ("task_id", "varchar"),
    ("data_date", "date"),
    ("first_date", "date"),
    ("last_date", "date"),
    ("dates", "varchar"),
    ("reason", "varchar"),
    ("action", "varchar"),
    ("run_id", "varchar"),
    ("failed_at", "timestamptz"),
)


def _record_failures(con: Any, failures: Sequence[Mapping[str, Any]]) -> None:
    """``_published_failures``: one row per extraction still failed (``meta_ads_elt.failures``); empty
    when every account and Page of every published day was extracted."""
    con.execute("drop table if exists serve.main._published_failures")
    con.execute(
        "create table serve.main._published_failures ("
        + ", ".join(f"{name} {kind}" for name, kind in FAILURE_COLUMNS)
        + ")"
    )
    for f in failures:
        dates = sorted(f.get("dates") or [f["data_date"]])
        con.execute(
            "insert into serve.main._published_failures values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                f["kind"],
                f["entity"],
                f["task_id"],
                f["data_date"],
                dates[0],
                dates[-1],
                ",".join(dates),
                f["reason"],
                f["action"],
                f["run_id"],
                f["failed_at"],
            ],
        )


def _mostly_free(con: Any) -> bool:
    """More free than used blocks in the serving file after many incremental publishes: write it afresh."""
    row = con.execute(
        "select free_blocks, total_blocks from pragma_database_size() where database_name = 'serve'"
    ).fetchone()
    return bool(row) and row[1] > 64 and row[0] * 2 > row[1]


def _write_serving_file(
    con: Any,
    serving: Path,
    staging: Path,
    marts: Sequence[str],
    relations: Sequence[str],
    build_fp: Mapping[str, Fingerprints],
    columns: Mapping[str, list],
    storage_version: str | None,
    published_at: dt.datetime,
    version: str,
    incremental: bool,
    descriptions: Mapping[str, Descriptions],
    failures: Sequence[Mapping[str, Any]] = (),
) -> tuple[dict[str, str], dict[str, int]]:
    """The next serving file, complete and fsynced, at ``staging``; per relation its mode and rows."""
    for attempt_incremental in (incremental, False):
        modes = _write_serving(
            con, serving, staging, relations, build_fp, columns, storage_version, attempt_incremental
        )
        rows = _record_published(con, marts, published_at, version, build_fp, failures)
        _comment_serving(con, relations, descriptions)
        con.execute("checkpoint serve")
        compact = attempt_incremental and _mostly_free(con)
        con.execute("detach serve")
        if not compact:
            break
        staging.unlink()
    for relation in relations:
        rows.setdefault(relation, sum(count for count, _digest in build_fp[relation].values()))
    _fsync(staging)
    return modes, rows


# ---- the Parquet versions ----------------------------------------------------------------------


def _encode_date(con: Any, relation: str, day: str, metadata: Mapping[str, str]) -> bytes:
    """One date of a mart as a whole Parquet file in memory (row groups of that date only)."""
    import pyarrow.parquet as pq

    table = con.sql(
        f'select * from build.main."{relation}" where date = $day', params={"day": dt.date.fromisoformat(day)}
    ).to_arrow_table()
    sink = io.BytesIO()
    with pq.ParquetWriter(sink, table.schema, **PARQUET_OPTIONS) as writer:
        writer.write_table(table, row_group_size=ROWS_PER_ROW_GROUP)
        writer.add_key_value_metadata(dict(metadata))
    return sink.getvalue()


def _empty_parquet(con: Any, relation: str, path: Path, metadata: Mapping[str, str]) -> None:
    import pyarrow.parquet as pq

    table = con.sql(f'select * from build.main."{relation}" limit 0').to_arrow_table()
    with pq.ParquetWriter(path, table.schema, **PARQUET_OPTIONS) as writer:
        writer.write_table(table)
        writer.add_key_value_metadata(dict(metadata))


def _copy_file(source: Path, target: Any) -> None:
    """Copy ``source`` into the open, empty ``target`` in the kernel (no pass through Python)."""
    with open(source, "rb") as handle:
        remaining = os.fstat(handle.fileno()).st_size
        while remaining:
            sent = os.copy_file_range(handle.fileno(), target.fileno(), remaining)
            if not sent:
                raise PublishError(f"{source} changed while it was copied")
            remaining -= sent


def _gaps(taken: Sequence[tuple[int, int]], end: int) -> list[tuple[int, int]]:
    """The free ``(start, end)`` ranges of ``[4, end)`` around the ``taken`` extents."""
    gaps, cursor = [], len(MAGIC)
    for start, stop in sorted(taken):
        if start > cursor:
            gaps.append((cursor, start))
        cursor = max(cursor, stop)
    if end > cursor:
        gaps.append((cursor, end))
    return gaps


def _allocate(gaps: list[tuple[int, int]], size: int, end: int) -> tuple[int, int]:
    """First fit of ``size`` bytes in ``gaps`` (updated), else at ``end``; returns (offset, new end)."""
    for index, (start, stop) in enumerate(gaps):
        if stop - start >= size:
            gaps[index] = (start + size, stop)
            return start, end
    return end, end + size


@dataclasses.dataclass
class _PreviousFile:
    """The previous version's Parquet file of a mart and its manifest entry: what a new file is spliced from."""

    entry: Mapping[str, Any]
    path: Path

    @functools.cached_property
    def footer(self) -> Footer:
        """The file's footer, read on first use (never when the mart is unchanged: the file is linked)."""
        return read_file_footer(str(self.path))


def _write_mart_parquet(
    con: Any,
    relation: str,
    path: Path,
    fingerprints: Fingerprints,
    columns: list,
    previous: Mapping[str, Any] | None,
    previous_path: Path | None,
    rewrite_all: bool = False,
    metadata: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Write one mart's Parquet file for the new version; return its manifest entry.

    The new file starts as a copy of the previous version's file. Row groups of unchanged dates stay
    where they are; the changed dates are encoded and written into space that no row group of the
    *previous* version uses (first fit, else appended), and the footer lists the new version's row
    groups in date order. So every byte the previous version's footer points at is still at its
    offset: a reader that read the previous footer and then opens the new file (DuckDB's
    ``read_parquet`` and ``pyarrow.parquet.read_table`` open a path twice) still reads the previous
    version, whole. Space of older versions is reused, and the file is cut after the last byte the two
    versions use. Only when the file grew beyond 4x its live data is it written afresh.
    """
    if "null" in fingerprints:
        raise PublishError(f"mart {relation} has rows without a date: it cannot be published by date")
    dates = sorted(fingerprints)
    metadata = dict(metadata or {})
    entry: dict[str, Any] = {
        "file": path.name,
        "columns": columns,
        "dates": fingerprints,
        "metadata": metadata,
    }
    # The previous file, when the new one starts as a copy of it (None: written afresh) ...
    base = (
        _PreviousFile(previous, previous_path)
        if previous and previous_path and previous_path.is_file() and "extents" in previous
        else None
    )
    # ... and when its row groups are kept too (row groups of another schema or other descriptions
    # cannot share a footer).
    keep = (
        base
        if base is not None
        and not rewrite_all
        and base.entry.get("columns") == columns
        and base.entry.get("metadata") == metadata
        else None
    )
    changed = _changed(fingerprints, keep.entry["dates"]) if keep is not None else dates
    if keep is not None and not changed:
        try:
            os.link(keep.path, path)
        except OSError:
            shutil.copyfile(keep.path, path)
        return {**keep.entry, "file": path.name, "mode": "unchanged"}
    if not dates:
        _empty_parquet(con, relation, path, metadata)
        return {**entry, "row_groups": [], "extents": {}, "mode": "full"}

    if base is not None:
        previous_footer = base.footer
        live = sum(stop - start for start, stop in base.entry["extents"].values())
        if len(previous_footer.row_groups) != len(base.entry["row_groups"]) or (
            base.path.stat().st_size > 4 * live + (1 << 20)
        ):
            base = keep = None  # not what the manifest says, or too fragmented: afresh
            changed = dates
    taken = [tuple(extent) for extent in base.entry["extents"].values()] if base is not None else []
    end = max((stop for _start, stop in taken), default=len(MAGIC))
    gaps = _gaps(taken, end)
    kept = (
        [
            (d, g)
            for d, g in zip(keep.entry["row_groups"], keep.footer.row_groups, strict=True)
            if d not in changed
        ]
        if keep is not None
        else []
    )
    extents = {day: keep.entry["extents"][day] for day, _group in kept} if keep is not None else {}
    footers = [keep.footer] if keep is not None and kept else []
    new_groups: list[tuple[str, dict]] = []
    with open(path, "w+b") as out:
        if base is not None:
            _copy_file(base.path, out)
        else:
            out.write(MAGIC)
        for day in changed:
            if day not in fingerprints:
                continue  # the date left the mart: its row groups are simply not listed any more
            part_footer, chunks = chunk_bytes(_encode_date(con, relation, day, metadata))
            offset, end = _allocate(gaps, len(chunks), end)
            out.seek(offset)
            out.write(chunks)
            extents[day] = [offset, offset + len(chunks)]
            footers.append(part_footer)
            new_groups.extend(
                (day, shift_row_group(group, offset - len(MAGIC))) for group in part_footer.row_groups
            )
        check_same_schema(footers)
        ordered = sorted([*kept, *new_groups], key=lambda item: item[0])
        out.seek(end)
        out.write(footer_bytes(footers[0], [group for _day, group in ordered]))
        out.truncate()
        out.flush()
        os.fsync(out.fileno())
    return {
        **entry,
        "row_groups": [day for day, _group in ordered],
        "extents": extents,
        "mode": f"{len(changed)} date(s) re-encoded" if keep is not None else "full",
    }


def _read_manifest(version_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((version_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _write_parquet_version(
    con: Any,
    out_dir: Path,
    version: str,
    marts: Sequence[str],
    build_fp: Mapping[str, Fingerprints],
    columns: Mapping[str, list],
    published_at: dt.datetime,
    incremental: bool,
    descriptions: Mapping[str, Descriptions],
) -> Path:
    """Write ``_versions/<version>/`` (one file per mart + manifest); return its directory."""
    current = out_dir / CURRENT_LINK
    previous_dir = current.resolve() if current.is_symlink() else None
    previous = _read_manifest(previous_dir) if previous_dir else None
    version_dir = out_dir / VERSIONS_DIR / version
    version_dir.mkdir(parents=True)
    try:
        _write_parquet_files(
            con,
            version_dir,
            version,
            marts,
            build_fp,
            columns,
            published_at,
            previous,
            previous_dir,
            incremental,
            descriptions,
        )
    except BaseException:
        shutil.rmtree(version_dir, ignore_errors=True)
        raise
    return version_dir


def _write_mart_file(
    con: Any,
    mart: str,
    version_dir: Path,
    fingerprints: Fingerprints,
    columns: list,
    before: Mapping[str, Any] | None,
    previous_dir: Path | None,
    incremental: bool,
    described: Descriptions,
) -> dict[str, Any]:
    """One mart's file of the new version (spliced from the previous one when it can be); its entry."""
    path = version_dir / f"{mart}.parquet"
    before_path = previous_dir / before["file"] if before and previous_dir else None
    metadata = parquet_metadata(described)
    try:
        return _write_mart_parquet(
            con,
            mart,
            path,
            fingerprints,
            columns,
            before,
            before_path,
            rewrite_all=not incremental,
            metadata=metadata,
        )
    except ParquetSpliceError:  # the previous file is not what its manifest says: write afresh
        path.unlink(missing_ok=True)
        return _write_mart_parquet(con, mart, path, fingerprints, columns, None, None, metadata=metadata)


def _write_parquet_files(
    con: Any,
    version_dir: Path,
    version: str,
    marts: Sequence[str],
    build_fp: Mapping[str, Fingerprints],
    columns: Mapping[str, list],
    published_at: dt.datetime,
    previous: Mapping[str, Any] | None,
    previous_dir: Path | None,
    incremental: bool,
    descriptions: Mapping[str, Descriptions],
) -> None:
    cursors = {mart: con.cursor() for mart in marts}  # a connection per thread
    try:
        with ThreadPoolExecutor(max_workers=PARQUET_WORKERS) as pool:
            futures = {
                mart: pool.submit(
                    _write_mart_file,
                    cursors[mart],
                    mart,
                    version_dir,
                    build_fp[mart],
                    columns[mart],
                    (previous or {}).get("marts", {}).get(mart),
                    previous_dir,
                    incremental,
                    descriptions[mart],
                )
                for mart in marts
            }
            entries = {mart: future.result() for mart, future in futures.items()}
    finally:
        for cursor in cursors.values():
            cursor.close()
    manifest = {"version": version, "published_at": published_at.isoformat(), "marts": entries}
    (version_dir / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    for path in version_dir.iterdir():
        _fsync(path)
    _fsync(version_dir)


def _remove_superseded(out_dir: Path, current: str, now: dt.datetime, retain_minutes: float) -> list[str]:
    """Remove versions replaced more than ``retain_minutes`` ago (a version is replaced when the next
    one is published, so its readers get that long to finish)."""
    root = out_dir / VERSIONS_DIR
    names = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    removed = []
    horizon = now - dt.timedelta(minutes=retain_minutes)
    for name, successor in itertools.pairwise(names):
        if name == current:
            continue
        try:
            replaced_at = dt.datetime.strptime(successor.split("-")[0], "%Y%m%dT%H%M%S%fZ").replace(
                tzinfo=dt.UTC
            )
        except ValueError:
            continue
        if replaced_at < horizon:
            shutil.rmtree(root / name, ignore_errors=True)
            removed.append(name)
    return removed


def current_parquet_files(parquet_dir: str | os.PathLike[str]) -> dict[str, str]:
    """The current version's immutable file of each mart (safe to open as many times as a reader likes)."""
    version_dir = (Path(parquet_dir) / CURRENT_LINK).resolve()
    manifest = _read_manifest(version_dir) or {"marts": {}}
    return {mart: str(version_dir / entry["file"]) for mart, entry in manifest["marts"].items()}


# ---- the publish -------------------------------------------------------------------------------


def publish(
    build: Path,
    serving: Path,
    out_dir: Path | None,
    *,
    storage_version: str | None,
    marts: Sequence[str],
    rollups: Sequence[str],
    retain_minutes: float = DEFAULT_RETAIN_MINUTES,
    incremental: bool = True,
    failures: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Publish ``build``'s marts to ``serving`` and ``out_dir`` (see the module docstring); ``failures``
    (the extractions still failed, :mod:`meta_ads_elt.failures`) go to ``_published_failures``."""
    import duckdb

    if not build.exists():
        raise PublishError(f"build file {build} does not exist: run the dbt build first")
    serving.parent.mkdir(parents=True, exist_ok=True)
    published_at = dt.datetime.now(dt.UTC)
    version = _version_id(published_at)
    token = uuid.uuid4().hex[:12]
    staging = serving.with_name(f".{serving.name}.{token}.tmp")
    version_dir: Path | None = None
    swapped = False
    with _publish_lock(serving):
        con = duckdb.connect()
        try:
            con.execute("set TimeZone = 'UTC'")
            con.execute(f"attach '{_quote(build)}' as build (read_only)")
            present = {
                r[0]
                for r in con.execute(
                    "select table_name from information_schema.tables where table_catalog = 'build'"
                ).fetchall()
            }
            missing = [m for m in marts if m not in present]
            if missing:
                raise PublishError(f"build file {build} lacks mart(s) {missing}: did dbt build succeed?")
            relations = [*marts, *(r for r in rollups if r in present)]
            columns = {r: _columns(con, f'build.main."{r}"') for r in relations}
            build_fp = {r: _fingerprints(con, f'build.main."{r}"') for r in relations}
            descriptions = {r: _descriptions(con, r) for r in relations}

            if out_dir is not None:
                out_dir.mkdir(parents=True, exist_ok=True)
            with ThreadPoolExecutor(max_workers=1) as pool:
                # The Parquet version is written beside the serving file, on its own connection.
                parquet = (
                    pool.submit(
                        _write_parquet_version,
                        con.cursor(),
                        out_dir,
                        version,
                        marts,
                        build_fp,
                        columns,
                        published_at,
                        incremental,
                        descriptions,
                    )
                    if out_dir is not None
                    else None
                )
                try:
                    modes, rows = _write_serving_file(
                        con,
                        serving,
                        staging,
                        marts,
                        relations,
                        build_fp,
                        columns,
                        storage_version,
                        published_at,
                        version,
                        incremental,
                        descriptions,
                        failures,
                    )
                finally:
                    version_dir = parquet.result() if parquet is not None else None

            # A stale WAL beside the serving path would be replayed onto the new file: remove it first.
            with contextlib.suppress(FileNotFoundError):
                os.remove(serving.with_name(serving.name + ".wal"))
            os.replace(staging, serving)
            _fsync(serving.parent)
            parquet_files: dict[str, str] = {}
            removed: list[str] = []
            if out_dir is not None and version_dir is not None:
                _swap_symlink(out_dir / CURRENT_LINK, f"{VERSIONS_DIR}/{version}", token)
                for mart in marts:
                    link = out_dir / f"{mart}.parquet"
                    _swap_symlink(link, f"{CURRENT_LINK}/{mart}.parquet", token)
                    parquet_files[mart] = str(link)
                _fsync(out_dir)
                swapped = True
                removed = _remove_superseded(out_dir, version, published_at, retain_minutes)
            manifest = _read_manifest(version_dir) if version_dir else None
        finally:
            con.close()
            staging.unlink(missing_ok=True)
            staging.with_name(staging.name + ".wal").unlink(missing_ok=True)
            if version_dir is not None and not swapped:
                shutil.rmtree(version_dir, ignore_errors=True)
            if out_dir is not None:
                for leftover in out_dir.glob(f".*.{token}.tmp"):
                    leftover.unlink(missing_ok=True)
    return {
        "serving_db_path": str(serving),
        "parquet_files": parquet_files,
        "rows": rows,
        "published_at": published_at.isoformat(),
        "storage_version": storage_version or "default",
        "version": version,
        "serving_modes": modes,
        "parquet_modes": {m: e["mode"] for m, e in (manifest or {"marts": {}})["marts"].items()},
        "removed_versions": removed,
        "failures": [dict(f) for f in failures],
    }


def publish_marts(
    build_db_path: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    serving_db_path: str | os.PathLike[str] = "data/marts.duckdb",
    parquet_dir: str | os.PathLike[str] | None = "data/marts/",
    *,
    storage_version: str | None = DEFAULT_SERVING_STORAGE_VERSION,
    marts: Sequence[str] = MARTS,
    rollups: Sequence[str] = (*ROLLUPS, *BREAKDOWN_MARTS),
    serving_path: str | os.PathLike[str] | None = None,
    retain_minutes: float = DEFAULT_RETAIN_MINUTES,
    incremental: bool = True,
    failures: Sequence[Any] = (),
) -> dict[str, Any]:
    """Atomically publish the marts of ``build_db_path`` to ``serving_db_path`` and ``parquet_dir``,
    copying only the dates that changed since the last publish (:mod:`meta_ads_elt.publish`).

    Returns ``{"serving_db_path", "parquet_files", "rows": {mart: n}, "published_at", "version", ...}``.
    The serving file gets a ``_published`` table (mart, rows, min/max date, published_at, version,
    open_failures) and ``_published_failures``: the extractions still failed (``failures``: the
    :class:`~meta_ads_elt.failures.ExtractionFailure` list of :func:`~meta_ads_elt.failures.reconcile_failures`,
    or dicts with its fields), each with its account or Page, dates, reason and how to fill the gap.
    Nothing is replaced unless every mart was copied. ``build_db_path`` may be the dict returned by
    :func:`~meta_ads_elt.dbt_runner.run_dbt_build`; ``serving_path`` is an alias of ``serving_db_path``. ``storage_version=None``
    writes DuckDB's default (2.0) format, which DuckDB < 2.0 cannot open. ``incremental=False`` writes
    everything afresh. Superseded Parquet versions are kept ``retain_minutes`` for readers still on them.
    """
    build_file: str | os.PathLike[str] | None = (
        build_db_path["build_db_path"]  # the summary returned by run_dbt_build
        if isinstance(build_db_path, Mapping)
        else build_db_path
    )
    if serving_path is not None:  # alias used by the DAG's config
        serving_db_path = serving_path
    build = local_path(
        build_file, "META_DBT_DUCKDB_PATH", REPO_ROOT / "data" / "build" / "marts_build.duckdb"
    )
    serving = local_path(serving_db_path, "META_SERVING_DUCKDB_PATH", REPO_ROOT / "data" / "marts.duckdb")
    out_dir = (
        local_path(parquet_dir, "META_MARTS_PARQUET_DIR", REPO_ROOT / "data" / "marts")
        if parquet_dir is not None
        else None
    )
    return publish(
        build,
        serving,
        out_dir,
        storage_version=storage_version,
        marts=marts,
        rollups=rollups,
        retain_minutes=retain_minutes,
        incremental=incremental,
        failures=[f if isinstance(f, Mapping) else dataclasses.asdict(f) for f in failures],
    )
