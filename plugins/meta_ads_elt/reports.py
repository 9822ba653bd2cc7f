"""Insights reports, declared in ``insights.reports`` of ``include/pipeline.yaml``.

A report is one kind of async Insights request: a ``level`` (account | campaign | adset | ad),
``breakdowns`` and ``action_breakdowns``, a ``time_increment`` (1, 7, monthly, all_days), extra
``fields`` and ``attribution_windows``. Each report lands in its own lake dataset:

* the **default** report (``name: default``: ad x day, no breakdowns, the fields of
  ``fields.INSIGHTS_FIELDS``) writes ``insights/account_id=/date=`` (the contract the cost per lead
  marts read);
* every other report writes ``insights_<name>/account_id=/date=`` (``date`` = the row's
  ``date_start``), with its breakdown columns in its primary key.

Presets (``preset: by_placement`` ...) are reports the project ships with a dbt staging model and,
for three of them, a mart. A spec is checked when the config is read, against Meta's rules
(:mod:`meta_ads_elt.breakdowns`) and the SDK's names, so a bad report fails before any call with
its name, the key, the value and what is allowed.
"""

from __future__ import annotations

import ast
import difflib
import functools
import hashlib
import importlib.util
import json
import re
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import pendulum
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from meta_ads_elt import breakdowns as B
from meta_ads_elt import fields as F

DEFAULT_REPORT = "default"
Level = Literal["account", "campaign", "adset", "ad"]
TimeIncrement = Literal[1, 7, "monthly", "all_days"]
AttributionWindow = Literal["1d_click", "7d_click", "28d_click", "1d_view"]
"""The windows a config may ask for. Not 7d_view / 28d_view: "On January 12, 2026 ... 7-day view (7d_view) and
28-day view (28d_view) attribution windows will no longer be returned" (Meta developer blog, 2025-10-16,
research/transform_anchors.md), so asking for them would land zeros."""
LEVELS: tuple[str, ...] = ("account", "campaign", "adset", "ad")
RESERVED_NAMES = {"account_totals": "its dataset insights_account_totals is the completeness control"}

LEVEL_IDS: dict[str, tuple[str, ...]] = {
    "account": (),
    "campaign": ("campaign_id", "campaign_name"),
    "adset": ("campaign_id", "campaign_name", "adset_id", "adset_name"),
    "ad": ("campaign_id", "campaign_name", "adset_id", "adset_name", "ad_id", "ad_name"),
}
"""The object fields a row of each level carries (an ad row names its ad set and campaign)."""

REPORT_METRICS = ("spend", "impressions", "clicks", "reach", "actions")
"""What every report but the default requests: enough for cost per lead, and reach at its own grain."""

REACH_FIELDS = ("reach", "frequency", "cpp")
REACH_BREAKDOWN_MONTHS = 13
"""Meta: "Since June 10 2025, ``reach`` (and ``frequency``, ``cpp``) is omitted for sync queries that have
breakdowns and a start date more than 13 months back. Async jobs are limited to 10 such requests per ad
account per day" ("Reach-related metric breakdowns are unavailable due to rate limit threshold."):
research/meta_api_facts.md section 1.4. A report with breakdowns leaves these fields out of a job that
starts that far back (:meth:`ReportConfig.withholds_reach`), so backfills of old dates are never refused."""


def months_back(day: date, months: int) -> date:
    """``day`` less ``months`` calendar months (pendulum's arithmetic: the 31st goes to the month's last
    day): the line of Meta's limits counted in months (:data:`REACH_BREAKDOWN_MONTHS`, and the 37 months of
    Insights, :func:`meta_ads_elt.operators.insights.oldest_served_date`)."""
    back = pendulum.Date(day.year, day.month, day.day).subtract(months=months)
    return date(back.year, back.month, back.day)


PRESETS: dict[str, dict[str, Any]] = {
    "by_placement": {"level": "ad", "breakdowns": ("publisher_platform", "platform_position")},
    "by_age_gender": {"level": "ad", "breakdowns": ("age", "gender")},
    "by_country": {"level": "ad", "breakdowns": ("country",)},
    "by_device": {"level": "ad", "breakdowns": ("device_platform",)},
}
"""The shipped reports: placement needs ``publisher_platform`` beside ``platform_position`` (Meta serves
the position only within its platform; pipeboard-co/meta-ads-mcp#141 lost leads without it)."""


