"""Daily Meta ads pipeline: extract Insights, ad objects, leads and conversations; build and publish the marts.

Read top to bottom, this file is the pipeline. It does no work at parse time beyond reading the
validated config file (``include/pipeline.yaml``, a local file): no network, no database, no Variables.
"""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import CronDataIntervalTimetable, TaskGroup, TriggerRule, dag, get_current_context, task
from meta_ads_elt.assets import lake_asset, mart_assets
from meta_ads_elt.batches import account_outlets
from meta_ads_elt.callbacks import log_failed_try, log_retried_try
from meta_ads_elt.config import load_config_cached
from meta_ads_elt.failures import scope_of
from meta_ads_elt.operators.from_config import (
    ad_objects_operator,
    conversations_operator,
    insights_operator,
    leads_operator,
)
from meta_ads_elt.pools import DISCOVERED_POOL, DUCKDB_WRITER_POOL, account_pool, page_pool

config = load_config_cached()
lake_root = config.lake_root_resolved

DOC = """
### Meta ads daily

For the data interval's UTC day **D** (by default the run at D+1 12:00 UTC covers D: by then day D is
over in every time zone, so the newest day is complete for every account; a day still going on when
extracted is marked `partial` in the marts):

0. **Access check**: the token's permissions (`/me/permissions`) and, per Page, its tasks and what
   the Page edges answer; a missing permission or another Page's token fails the run here, before any
   budget is spent, with every problem named; a problem of one Page only is logged and that Page left out.
1. **Insights** per ad account: async report runs at ad level, for ads of every status (archived and
   deleted included), re-pull the account-local dates `[D - lookback + 1, D]` (restated conversions are
   replaced) with the account totals that check them; then the ad-object snapshot (deleted objects
   found in those rows are read by id).
2. **Leads** per Page: forms, then leads created in `[D - lookback + 1, D + 1)` UTC; PII hashed.
3. **Conversations** per Page and platform: conversations updated since the window start and
   their reachable messages (a snapshot partition for D).
4. **dbt build** of the marts into the build file, then **publish**: an atomic swap of
   `data/marts.duckdb` plus Parquet copies under `data/marts/`, so BI readers never see a half state.
5. **check_extractions**: fails the run when an account, Page or day could not be extracted, or when the
   marts were not published.

**Failure isolation**: an extraction that fails for good (a lost permission, a disabled account, a removed
Page, a day Meta cannot build) does not stop the others; the marts build and publish with everything else,
the failed ones are listed in the serving file's `_published_failures` (with the reason and the command
that fills the gap) and their earlier data stays as it was; `check_extractions` then fails the run, so it
is not green (`meta_ads_elt.failures`).

Every task replaces exactly its partitions: a rerun or backfill of any day is idempotent.
Pools: one per ad account and per Page (API budget), one slot for the DuckDB writer.

With `accounts: {discover: [...]}` / `pages: {discover: [...]}` a **discover** task resolves them on
each run (lake datasets `discovered_accounts` / `discovered_pages`) and the extraction is mapped over
batches of the ids found (`mapping.*`; meta_ads_elt.discovery, meta_ads_elt.batches).
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
        # A backfill runs max_active_runs days at once against the same account budgets: throttles and
        # Airflow's deferral race (apache/airflow#66374) can each cost a try. 5 retries, each delay about
        # doubling (1-2, 2-4, 4-8, 8-15, 15 min: ~30-45 min in all). Airflow 3.3's backoff is a
        # multiplier: `True` would mean 1.0, a constant 1-minute delay.
        "retries": 5,
        "retry_delay": pendulum.duration(minutes=1),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": pendulum.duration(minutes=15),
        "on_retry_callback": log_retried_try,
        "on_failure_callback": log_failed_try,
        # Every task ends in bounded time (deferral included): a stuck Meta job or a long rate-limit wait
        # never holds a slot silently.
        "execution_timeout": pendulum.duration(minutes=config.execution_timeout_minutes),
    },
)
def meta_ads_daily():
    @task(retries=2)
    def access_check() -> dict:
        """Fail fast when the token cannot read what the config asks for (meta_ads_elt.access)."""
        from meta_ads_elt.access import check_config

        return check_config(config)

    checked = access_check()
    extracted: list = []
    scopes: dict[str, tuple[str, str]] = {}  # task id -> (kind, entity), for failures without a record

    discovered = None
    if config.accounts_discovered or config.pages_discovered:

        @task(
            retries=2,
            outlets=[lake_asset(lake_root, "discovered_accounts"), lake_asset(lake_root, "discovered_pages")],
        )
        def discover(data_interval_start=None, run_id=None) -> dict:
            """Resolve the discover: sources (meta_ads_elt.discovery); batches for the mapped tasks."""
            from meta_ads_elt.discovery import batches, discover
            from meta_ads_elt.hooks.graph_api import MetaGraphApiHook

            hook = MetaGraphApiHook(
                config.meta_conn_id, max_wait_seconds=config.max_rate_limit_wait_minutes * 60
            )
            found = discover(hook, config, data_interval_start.date(), run_id or "manual").summary()
            found["account_batches"] = batches(found["accounts"], config.mapping.accounts_per_task)
            found["page_batches"] = batches(found["pages"], config.mapping.pages_per_task)
            found["calls"] = hook.calls
            return found

        @task
        def account_batches(found: dict) -> list[list[dict]]:
            return found["account_batches"]

        @task
        def page_batches(found: dict) -> list[list[dict]]:
            return found["page_batches"]

        discovered = discover()
        checked >> discovered
        batches_of = {
            "accounts": account_batches(discovered) if config.accounts_discovered else None,
            "pages": page_batches(discovered) if config.pages_discovered else None,
        }

    @task(pool=DISCOVERED_POOL, retries=3)
    def extract_accounts(batch: list[dict], **context) -> dict:
        """Insights, then the ad-object snapshot, of each discovered account of the batch."""
        from meta_ads_elt.batches import extract_accounts as run

        return run(config, batch, context)

    @task(pool=DISCOVERED_POOL, retries=3)
    def extract_leads(batch: list[dict], **context) -> dict:
        from meta_ads_elt.batches import extract_pages

        return extract_pages(config, batch, context, "leads")

    @task(pool=DISCOVERED_POOL, retries=3)
    def extract_conversations(batch: list[dict], **context) -> dict:
        from meta_ads_elt.batches import extract_pages

        return extract_pages(config, batch, context, "conversations")

    with TaskGroup("insights") as insights_group:
        if config.accounts_discovered:
            extract_accounts.override(outlets=account_outlets(lake_root, config.insights.reports)).expand(
                batch=batches_of["accounts"]
            )
        for account in config.listed_accounts:
            pool = account_pool(account.id)
            insights = insights_operator(
                config,
                account.id,
                pool=pool,
                outlets=[lake_asset(lake_root, "insights"), lake_asset(lake_root, "insights_account_totals")],
            )
            objects = ad_objects_operator(
                config,
                account.id,
                pool=pool,
                outlets=[lake_asset(lake_root, name) for name in ("accounts", "campaigns", "adsets", "ads")],
                # Also after an Insights task that gave up some days (or failed): the snapshot then reads
                # the ids of deleted objects from what the lake has. Not when the access check failed.
                trigger_rule=TriggerRule.ALL_DONE_MIN_ONE_SUCCESS,
            )
            insights >> objects  # the snapshot reads the ids of deleted objects from the fresh Insights rows
            checked >> objects
            for report in config.insights.reports:
                if report.is_default:
                    continue
                # Each further report of insights.reports (breakdowns, levels, periods): its own async
                # jobs and its own dataset insights_<report>, checked against the account totals in dbt.
                insights_operator(
                    config, account.id, report, pool=pool, outlets=[lake_asset(lake_root, report.dataset)]
                )
    extracted.append(insights_group)

    # Per Page: a leads task and a conversations task (or, for discovered Pages, mapped batches of them).
    page_extractions = {
        "leads": (config.extracts_leads, extract_leads, leads_operator, ("leads", "lead_answers")),
        "conversations": (
            config.extracts_conversations,
            extract_conversations,
            conversations_operator,
            ("conversations", "messages"),
        ),
    }
    for kind, (wanted, extract_batch, page_operator, datasets) in page_extractions.items():
        if not wanted:
            continue
        with TaskGroup(kind) as page_group:
            if config.pages_discovered:
                extract_batch.override(outlets=[lake_asset(lake_root, name) for name in datasets]).expand(
                    batch=batches_of["pages"]
                )
            for page in config.listed_pages:
                if getattr(page, kind):  # pages[].leads / pages[].conversations
                    page_operator(
                        config,
                        page.id,
                        page,
                        pool=page_pool(page.id),
                        outlets=[lake_asset(lake_root, name) for name in datasets],
                    )
        extracted.append(page_group)

    # Runs when every extraction is done and one succeeded: a failed account or Page does not hold back
    # the marts of the others (their earlier data stays in the lake as it was). `all_done` and a gate, not
    # `all_done_min_one_success`, which skips the build when a mapped extraction had nothing to map.
    scopes.update({t.task_id: scope_of(t) for group in extracted for t in group.children.values()})

    @task(pool=DUCKDB_WRITER_POOL, retries=1, trigger_rule=TriggerRule.ALL_DONE)
    def dbt_build(data_interval_start=None, ti=None) -> dict:
        """One `dbt build` (models + tests) into the build file; the pool keeps DuckDB to one writer.

        Incremental marts re-process the lookback window ending with this run's day, so a backfilled
        day rebuilds its own window, not the newest one.
        """
        from meta_ads_elt.dbt_runner import dbt_target_dir, run_dbt_build
        from meta_ads_elt.failures import require_a_successful_extraction

        require_a_successful_extraction(ti, scopes)

        build_path = Path(config.resolve(config.marts.build_path))
        lookback_days = config.lookback_days
        if (
            discovered is not None
        ):  # an account or Page seen for the first time: rebuild over its whole history
            found = ti.xcom_pull(task_ids="discover") or {}
            lookback_days = max(
                [
                    lookback_days,
                    *(
                        item["lookback_days"] or 0
                        for kind in ("accounts", "pages")
                        for item in found.get(kind, [])
                    ),
                ]
            )
        return run_dbt_build(
            lake_root=lake_root,
            build_path=build_path,
            window_end=data_interval_start.date().isoformat(),
            lookback_days=lookback_days,
            reporting_currency=config.marts.reporting_currency,
            fx_rates_path=config.resolve(config.marts.fx_rates_path) if config.marts.fx_rates_path else None,
            coverage_start_date=config.marts.coverage_start_date,
            # dbt's artifacts and logs beside the build file: one deployment's, never the project checkout's
            target_path=dbt_target_dir(build_path),
            log_path=build_path.parent / "dbt_logs",
            # dbt sources and staging models for the configured Insights reports (meta_ads_elt.dbt_contract)
            reports=config.insights.reports,
        )

    @task(pool=DUCKDB_WRITER_POOL, retries=2, outlets=mart_assets(config.resolve(config.marts.serving_path)))
    def publish(build: dict) -> dict:
        """Atomically swap in the serving DuckDB file and the Parquet copies BI tools read (only the
        dates whose rows changed are copied), with the extractions still failed (`_published_failures`)."""
        from meta_ads_elt.failures import reconcile_failures
        from meta_ads_elt.publish import publish_marts

        open_failures = reconcile_failures(lake_root, _run_outcome())
        return publish_marts(
            build,
            serving_path=config.resolve(config.marts.serving_path),
            parquet_dir=config.resolve(config.marts.parquet_dir),
            retain_minutes=config.marts.parquet_retention_minutes,
            failures=open_failures,
        )

    @task(
        retries=1, trigger_rule=TriggerRule.ALL_DONE
    )  # its own verdict is not retried (AirflowFailException)
    def check_extractions() -> None:
        """Fail the run (after the publish) when an extraction of it failed, naming each and its fix, or when
        the marts were not published."""
        from meta_ads_elt.failures import check_run

        check_run(_run_outcome())

    def _run_outcome():
        from meta_ads_elt.failures import run_outcome, task_states

        context = get_current_context()
        return run_outcome(
            lake_root=lake_root,
            dag_id=context["ti"].dag_id,
            run_id=context["ti"].run_id,
            day=context["data_interval_start"].date(),
            lookback_days=config.lookback_days,
            states=task_states(context),
            scopes=scopes,
        )

    built = dbt_build()
    (discovered if discovered is not None else checked) >> extracted
    extracted >> built
    publish(built) >> check_extractions()


meta_ads_daily()
