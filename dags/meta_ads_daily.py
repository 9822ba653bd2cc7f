"""Daily Meta ads pipeline: extract Insights, ad objects, leads and conversations; build and publish the marts.

Read top to bottom, this file is the pipeline. It does no work at parse time beyond reading the
validated config file (``include/pipeline.yaml``, a local file): no network, no database, no Variables.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronDataIntervalTimetable, TaskGroup, dag, task
from meta_ads_elt.assets import lake_asset, mart_assets
from meta_ads_elt.config import load_config_cached
from meta_ads_elt.operators.ad_objects import MetaAdObjectsOperator
from meta_ads_elt.operators.conversations import MetaConversationsOperator
from meta_ads_elt.operators.insights import MetaInsightsOperator
from meta_ads_elt.operators.leads import MetaLeadsOperator
from meta_ads_elt.pools import DUCKDB_WRITER_POOL, account_pool, page_pool

config = load_config_cached()
lake_root = config.lake_root_resolved

DOC = """
### Meta ads daily

For the data interval's UTC day **D** (the run at D+1 00:00 UTC covers D):

1. **Insights** per ad account: async report runs at ad level re-pull the account-local dates
   `[D - lookback + 1, D]` (restated conversions are replaced), and ad-object snapshots.
2. **Leads** per Page: forms, then leads created in `[D - lookback + 1, D + 1)` UTC; PII hashed.
3. **Conversations** per Page and platform: conversations updated since the window start and
   their reachable messages (a snapshot partition for D).
4. **dbt build** of the marts into the build file, then **publish**: an atomic swap of
   `data/marts.duckdb` plus Parquet copies under `data/marts/`, so BI readers never see a half state.

Every task replaces exactly its partitions: a rerun or backfill of any day is idempotent.
Pools: one per ad account and per Page (API budget), one slot for the DuckDB writer.
"""


@dag(
    dag_id="meta_ads_daily",
    schedule=CronDataIntervalTimetable(config.schedule, timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=config.max_active_runs,
    doc_md=DOC,
    tags=["meta", "insights", "leads", "conversations", "dbt"],
    default_args={
        "retries": 3,
        "retry_delay": pendulum.duration(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": pendulum.duration(minutes=15),
    },
)
def meta_ads_daily():
    extracted: list = []

    with TaskGroup("insights") as insights_group:
        for account in config.accounts:
            objects = MetaAdObjectsOperator(
                task_id=f"ad_objects_{account.numeric_id}",
                account_id=account.id,
                meta_conn_id=config.meta_conn_id,
                lake_root=lake_root,
                pool=account_pool(account.id),
                outlets=[lake_asset(lake_root, name) for name in ("accounts", "campaigns", "adsets", "ads")],
            )
            insights = MetaInsightsOperator(
                task_id=f"insights_{account.numeric_id}",
                account_id=account.id,
                meta_conn_id=config.meta_conn_id,
                lake_root=lake_root,
                lookback_days=config.lookback_days,
                attribution_windows=config.insights.attribution_windows,
                chunk_days=config.insights.chunk_days,
                max_concurrent_jobs=config.insights.max_concurrent_jobs,
                poll_interval=config.insights.poll_interval_seconds,
                stall_timeout_minutes=config.insights.stall_timeout_minutes,
                deferrable=config.insights.deferrable,
                pool=account_pool(account.id),
                outlets=[lake_asset(lake_root, "insights")],
            )
            objects >> insights
    extracted.append(insights_group)

    if any(page.leads for page in config.pages):
        with TaskGroup("leads") as leads_group:
            for page in config.pages:
                if page.leads:
                    MetaLeadsOperator(
                        task_id=f"leads_{page.id}",
                        page_id=page.id,
                        meta_conn_id=config.meta_conn_id,
                        lake_root=lake_root,
                        lookback_days=config.lookback_days,
                        pii_allow_list=config.privacy.raw_lead_fields_allow_list,
                        default_phone_country_code=config.privacy.default_phone_country_code,
                        pool=page_pool(page.id),
                        outlets=[lake_asset(lake_root, "leads"), lake_asset(lake_root, "lead_answers")],
                    )
        extracted.append(leads_group)

    if any(page.conversations for page in config.pages):
        with TaskGroup("conversations") as conversations_group:
            for page in config.pages:
                if page.conversations:
                    MetaConversationsOperator(
                        task_id=f"conversations_{page.id}",
                        page_id=page.id,
                        platforms=page.platforms,
                        meta_conn_id=config.meta_conn_id,
                        lake_root=lake_root,
                        lookback_days=config.lookback_days,
                        keep_message_text=config.privacy.keep_message_text,
                        pool=page_pool(page.id),
                        outlets=[lake_asset(lake_root, "conversations"), lake_asset(lake_root, "messages")],
                    )
        extracted.append(conversations_group)

    @task(pool=DUCKDB_WRITER_POOL, retries=1)
    def dbt_build(data_interval_start=None) -> dict:
        """One `dbt build` (models + tests) into the build file; the pool keeps DuckDB to one writer.

        Incremental marts re-process the lookback window ending with this run's day, so a backfilled
        day rebuilds its own window, not the newest one.
        """
        from meta_ads_elt.marts import run_dbt_build

        return run_dbt_build(
            lake_root=lake_root,
            build_path=config.resolve(config.marts.build_path),
            window_end=data_interval_start.date().isoformat(),
            lookback_days=config.lookback_days,
        )

    @task(pool=DUCKDB_WRITER_POOL, retries=2, outlets=mart_assets(config.resolve(config.marts.serving_path)))
    def publish(build: dict) -> dict:
        """Atomically swap in the serving DuckDB file and the Parquet copies BI tools read (only the
        dates whose rows changed are copied)."""
        from meta_ads_elt.marts import publish_marts

        return publish_marts(
            build,
            serving_path=config.resolve(config.marts.serving_path),
            parquet_dir=config.resolve(config.marts.parquet_dir),
            retain_minutes=config.marts.parquet_retention_minutes,
        )

    built = dbt_build()
    extracted >> built
    publish(built)


meta_ads_daily()
