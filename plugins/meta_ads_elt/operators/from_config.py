"""The extraction operators as the pipeline config asks for them: the one place that maps config keys
to operator arguments, used by the DAG file (one task per listed account / Page) and by
:mod:`meta_ads_elt.batches` (several discovered ones in one mapped task).

``task_kwargs`` are Airflow's task arguments (``pool``, ``outlets``, ``trigger_rule``...) and, for a
batch, overrides of the config's values (``deferrable=False``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from meta_ads_elt.operators.ad_objects import MetaAdObjectsOperator
from meta_ads_elt.operators.conversations import MetaConversationsOperator
from meta_ads_elt.operators.insights import MetaInsightsOperator
from meta_ads_elt.operators.leads import MetaLeadsOperator

if TYPE_CHECKING:
    from meta_ads_elt.config import PageConfig, PageDiscovery, PipelineConfig
    from meta_ads_elt.reports import ReportConfig


def _common(config: PipelineConfig) -> dict[str, Any]:
    return {
        "meta_conn_id": config.meta_conn_id,
        "lake_root": config.lake_root_resolved,
        "max_rate_limit_wait_minutes": config.max_rate_limit_wait_minutes,
    }


def insights_operator(
    config: PipelineConfig,
    account_id: str,
    report: ReportConfig | None = None,
    *,
    lookback_days: int | None = None,
    **task_kwargs: Any,
) -> MetaInsightsOperator:
    """The Insights task of one account and one report of ``insights.reports`` (None: the default ad x
    day report), task id ``insights_<account>`` or ``insights_<report>_<account>``."""
    numeric = str(account_id).removeprefix("act_")
    task_id = (
        f"insights_{numeric}" if report is None or report.is_default else f"insights_{report.name}_{numeric}"
    )
    insights = config.insights
    arguments: dict[str, Any] = {
        "task_id": task_id,
        "report": report,
        "account_id": account_id,
        **_common(config),
        "lookback_days": lookback_days or config.lookback_days,
        "attribution_windows": insights.attribution_windows,
        "chunk_days": insights.chunk_days,
        "max_concurrent_jobs": insights.max_concurrent_jobs,
        "poll_interval": insights.poll_interval_seconds,
        "stall_timeout_minutes": insights.stall_timeout_minutes,
        "queued_timeout_minutes": insights.queued_timeout_minutes,
        "effective_statuses": insights.effective_statuses,
        "deferrable": insights.deferrable,
        "worker_poll_seconds": insights.worker_poll_seconds,
    }
    return MetaInsightsOperator(**{**arguments, **task_kwargs})


def ad_objects_operator(config: PipelineConfig, account_id: str, **task_kwargs: Any) -> MetaAdObjectsOperator:
    """The ad-object snapshot task of one account, task id ``ad_objects_<account>``."""
    numeric = str(account_id).removeprefix("act_")
    return MetaAdObjectsOperator(
        task_id=f"ad_objects_{numeric}", account_id=account_id, **_common(config), **task_kwargs
    )


def leads_operator(
    config: PipelineConfig,
    page_id: str,
    page: PageConfig | PageDiscovery,
    *,
    lookback_days: int | None = None,
    **task_kwargs: Any,
) -> MetaLeadsOperator:
    """The leads task of one Page with its ``pages:`` settings ``page``, task id ``leads_<page>``."""
    return MetaLeadsOperator(
        task_id=f"leads_{page_id}",
        page_id=page_id,
        **_common(config),
        lookback_days=lookback_days or config.lookback_days,
        pii_allow_list=config.privacy.raw_lead_fields_allow_list,
        default_phone_country_code=config.privacy.default_phone_country_code,
        form_ids=getattr(page, "forms", ()),  # discovered Pages have no forms: setting (all forms)
        **task_kwargs,
    )


def conversations_operator(
    config: PipelineConfig,
    page_id: str,
    page: PageConfig | PageDiscovery,
    *,
    lookback_days: int | None = None,
    **task_kwargs: Any,
) -> MetaConversationsOperator:
    """The conversations task of one Page with its ``pages:`` settings ``page``, task id
    ``conversations_<page>``."""
    return MetaConversationsOperator(
        task_id=f"conversations_{page_id}",
        page_id=page_id,
        platforms=page.platforms,
        **_common(config),
        lookback_days=lookback_days or config.lookback_days,
        keep_message_text=config.privacy.keep_message_text,
        **task_kwargs,
    )
