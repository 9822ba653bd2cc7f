"""Helpers shared by the extraction tests that run against the sandbox: the Connection, the sandbox's
day, and reading a lake dataset back with its hive partition columns."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
from meta_ads_elt import governor
from meta_ads_elt.schemas import PARTITION_KEYS

USER_TOKEN = "sandbox-token"


def use_connection(monkeypatch, sandbox, token: str = USER_TOKEN) -> None:
    conn = {
        "conn_type": "meta_graph_api",
        "password": token,
        "extra": {"base_url": sandbox.url, "app_id": sandbox.app_id, "app_secret": sandbox.app_secret},
    }
    monkeypatch.setenv("AIRFLOW_CONN_META_DEFAULT", json.dumps(conn))


def calm_governor_in(monkeypatch) -> None:
    """Swap in a fresh governor that never pauses on usage percentages (regain times and errors still
    count): for tests about what is extracted, not about pacing. The process-wide governor lives as
    long as pytest, so one test's usage readings (or the 24 h block that Meta's regain time rightly
    imposes after the lead-budget test) would otherwise pace the next."""
    monkeypatch.setattr(governor, "_governor", governor.RateLimitGovernor(slow_from=101, pause_at=101))


def today(sandbox) -> dt.date:
    """The sandbox clock's UTC date: the data interval day whose window reaches "now"."""
    return dt.datetime.fromisoformat(sandbox.now()).astimezone(dt.UTC).date()


def read(lake: Path, dataset: str) -> pa.Table:
    """A lake dataset with its partition columns (as strings), as the extractors wrote it."""
    keys = PARTITION_KEYS[dataset]
    part = pads.partitioning(pa.schema([(key, pa.string()) for key in keys]), flavor="hive")
    return pads.dataset(str(lake / dataset), format="parquet", partitioning=part).to_table()


def sorted_rows(table: pa.Table) -> list[dict]:
    rows = [{k: v for k, v in r.items() if k != "_extracted_at"} for r in table.to_pylist()]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))
