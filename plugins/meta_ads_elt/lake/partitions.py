"""Partition writing: hive-partitioned Parquet datasets, replaced partition by partition, atomically.

Guarantees
----------
* Schema: every file holds exactly ``schemas.DATASETS[dataset]`` (partition columns only in the
  directory names). Data that does not fit (unknown columns, uncastable values) is rejected before
  anything is swapped in.
* Atomic replacement: a transaction writes every listed partition (empty ones included, as a zero-row
  file) under ``<root>/_staging/`` and swaps them in only when the ``with`` block exits cleanly. On an
  exception nothing is swapped and the staged files are removed. On local/POSIX storage each partition
  directory is swapped with two renames, so readers never see half a partition (between the two renames
  the partition is briefly absent, never partial). A task killed mid-write leaves only files under
  ``_staging/``, which the ``<dataset>/**/*.parquet`` globs do not match and the next transaction sweeps.
  On object stores (``s3://``...) there is no rename: old files are deleted, then the new ones moved in.
* Flat memory: incoming tables are buffered up to ``flush_rows`` rows or ``flush_bytes`` (8 MB) per
  transaction, then split by partition and streamed to one ``ParquetWriter`` per partition (a row
  group per flush), so memory does not grow with the number of rows.
* Idempotent: rerunning a window replaces exactly the listed partitions.

The root is a local path (default ``data/lake``), an fsspec URL (``s3://bucket/lake``, ``memory://lake``)
or an Airflow ``ObjectStoragePath``.

The writer switches Arrow's default memory pool to the system allocator when it is created
(:func:`use_system_memory_pool`) and keeps pyarrow from importing pandas it does not need
(:func:`meta_ads_elt.lake.rows.skip_pandas_probe`); rows become Arrow tables in :mod:`meta_ads_elt.lake.rows`, job state
lives in :mod:`meta_ads_elt.lake.state`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from meta_ads_elt.lake.layout import partition_dates
from meta_ads_elt.lake.rows import LakeSchemaError, rows_to_table, skip_pandas_probe
from meta_ads_elt.schemas import DATASETS, PARTITION_KEYS, REPORT_PARTITION_KEYS

STAGING_DIR = "_staging"
MANIFEST_DIR = "_manifests"
_STALE_STAGING_SECONDS = 6 * 3600


def use_system_memory_pool() -> None:
    """Make the system allocator Arrow's default pool, unless the deployment chose one
    (``ARROW_DEFAULT_MEMORY_POOL``). Called by :class:`LakeWriter` when it is created.

    Arrow's default pool (mimalloc) keeps the pages of the many short-lived page tables an extract
    builds: RSS grew to ~4x the live Arrow data in our measurements. The system allocator gives them
    back, so the extract's memory stays flat in rows.
    """
    if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL") and pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())


def safe_name(value: Any) -> str:
    """``value`` as a file-name part: characters other than letters, digits and ``._=-`` become ``_``."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", str(value))[:120]


def _fs_and_base(root: Any, storage_options: dict | None) -> tuple[Any, str]:
    if hasattr(root, "fs") and hasattr(root, "path") and not isinstance(root, str | os.PathLike):
        return root.fs, str(root.path).rstrip("/")  # Airflow ObjectStoragePath
    fs, path = fsspec.core.url_to_fs(str(root), **(storage_options or {}))
    return fs, str(path).rstrip("/")


def _is_local(fs: Any) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")


def _partition_keys(dataset: str) -> tuple[str, ...]:
    """A dataset's partition keys; an Insights report's dataset (``insights_<report>``) has the reports' keys."""
    if dataset in PARTITION_KEYS:
        return PARTITION_KEYS[dataset]
    if dataset.startswith("insights_"):
        return REPORT_PARTITION_KEYS
    raise LakeSchemaError(f"unknown dataset {dataset!r}; known: {sorted(DATASETS)}")


