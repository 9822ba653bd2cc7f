"""Bad Insights report specs (``insights.reports`` of include/pipeline.yaml) fail when the config is
read, before any call to Meta, with the report, the key, the value and what is allowed on the first
line (the style of tests/plugins/test_bad_inputs.py). Meta's rules come from the shipped table
(meta_ads_elt.breakdowns, cited there)."""

from __future__ import annotations

import datetime as dt

import pytest
from meta_ads_elt import breakdowns as B
from meta_ads_elt.config import ConfigError, load_config, parse_config
from meta_ads_elt.reports import DEFAULT as DEFAULT_REPORT_CONFIG
from meta_ads_elt.reports import PRESETS, ReportConfig, preset

VALID = {"accounts": [{"id": "act_101"}], "pages": [{"id": "201"}]}
DEFAULT = {"name": "default"}
FOREIGN = ("pydantic", "Traceback", "ValidationError", "facebook_business")
WHERE = "pipeline config: insights.reports"


def parse_reports(reports: list) -> None:
    parse_config({**VALID, "insights": {"reports": reports}})


REPORT_CASES = [
    # (id, reports, the start of the first line)
    (
        "position-without-platform",
        [DEFAULT, {"name": "by_x", "breakdowns": ["platform_position"]}],
        "[1] (by_x): report 'by_x': breakdowns = ['platform_position']: platform_position needs publisher_platform",
    ),
    (
        "unknown-breakdown",
        [DEFAULT, {"name": "by_x", "breakdowns": ["agee"]}],
        "[1] (by_x): report 'by_x': breakdowns = ['agee']: 'agee' is not one of Meta's breakdowns (did you mean 'age'?)",
    ),
    (
        "combination-meta-does-not-serve",
        [DEFAULT, {"name": "by_x", "breakdowns": ["age", "country"]}],
        "[1] (by_x): report 'by_x': breakdowns = ['age', 'country'] with action_breakdowns = ['action_type'] is not a "
        "combination Meta serves",
    ),
    (
        "action-breakdown-in-breakdowns",
        [DEFAULT, {"name": "by_x", "breakdowns": ["action_device"]}],
        "[1] (by_x): report 'by_x': breakdowns = ['action_device']: 'action_device' is one of Meta's action_breakdowns",
    ),
    (
        "breakdown-in-fields",
        [DEFAULT, {"name": "by_x", "breakdowns": ["country"], "fields": ["country"]}],
        "[1] (by_x): report 'by_x': fields = ['country']: 'country' is a breakdown: breakdown names never go in fields",
    ),
    (
        "base-field-in-fields",
        [DEFAULT, {"name": "by_x", "fields": ["spend"]}],
        "[1] (by_x): report 'by_x': fields = ['spend']: 'spend' is requested by every report already",
    ),
    (
        "unknown-field",
        [DEFAULT, {"name": "by_x", "fields": ["spendd"]}],
        "[1] (by_x): report 'by_x': fields = ['spendd']: 'spendd' is not an Insights field (did you mean 'spend'?)",
    ),
    (
        "field-below-level",
        [DEFAULT, {"name": "by_x", "level": "campaign", "fields": ["ad_id"]}],
        "[1] (by_x): report 'by_x': fields = ['ad_id']: 'ad_id' is below level 'campaign'; use level 'ad'",
    ),
    (
        "unknown-level",
        [DEFAULT, {"name": "by_x", "level": "creative"}],
        "[1] (by_x).level = 'creative': Input should be 'account', 'campaign', 'adset' or 'ad'",
    ),
    (
        "unknown-time-increment",
        [DEFAULT, {"name": "by_x", "time_increment": 3}],
        "[1] (by_x).time_increment = 3: Input should be 1, 7, 'monthly' or 'all_days'",
    ),
    (
        "bad-name",
        [DEFAULT, {"name": "By X"}],
        "[1] (By X).name = 'By X': must be lower-case letters, digits and '_'",
    ),
    (
        "reserved-name",
        [DEFAULT, {"name": "account_totals"}],
        "[1] (account_totals).name = 'account_totals': is reserved",
    ),
    ("missing-name", [DEFAULT, {"breakdowns": ["age"]}], "[1].name: required key is missing"),
    (
        "opt-in-breakdown",
        [DEFAULT, {"name": "by_dma", "breakdowns": ["dma"]}],
        "[1] (by_dma): breakdown 'dma' needs an Ads Manager opt-in per ad account",
    ),
    (
        "reach-only-breakdown",
        [DEFAULT, {"name": "by_x", "breakdowns": ["frequency_value"]}],
        "[1] (by_x): report 'by_x': breakdowns = ['frequency_value']: frequency_value is used with reach only",
    ),
    (
        "account-level-place-page",
        [DEFAULT, {"name": "by_x", "level": "account", "breakdowns": ["place_page_id"]}],
        "[1] (by_x): report 'by_x': level = 'account' with breakdown 'place_page_id'",
    ),
    (
        "breakdown-twice",
        [DEFAULT, {"name": "by_x", "breakdowns": ["country", "country"]}],
        "[1] (by_x): report 'by_x': breakdowns = ['country', 'country'] names a breakdown twice",
    ),
    (
        "action-breakdowns-without-action-type",
        [DEFAULT, {"name": "by_x", "action_breakdowns": ["action_device"]}],
        "[1] (by_x): report 'by_x': action_breakdowns = ['action_device'] lacks 'action_type'",
    ),
    (
        "hourly-with-frequency",
        [
            DEFAULT,
            {
                "name": "by_hour",
                "fields": ["frequency"],
                "breakdowns": ["hourly_stats_aggregated_by_advertiser_time_zone"],
            },
        ],
        "[1] (by_hour): report 'by_hour': fields = ['frequency']: 'frequency' is not served with hourly breakdowns",
    ),
    (
        "region-with-video-actions",
        [DEFAULT, {"name": "by_x", "breakdowns": ["region"], "fields": ["video_p25_watched_actions"]}],
        "[1] (by_x): report 'by_x': fields = ['video_p25_watched_actions']: 'video_p25_watched_actions' does not "
        "support the region breakdown",
    ),
    (
        "asset-breakdown-with-cpm",
        [DEFAULT, {"name": "by_x", "breakdowns": ["image_asset"], "fields": ["cpm"]}],
        "[1] (by_x): report 'by_x': fields = ['cpm']: 'cpm' is not served with asset breakdowns",
    ),
    (
        "unknown-preset",
        [DEFAULT, {"preset": "by_placment"}],
        "[1] (by_placment): preset = 'by_placment' is not a preset (did you mean 'by_placement'?); presets: "
        "by_placement, by_age_gender, by_country, by_device",
    ),
    (
        "preset-changed",
        [DEFAULT, {"preset": "by_country", "breakdowns": ["region"]}],
        "[1] (by_country): report preset 'by_country': breakdowns cannot be set on a preset",
    ),
    (
        "default-changed",
        [{"name": "default", "level": "campaign"}],
        "[0] (default): report 'default': level cannot be set on the default report",
    ),
    (
        "default-missing",
        [{"preset": "by_country"}],
        " = [{'preset': 'by_country'}]: reports = [by_country] lacks the default report: add '- name: default'",
    ),
    (
        "name-twice",
        [DEFAULT, {"preset": "by_country"}, {"preset": "by_country"}],
        " = [{'name': 'default'}, {'preset': 'by_country'}, {'preset': 'by_country'}]: reports[2]: report name "
        "'by_country' is declared twice",
    ),
    (
        "unknown-window",
        [DEFAULT, {"name": "by_x", "attribution_windows": ["7d_view"]}],
        "[1] (by_x).attribution_windows[0] = '7d_view': Input should be '1d_click', '7d_click', '28d_click' or '1d_view'",
    ),
    (
        "preset-name-taken",
        [DEFAULT, {"name": "by_country", "breakdowns": ["region"]}],
        "[1] (by_country): report 'by_country': the name of a preset; write '- preset: by_country' for it",
    ),
    (
        "misspelt-key",
        [DEFAULT, {"name": "by_x", "breakdown": ["age"]}],
        "[1] (by_x).breakdown: unknown key; check its spelling (allowed here: name, preset, level, breakdowns",
    ),
]


