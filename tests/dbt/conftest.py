"""Fixtures for the dbt tests: hand-written scenario lakes, generated lakes, and dbt builds into tmp dirs.

Every build gets its own DuckDB file, target and log directories, so these tests never touch
``data/`` nor ``dbt_project/target`` and can run beside other work in the repository.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from meta_ads_elt import dbt_runner, marts, schemas

from bench.lake_generator import generate_lake, write_rows

UTC = dt.UTC


def ts(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def d(value: str) -> dt.date:
    return dt.date.fromisoformat(value)


def action(action_type: str, value: int | str) -> dict[str, Any]:
    v = Decimal(str(value))
    return {
        "action_type": action_type,
        "value": v,
        "1d_click": v,
        "7d_click": v,
        "28d_click": v,
        "1d_view": Decimal(0),
    }


class Build:
    """One dbt project build (DuckDB file + target/log dirs) over one lake."""

    def __init__(self, root: Path, lake: Path) -> None:
        self.root = root
        self.lake = lake
        self.db = root / "build" / "marts_build.duckdb"
        self.target = root / "target"
        self.logs = root / "logs"

    def build(self, **kwargs: Any) -> dict[str, Any]:
        return dbt_runner.run_dbt_build(
            lake_root=self.lake,
            build_db_path=self.db,
            target_path=self.target,
            log_path=self.logs,
            threads=2,
            timeout=600,
            **kwargs,
        )

    def dbt(self, *args: str) -> Any:
        return dbt_runner.run_dbt(
            list(args),
            lake_root=self.lake,
            build_db_path=self.db,
            target_path=self.target,
            log_path=self.logs,
            timeout=600,
        )

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        con = duckdb.connect(str(self.db), read_only=True)
        try:
            con.execute("set TimeZone = 'UTC'")
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()


# --- the scenario lake: two accounts at UTC-8 (America/Los_Angeles) and UTC+5:30 (Asia/Kolkata) ---

E1 = ts("2026-11-03T06:00:00Z")
E2 = ts("2026-11-04T06:00:00Z")


def marts_snapshot(build: Build) -> dict[str, list[tuple]]:
    """Every mart's rows, sorted (``as_of``, the build time, left out where a mart has it)."""
    return {
        m: build.query(f"select * exclude (as_of) from {m} order by all")
        if m in ("cost_per_lead", "conversations_started")
        else build.query(f"select * from {m} order by all")
        for m in marts.MARTS
    }