@functools.cache
def _sdk() -> tuple[frozenset[str], frozenset[str], dict[str, str]]:
    """(breakdowns, action breakdowns, field -> type) as the facebook-business SDK declares them
    (``AdsInsights.Breakdowns``, ``.ActionBreakdowns``, ``._field_types``).

    Read from the SDK's ``adsinsights.py`` with ``ast``, not imported: importing any SDK module runs the
    package's ``__init__`` (its session, API and ``requests``), ~0.3 s of CPU in every DAG parse, which
    checks the reports of the config. ``tests/plugins/test_bad_report_specs.py`` compares the result
    with the imported SDK.
    """
    spec = importlib.util.find_spec("facebook_business")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the facebook-business package is not installed (requirements.txt)")
    path = Path(next(iter(spec.submodule_search_locations)), "adobjects", "adsinsights.py")
    [insights] = [
        node
        for node in ast.parse(path.read_text(encoding="utf-8")).body
        if isinstance(node, ast.ClassDef) and node.name == "AdsInsights"
    ]

    def assigned(body: list[ast.stmt]) -> dict[str, Any]:
        return {
            target.id: node.value
            for node in body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }

    enums = {
        node.name: frozenset(
            value.value
            for name, value in assigned(node.body).items()
            if not name.startswith("_") and isinstance(value, ast.Constant) and isinstance(value.value, str)
        )
        for node in insights.body
        if isinstance(node, ast.ClassDef)
    }
    field_types = ast.literal_eval(assigned(insights.body)["_field_types"])
    return enums["Breakdowns"], enums["ActionBreakdowns"], dict(field_types)


