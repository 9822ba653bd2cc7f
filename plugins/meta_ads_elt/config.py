"""The pipeline's one config file (``include/pipeline.yaml``), declared once, typed and validated.

A bad key or value raises :class:`ConfigError` naming the key, the value and what is allowed, e.g.::

    include/pipeline.yaml: accounts[1].id = 'act_12x': must be 'act_' followed by digits, e.g. 'act_1234567890'

Relative paths (lake root, marts) are resolved against the project directory (the parent of
``include/``), so the DAG, the CLI and dbt agree on them whatever the working directory.
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from meta_ads_elt.fields import AD_EFFECTIVE_STATUSES

PROJECT_DIR = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG_PATH = PROJECT_DIR / "include" / "pipeline.yaml"
CONFIG_PATH_ENV = "META_PIPELINE_CONFIG"

Platform = Literal["messenger", "instagram"]
AttributionWindow = Literal["1d_click", "7d_click", "28d_click", "1d_view"]
AdEffectiveStatus = Literal[AD_EFFECTIVE_STATUSES]  # Meta's Ad.EffectiveStatus values
DEFAULT_SCHEDULE = "0 12 * * *"
"""12:00 UTC: every account-local day D ends by D+1 12:00 UTC (UTC-12 is the westmost time zone), so the
run covering D never extracts a day that is still going on, in any account."""


class ConfigError(ValueError):
    """The config file is missing, unreadable, or has a bad key or value."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AccountConfig(_Strict):
    """An ad account to extract Insights and ad objects for."""

    id: str = Field(description="'act_' followed by digits")
    name: str | None = None

    @field_validator("id")
    @classmethod
    def _act_prefixed(cls, value: str) -> str:
        if not re.fullmatch(r"act_\d+", value):
            raise ValueError("must be 'act_' followed by digits, e.g. 'act_1234567890'")
        return value

    @property
    def numeric_id(self) -> str:
        """The id without ``act_``, as Insights rows and the lake's ``account_id`` partitions carry it."""
        return self.id.removeprefix("act_")


class PageConfig(_Strict):
    """A Facebook Page whose lead forms and Messenger/Instagram conversations are extracted."""

    id: str
    platforms: tuple[Platform, ...] = ("messenger", "instagram")
    leads: bool = True
    conversations: bool = True
    forms: tuple[str, ...] = ()  # only these lead forms of the Page (default: all)

    @field_validator("id")
    @classmethod
    def _numeric(cls, value: str) -> str:
        if not re.fullmatch(r"\d+", value):
            raise ValueError("must be the Page's numeric id, e.g. '102927594431953'")
        return value

    @field_validator("forms")
    @classmethod
    def _numeric_forms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for form_id in value:
            if not re.fullmatch(r"\d+", str(form_id)):
                raise ValueError(f"form id {form_id!r} must be a lead form's numeric id (GET /<page_id>/leadgen_forms)")
        return value


class InsightsConfig(_Strict):
    attribution_windows: tuple[AttributionWindow, ...] = ("7d_click", "1d_view")
    chunk_days: Annotated[int, Field(ge=1, le=90)] | None = None  # None: the whole window in one job
    max_concurrent_jobs: Annotated[int, Field(ge=1, le=100)] = 10
    deferrable: bool = True
    poll_interval_seconds: Annotated[float, Field(gt=0, le=300)] = 30.0
    stall_timeout_minutes: Annotated[float, Field(gt=0, le=120)] = 20.0
    queued_timeout_minutes: Annotated[float, Field(gt=0, le=600)] = 60.0
    worker_poll_seconds: Annotated[float, Field(ge=0, le=600)] = 15.0
    effective_statuses: tuple[AdEffectiveStatus, ...] = AD_EFFECTIVE_STATUSES


class PrivacyConfig(_Strict):
    """Lead and message PII handling. By default email/phone are hashed, names and free text dropped."""

    raw_lead_fields_allow_list: tuple[str, ...] = ()
    keep_message_text: bool = False
    default_phone_country_code: str | None = Field(default=None, pattern=r"^\d{1,3}$")


class MartsConfig(_Strict):
    build_path: str = "data/build/marts_build.duckdb"
    serving_path: str = "data/marts.duckdb"
    parquet_dir: str = "data/marts"


class PipelineConfig(_Strict):
    """Everything the DAGs need to know about what to extract and where to put it."""

    meta_conn_id: str = "meta_default"
    lake_root: str = "data/lake"
    lookback_days: Annotated[int, Field(ge=1, le=90)] = 28
    schedule: str = DEFAULT_SCHEDULE
    max_active_runs: Annotated[int, Field(ge=1, le=16)] = 2
    execution_timeout_minutes: Annotated[int, Field(ge=5, le=1440)] = 180
    max_rate_limit_wait_minutes: Annotated[float, Field(gt=0, le=1440)] = 30.0
    accounts: tuple[AccountConfig, ...] = Field(min_length=1)
    pages: tuple[PageConfig, ...] = ()
    insights: InsightsConfig = InsightsConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    marts: MartsConfig = MartsConfig()

    @model_validator(mode="after")
    def _unique_ids(self) -> PipelineConfig:
        for kind, items in (("accounts", self.accounts), ("pages", self.pages)):
            seen: set[str] = set()
            for index, item in enumerate(items):
                if item.id in seen:
                    raise ValueError(f"{kind}[{index}].id {item.id!r} is listed twice; list each once")
                seen.add(item.id)
        return self

    def resolve(self, path: str) -> str:
        """An absolute local path (or an unchanged URL such as ``s3://...``) for a configured path."""
        if "://" in path:
            return path
        candidate = Path(path)
        return str(candidate if candidate.is_absolute() else PROJECT_DIR / candidate)

    @property
    def lake_root_resolved(self) -> str:
        return self.resolve(os.environ.get("META_LAKE_ROOT", self.lake_root))


def _describe(error: dict) -> str:
    location = ""
    for part in error["loc"]:
        location += f"[{part}]" if isinstance(part, int) else (f".{part}" if location else str(part))
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"{location}: unknown key; check its spelling (allowed keys are listed in docs/CONFIG.md)"
    if error["type"] == "missing":
        return f"{location}: required key is missing"
    return f"{location} = {error.get('input')!r}: {message}"


def parse_config(data: object, *, source: str = "pipeline config") -> PipelineConfig:
    """Validate already-loaded YAML data; raise :class:`ConfigError` with every problem listed."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of keys at the top level, got {type(data).__name__}")
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        problems = "\n  ".join(_describe(error) for error in exc.errors())
        raise ConfigError(f"{source} is invalid:\n  {problems}") from None


def load_config(path: str | os.PathLike | None = None) -> PipelineConfig:
    """Read and validate the config file (``$META_PIPELINE_CONFIG`` or ``include/pipeline.yaml``)."""
    config_path = Path(path or os.environ.get(CONFIG_PATH_ENV) or DEFAULT_CONFIG_PATH)
    try:
        text = config_path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the pipeline config {config_path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{config_path} is not valid YAML: {exc}") from None
    return parse_config(data, source=str(config_path))


@cache
def load_config_cached(path: str | None = None) -> PipelineConfig:
    return load_config(path)