def write_scenario_lake(lake: Path) -> None:
    """A small world whose expected marts are computed by hand in the tests (no lead_answers or breakdown reports)."""
    write_rows(
        lake,
        "accounts",
        [
            {
                "account_id": "1001",
                "name": "LA",
                "currency": "USD",
                "timezone_name": "America/Los_Angeles",
                "timezone_offset_hours_utc": -8.0,
                "promoted_page_ids": ["P1"],
                "_extracted_at": E2,
            },
            {
                "account_id": "1002",
                "name": "Kolkata",
                "currency": "INR",
                "timezone_name": "Asia/Kolkata",
                "timezone_offset_hours_utc": 5.5,
                "promoted_page_ids": ["P2"],
                "_extracted_at": E2,
            },
        ],
    )
    write_rows(
        lake,
        "campaigns",
        [
            {"account_id": "1001", "campaign_id": "C1", "name": "Campaign 1", "_extracted_at": E2},
            {"account_id": "1002", "campaign_id": "C2", "name": "Campaign 2", "_extracted_at": E2},
        ],
    )
    write_rows(
        lake,
        "adsets",
        [
            {
                "account_id": "1001",
                "adset_id": "S1",
                "campaign_id": "C1",
                "name": "Ad set 1",
                "_extracted_at": E2,
            },
            {
                "account_id": "1002",
                "adset_id": "S2",
                "campaign_id": "C2",
                "name": "Ad set 2",
                "_extracted_at": E2,
            },
        ],
    )
    write_rows(
        lake,
        "ads",
        [
            {
                "account_id": "1001",
                "ad_id": "A1",
                "adset_id": "S1",
                "campaign_id": "C1",
                "name": "Ad 1",
                "_extracted_at": E2,
            },
            {
                "account_id": "1002",
                "ad_id": "A2",
                "adset_id": "S2",
                "campaign_id": "C2",
                "name": "Ad 2",
                "_extracted_at": E2,
            },
        ],
    )

    # Page snapshots (the Page's name): P1 renamed between its leads and conversations extractions (the
    # latest name wins); P2 never snapshotted (its page_name is null).
    write_rows(
        lake,
        "pages",
        [
            {"page_id": "P1", "extractor": "leads", "name": "Page One", "_extracted_at": E1},
            {
                "page_id": "P1",
                "extractor": "conversations",
                "name": "Page One (renamed)",
                "_extracted_at": E2,
            },
        ],
    )

    def insight(
        account_id: str,
        date: str,
        ad_id: str,
        spend: str,
        actions: list[dict[str, Any]] | None,
        extracted: dt.datetime,
        campaign: str,
        adset: str,
        currency: str,
    ) -> dict[str, Any]:
        return {
            "account_id": account_id,
            "date": d(date),
            "account_name": f"acct {account_id}",
            "account_currency": currency,
            "campaign_id": campaign,
            "campaign_name": f"name {campaign}",
            "adset_id": adset,
            "adset_name": f"name {adset}",
            "ad_id": ad_id,
            "ad_name": f"name {ad_id}",
            "date_start": d(date),
            "date_stop": d(date),
            "spend": Decimal(spend),
            "impressions": 100,
            "clicks": 7,
            "actions": actions,
            "attribution_setting": "7d_click,1d_view",
            "_report_run_id": f"run-{extracted:%d}",
            "_extracted_at": extracted,
        }

    lead_actions = [
        action("lead", 5),
        action("onsite_conversion.lead_grouped", 3),
        action("offsite_conversion.fb_pixel_lead", 2),
        action("onsite_conversion.messaging_conversation_started_7d", 2),
        action("onsite_conversion.total_messaging_connection", 6),
        action("link_click", 7),
    ]
    write_rows(
        lake,
        "insights",
        [
            insight("1001", "2026-10-31", "A1", "10.01", lead_actions, E1, "C1", "S1", "USD"),
            # A3: deleted ad, only in insights (not in the ad snapshots); no actions at all
            insight("1001", "2026-10-31", "A3", "0.10", None, E1, "C1", "S1", "USD"),
            # 2026-11-01 is re-pulled below: this older extraction must be ignored
            insight("1001", "2026-11-01", "A1", "1.00", [action("lead", 9)], E1, "C1", "S1", "USD"),
            insight(
                "1002",
                "2026-11-02",
                "A2",
                "7.77",
                [action("onsite_conversion.messaging_conversation_started_7d", 1)],
                E1,
                "C2",
                "S2",
                "INR",
            ),
        ],
    )
    write_rows(
        lake,
        "insights",
        [insight("1001", "2026-11-01", "A1", "2.50", [action("lead", 1)], E2, "C1", "S1", "USD")],
        replace=False,
    )
    # Days extracted with no delivery: the extractors write an empty partition for each such day,
    # and only extracted days appear in the marts (int_account_days_extracted).
    for account_id, day in (("1001", "2026-11-07"), ("1002", "2026-11-07")):
        empty_day = lake / "insights" / f"account_id={account_id}" / f"date={day}"
        empty_day.mkdir(parents=True, exist_ok=True)
        pq.write_table(schemas.INSIGHTS.empty_table(), empty_day / "part-empty.parquet")

    # The account totals written beside them (the completeness control): LA's window was served on
    # 2026-11-08 (local), Kolkata's at 2026-11-07T12:00Z, 17:30 there: its 2026-11-07 was not over (partial).
    def total(
        account_id: str, date: str, spend: str, impressions: int, served: str, local: str
    ) -> dict[str, Any]:
        return {
            "account_id": account_id,
            "date": d(date),
            "account_currency": "USD" if account_id == "1001" else "INR",
            "spend": Decimal(spend),
            "impressions": impressions,
            "clicks": 0,
            "timezone_name": "America/Los_Angeles" if account_id == "1001" else "Asia/Kolkata",
            "served_at": ts(served),
            "served_local_date": d(local),
            "_extracted_at": ts(served),
        }

    write_rows(
        lake,
        "insights_account_totals",
        [
            total("1001", "2026-10-31", "10.11", 200, "2026-11-08T12:00:00Z", "2026-11-08"),
            total("1001", "2026-11-01", "2.50", 100, "2026-11-08T12:00:00Z", "2026-11-08"),
            total("1001", "2026-11-07", "0", 0, "2026-11-08T12:00:00Z", "2026-11-08"),
            total("1002", "2026-11-02", "7.77", 100, "2026-11-07T12:00:00Z", "2026-11-07"),
            total("1002", "2026-11-07", "0", 0, "2026-11-07T12:00:00Z", "2026-11-07"),
        ],
    )

    def lead(lead_id: str, created: str, page: str, ad: str | None, organic: bool = False) -> dict[str, Any]:
        created_at = ts(created)
        return {
            "page_id": page,
            "date": created_at.date(),
            "lead_id": lead_id,
            "created_time": created_at,
            "form_id": f"F{page}",
            "ad_id": ad,
            "is_organic": organic,
            "platform": "fb",
            "_extracted_at": E2,
        }

    write_rows(
        lake,
        "leads",
        [
            lead("L1", "2026-11-01T06:00:00Z", "P1", "A1"),  # LA: 2026-10-31
            lead("L2", "2026-11-01T20:00:00Z", "P2", "A2"),  # Kolkata: 2026-11-02
            lead("L3", "2026-11-01T06:00:00Z", "P1", None, organic=True),  # organic: never collected
            lead("L4", "2026-10-31T20:00:00Z", "P1", "A3"),  # ad known only from insights; LA 2026-10-31
            # paid without an ad id (seed 003: ad preview / no advertiser privileges): LA 2026-10-31
            lead("L5", "2026-11-01T06:30:00Z", "P1", None),
        ],
    )

    def message(
        mid: str,
        conv: str,
        created: str,
        from_page: bool | None,
        page: str,
        platform: str,
        snapshot: str,
        extracted: dt.datetime,
    ) -> dict[str, Any]:
        """``from_page`` None: a message beyond the 20 most recent (id and time only)."""
        return {
            "page_id": page,
            "platform": platform,
            "date": d(snapshot),
            "message_id": mid,
            "conversation_id": conv,
            "created_time": ts(created),
            "from_id": None if from_page is None else page if from_page else "U",
            "to_ids": None if from_page is None else ["U" if from_page else page],
            "is_from_page": from_page,
            "message": None if from_page is None else "hi",
            "_extracted_at": extracted,
        }

    s1, s2 = ts("2026-11-06T01:00:00Z"), ts("2026-11-10T01:00:00Z")
    k1_first = [
        ("m1", "2026-11-01T06:00:00Z", False),  # LA 2026-10-31: opens the conversation
        ("m2", "2026-11-01T06:10:00Z", True),  # the Page replies after 600 s
    ]
    write_rows(
        lake,
        "messages",
        [message(m, "K1", t, p, "P1", "messenger", "2026-11-05", s1) for m, t, p in k1_first]
        + [
            message(m, "K1", t, p, "P1", "messenger", "2026-11-09", s2)
            for m, t, p in [*k1_first, ("m3", "2026-11-08T06:10:00Z", False)]  # exactly 168 h later: a start
        ]
        + [
            # K2: 25 messages, only 2 within reach: the first known one is not a start
            message("n1", "K2", "2026-11-01T20:00:00Z", False, "P2", "instagram", "2026-11-09", s2),
            message("n2", "K2", "2026-11-01T20:30:00Z", False, "P2", "instagram", "2026-11-09", s2),
            # K3: a complete conversation opened at Kolkata 2026-11-02 01:30
            message("n3", "K3", "2026-11-01T20:00:00Z", False, "P2", "instagram", "2026-11-09", s2),
            # K5: opened with a burst: its first message was beyond reach from the first pull on;
            # Kolkata 2026-11-07 02:30, an inferred start; the Page answers 300 s later
            message("r1", "K5", "2026-11-06T21:00:00Z", None, "P2", "instagram", "2026-11-09", s2),
            message("r2", "K5", "2026-11-06T21:05:00Z", True, "P2", "instagram", "2026-11-09", s2),
        ]
        # K4: opened at LA 2026-11-01 11:00 and seen so by the first snapshot; by the second it had
        # grown past 20 messages and its first two came without details: the start stays observed
        + [
            message("q1", "K4", "2026-11-01T18:00:00Z", False, "P1", "messenger", "2026-11-05", s1),
            message("q2", "K4", "2026-11-01T18:10:00Z", True, "P1", "messenger", "2026-11-05", s1),
            message("q1", "K4", "2026-11-01T18:00:00Z", None, "P1", "messenger", "2026-11-09", s2),
            message("q2", "K4", "2026-11-01T18:10:00Z", None, "P1", "messenger", "2026-11-09", s2),
            message("q3", "K4", "2026-11-02T01:00:00Z", False, "P1", "messenger", "2026-11-09", s2),
        ],
    )

    def conversation(
        conv: str,
        page: str,
        platform: str,
        snapshot: str,
        count: int,
        extracted: dt.datetime,
        first: str | None,
        out_of_reach: int = 0,
    ) -> dict[str, Any]:
        return {
            "page_id": page,
            "platform": platform,
            "date": d(snapshot),
            "conversation_id": conv,
            "updated_time": extracted,
            "message_count": count,
            "participant_ids": ["U", page],
            "messages_out_of_reach": out_of_reach,
            "first_message_id": first,
            "_extracted_at": extracted,
        }

    write_rows(
        lake,
        "conversations",
        [
            conversation("K1", "P1", "messenger", "2026-11-05", 2, s1, "m1"),
            conversation("K4", "P1", "messenger", "2026-11-05", 2, s1, "q1"),
        ],
    )
    write_rows(
        lake,
        "conversations",
        [
            conversation("K1", "P1", "messenger", "2026-11-09", 3, s2, "m1"),
            # 25 messages, the walk stopped at the window start: its first message is unknown
            conversation("K2", "P2", "instagram", "2026-11-09", 25, s2, None, out_of_reach=23),
            conversation("K3", "P2", "instagram", "2026-11-09", 1, s2, "n3"),
            conversation("K4", "P1", "messenger", "2026-11-09", 22, s2, "q1", out_of_reach=2),
            conversation("K5", "P2", "instagram", "2026-11-09", 23, s2, "r1", out_of_reach=1),
        ],
    )


@pytest.fixture(scope="session")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """The scenario lake, built once (a full build then an incremental one) for the read-only tests."""
    root = tmp_path_factory.mktemp("scenario")
    lake = root / "lake"
    write_scenario_lake(lake)
    build = Build(root, lake)
    build.build()
    return build


@pytest.fixture
def small_lake(tmp_path: Path) -> Path:
    lake = tmp_path / "lake"
    generate_lake(lake, insights_rows=6_000, leads=600, messages=3_000, accounts=3, days=40, threads=2)
    return lake