def _suggest(value: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(value, sorted(candidates), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def field_kind(name: str) -> str:
    """How an extra field lands in the lake: ``string`` (as Meta sends it) or ``actions`` (a list of
    action stats); raises ``ValueError`` for a name the SDK does not know or a type we do not land."""
    types = _sdk()[2]
    if name not in types:
        raise ValueError(f"is not an Insights field{_suggest(name, types)}")
    kind = types[name]
    if kind == "string":
        return "string"
    if kind == "list<AdsActionStats>":
        return "actions"
    raise ValueError(f"has the type {kind}, which reports do not land; use a string or action-stats field")


class ReportConfig(BaseModel):
    """One entry of ``insights.reports`` (see the module docstring and docs/CONFIG.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    preset: str | None = None
    level: Level = "ad"
    breakdowns: tuple[str, ...] = ()
    action_breakdowns: tuple[str, ...] = ("action_type",)
    time_increment: TimeIncrement = 1
    fields: tuple[str, ...] = ()
    attribution_windows: tuple[AttributionWindow, ...] | None = None
    ads_manager_opt_in: tuple[Annotated[str, Field(pattern=r"^act_\d+$")], ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _expand(cls, data: Any) -> Any:
        """``{preset: by_x}`` -> the preset's spec named ``by_x``; ``{name: default}`` -> the default
        report. Neither takes other keys: their staging models and marts are built on their columns."""
        if not isinstance(data, dict):
            return data
        preset = data.get("preset")
        if preset is not None:
            if preset not in PRESETS:
                raise ValueError(
                    f"preset = {preset!r} is not a preset{_suggest(str(preset), PRESETS)}; "
                    f"presets: {', '.join(PRESETS)}"
                )
            extra = sorted(set(data) - {"preset", "name", "attribution_windows", "ads_manager_opt_in"})
            if data.get("name", preset) != preset:
                extra.insert(0, "name")
            if extra:
                raise ValueError(
                    f"report preset {preset!r}: {', '.join(extra)} cannot be set on a preset (its dbt model and mart "
                    "are built on its columns); declare your own report with name:, level:, breakdowns: instead"
                )
            return {**PRESETS[preset], **data, "name": preset}
        if data.get("name") == DEFAULT_REPORT:
            extra = sorted(set(data) - {"name", "attribution_windows"})
            if extra:
                raise ValueError(
                    f"report 'default': {', '.join(extra)} cannot be set on the default report (the ad x day report "
                    "the cost_per_lead marts are built on); declare another report for other levels, breakdowns "
                    "or fields"
                )
        if "name" in data and not isinstance(data["name"], str):
            raise ValueError(f"name = {data['name']!r}: must be a text such as by_region")
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", value):
            raise ValueError(
                "must be lower-case letters, digits and '_' (starting with a letter, at most 40), "
                "e.g. by_region: it names the dataset insights_<name>"
            )
        if value in RESERVED_NAMES:
            raise ValueError(f"is reserved: {RESERVED_NAMES[value]}")
        return value

    @model_validator(mode="after")
    def _meta_rules(self) -> ReportConfig:
        """Meta's rules (meta_ads_elt.breakdowns): names, combinations, fields, levels."""
        if self.is_default:
            return self
        if self.name in PRESETS and self.preset != self.name:  # a preset's spec cannot be changed (_expand)
            raise ValueError(
                f"report {self.name!r}: the name of a preset; write '- preset: {self.name}' for it, "
                "or name your report otherwise (e.g. my_" + self.name.removeprefix("by_") + ")"
            )
        sdk_breakdowns, sdk_action_breakdowns, _ = _sdk()
        where = f"report {self.name!r}"
        for key, values, known, other in (
            ("breakdowns", self.breakdowns, sdk_breakdowns, sdk_action_breakdowns),
            ("action_breakdowns", self.action_breakdowns, sdk_action_breakdowns, sdk_breakdowns),
        ):
            for value in values:
                if value in known:
                    continue
                if value in other:
                    right = "action_breakdowns" if key == "breakdowns" else "breakdowns"
                    raise ValueError(
                        f"{where}: {key} = {list(values)}: {value!r} is one of Meta's {right}; "
                        f"move it to {right}"
                    )
                raise ValueError(
                    f"{where}: {key} = {list(values)}: {value!r} is not one of Meta's {key}"
                    f"{_suggest(value, known)} (see {B.SOURCE_URL})"
                )
            if len(set(values)) != len(values):
                raise ValueError(f"{where}: {key} = {list(values)} names a breakdown twice; list each once")
        if "action_type" not in self.action_breakdowns:
            raise ValueError(
                f"{where}: action_breakdowns = {list(self.action_breakdowns)} lacks 'action_type': leads and "
                "conversations are counted by action type, so action_breakdowns must include action_type"
            )
        if "platform_position" in self.breakdowns and "publisher_platform" not in self.breakdowns:
            raise ValueError(
                f"{where}: breakdowns = {list(self.breakdowns)}: platform_position needs publisher_platform beside "
                "it (a position exists only within its platform; Meta serves publisher_platform, platform_position), "
                "e.g. [publisher_platform, platform_position]"
            )
        for name, reason in B.REACH_ONLY.items():
            if name in self.breakdowns:
                raise ValueError(
                    f"{where}: breakdowns = {list(self.breakdowns)}: {reason} (Meta); a report always "
                    "carries spend, so it cannot be a report's breakdown"
                )
        if not B.is_allowed(self.breakdowns, self.action_breakdowns):
            combination = ", ".join(sorted({*self.breakdowns, *self.action_breakdowns}))
            raise ValueError(
                f"{where}: breakdowns = {list(self.breakdowns)} with action_breakdowns = "
                f"{list(self.action_breakdowns)} is not a combination Meta serves ({combination}); allowed: "
                f"{'; '.join(B.allowed_with(self.breakdowns))} (Meta's 'Combining breakdowns' table, {B.SOURCE_URL})"
            )
        if self.level == "account":
            for name, reason in B.NOT_AT_ACCOUNT_LEVEL.items():
                if name in self.breakdowns:
                    raise ValueError(
                        f"{where}: level = 'account' with breakdown {name!r}: {reason} (Meta); use "
                        "level campaign, adset or ad"
                    )
        self._check_fields(where)
        return self

    def _check_fields(self, where: str) -> None:
        all_breakdowns = set(_sdk()[0]) | set(_sdk()[1])
        below = {f for level in LEVELS[LEVELS.index(self.level) + 1 :] for f in LEVEL_IDS[level]}
        below -= set(LEVEL_IDS[self.level])
        for name in self.fields:
            bad = None
            if name in all_breakdowns:
                bad = (
                    f"{name!r} is a breakdown: breakdown names never go in fields (Meta answers (#100) "
                    f"'{name} is not valid for fields param'); put it in breakdowns"
                )
            elif name in self.base_fields:
                bad = f"{name!r} is requested by every report already; list only extra fields"
            elif name in below:
                bad = f"{name!r} is below level {self.level!r}; use level {_level_of(name)!r} to get it"
            elif self.breakdowns and name in B.UNAVAILABLE_WITH_BREAKDOWNS:
                bad = f"{name!r} cannot be requested with a breakdown (Meta)"
            elif set(self.breakdowns) & B.HOURLY and name.startswith(B.NOT_WITH_HOURLY_FIELDS):
                bad = f"{name!r} is not served with hourly breakdowns (unique_*, reach, frequency, video_*) (Meta)"
            elif "region" in self.breakdowns and name in B.NOT_WITH_REGION_FIELDS:
                bad = f"{name!r} does not support the region breakdown (Meta)"
            elif set(self.breakdowns) & B.DYNAMIC_CREATIVE_ASSETS and name not in B.DYNAMIC_CREATIVE_METRICS:
                bad = (
                    f"{name!r} is not served with asset breakdowns, which support only "
                    f"{', '.join(sorted(B.DYNAMIC_CREATIVE_METRICS))} (Meta)"
                )
            else:
                try:
                    field_kind(name)
                except ValueError as exc:
                    bad = f"{name!r} {exc}"
            if bad:
                raise ValueError(f"{where}: fields = {list(self.fields)}: {bad}")
        if len(set(self.fields)) != len(self.fields):
            raise ValueError(f"{where}: fields = {list(self.fields)} names a field twice; list each once")

    # ---- what the report requests and lands ------------------------------------------------------
    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_REPORT

    @property
    def dataset(self) -> str:
        """The lake dataset: ``insights`` for the default report, else ``insights_<name>``."""
        return "insights" if self.is_default else f"insights_{self.name}"

    @property
    def staging_model(self) -> str:
        return "stg_meta__insights" if self.is_default else f"stg_meta__insights_{self.name}"

    @property
    def base_fields(self) -> tuple[str, ...]:
        """The fields every request of this report carries (the default report: ``INSIGHTS_FIELDS``)."""
        if self.is_default:
            return F.INSIGHTS_FIELDS
        metrics = [m for m in REPORT_METRICS if not (m == "reach" and set(self.breakdowns) & B.HOURLY)]
        return (
            "account_id",
            "account_name",
            "account_currency",
            *LEVEL_IDS[self.level],
            "date_start",
            "date_stop",
            *metrics,
            "attribution_setting",
        )

    @property
    def request_fields(self) -> list[str]:
        return [*self.base_fields, *self.fields]

    def withholds_reach(self, since: date, today: date) -> bool:
        """Whether a job of this report starting ``since`` (``today``: Meta's UTC date) leaves
        :data:`REACH_FIELDS` out: it has breakdowns and starts more than 13 months back
        (:data:`REACH_BREAKDOWN_MONTHS`); its rows land with ``reach`` null."""
        return bool(self.breakdowns) and since < months_back(today, REACH_BREAKDOWN_MONTHS)

    def fields_for(self, since: date, today: date) -> list[str]:
        """The fields of a job starting ``since``: :attr:`request_fields`, less :data:`REACH_FIELDS` when
        :meth:`withholds_reach`."""
        if self.withholds_reach(since, today):
            return [f for f in self.request_fields if f not in REACH_FIELDS]
        return self.request_fields

    @property
    def object_id(self) -> str:
        """The id column of the report's level (``account_id`` for account-level reports)."""
        return {"account": "account_id", "campaign": "campaign_id", "adset": "adset_id", "ad": "ad_id"}[
            self.level
        ]

    @property
    def primary_key(self) -> tuple[str, ...]:
        """One row per key in the lake: account, bucket start date, object, breakdown values."""
        key = ["account_id", "date"]
        if self.level != "account":
            key.append(self.object_id)
        return (*key, *self.breakdowns)

    @property
    def off_meta_actions(self) -> str:
        """``complete`` | ``not_returned`` (Meta's Type 1 breakdowns) | ``web_only`` (Type 2)."""
        return B.off_meta_actions(self.breakdowns, self.action_breakdowns)

    @property
    def action_breakdown_keys(self) -> tuple[str, ...]:
        """Keys each ``actions`` element carries besides action_type and the windows."""
        return tuple(a for a in self.action_breakdowns if a != "action_type")

    @property
    def needs_opt_in(self) -> tuple[str, ...]:
        return tuple(b for b in self.breakdowns if b in B.NEEDS_ADS_MANAGER_OPT_IN)

    def windows(self, default: Sequence[str]) -> list[str]:
        return list(self.attribution_windows if self.attribution_windows is not None else default)

    def spec(self, default_windows: Sequence[str], effective_statuses: Sequence[str]) -> dict[str, Any]:
        """What the report's requests depend on (its re-attach state is keyed by a hash of this)."""
        return {
            "report": self.name,
            "fields": self.request_fields,
            "level": self.level,
            "breakdowns": list(self.breakdowns),
            "action_breakdowns": list(self.action_breakdowns),
            "time_increment": self.time_increment,
            "windows": self.windows(default_windows),
            "statuses": list(effective_statuses),
        }

    def spec_digest(self, default_windows: Sequence[str], effective_statuses: Sequence[str]) -> str:
        text = json.dumps(self.spec(default_windows, effective_statuses), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def describe(self) -> str:
        parts = [f"level={self.level}"]
        if self.breakdowns:
            parts.append(f"breakdowns={','.join(self.breakdowns)}")
        if self.action_breakdowns != ("action_type",):
            parts.append(f"action_breakdowns={','.join(self.action_breakdowns)}")
        parts.append(f"time_increment={self.time_increment}")
        if self.fields:
            parts.append(f"fields+={','.join(self.fields)}")
        return f"{self.name} ({' '.join(parts)})"


def _level_of(field: str) -> str:
    return next(level for level in LEVELS if field in LEVEL_IDS[level])


DEFAULT = ReportConfig(name=DEFAULT_REPORT)


def preset(name: str) -> ReportConfig:
    return ReportConfig(preset=name)  # type: ignore[call-arg]


def check_reports(reports: Sequence[ReportConfig]) -> None:
    """Across reports: names unique, the default report present."""
    seen: set[str] = set()
    for index, report in enumerate(reports):
        if report.name in seen:
            raise ValueError(
                f"reports[{index}]: report name {report.name!r} is declared twice; name each report once"
            )
        seen.add(report.name)
    if DEFAULT_REPORT not in seen:
        raise ValueError(
            f"reports = [{', '.join(r.name for r in reports)}] lacks the default report: add '- name: default' "
            "(the ad x day report the cost_per_lead, conversations and reconciliation marts are built on)"
        )


def check_opt_in(reports: Sequence[ReportConfig], account_ids: Sequence[str]) -> str | None:
    """A report with a breakdown that needs an Ads Manager opt-in must list every configured account
    in ``ads_manager_opt_in`` (the accounts whose admin enabled it); the problem, naming the accounts."""
    for index, report in enumerate(reports):
        for name in report.needs_opt_in:
            missing = [a for a in account_ids if a not in report.ads_manager_opt_in]
            if missing:
                return (
                    f"insights.reports[{index}] ({report.name}): breakdown {name!r} needs an Ads Manager opt-in per "
                    f"ad account ({B.NEEDS_ADS_MANAGER_OPT_IN[name]}, {B.SOURCE_URL}); not confirmed for "
                    f"{', '.join(missing)}: enable it in Ads Manager's reporting breakdown menu of each account, then "
                    "list them in ads_manager_opt_in, or remove the breakdown"
                )
    return None


def presets() -> list[ReportConfig]:
    return [preset(name) for name in PRESETS]
