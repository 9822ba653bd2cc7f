"""The project's overrides of dbt's own macros are pinned to the originals they were copied from.

Each file of ``dbt_project/macros/overrides/`` replaces a macro of the installed dbt-duckdb or dbt-core.
Its difference from that original is committed beside it (``<file>.diff``, a unified diff). When an
upgrade changes the original, the difference changes and this test fails naming the file: re-apply
the override's marked changes to the new original (or drop the override if the upgrade made it
unnecessary), then rewrite the ``.diff`` with ``META_WRITE_OVERRIDE_DIFFS=1`` and review it.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import os
from pathlib import Path

import dbt.include.duckdb
import dbt.include.global_project
import pytest
from meta_ads_elt.marts import DBT_PROJECT_DIR

OVERRIDES_DIR = DBT_PROJECT_DIR / "macros" / "overrides"
ORIGINALS = {
    # override file -> (distribution, the original it replaces)
    "incremental.sql": (
        "dbt-duckdb",
        Path(dbt.include.duckdb.__path__[0]) / "macros" / "materializations" / "incremental.sql",
    ),
    "where_subquery.sql": (
        "dbt-core",
        Path(dbt.include.global_project.__path__[0])
        / "macros"
        / "materializations"
        / "tests"
        / "where_subquery.sql",
    ),
}


def difference(original: Path, override: Path) -> str:
    return "".join(
        difflib.unified_diff(
            original.read_text().splitlines(keepends=True),
            override.read_text().splitlines(keepends=True),
            fromfile=f"original/{original.name}",
            tofile=f"overrides/{override.name}",
        )
    )


def test_every_override_is_pinned_to_an_original():
    overrides = {p.name for p in OVERRIDES_DIR.glob("*.sql")}
    assert overrides == set(ORIGINALS), "each file of macros/overrides/ needs its original in ORIGINALS"
    readme = (OVERRIDES_DIR / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in overrides), "each override needs its line in README.md"


@pytest.mark.parametrize("name", sorted(ORIGINALS))
def test_override_differs_from_the_installed_original_only_by_its_committed_changes(name: str):
    distribution, original = ORIGINALS[name]
    override = OVERRIDES_DIR / name
    pinned = OVERRIDES_DIR / f"{name}.diff"
    assert original.is_file(), (
        f"dbt_project/macros/overrides/{name} overrides {original}, which {distribution} "
        f"{importlib.metadata.version(distribution)} no longer ships: find where the macro went, "
        "then re-apply the override or remove it"
    )
    actual = difference(original, override)
    if os.environ.get("META_WRITE_OVERRIDE_DIFFS") == "1":
        pinned.write_text(actual)
    assert actual == pinned.read_text(), (
        f"dbt_project/macros/overrides/{name} no longer differs from {distribution} "
        f"{importlib.metadata.version(distribution)}'s {original.name} by the changes pinned in "
        f"dbt_project/macros/overrides/{name}.diff: the original changed (an upgrade) or the override "
        "was edited. Re-apply the override's marked changes to the new original, then run "
        "META_WRITE_OVERRIDE_DIFFS=1 .venv/bin/python -m pytest tests/dbt/test_dbt_overrides.py "
        f"and review the new .diff. Difference now:\n{actual}"
    )
