"""Airflow pool names, declared once: the DAG assigns them, `make run` and docker-compose create them.

- One pool per ad account (``meta_account_<id>``) so backfill runs share that account's API budget.
- One pool per Page (``meta_page_<id>``) for the lead-retrieval and messaging budgets.
- ``meta_discovered`` (discovered configs): bounds the mapped batch tasks running at once.
- ``duckdb_writer`` with one slot: DuckDB allows a single writer process per file.
"""

from __future__ import annotations

from meta_ads_elt.config import PipelineConfig

DUCKDB_WRITER_POOL = "duckdb_writer"
ACCOUNT_POOL_SLOTS = 2
PAGE_POOL_SLOTS = 2
DISCOVERED_POOL = "meta_discovered"
DISCOVERED_POOL_SLOTS = 4


def account_pool(account_id: str) -> str:
    return f"meta_account_{account_id.removeprefix('act_')}"


def page_pool(page_id: str) -> str:
    return f"meta_page_{page_id}"


def pools_for(config: PipelineConfig) -> dict[str, tuple[int, str]]:
    """Every pool the DAG uses: name -> (slots, description)."""
    pools = {DUCKDB_WRITER_POOL: (1, "One DuckDB writer at a time (dbt build and publish)")}
    if config.accounts_discovered or config.pages_discovered:
        pools[DISCOVERED_POOL] = (
            DISCOVERED_POOL_SLOTS,
            "Mapped extraction batches of discovered accounts/Pages",
        )
    for account in config.listed_accounts:
        pools[account_pool(account.id)] = (ACCOUNT_POOL_SLOTS, f"Graph API budget of ad account {account.id}")
    for page in config.listed_pages:
        pools[page_pool(page.id)] = (PAGE_POOL_SLOTS, f"Lead retrieval / messaging budget of Page {page.id}")
    return pools


def pools_import_document(config: PipelineConfig) -> dict[str, dict]:
    """The pools in the JSON shape `airflow pools import` reads."""
    return {
        name: {"slots": slots, "description": description, "include_deferred": False}
        for name, (slots, description) in pools_for(config).items()
    }