@pytest.mark.parametrize(
    ("reports", "expected"), [c[1:] for c in REPORT_CASES], ids=[c[0] for c in REPORT_CASES]
)
def test_a_bad_report_spec_is_named_on_the_first_line(reports, expected):
    with pytest.raises(ConfigError) as excinfo:
        parse_reports(reports)
    line = str(excinfo.value).splitlines()[0]
    assert line.startswith(WHERE + expected), f"first line {line!r} does not start with {WHERE + expected!r}"
    assert not any(word in line for word in FOREIGN), f"another library speaks first: {line!r}"


def test_at_least_twelve_bad_report_specs_are_covered():
    assert len(REPORT_CASES) >= 12


def test_an_opt_in_breakdown_is_accepted_once_every_account_is_confirmed():
    parse_reports([DEFAULT, {"name": "by_dma", "breakdowns": ["dma"], "ads_manager_opt_in": ["act_101"]}])


def test_the_shipped_config_declares_the_default_report_and_every_preset():
    reports = load_config().insights.reports
    assert [r.name for r in reports] == ["default", *PRESETS]
    assert reports[0].dataset == "insights"
    placement = next(r for r in reports if r.name == "by_placement")
    assert placement.breakdowns == ("publisher_platform", "platform_position")
    assert placement.primary_key == ("account_id", "date", "ad_id", "publisher_platform", "platform_position")


