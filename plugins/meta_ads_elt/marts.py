"""The marts' contract: their names (what is published, and how) and where the pieces live.

The BI marts (``MARTS``, published as tables and Parquet files), the rollups and the breakdown marts
(tables of the serving file only), the dbt project's directory, and :func:`local_path`, which resolves
a path of the pipeline (relative ones against the repository root, the directory holding
``dbt_project/``). The work is done by :mod:`meta_ads_elt.dbt_runner` (dbt build),
:mod:`meta_ads_elt.publish` (the publish step) and :mod:`meta_ads_elt.run_summary` (the run summary).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"


MARTS: tuple[str, ...] = (
    "cost_per_lead",
    "conversations_started",
    "conversations_started_by_page",
    "lead_reconciliation",
    "leads_by_page",
    "extraction_coverage",
)
"""The BI contract (DESIGN.md, issue 5): published as tables and as Parquet files."""


ROLLUPS: tuple[str, ...] = ("cost_per_lead_by_campaign", "cost_per_lead_by_account")
"""Convenience rollups (views in the build file), published as tables in the serving file only."""


BREAKDOWN_MARTS: tuple[str, ...] = (
    "cost_per_lead_by_placement",
    "cost_per_lead_by_age_gender",
    "cost_per_lead_by_country",
)
"""Cost per lead by breakdown (the presets of insights.reports), published as tables in the serving file."""


def local_path(path: str | os.PathLike[str] | None, env: str, default: Path) -> Path:
    """``path``, else the environment variable ``env``, else ``default``: absolute and resolved, relative
    paths against the repository root."""
    if path is None:
        path = os.environ.get(env) or default
    resolved = Path(path).expanduser()
    if not resolved.is_absolute():
        resolved = REPO_ROOT / resolved
    return resolved.resolve()
