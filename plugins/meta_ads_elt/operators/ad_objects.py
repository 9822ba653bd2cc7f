"""MetaAdObjectsOperator: snapshot an ad account and its campaigns, ad sets and ads.

Guarantees
----------
* Writes the ``accounts``, ``campaigns``, ``adsets`` and ``ads`` datasets, one partition
  ``account_id=<id>`` each, replaced atomically on every run (idempotent; a rerun leaves one snapshot).
  Each dataset is its own transaction: a failure leaves every dataset either old or new, never partial.
* Objects are read in pages of 500 and streamed to the writer (memory flat in the number of ads).
* Retries, throttling and fatal-error semantics are the hook's (:class:`MetaGraphApiHook`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from airflow.sdk import BaseOperator

from meta_ads_elt import fields as F
from meta_ads_elt.config import check_operator_arguments
from meta_ads_elt.lake import LakeWriter

# dataset -> (edge, API fields, {lake column: API field})
_EDGES = {
    "campaigns": ("campaigns", F.CAMPAIGN_FIELDS, {"campaign_id": "id"}),
    "adsets": ("adsets", F.ADSET_FIELDS, {"adset_id": "id"}),
    "ads": ("ads", F.AD_FIELDS, {"ad_id": "id"}),
}


class MetaAdObjectsOperator(BaseOperator):
    """Snapshot one ad account (currency, timezone, name, promoted Pages) and its campaigns, ad sets, ads.

    :param account_id: ad account id, with or without ``act_``.
    :param meta_conn_id: Airflow connection of type ``meta_graph_api``.
    :param lake_root: lake root (local path, fsspec URL or ``ObjectStoragePath``).
    :returns: rows written per dataset.
    """

    template_fields: Sequence[str] = ("account_id", "meta_conn_id", "lake_root")

    def __init__(
        self, *, account_id: str, meta_conn_id: str = "meta_default", lake_root: Any = "data/lake", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        check_operator_arguments(type(self).__name__, account_id=account_id)
        self.account_id = account_id
        self.meta_conn_id = meta_conn_id
        self.lake_root = lake_root

    @cached_property
    def hook(self):
        from meta_ads_elt.hooks.graph_api import MetaGraphApiHook

        return MetaGraphApiHook(self.meta_conn_id)

    @property
    def numeric_account_id(self) -> str:
        return str(self.account_id).removeprefix("act_")

    def execute(self, context: Any) -> dict[str, int]:
        acct = self.numeric_account_id
        node = f"act_{acct}"
        run_id = str((context or {}).get("run_id") or "manual")
        extracted_at = dt.datetime.now(dt.UTC)
        writer = LakeWriter(self.lake_root)
        partition = {"account_id": acct}
        counts: dict[str, int] = {}

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

        for dataset, (edge, api_fields, renames) in _EDGES.items():
            with writer.replace_partitions(dataset, [partition], run_id=run_id) as tx:
                for page in self.hook.paginate(
                    (node, edge), {"fields": ",".join(api_fields), "limit": F.AD_OBJECTS_PAGE_LIMIT}
                ):
                    for r in page:
                        for column, api_field in renames.items():
                            r[column] = r.get(api_field)
                        r["_extracted_at"] = extracted_at
                    tx.write(page, partition=partition)
            counts[dataset] = tx.rows
            self.log.info("act_%s: %d %s", acct, tx.rows, dataset)
        writer.write_manifest(
            "ad_objects",
            {"run_id": run_id, "account_id": acct, "rows": counts, "calls": self.hook.calls,
             "extracted_at": extracted_at.isoformat(), "partitions": [acct]},
        )
        return counts
