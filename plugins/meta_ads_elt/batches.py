"""Extraction of several ad accounts or Pages in one mapped Airflow task (discovered configs).

A mapped task per account would cost a worker process start-up, a DAG parse and scheduler bookkeeping
per account: at agency scale (hundreds of accounts) that overhead, not Meta, sets the wall time. So
the DAG maps over *batches* (``mapping.accounts_per_task`` / ``pages_per_task``), and each task runs
the same operators the per-account DAG uses, one after the other per account (Insights, then the
ad-object snapshot, which reads the ids in the fresh Insights rows) and ``mapping.parallel_within_task``
accounts at a time in threads. Insights jobs are polled in the worker (``deferrable=False``): the
batch's accounts wait together, one worker slot for the batch.

Budget: every thread shares the process's governor (``meta_ads_elt.governor``), which paces calls
per account / Page scope from Meta's usage headers; an account appears in one batch per run, and the
``meta_discovered`` pool bounds the batches running at once (backfills included).

Failure: every account of a batch is attempted; the task then fails naming each account that failed
and why (the others' partitions are written). When every failure is one a retry cannot fix (token,
permission, parameter) it fails without retries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from meta_ads_elt.assets import lake_asset
from meta_ads_elt.config import PageConfig, PageDiscovery, PipelineConfig

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)


class BatchFailed(AirflowException):
    """Some accounts or Pages of a batch failed; the message names each one (retried)."""


class BatchFailedFatally(AirflowFailException):
    """Every failure of the batch needs a fix first (token, permission, config): no retry."""


def extract_accounts(config: PipelineConfig, batch: list[Mapping[str, Any]], context: Context) -> dict:
    from meta_ads_elt.operators.from_config import ad_objects_operator, insights_operator

    _pin(config)

    def one(item: Mapping[str, Any]) -> dict:
        account_id = str(item["account_id"])
        lookback = int(item.get("lookback_days") or config.lookback_days)
        insights = insights_operator(config, account_id, lookback_days=lookback, deferrable=False)
        # insights.reports' further reports (breakdowns, levels, periods), as the DAG runs them for listed accounts
        further = [
            insights_operator(config, account_id, report, lookback_days=lookback, deferrable=False)
            for report in config.insights.reports
            if not report.is_default
        ]
        objects = ad_objects_operator(config, account_id)
        loaded = insights.execute(context.copy())
        snapshot = objects.execute(context.copy())
        reports = {op.report.name: op.execute(context.copy()) for op in further}
        calls = insights.hook.calls + objects.hook.calls + sum(op.hook.calls for op in further)
        return {"insights": loaded, "ad_objects": snapshot, "reports": reports, "calls": calls}

    return _run_all(batch, "account_id", one, config.mapping.parallel_within_task)


def extract_pages(
    config: PipelineConfig, batch: list[Mapping[str, Any]], context: Context, what: str
) -> dict:
    """Leads (``what="leads"``) or conversations of each Page of the batch, with the ``pages:`` settings."""
    from meta_ads_elt.operators.from_config import conversations_operator, leads_operator

    build = leads_operator if what == "leads" else conversations_operator
    listed: dict[str, PageConfig | PageDiscovery] = {page.id: page for page in config.listed_pages}
    discovered = config.page_discovery  # the settings every discovered Page gets
    _pin(config)

    def one(item: Mapping[str, Any]) -> dict:
        page_id = str(item["page_id"])
        lookback = int(item.get("lookback_days") or config.lookback_days)
        page = listed.get(page_id, discovered)
        if page is None:
            raise ValueError(f"Page {page_id} is not in pages: and pages: has no discover: sources")
        operator = build(config, page_id, page, lookback_days=lookback)
        return operator.execute(context.copy())

    return _run_all(batch, "page_id", one, config.mapping.parallel_within_task)


def _pin(config: PipelineConfig) -> None:
    """One connection look-up in this thread for all the batch's threads (see ``pin_connection``)."""
    from meta_ads_elt.hooks.graph_api import MetaGraphApiHook

    MetaGraphApiHook.pin_connection(config.meta_conn_id)


def _run_all(
    batch: list[Mapping[str, Any]], key: str, one: Callable[[Mapping[str, Any]], Any], parallel: int
) -> dict:
    results: dict[str, Any] = {}
    failures: dict[str, BaseException] = {}

    def guarded(item: Mapping[str, Any]) -> None:
        ident = str(item[key])
        try:
            results[ident] = one(item)
        except Exception as exc:  # every item is attempted; the failures are raised together below
            log.error("%s failed: %s", ident, exc)
            failures[ident] = exc

    with ThreadPoolExecutor(
        max_workers=max(1, min(parallel, len(batch))), thread_name_prefix="batch"
    ) as pool:
        list(pool.map(guarded, batch))
    if failures:
        listed = "\n".join(
            f"  - {ident}: {type(exc).__name__}: {exc}" for ident, exc in sorted(failures.items())
        )
        message = (
            f"{len(failures)} of {len(batch)} in this batch failed ({len(results)} extracted and written):\n"
            f"{listed}"
        )
        if all(isinstance(exc, AirflowFailException) for exc in failures.values()):
            raise BatchFailedFatally(message)
        raise BatchFailed(message)
    return {"extracted": sorted(results), "results": results}


def account_outlets(lake_root: str, reports: Sequence[Any] = ()) -> list:
    further = tuple(report.dataset for report in reports if not report.is_default)
    return [
        lake_asset(lake_root, name)
        for name in (
            "insights",
            "insights_account_totals",
            "accounts",
            "campaigns",
            "adsets",
            "ads",
            *further,
        )
    ]
