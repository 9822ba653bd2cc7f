"""The pipeline config is validated once, with errors that name the key, the value and the fix."""

from __future__ import annotations

import pytest
import yaml
from meta_ads_elt.config import DEFAULT_CONFIG_PATH, ConfigError, load_config, parse_config

VALID = {"accounts": [{"id": "act_101"}], "pages": [{"id": "201"}]}


def test_the_shipped_config_is_valid():
    config = load_config(DEFAULT_CONFIG_PATH)
    assert config.accounts, "include/pipeline.yaml must declare at least one ad account"
    assert config.lookback_days == 28


def test_defaults_are_the_documented_ones():
    config = parse_config(VALID)
    assert config.insights.attribution_windows == ("7d_click", "1d_view")
    assert config.pages[0].platforms == ("messenger", "instagram")
    assert config.privacy.keep_message_text is False
    assert config.privacy.raw_lead_fields_allow_list == ()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"accounts": [{"id": "12345"}]}, "accounts[0].id = '12345': must be 'act_' followed by digits"),
        ({"accounts": [{"id": "act_1"}], "lookback_days": 0}, "lookback_days = 0"),
        ({"accounts": [{"id": "act_1"}], "lookbak_days": 7}, "lookbak_days: unknown key"),
        ({"accounts": []}, "accounts = []"),
        ({}, "accounts: required key is missing"),
        (
            {"accounts": [{"id": "act_1"}], "pages": [{"id": "9", "platforms": ["whatsapp"]}]},
            "pages[0].platforms[0] = 'whatsapp'",
        ),
        (
            {"accounts": [{"id": "act_1"}], "insights": {"attribution_windows": ["7d_view"]}},
            "insights.attribution_windows[0] = '7d_view'",
        ),
        ({"accounts": [{"id": "act_1"}, {"id": "act_1"}]}, "listed twice"),
        (
            {"accounts": [{"id": "act_1"}], "insights": {"effective_statuses": ["ACTIVE", "REMOVED"]}},
            "insights.effective_statuses[1] = 'REMOVED'",
        ),
        (
            {"accounts": [{"id": "act_1"}], "max_rate_limit_wait_minutes": 0},
            "max_rate_limit_wait_minutes = 0",
        ),
        (  # an ad account id where a Business id belongs: the fix names where it goes
            {"accounts": {"discover": ["business:act_123:owned"]}},
            "act_123 is an ad account, not a Business: list it under accounts: (- id: act_123)",
        ),
        (
            {"accounts": [{"id": "act_1"}], "pages": {"discover": ["business:act_123"]}},
            "source 'business:act_123' is not one of: 'me' (GET /me/accounts)",
        ),
    ],
)
def test_a_bad_key_or_value_is_named_in_the_error(data, expected):
    with pytest.raises(ConfigError) as excinfo:
        parse_config(data, source="pipeline.yaml")
    assert expected in str(excinfo.value)
    assert "pipeline.yaml" in str(excinfo.value)


def test_insights_ask_for_every_effective_status_by_default():
    from meta_ads_elt.fields import AD_EFFECTIVE_STATUSES

    config = parse_config(VALID)
    assert config.insights.effective_statuses == AD_EFFECTIVE_STATUSES
    assert config.insights.queued_timeout_minutes == 60
    with pytest.raises(
        ConfigError, match="'PENDING_REVIEW', 'PREAPPROVED' or 'WITH_ISSUES'"
    ):  # the fix is listed
        parse_config({**VALID, "insights": {"effective_statuses": ["LIVE"]}})


def test_the_default_schedule_runs_after_every_time_zone_finished_the_day():
    from airflow.timetables.interval import CronDataIntervalTimetable
    from pendulum import datetime

    config = parse_config(VALID)
    # A run is created when its interval ends: D+1 12:00 UTC, when UTC-12's day D is over.
    interval = CronDataIntervalTimetable(config.schedule, "UTC").infer_manual_data_interval(
        run_after=datetime(2026, 11, 20, 12, 0, tz="UTC")
    )
    assert interval.start.date().isoformat() == "2026-11-19" and interval.end.hour == 12


def test_allowed_values_are_listed_for_enumerations():
    with pytest.raises(ConfigError, match="'messenger' or 'instagram'"):
        parse_config({"accounts": [{"id": "act_1"}], "pages": [{"id": "9", "platforms": ["sms"]}]})


def test_a_missing_file_and_broken_yaml_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the pipeline config"):
        load_config(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("accounts: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_relative_paths_resolve_against_the_project_and_urls_pass_through(tmp_path):
    config_file = tmp_path / "p.yaml"
    url = f"file://{tmp_path}/lake"
    config_file.write_text(yaml.safe_dump({**VALID, "lake_root": url}))
    config = load_config(config_file)
    assert config.lake_root_resolved == url
    assert parse_config(VALID).resolve("data/lake").endswith("/data/lake")
    assert parse_config(VALID).resolve("data/lake").startswith("/")


def test_the_shipped_config_declares_the_default_sandbox_world(sandbox):
    """`make run` runs against the default world: the config must name exactly its accounts and Pages."""
    config = load_config(DEFAULT_CONFIG_PATH)
    world = sandbox.world()
    assert {account.id for account in config.accounts} == {account["id"] for account in world["accounts"]}
    assert {page.id for page in config.pages} == {page["id"] for page in world["pages"]}


def test_the_reporting_currency_is_off_by_default_and_checked_when_set(tmp_path):
    assert parse_config(VALID).marts.reporting_currency is None
    rates = tmp_path / "rates.csv"
    rates.write_text("currency,reporting_currency,rate,valid_from,valid_to\nINR,EUR,0.011,2026-01-01,\n")
    marts = parse_config({**VALID, "marts": {"reporting_currency": "EUR", "fx_rates_path": str(rates)}}).marts
    assert (marts.reporting_currency, marts.fx_rates_path) == ("EUR", str(rates))
    for bad, expected in (
        ({"reporting_currency": "euro"}, "marts.reporting_currency = 'euro'"),
        ({"reporting_currency": "EUR", "fx_rates_path": str(tmp_path / "none.csv")}, "is not a file"),
        (
            {"reporting_currency": "EUR", "fx_rates_path": str(tmp_path / "rates.xlsx")},
            "must be a .csv or .parquet",
        ),
        ({"fx_rates_path": str(rates)}, "reporting_currency is not set"),
        ({"coverage_start_date": "yesterday"}, "marts.coverage_start_date = 'yesterday'"),
    ):
        with pytest.raises(ConfigError) as error:
            parse_config({**VALID, "marts": bad})
        assert expected in str(error.value), str(error.value)
