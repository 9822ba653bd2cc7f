"""The lake contract is declared once (plugins/meta_ads_elt/schemas.py): dbt's sources, the columns of
its empty relations and the reports' staging models are generated from it (meta_ads_elt.dbt_contract),
and a breakdown relation is never combined with the ad-level fact."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from meta_ads_elt import dbt_contract
from meta_ads_elt.config import load_config
from meta_ads_elt.marts import BREAKDOWN_MARTS, DBT_PROJECT_DIR
from meta_ads_elt.reports import PRESETS, ReportConfig, preset
from meta_ads_elt.schemas import DATASETS, DISCOVERY_DATASETS, PARTITION_KEYS, lake_datasets


def test_the_committed_dbt_files_are_generated_from_the_declaration_and_the_shipped_config():
    stale = dbt_contract.differences(DBT_PROJECT_DIR, load_config().insights.reports)
    assert not stale, f"run `python -m meta_ads_elt.dbt_contract`: {stale}"


def test_every_dataset_is_a_source_with_its_columns_and_partitions():
    sources = yaml.safe_load((DBT_PROJECT_DIR / dbt_contract.SOURCES_PATH).read_text())["sources"][0][
        "tables"
    ]
    by_name = {t["name"]: t["config"]["meta"] for t in sources}
    read_by_dbt = {name: schema for name, schema in DATASETS.items() if name not in DISCOVERY_DATASETS}
    assert set(by_name) == set(read_by_dbt) | {f"insights_{name}" for name in PRESETS}
    for dataset, schema in read_by_dbt.items():
        columns = [name for name, _type in by_name[dataset]["lake_columns"]]
        assert columns == [*schema.names, *PARTITION_KEYS[dataset]], dataset
        assert all(f"{k}=*" in by_name[dataset]["lake_glob"] for k in PARTITION_KEYS[dataset])
    placement = [
        c for c in by_name["insights_by_placement"]["lake_columns"] if c[0] in ("publisher_platform", "spend")
    ]
    assert placement == [["spend", "decimal(18,6)"], ["publisher_platform", "varchar"]]


def test_the_empty_relations_have_no_hand_written_column_lists():
    macro = (DBT_PROJECT_DIR / "macros" / "meta_lake.sql").read_text()
    assert "lake_columns" in macro and "'insights': [" not in macro


def test_adding_a_report_is_one_generated_source_model_and_test(tmp_path: Path):
    region = ReportConfig(name="by_region", breakdowns=("region",))
    reports = [ReportConfig(name="default"), preset("by_country"), region]
    files = dbt_contract.render(reports)
    assert dbt_contract.REPORTS_DIR / "stg_meta__insights_by_region.sql" in files
    sql = files[dbt_contract.REPORTS_DIR / "stg_meta__insights_by_region.sql"]
    # one call of the shared macro, which reads the columns from the source's meta.lake_columns
    call = [line for line in sql.splitlines() if not line.startswith("--")]
    assert call == [
        "{{ meta_report_staging(",
        "    'insights_by_region',",
        "    primary_key=['account_id', 'date', 'ad_id', 'region'],",
        ") }}",
    ]
    sources = yaml.safe_load(files[dbt_contract.SOURCES_PATH])["sources"][0]["tables"]
    region_source = next(t for t in sources if t["name"] == "insights_by_region")["config"]["meta"]
    assert ["region", "varchar"] in region_source["lake_columns"]
    assert region_source["lake_glob"] == "insights_by_region/account_id=*/date=*/*.parquet"
    models = yaml.safe_load(files[dbt_contract.REPORTS_DIR / "_reports__models.yml"])["models"]
    mine = next(m for m in models if m["name"] == "stg_meta__insights_by_region")
    assert {"meta_report_sums_to_account_totals": {"arguments": {"report": "by_region"}}} in mine[
        "data_tests"
    ]
    assert "insights_by_region" in lake_datasets(reports)
    # every preset keeps its staging model whether configured or not (the breakdown marts read them)
    assert {f"stg_meta__insights_{p}.sql" for p in PRESETS} <= {p.name for p in files}
    # write() brings a copy of the project in line, and removes what no report needs any more
    project = tmp_path / "dbt_project"
    (project / dbt_contract.REPORTS_DIR).mkdir(parents=True)
    (project / dbt_contract.REPORTS_DIR / "stg_meta__insights_gone.sql").write_text("select 1")
    written = dbt_contract.write(project, reports)
    assert str(dbt_contract.REPORTS_DIR / "stg_meta__insights_gone.sql") in written
    assert not dbt_contract.differences(project, reports)


FACT = {
    "stg_meta__insights",
    "int_insights_deduplicated",
    "int_insights_ad_daily",
    "cost_per_lead",
    "cost_per_lead_by_campaign",
    "cost_per_lead_by_account",
}


def test_a_breakdown_relation_is_never_combined_with_the_ad_level_fact():
    """Rows by breakdown value and ad-level rows sum to the same spend: a model reading both (a union,
    a join that repeats ad-level rows per value) would double-count. Only tests may compare them."""
    breakdown = {f"stg_meta__insights_{name}" for name in PRESETS} | set(BREAKDOWN_MARTS)
    macros = {path.stem: path.read_text() for path in (DBT_PROJECT_DIR / "macros").glob("*.sql")}
    for path in (DBT_PROJECT_DIR / "models").rglob("*.sql"):
        text = path.read_text()
        for name, body in macros.items():  # a model that calls a macro reads what the macro reads
            if re.search(rf"\b{name}\(", text):
                text += body
        named = set(re.findall(r"['\"](\w+)['\"]", text))
        assert not (named & breakdown and named & FACT), (
            f"{path.name} reads {named & breakdown} and {named & FACT}"
        )
        if named & breakdown:
            assert not re.search(r"\bunion\b", text, re.IGNORECASE), (
                f"{path.name} unions a breakdown relation"
            )


def test_a_build_for_other_reports_uses_a_copy_of_the_project_and_never_writes_the_project(tmp_path: Path):
    shipped = load_config().insights.reports
    copy_dir = tmp_path / "build" / "dbt_project"
    assert dbt_contract.project_for(DBT_PROJECT_DIR, shipped, copy_dir) == DBT_PROJECT_DIR
    assert not copy_dir.exists()
    before = {p: p.read_text() for p in (DBT_PROJECT_DIR / "models").rglob("*") if p.is_file()}
    reports = [*shipped, ReportConfig(name="by_region", breakdowns=("region",))]
    (copy_dir / "leftover").mkdir(parents=True)  # a previous build's copy is replaced, not merged
    assert dbt_contract.project_for(DBT_PROJECT_DIR, reports, copy_dir) == copy_dir
    assert not (copy_dir / "leftover").exists()
    assert not dbt_contract.differences(copy_dir, reports)
    assert (copy_dir / dbt_contract.REPORTS_DIR / "stg_meta__insights_by_region.sql").is_file()
    assert (copy_dir / "dbt_project.yml").is_file() and (copy_dir / "macros" / "overrides").is_dir()
    after = {p: p.read_text() for p in (DBT_PROJECT_DIR / "models").rglob("*") if p.is_file()}
    assert after == before
