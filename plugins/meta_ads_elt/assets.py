"""Airflow Assets for the lake datasets and the marts, named once so every DAG agrees on them."""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import Asset

MART_NAMES = (
    "cost_per_lead",
    "conversations_started",
    "conversations_started_by_page",
    "lead_reconciliation",
)


def _uri(location: str) -> str:
    return location if "://" in location else Path(location).resolve().as_uri()


def lake_asset(lake_root: str, dataset: str) -> Asset:
    """The lake dataset ``<lake_root>/<dataset>`` (e.g. ``insights``) as an Asset."""
    return Asset(name=f"meta_lake_{dataset}", uri=f"{_uri(lake_root).rstrip('/')}/{dataset}")


def mart_assets(serving_path: str) -> list[Asset]:
    """One Asset per published mart: ``duckdb://<serving file>/main/<mart>`` (the namespace Cosmos uses)."""
    path = serving_path if "://" in serving_path else str(Path(serving_path).resolve())
    return [Asset(name=f"meta_mart_{name}", uri=f"duckdb://{path}/main/{name}") for name in MART_NAMES]
