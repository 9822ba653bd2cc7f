"""MetaAdObjectsOperator: snapshot an ad account and its campaigns, ad sets and ads, whatever their status.

Guarantees
----------
* Writes the ``accounts``, ``campaigns``, ``adsets`` and ``ads`` datasets, one partition
  ``account_id=<id>`` each, replaced atomically on every run (idempotent; a rerun leaves one snapshot).
  Each dataset is its own transaction: a failure leaves every dataset either old or new, never partial.
* Every object, with ``effective_status``, ``configured_status`` and ``updated_time``: the edges are read
  with ``effective_status`` = every status but DELETED (they leave ARCHIVED objects out unless asked, and
  never return DELETED ones: Meta, "Manage your ad object's status"). DELETED objects are read by their
  id ("Query by its own ID: Yes"): the ids the previous snapshot or the account's Insights rows know and
  the edges no longer list. A DELETED object cannot change any more (but its name), so the previous
  snapshot's DELETED rows are carried forward without another call. An id Meta answers "does not
  exist or cannot be loaded" for (100/33) is logged and counted in the manifest (``unreadable_ids``),
  never dropped silently; any other error reading an id fails the task naming it (a transient one after
  the hook's retries, so that Airflow's retry reads it again; a refused request at once, with its fix).
* Objects are read in pages of 500 and streamed to the writer (memory flat in the number of ads).
* Retries, throttling and fatal-error semantics are the hook's (:class:`MetaGraphApiHook`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from meta_ads_elt import fields as F
from meta_ads_elt.errors import (
    MetaApiError,
    MetaRetryableError,
    in_context,
    is_missing_object,
    is_retryable,
)
from meta_ads_elt.operators._base import MetaAccountOperator

# dataset -> (edge, API fields, {lake column: API field}, the Insights column naming its objects).
# Children first: the parents their rows name are read by id when no edge lists them, so every ad's ad
# set and campaign are in the snapshot (the staging relationships tests hold).
_EDGES = {
    "ads": ("ads", F.AD_FIELDS, {"ad_id": "id"}, "ad_id"),
    "adsets": ("adsets", F.ADSET_FIELDS, {"adset_id": "id"}, "adset_id"),
    "campaigns": ("campaigns", F.CAMPAIGN_FIELDS, {"campaign_id": "id"}, "campaign_id"),
}
_PARENT_COLUMNS = ("adset_id", "campaign_id")


class MetaAdObjectsOperator(MetaAccountOperator):
    """Snapshot one ad account (currency, timezone, name, promoted Pages) and its campaigns, ad sets, ads.

    Arguments (``account_id``, ``meta_conn_id``, ``lake_root``, ``max_rate_limit_wait_minutes``):
    :class:`~meta_ads_elt.operators._base.MetaAccountOperator`.

    :returns: rows written per dataset.
    """

    def execute(self, context: Any) -> dict[str, int]:
        from meta_ads_elt.lake.partitions import LakeWriter, read_rows

        acct = self.numeric_account_id
        node = f"act_{acct}"
        run_id = str((context or {}).get("run_id") or "manual")
        extracted_at = dt.datetime.now(dt.UTC)
        writer = LakeWriter(self.lake_root)
        partition = {"account_id": acct}
        counts: dict[str, int] = {}
        unreadable: dict[str, list[str]] = {}

        info = self.hook.call("GET", (node,), {"fields": ",".join(F.ACCOUNT_FIELDS)})
        pages = [
            str(p["id"])
            for page in self.hook.paginate((node, "promote_pages"), {"fields": "id", "limit": 100})
            for p in page
        ]
        row = {
            "name": info.get("name"),
            "currency": info.get("currency"),
            "timezone_name": info.get("timezone_name"),
            "timezone_offset_hours_utc": info.get("timezone_offset_hours_utc"),
            "promoted_page_ids": pages,
            "_extracted_at": extracted_at,
        }
        with writer.replace_partitions("accounts", [partition], run_id=run_id) as tx:
            tx.write([row], partition=partition)
        counts["accounts"] = 1

        seen_in_insights = read_rows(self.lake_root, "insights", partition, [c for *_, c in _EDGES.values()])
        referenced: dict[str, set[str]] = {column: set() for column in _PARENT_COLUMNS}
        for dataset, (edge, api_fields, renames, insights_column) in _EDGES.items():
            id_column = next(iter(renames))
            previous = self._previous(dataset, id_column)
            listed: set[str] = set()
            with writer.replace_partitions(dataset, [partition], run_id=run_id) as tx:
                params = {
                    "fields": ",".join(api_fields),
                    "limit": F.AD_OBJECTS_PAGE_LIMIT,
                    "effective_status": list(F.EDGE_EFFECTIVE_STATUSES[edge]),
                }
                for page in self.hook.paginate((node, edge), params):
                    listed.update(str(r["id"]) for r in page)
                    self._note_parents(page, referenced)
                    tx.write(self._rows(page, renames, extracted_at), partition=partition)
                # DELETED objects: carried forward, or read by id
                carried = [
                    r
                    for oid, r in previous.items()
                    if oid not in listed and r.get("effective_status") == F.DELETED_STATUS
                ]
                if carried:
                    self._note_parents(carried, referenced)
                    tx.write(carried, partition=partition)
                known = listed | {
                    oid for oid, r in previous.items() if r.get("effective_status") == F.DELETED_STATUS
                }
                wanted = (
                    {oid for oid in previous if oid not in known}
                    | {str(r[insights_column]) for r in seen_in_insights if r.get(insights_column)}
                    | referenced.get(id_column, set())
                ) - known
                fetched, missing = self._by_id(dataset, sorted(wanted), api_fields)
                if fetched:
                    self._note_parents(fetched, referenced)
                    tx.write(self._rows(fetched, renames, extracted_at), partition=partition)
                if missing:
                    unreadable[dataset] = missing
                    self.log.warning(
                        "act_%s: %d %s no longer readable by id (not in the snapshot): %s",
                        acct,
                        len(missing),
                        dataset,
                        ", ".join(missing[:20]),
                    )
            counts[dataset] = tx.rows
            self.log.info(
                "act_%s: %d %s (%d listed, %d deleted carried forward, %d read by id)",
                acct,
                tx.rows,
                dataset,
                len(listed),
                len(carried),
                len(fetched),
            )
        writer.write_manifest(
            "ad_objects",
            {
                "run_id": run_id,
                "account_id": acct,
                "rows": counts,
                "calls": self.hook.calls,
                "extracted_at": extracted_at.isoformat(),
                "partitions": [acct],
                "unreadable_ids": unreadable,
            },
        )
        return counts

    def _previous(self, dataset: str, id_column: str) -> dict[str, dict[str, Any]]:
        """The account's previous snapshot of ``dataset`` (every lake column), by object id."""
        from meta_ads_elt.lake.partitions import read_rows
        from meta_ads_elt.schemas import DATASETS

        columns = DATASETS[dataset].names
        rows = read_rows(self.lake_root, dataset, {"account_id": self.numeric_account_id}, columns)
        return {str(r[id_column]): r for r in rows if r.get(id_column)}

    @staticmethod
    def _note_parents(rows: list[dict], referenced: dict[str, set[str]]) -> None:
        for r in rows:
            for column in _PARENT_COLUMNS:
                if r.get(column):
                    referenced[column].add(str(r[column]))

    @staticmethod
    def _rows(page: list[dict], renames: dict[str, str], extracted_at: dt.datetime) -> list[dict]:
        for r in page:
            for column, api_field in renames.items():
                r[column] = r.get(api_field)
            r["_extracted_at"] = extracted_at
        return page

    def _by_id(self, dataset: str, ids: list[str], api_fields: Sequence[str]) -> tuple[list[dict], list[str]]:
        """Objects read by id (one Graph batch call per 50), and the ids Meta answers "does not exist or
        cannot be loaded" for (100/33, :func:`~meta_ads_elt.errors.is_missing_object`): the only missing ones.

        Any other error of an item fails the task, naming the id, as the hook classified it: a transient
        error its retries did not outlast stays retryable (Airflow's retry reads the objects again), a
        refused request (a field, a parameter: code 100) or token stays fatal, with its fix. The dataset's
        previous snapshot is then left as it was.
        """
        if not ids:
            return [], []
        items = self.hook.batch(
            [{"method": "GET", "path": (oid,), "params": {"fields": ",".join(api_fields)}} for oid in ids],
            scope=self.numeric_account_id,
        )
        found, missing = [], []
        for oid, item in zip(ids, items, strict=True):
            body, err = item.get("body"), item.get("error")  # err: classified once, by the hook
            if err is None and isinstance(body, dict):
                found.append(body)
            elif err is not None and is_missing_object(err):
                missing.append(oid)
            else:
                raise self._unreadable(
                    dataset, oid, err or MetaRetryableError(f"GET /{oid} answered no object")
                )
        return found, missing

    def _unreadable(self, dataset: str, oid: str, err: MetaApiError) -> MetaApiError:
        """``err`` of reading ``oid`` by id, its message naming the account, the dataset and the id."""
        if is_retryable(err):
            outcome = f"failed after {self.hook.max_attempts} attempts; the task fails and its Airflow retry reads it again"
        elif err.kind == "fatal":
            outcome = "was refused; not retried"
        else:
            outcome = "failed"
        return in_context(
            err,
            f"act_{self.numeric_account_id} {dataset}: id {oid} (read by id: the account's edges do not list "
            f"it) {outcome}. It is not recorded as missing; the {dataset} snapshot was left as it was",
        )