def test_every_preset_is_a_combination_in_metas_table():
    for name, spec in PRESETS.items():
        assert B.is_allowed(spec["breakdowns"], ("action_type",)), name


@pytest.mark.parametrize(
    ("breakdowns", "action_breakdowns", "allowed"),
    [
        (("publisher_platform", "platform_position", "impression_device"), ("action_type",), True),
        (("age", "gender"), ("action_type",), True),
        (("device_platform",), ("action_type",), True),
        (("region",), ("action_type", "action_target_id"), True),
        (
            ("app_id", "skan_conversion_id"),
            ("action_type",),
            False,
        ),  # not starred: not joinable with action_type
        (("country", "impression_device"), ("action_type",), False),
        (("dma", "country"), ("action_type",), False),
    ],
)
def test_the_combination_table_follows_meta(breakdowns, action_breakdowns, allowed):
    assert B.is_allowed(breakdowns, action_breakdowns) is allowed


def test_type_1_breakdowns_are_flagged_in_the_report():
    region = ReportConfig(name="by_region", breakdowns=("region",))
    assert region.off_meta_actions == "not_returned"
    assert ReportConfig(name="by_c", breakdowns=("country",)).off_meta_actions == "complete"


def test_the_sdk_names_read_from_its_source_equal_the_imported_sdk():
    """reports._sdk reads the SDK's AdsInsights declarations without importing the SDK (DAG parse time):
    the same breakdowns, action breakdowns and field types as the imported classes."""
    from facebook_business.adobjects.adsinsights import AdsInsights
    from meta_ads_elt.reports import _sdk

    def values(enum: type) -> frozenset[str]:
        return frozenset(v for k, v in vars(enum).items() if not k.startswith("_") and isinstance(v, str))

    breakdowns, action_breakdowns, field_types = _sdk()
    assert breakdowns == values(AdsInsights.Breakdowns)
    assert action_breakdowns == values(AdsInsights.ActionBreakdowns)
    assert field_types == AdsInsights._field_types
    assert {"publisher_platform", "age"} <= breakdowns and "action_type" in action_breakdowns


@pytest.mark.parametrize(
    ("report", "since", "withheld"),
    [
        ("by_placement", "2025-10-19", True),  # 13 months and a day before 2026-11-20
        ("by_placement", "2025-10-20", False),  # exactly 13 months: within
        ("default", "2024-01-01", False),  # no breakdowns: reach is served however far back
    ],
)
def test_reach_is_left_out_of_breakdown_jobs_starting_more_than_13_months_back(report, since, withheld):
    spec = DEFAULT_REPORT_CONFIG if report == "default" else preset(report)
    fields = spec.fields_for(dt.date.fromisoformat(since), dt.date(2026, 11, 20))
    assert spec.withholds_reach(dt.date.fromisoformat(since), dt.date(2026, 11, 20)) is withheld
    assert ("reach" not in fields) is withheld
    if withheld:
        assert fields == [f for f in spec.request_fields if f != "reach"]