class PartitionTransaction:
    """Collects rows for a fixed set of partitions; see :meth:`LakeWriter.replace_partitions`."""

    def __init__(
        self,
        writer: LakeWriter,
        dataset: str,
        partitions: Iterable[Mapping[str, Any]],
        token: str,
        schema: pa.Schema | None = None,
    ):
        self.writer = writer
        self.dataset = dataset
        self.schema = schema if schema is not None else DATASETS[dataset]
        self.keys = _partition_keys(dataset)
        self.token = token
        self.staging = f"{writer.base}/{STAGING_DIR}/{dataset}/{token}"
        self.partitions: dict[tuple[str, ...], dict[str, str]] = {}
        for p in partitions:
            key = self._key(p)
            self.partitions[key] = dict(zip(self.keys, key, strict=True))
        self.rows_by_partition: dict[tuple[str, ...], int] = dict.fromkeys(self.partitions, 0)
        self._pending: list[tuple[pa.Table, tuple[str, ...] | list[tuple[str, ...]]]] = []
        self._buffered = 0
        self._buffered_bytes = 0
        self._writers: dict[tuple[str, ...], tuple[Any, pq.ParquetWriter]] = {}
        self._lock = threading.Lock()

    @property
    def rows(self) -> int:
        return sum(self.rows_by_partition.values())

    def _key(self, p: Mapping[str, Any]) -> tuple[str, ...]:
        missing = [k for k in self.keys if p.get(k) in (None, "")]
        if missing:
            raise LakeSchemaError(f"{self.dataset}: partition {dict(p)} lacks {missing}")
        return tuple(str(p[k]) for k in self.keys)

    def _rel(self, key: tuple[str, ...]) -> str:
        return "/".join(f"{k}={v}" for k, v in zip(self.keys, key, strict=True))

    def write(
        self, data: pa.Table | pa.RecordBatch | Sequence[Mapping], partition: Mapping | None = None
    ) -> int:
        """Add rows. Either ``partition`` names their one partition, or the data carries the partition
        columns and each row is routed by them. Returns the number of rows accepted."""
        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        elif not isinstance(data, pa.Table):
            extra = [] if partition else list(self.keys)
            data = rows_to_table(self.schema, list(data), extra=extra)
        if data.num_rows == 0:
            return 0
        keys: tuple[str, ...] | list[tuple[str, ...]]
        if partition is not None:
            keys = self._key(partition)
            counts = {keys: data.num_rows}
            body = data.drop_columns([k for k in self.keys if k in data.column_names])
        else:
            missing = [k for k in self.keys if k not in data.column_names]
            if missing:
                raise LakeSchemaError(
                    f"{self.dataset}: data has no partition column(s) {missing} and no partition="
                )
            cols = [data.column(k).cast(pa.string()).to_pylist() for k in self.keys]
            keys = list(zip(*cols, strict=True))
            counts = {}
            for i, key in enumerate(keys):
                if None in key:
                    raise LakeSchemaError(f"{self.dataset}: row {i} has a null partition value")
                counts[key] = counts.get(key, 0) + 1
            body = data.drop_columns(list(self.keys))
        for key in counts:
            if key not in self.partitions:
                raise LakeSchemaError(
                    f"{self.dataset}: rows for partition {self._rel(key)} which this run does not replace"
                )
        body = self._conform(body)
        with self._lock:
            # Whole incoming tables are buffered and split by partition only when flushed: splitting
            # every page into one tiny table per date would cost far more memory than the rows.
            self._pending.append((body, keys))
            self._buffered += body.num_rows
            self._buffered_bytes += body.nbytes
            for key, n in counts.items():
                self.rows_by_partition[key] += n
            if self._buffered >= self.writer.flush_rows or self._buffered_bytes >= self.writer.flush_bytes:
                self._flush()
        return data.num_rows

    def _conform(self, table: pa.Table) -> pa.Table:
        names = set(table.column_names)
        expected = set(self.schema.names)
        if names != expected:
            raise LakeSchemaError(
                f"{self.dataset}: columns differ from the schema: unexpected {sorted(names - expected)}, "
                f"missing {sorted(expected - names)}"
            )
        table = table.select(self.schema.names)
        if not table.schema.equals(self.schema):
            try:
                table = table.cast(self.schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
                raise LakeSchemaError(f"{self.dataset}: {exc}") from None
        return table

    def _writer_for(self, key: tuple[str, ...]) -> pq.ParquetWriter:
        if key not in self._writers:
            fs = self.writer.fs
            directory = f"{self.staging}/{self._rel(key)}"
            fs.makedirs(directory, exist_ok=True)
            handle = fs.open(f"{directory}/part-{self.token}.parquet", "wb")
            self._writers[key] = (handle, pq.ParquetWriter(handle, self.schema, compression="snappy"))
        return self._writers[key][1]

    def _flush(self) -> None:
        """Write every buffered row to its partition's file (one row group per partition and flush)."""
        if not self._pending:
            return
        table = pa.concat_tables([body for body, _ in self._pending])
        index: dict[tuple[str, ...], list[int]] = {}
        row = 0
        for body, keys in self._pending:
            if isinstance(keys, tuple):
                index.setdefault(keys, []).extend(range(row, row + body.num_rows))
            else:
                for i, key in enumerate(keys, start=row):
                    index.setdefault(key, []).append(i)
            row += body.num_rows
        self._pending.clear()
        self._buffered = self._buffered_bytes = 0
        for key, rows in index.items():
            part = table if len(index) == 1 else table.take(pa.array(rows, pa.int64()))
            self._writer_for(key).write_table(part, row_group_size=self.writer.row_group_rows)

    def _close(self) -> None:
        with self._lock:
            self._flush()
            for key in self.partitions:  # empty partitions: a zero-row file, so the date is replaced
                self._writer_for(key)
            for handle, w in self._writers.values():
                w.close()
                handle.close()
            self._writers.clear()

    def _abort(self) -> None:
        with contextlib.suppress(Exception):
            for handle, w in self._writers.values():
                with contextlib.suppress(Exception):
                    w.close()
                handle.close()
        self._writers.clear()
        self._pending.clear()
        with contextlib.suppress(Exception):
            self.writer.fs.rm(self.staging, recursive=True)

    def _commit(self) -> None:
        fs, base = self.writer.fs, self.writer.base
        trash = f"{self.staging}/.replaced"
        for key in self.partitions:
            rel = self._rel(key)
            staged = f"{self.staging}/{rel}"
            final = f"{base}/{self.dataset}/{rel}"
            if self.writer.local:
                os.makedirs(os.path.dirname(final), exist_ok=True)
                if os.path.exists(final):
                    old = f"{trash}/{rel}"
                    os.makedirs(os.path.dirname(old), exist_ok=True)
                    os.rename(final, old)
                os.rename(staged, final)
            else:
                if fs.exists(final):
                    fs.rm(final, recursive=True)
                fs.mv(staged, final, recursive=True)
        with contextlib.suppress(Exception):
            fs.rm(self.staging, recursive=True)


class LakeWriter:
    """Writes datasets of :mod:`meta_ads_elt.schemas` under ``root`` (see module docstring)."""

    def __init__(
        self,
        root: Any = "data/lake",
        *,
        storage_options: dict | None = None,
        flush_rows: int = 25_000,
        flush_bytes: int = 8 << 20,
        row_group_rows: int = 128_000,
    ) -> None:
        use_system_memory_pool()
        skip_pandas_probe()
        self.root = root
        self.fs, self.base = _fs_and_base(root, storage_options)
        self.local = _is_local(self.fs)
        if self.local:
            self.base = os.path.abspath(self.base)
        self.flush_rows = flush_rows
        self.flush_bytes = flush_bytes
        self.row_group_rows = row_group_rows

    def dataset_path(self, dataset: str) -> str:
        return f"{self.base}/{dataset}"

    def partition_dates(self, dataset: str, leading: Mapping[str, Any] | None = None) -> list[dt.date]:
        """The dates of ``dataset``'s partitions under ``leading`` (the keys before ``date``, e.g. one
        account of ``insights``), sorted; see :func:`meta_ads_elt.lake.layout.partition_dates`."""
        leading = dict(leading or {})
        keys = _partition_keys(dataset)
        before = keys[: keys.index("date")] if "date" in keys else None
        if before is None or set(leading) != set(before):
            raise ValueError(
                f"{dataset} is partitioned by {keys}: give the keys before date, not {sorted(leading)}"
            )
        directory = "/".join([self.dataset_path(dataset), *(f"{k}={leading[k]}" for k in before)])
        return partition_dates(self.fs, directory)

    @contextlib.contextmanager
    def replace_partitions(
        self,
        dataset: str,
        partitions: Iterable[Mapping[str, Any]],
        *,
        run_id: str = "",
        schema: pa.Schema | None = None,
    ) -> Iterator[PartitionTransaction]:
        """Open a transaction replacing exactly ``partitions`` of ``dataset`` (see module docstring).
        ``schema``: the schema of an Insights report's dataset ``insights_<report>`` (schemas.report_schema)."""
        if dataset not in DATASETS and not (schema is not None and dataset.startswith("insights_")):
            raise LakeSchemaError(f"unknown dataset {dataset!r}; known: {sorted(DATASETS)}")
        self._sweep_staging(dataset)
        token = f"{safe_name(run_id) or 'run'}-{uuid.uuid4().hex[:10]}"
        tx = PartitionTransaction(self, dataset, partitions, token, schema=schema)
        try:
            yield tx
            tx._close()
            tx._commit()
        except BaseException:
            tx._abort()
            raise

    def _sweep_staging(self, dataset: str) -> None:
        """Remove staging leftovers of killed runs (older than a few hours, so live runs are safe)."""
        if not self.local:
            return
        area = f"{self.base}/{STAGING_DIR}/{dataset}"
        if not os.path.isdir(area):
            return
        now = time.time()
        for name in os.listdir(area):
            path = os.path.join(area, name)
            with contextlib.suppress(OSError):
                if now - os.path.getmtime(path) > _STALE_STAGING_SECONDS:
                    shutil.rmtree(path, ignore_errors=True)

    def write_json(self, path: str, payload: Any) -> None:
        text = json.dumps(payload, indent=2, sort_keys=True, default=str)
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        if self.local:
            tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
            with open(tmp, "w") as fh:
                fh.write(text)
            os.replace(tmp, path)
        else:
            with self.fs.open(path, "w") as fh:
                fh.write(text)

    def write_manifest(self, dataset: str, manifest: Mapping[str, Any]) -> str:
        """Write one run's manifest to ``_manifests/<dataset>/``; returns its path.

        Conventional keys: ``run_id``, ``rows``, ``calls``, ``report_run_ids``, ``attribution``,
        ``partitions``, ``extracted_at`` (added when missing).
        """
        body = dict(manifest)
        body.setdefault("dataset", dataset)
        body.setdefault("extracted_at", dt.datetime.now(dt.UTC).isoformat())
        digest = hashlib.sha256(json.dumps(body.get("partitions", []), sort_keys=True, default=str).encode())
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{stamp}-{safe_name(body.get('run_id', 'run'))}-{digest.hexdigest()[:8]}.json"
        path = f"{self.base}/{MANIFEST_DIR}/{dataset}/{name}"
        self.write_json(path, body)
        return path


def read_rows(
    root: Any,
    dataset: str,
    partition: Mapping[str, Any],
    columns: Sequence[str],
    *,
    storage_options: dict | None = None,
) -> list[dict[str, Any]]:
    """The rows (``columns`` that exist; others None) of the partitions under ``partition`` (leading keys
    of the dataset's partitioning, e.g. one account of ``insights``); ``[]`` when there are none."""
    writer = LakeWriter(root, storage_options=storage_options)
    keys = PARTITION_KEYS[dataset][: len(partition)]
    path = f"{writer.dataset_path(dataset)}/" + "/".join(f"{k}={partition[k]}" for k in keys)
    if not writer.fs.exists(path):
        return []
    rows: list[dict[str, Any]] = []
    for file in sorted(writer.fs.glob(f"{path}/**/*.parquet") if writer.fs.isdir(path) else []):
        with writer.fs.open(file, "rb") as fh:
            table = pq.read_table(fh)
        present = [c for c in columns if c in table.column_names]
        for row in table.select(present).to_pylist():
            rows.append({c: row.get(c) for c in columns})
    return rows
