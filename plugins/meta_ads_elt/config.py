"""The pipeline's one config file (``include/pipeline.yaml``), declared once, typed and validated.

A bad key or value raises :class:`ConfigError` naming the key, the value and what is allowed, e.g.::

    include/pipeline.yaml: accounts[1].id = 'act_12x': must be 'act_' followed by digits, e.g. 'act_1234567890'

Relative paths (lake root, marts) are resolved against the project directory (the parent of
``include/``), so the DAG, the CLI and dbt agree on them whatever the working directory.

Everything that can be checked without the network is checked when the file is read (at DAG parse
time), so a bad value fails the DAG import with its key rather than a task hours later with another
library's error: the ``schedule`` is parsed as Airflow parses it, the lake root must be a writable
directory or an object store both the lake writer (fsspec) and dbt-duckdb can use, and the marts paths
must be local, writable and of the right kind (a DuckDB file, a Parquet directory).
"""

from __future__ import annotations

import os
import re
import stat
from datetime import date
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from meta_ads_elt.fields import AD_EFFECTIVE_STATUSES
from meta_ads_elt.reports import DEFAULT, AttributionWindow, ReportConfig, check_opt_in, check_reports

PROJECT_DIR = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG_PATH = PROJECT_DIR / "include" / "pipeline.yaml"
CONFIG_PATH_ENV = "META_PIPELINE_CONFIG"

Platform = Literal["messenger", "instagram"]
if TYPE_CHECKING:  # mypy cannot read a Literal built from a tuple: str to it, the values checked by pydantic
    AdEffectiveStatus = str
else:
    AdEffectiveStatus = Literal[AD_EFFECTIVE_STATUSES]  # Meta's Ad.EffectiveStatus values
DEFAULT_SCHEDULE = "0 12 * * *"
"""12:00 UTC: every account-local day D ends by D+1 12:00 UTC (UTC-12 is the westmost time zone), so the
run covering D never extracts a day that is still going on, in any account."""

OBJECT_STORE_PROTOCOLS = ("s3", "gs", "gcs", "az", "abfs", "abfss")
"""Lake URLs both sides can use: the lake writer (fsspec, with its s3fs/gcsfs/adlfs package installed)
and dbt-duckdb (DuckDB's httpfs/azure extensions)."""


class ConfigError(ValueError):
    """The config file is missing, unreadable, or has a bad key or value."""


def resolve_path(path: str) -> str:
    """An absolute local path (relative ones against the project directory), or an unchanged URL."""
    if "://" in path:
        return path
    candidate = Path(path).expanduser()
    return str(candidate if candidate.is_absolute() else PROJECT_DIR / candidate)


# ---- checks shared by the config keys and the environment overrides ---------------------------


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def _kind(path: Path) -> str:
    mode = path.stat().st_mode
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def _writable_ancestor(path: Path) -> None:
    """The directory that would hold ``path`` exists (or can be created) and is writable."""
    ancestor = _nearest_existing(path.parent)
    if not ancestor.is_dir():
        raise ValueError(f"{ancestor} is {_kind(ancestor)}, not a directory, so {path} cannot be created")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ValueError(f"directory {ancestor} is not writable by this user")


def check_local_directory(value: str) -> None:
    """A directory that exists and is writable, or can be created in a writable directory."""
    path = Path(value)
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"{path} is {_kind(path)}, not a directory; give a directory such as data/lake")
        if not os.access(path, os.W_OK | os.X_OK):
            raise ValueError(f"directory {path} is not writable by this user")
        return
    _writable_ancestor(path)


def check_local_file(value: str, example: str) -> None:
    """A regular file that can be replaced (or created) in a writable directory."""
    path = Path(value)
    if path.exists() and not path.is_file():
        raise ValueError(f"{path} is {_kind(path)}; give a file path such as {example}")
    _writable_ancestor(path)


def check_lake_root(value: str) -> None:
    """A local directory (see :func:`check_local_directory`) or an object store URL we can use."""
    if not value.strip():
        raise ValueError("is empty; give a directory such as data/lake or a URL such as s3://bucket/lake")
    if "://" not in value:
        check_local_directory(value)
        return
    protocol = value.split("://", 1)[0].lower()
    if protocol in ("file", "local"):
        check_local_directory(value.split("://", 1)[1])
        return
    allowed = ", ".join(f"{p}://" for p in OBJECT_STORE_PROTOCOLS)
    if protocol not in OBJECT_STORE_PROTOCOLS:
        from fsspec.registry import known_implementations

        known = protocol in known_implementations
        why = "cannot be read by dbt-duckdb in another process" if known else "is not a known protocol"
        raise ValueError(f"protocol '{protocol}://' {why}; use a local directory or one of {allowed}")
    import fsspec

    try:
        fsspec.get_filesystem_class(protocol)
    except ImportError as exc:
        raise ValueError(f"protocol '{protocol}://' needs a package that is not installed: {exc}") from None


def _check_local_path(value: str, what: str) -> None:
    if "://" in value:
        raise ValueError(f"must be a local path: {what} is written aside and renamed into place")


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
                raise ValueError(
                    f"form id {form_id!r} must be a lead form's numeric id (GET /<page_id>/leadgen_forms)"
                )
        return value


ACCOUNT_STATUSES: dict[str, int] = {
    "ACTIVE": 1,
    "DISABLED": 2,
    "UNSETTLED": 3,
    "PENDING_RISK_REVIEW": 7,
    "PENDING_SETTLEMENT": 8,
    "IN_GRACE_PERIOD": 9,
    "PENDING_CLOSURE": 100,
    "CLOSED": 101,
}
"""Meta's ``AdAccount.account_status`` values (Marketing API reference, "Ad Account": 1 = ACTIVE, 2 = DISABLED, ...)."""
if TYPE_CHECKING:  # as AdEffectiveStatus: str to mypy, one of ACCOUNT_STATUSES to pydantic
    AccountStatusName = str
else:
    AccountStatusName = Literal[tuple(ACCOUNT_STATUSES)]
DELIVERING_STATUSES: tuple[str, ...] = (
    "ACTIVE",
    "UNSETTLED",
    "PENDING_RISK_REVIEW",
    "PENDING_SETTLEMENT",
    "IN_GRACE_PERIOD",
    "PENDING_CLOSURE",
)
"""Statuses under which an account can still have spend to extract; DISABLED and CLOSED accounts are listed
in the run summary instead (``accounts.account_status`` chooses otherwise)."""

ACCOUNT_SOURCE = re.compile(r"me|business:\d+:(owned|client)")
PAGE_SOURCE = re.compile(r"me|promoted|business:\d+:(owned|client)")
_AD_ACCOUNT_AS_BUSINESS = re.compile(r"business:(act_\d+)(:.*)?")


def ad_account_as_business_fix(account: str) -> str:
    """The fix for an ad account id (``act_<id>``) given where a Business id belongs (a ``business:``
    source): found here in the config, or by discovery when Meta says what the id is."""
    return (
        f"{account} is an ad account, not a Business: list it under accounts: (- id: {account}), or put "
        "the id of the Business that owns it here (Business Settings > Business info)"
    )


def _source_error(source: str, listing: str) -> str:
    """The error for a ``discover:`` source that is not one of ``listing``, with the fix when the user put
    an ad account id (``act_<id>``) where a Business id belongs."""
    wrong = _AD_ACCOUNT_AS_BUSINESS.fullmatch(str(source))
    hint = f"; {ad_account_as_business_fix(wrong.group(1))}" if wrong else ""
    return f"source {source!r} is not one of: {listing}{hint}"


class IdNameFilter(_Strict):
    """Ids and/or name patterns (shell-style, case-insensitive: ``Acme*``, ``*[Tt]est*``)."""

    ids: tuple[str, ...] = ()
    names: tuple[str, ...] = ()

    @field_validator("ids", mode="before")
    @classmethod
    def _as_strings(cls, value: Any) -> Any:
        return tuple(str(v) for v in value) if isinstance(value, list | tuple) else value

    @property
    def empty(self) -> bool:
        return not self.ids and not self.names


class _Discovery(_Strict):
    include: IdNameFilter = IdNameFilter()
    exclude: IdNameFilter = IdNameFilter()


class AccountDiscovery(_Discovery):
    """``accounts: {discover: [...]}``: the ad accounts are whatever these sources list on each run."""

    discover: tuple[str, ...] = Field(min_length=1)
    account_status: tuple[AccountStatusName, ...] = DELIVERING_STATUSES
    currency: tuple[str, ...] = ()

    @field_validator("discover")
    @classmethod
    def _sources(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for source in value:
            if not ACCOUNT_SOURCE.fullmatch(str(source)):
                raise ValueError(
                    _source_error(
                        source,
                        "'me' (GET /me/adaccounts), 'business:<business id>:owned' (/<business id>/owned_ad_accounts), "
                        "'business:<business id>:client' (/<business id>/client_ad_accounts)",
                    )
                )
        return value

    @field_validator("currency")
    @classmethod
    def _iso_currency(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for code in value:
            if not re.fullmatch(r"[A-Z]{3}", str(code)):
                raise ValueError(f"currency {code!r} must be an ISO 4217 code in capitals, e.g. 'USD'")
        return value


class PageDiscovery(_Discovery):
    """``pages: {discover: [...]}``: the Pages are whatever these sources list on each run; every Page found
    gets these settings."""

    discover: tuple[str, ...] = Field(min_length=1)
    platforms: tuple[Platform, ...] = ("messenger", "instagram")
    leads: bool = True
    conversations: bool = True

    @field_validator("discover")
    @classmethod
    def _sources(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for source in value:
            if not PAGE_SOURCE.fullmatch(str(source)):
                raise ValueError(
                    _source_error(
                        source,
                        "'me' (GET /me/accounts), 'promoted' (the Pages the extracted ad accounts promote, "
                        "/act_<id>/promote_pages), 'business:<business id>:owned' (/<business id>/owned_pages), "
                        "'business:<business id>:client' (/<business id>/client_pages)",
                    )
                )
        return value


def _list_or_discovery(value: Any) -> str:
    return "discover" if isinstance(value, dict) else "list"


AccountsSetting = Annotated[
    Annotated[tuple[AccountConfig, ...], Tag("list")] | Annotated[AccountDiscovery, Tag("discover")],
    Discriminator(_list_or_discovery),
]
PagesSetting = Annotated[
    Annotated[tuple[PageConfig, ...], Tag("list")] | Annotated[PageDiscovery, Tag("discover")],
    Discriminator(_list_or_discovery),
]
_UNION_TAGS = frozenset({"list", "discover"})


class MappingConfig(_Strict):
    """How the DAG spreads the extraction over mapped tasks (dynamic task mapping)."""

    accounts_per_task: Annotated[int, Field(ge=1, le=500)] = 10
    pages_per_task: Annotated[int, Field(ge=1, le=500)] = 10
    parallel_within_task: Annotated[int, Field(ge=1, le=32)] = 4


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
    # The async reports each account runs (meta_ads_elt.reports): the default ad x day report, presets, yours.
    reports: tuple[ReportConfig, ...] = (DEFAULT,)

    @field_validator("reports")
    @classmethod
    def _reports(cls, value: tuple[ReportConfig, ...]) -> tuple[ReportConfig, ...]:
        check_reports(value)
        return value


class PrivacyConfig(_Strict):
    """Lead and message PII handling. By default email/phone are hashed, names and free text dropped."""

    raw_lead_fields_allow_list: tuple[str, ...] = ()
    keep_message_text: bool = False
    default_phone_country_code: str | None = Field(default=None, pattern=r"^\d{1,3}$")


class MartsConfig(_Strict):
    build_path: str = "data/build/marts_build.duckdb"
    serving_path: str = "data/marts.duckdb"
    parquet_dir: str = "data/marts"
    # How long a replaced Parquet version stays on disk for readers still on it (publish.py).
    parquet_retention_minutes: Annotated[float, Field(ge=0, le=7 * 24 * 60)] = 60
    # Optional reporting currency (ISO 4217): the marts with money add reporting_currency, fx_rate and
    # spend_reporting, from the rates in fx_rates_path (else the dbt seed fx_rates). Off by default.
    reporting_currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    fx_rates_path: str | None = None
    # extraction_coverage lists each account's days from here (when earlier than its first extracted day).
    coverage_start_date: date | None = None

    @field_validator("fx_rates_path")
    @classmethod
    def _fx_rates_file(cls, value: str | None) -> str | None:
        if value is None:
            return value
        _check_local_path(value, "the rates file")
        if not value.lower().endswith((".csv", ".parquet")):
            raise ValueError(
                f"{value!r} must be a .csv or .parquet file with the columns currency, reporting_currency, "
                "rate, valid_from, valid_to (dbt_project/seeds/fx_rates.csv shows them)"
            )
        if not Path(resolve_path(value)).is_file():
            raise ValueError(
                f"{value!r} is not a file (resolved to {resolve_path(value)}): create it or fix the path"
            )
        return value

    @field_validator("build_path", "serving_path")
    @classmethod
    def _duckdb_file(cls, value: str) -> str:
        _check_local_path(value, "the DuckDB file")
        check_local_file(resolve_path(value), "data/marts.duckdb")
        return value

    @field_validator("parquet_dir")
    @classmethod
    def _parquet_directory(cls, value: str) -> str:
        _check_local_path(value, "each Parquet copy")
        check_local_directory(resolve_path(value))
        return value

    @model_validator(mode="after")
    def _distinct_files(self) -> MartsConfig:
        if self.fx_rates_path and not self.reporting_currency:
            raise ValueError(
                f"fx_rates_path is {self.fx_rates_path!r} but reporting_currency is not set: set "
                "marts.reporting_currency (e.g. EUR) to convert spend with these rates"
            )
        if resolve_path(self.build_path) == resolve_path(self.serving_path):
            raise ValueError(
                f"build_path and serving_path are both {self.serving_path!r}: dbt writes the build file while "
                "BI tools read the serving file, so they must differ"
            )
        return self


class PipelineConfig(_Strict):
    """Everything the DAGs need to know about what to extract and where to put it."""

    meta_conn_id: str = "meta_default"
    lake_root: str = "data/lake"
    lookback_days: Annotated[int, Field(ge=1, le=90)] = 28
    schedule: str = DEFAULT_SCHEDULE
    max_active_runs: Annotated[int, Field(ge=1, le=16)] = 2
    execution_timeout_minutes: Annotated[int, Field(ge=5, le=1440)] = 180
    max_rate_limit_wait_minutes: Annotated[float, Field(gt=0, le=1440)] = 30.0
    arrival_history_days: Annotated[int, Field(ge=1, le=1095)] | None = None
    accounts: AccountsSetting
    pages: PagesSetting = ()
    mapping: MappingConfig = MappingConfig()
    insights: InsightsConfig = InsightsConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    marts: MartsConfig = Field(default_factory=MartsConfig)

    @field_validator("meta_conn_id")
    @classmethod
    def _connection_id(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,250}", value):
            raise ValueError(
                "must be an Airflow Connection id: letters, digits, '_', '-' or '.', e.g. meta_default"
            )
        return value

    @field_validator("lake_root")
    @classmethod
    def _usable_lake_root(cls, value: str) -> str:
        check_lake_root(resolve_path(value) if value.strip() else value)
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        check_schedule(value)
        return value

    @field_validator("accounts", "pages", mode="before")
    @classmethod
    def _list_or_mapping(cls, value: Any, info: Any) -> Any:
        if not isinstance(value, list | tuple | dict):
            one = "{id: act_<digits>}" if info.field_name == "accounts" else "{id: <Page id>}"
            raise ValueError(
                f"must be a list of {info.field_name} (each {one}) or a mapping with discover: [...] "
                "(see docs/CONFIG.md)"
            )
        if info.field_name == "accounts" and isinstance(value, list | tuple) and not value:
            raise ValueError(
                "Tuple should have at least 1 item: list your ad accounts, or discover them with "
                "accounts: {discover: [me]}"
            )
        return value

    @model_validator(mode="after")
    def _arrival_covers_the_lookback(self) -> PipelineConfig:
        if self.arrival_history_days is not None and self.arrival_history_days < self.lookback_days:
            raise ValueError(
                f"arrival_history_days = {self.arrival_history_days} is shorter than lookback_days = "
                f"{self.lookback_days}: a new account's first run extracts at least the lookback; raise it or remove it"
            )
        return self

    @model_validator(mode="after")
    def _unique_ids(self) -> PipelineConfig:
        listed_ids = (
            ("accounts", [account.id for account in self.listed_accounts]),
            ("pages", [page.id for page in self.listed_pages]),
        )
        for kind, ids in listed_ids:
            seen: set[str] = set()
            for index, item_id in enumerate(ids):
                if item_id in seen:
                    raise ValueError(f"{kind}[{index}].id {item_id!r} is listed twice; list each once")
                seen.add(item_id)
        problem = check_opt_in(self.insights.reports, [account.id for account in self.listed_accounts])
        if problem:
            raise ValueError(problem)
        return self

    @property
    def account_discovery(self) -> AccountDiscovery | None:
        """The ``accounts: {discover: [...]}`` settings (resolved on every run); None when accounts are listed."""
        return self.accounts if isinstance(self.accounts, AccountDiscovery) else None

    @property
    def page_discovery(self) -> PageDiscovery | None:
        """The ``pages: {discover: [...]}`` settings, which every Page found gets; None when Pages are listed."""
        return self.pages if isinstance(self.pages, PageDiscovery) else None

    @property
    def accounts_discovered(self) -> bool:
        """True when ``accounts:`` is a ``discover:`` mapping (resolved on every run), not a list."""
        return self.account_discovery is not None

    @property
    def pages_discovered(self) -> bool:
        return self.page_discovery is not None

    @property
    def listed_accounts(self) -> tuple[AccountConfig, ...]:
        """The explicitly listed accounts (one task each); ``()`` when they are discovered."""
        return () if isinstance(self.accounts, AccountDiscovery) else self.accounts

    @property
    def listed_pages(self) -> tuple[PageConfig, ...]:
        """The explicitly listed Pages (one task each); ``()`` when they are discovered."""
        return () if isinstance(self.pages, PageDiscovery) else self.pages

    @property
    def extracts_leads(self) -> bool:
        discovery = self.page_discovery
        return discovery.leads if discovery is not None else any(page.leads for page in self.listed_pages)

    @property
    def extracts_conversations(self) -> bool:
        discovery = self.page_discovery
        return (
            discovery.conversations
            if discovery is not None
            else any(p.conversations for p in self.listed_pages)
        )

    @property
    def history_days_on_arrival(self) -> int:
        """Days extracted the first time an account or Page is seen (``arrival_history_days``, else the lookback)."""
        return self.arrival_history_days or self.lookback_days

    def resolve(self, path: str) -> str:
        """An absolute local path (or an unchanged URL such as ``s3://...``) for a configured path."""
        return resolve_path(path)

    @property
    def lake_root_resolved(self) -> str:
        """The lake root, or ``$META_LAKE_ROOT`` when set (checked like the key)."""
        override = os.environ.get("META_LAKE_ROOT")
        if override is None:
            return self.resolve(self.lake_root)
        try:
            check_lake_root(resolve_path(override) if override.strip() else override)
        except ValueError as exc:
            raise ConfigError(f"environment variable META_LAKE_ROOT = {override!r}: {exc}") from None
        return self.resolve(override)


def check_schedule(value: str) -> None:
    """A cron expression as Airflow's ``CronDataIntervalTimetable`` reads it (5 fields, or a preset)."""
    from airflow.sdk import CronDataIntervalTimetable
    from airflow.sdk.exceptions import AirflowTimetableInvalid

    allowed = (
        "a 5-field cron expression (minute hour day-of-month month day-of-week, in UTC) such as "
        "'0 0 * * *', or @hourly, @daily, @weekly, @monthly, @quarterly or @yearly"
    )
    timetable = CronDataIntervalTimetable(value, timezone="UTC")
    try:
        timetable.validate()
    except AirflowTimetableInvalid as exc:
        raise ValueError(f"is not a cron expression Airflow accepts ({exc}); use {allowed}") from None
    if len(timetable.expression.split()) != 5:
        raise ValueError(f"has {len(timetable.expression.split())} fields; use {allowed}")


_OPERATOR_ARGUMENTS: dict[str, tuple[type[BaseModel], str]] = {
    "account_id": (AccountConfig, "id"),
    "page_id": (PageConfig, "id"),
    "meta_conn_id": (PipelineConfig, "meta_conn_id"),
    "lake_root": (PipelineConfig, "lake_root"),
    "lookback_days": (PipelineConfig, "lookback_days"),  # checked by OperatorLookbackDays (see below)
    "max_rate_limit_wait_minutes": (PipelineConfig, "max_rate_limit_wait_minutes"),
    "attribution_windows": (InsightsConfig, "attribution_windows"),
    "chunk_days": (InsightsConfig, "chunk_days"),
    "max_concurrent_jobs": (InsightsConfig, "max_concurrent_jobs"),
    "poll_interval": (InsightsConfig, "poll_interval_seconds"),
    "stall_timeout_minutes": (InsightsConfig, "stall_timeout_minutes"),
    "queued_timeout_minutes": (InsightsConfig, "queued_timeout_minutes"),
    "worker_poll_seconds": (InsightsConfig, "worker_poll_seconds"),
    "effective_statuses": (InsightsConfig, "effective_statuses"),
    "deferrable": (InsightsConfig, "deferrable"),
    "platforms": (PageConfig, "platforms"),
    "form_ids": (PageConfig, "forms"),
    "pii_allow_list": (PrivacyConfig, "raw_lead_fields_allow_list"),
    "default_phone_country_code": (PrivacyConfig, "default_phone_country_code"),
    "keep_message_text": (PrivacyConfig, "keep_message_text"),
}
"""Operator arguments that carry a config key's value: checked against that key's one declaration
(:func:`check_operator_arguments`), defaulting to that key's default (:func:`operator_default`)."""


def operator_default(argument: str) -> Any:
    """The default of operator argument ``argument``: the default of the config key it carries, so an
    operator built without the DAG behaves as the DAG with an empty config does (one place per default)."""
    model, key = _OPERATOR_ARGUMENTS[argument]
    return model.model_fields[key].get_default(call_default_factory=True)


OperatorLookbackDays = Annotated[int, Field(ge=1)]
"""An operator may look back further than the daily DAG's ``lookback_days`` (1-90), e.g. in a backfill."""


def check_operator_arguments(operator: str, **arguments: Any) -> None:
    """Validate operator arguments by the rules of the config keys they come from (see
    ``_OPERATOR_ARGUMENTS``); raise :class:`ConfigError` naming the operator, argument, value and rule.

    Jinja-templated values (``"{{ ... }}"``) are left to be checked when rendered.
    """
    for name, value in arguments.items():
        if isinstance(value, str) and "{{" in value:
            continue
        if name == "lookback_days":
            try:
                TypeAdapter(OperatorLookbackDays).validate_python(value)
            except ValidationError as exc:
                raise ConfigError(
                    f"{operator}: argument lookback_days = {value!r}: {exc.errors()[0]['msg']}"
                ) from None
            continue
        model, key = _OPERATOR_ARGUMENTS[name]
        candidate = value
        if name == "account_id" and isinstance(value, str | int) and not str(value).startswith("act_"):
            candidate = f"act_{value}"  # the operators take ad account ids with or without act_
        field = model.model_fields[key]
        try:
            if model in (AccountConfig, PageConfig) and key == "id":
                model.model_validate({"id": str(candidate) if isinstance(candidate, int) else candidate})
            else:
                # the key's type and constraints, an annotation built at run time (Any to mypy)
                rule: Any = Annotated[field.annotation, field]
                TypeAdapter(rule).validate_python(candidate)
        except ValidationError as exc:
            message = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise ConfigError(
                f"{operator}: argument {name} = {value!r}: {message} (the rule of {_key_path(model, key)} "
                "in include/pipeline.yaml)"
            ) from None


def _key_path(model: type[BaseModel], key: str) -> str:
    prefix = {
        AccountConfig: "accounts[].",
        PageConfig: "pages[].",
        InsightsConfig: "insights.",
        PrivacyConfig: "privacy.",
        MartsConfig: "marts.",
    }.get(model, "")
    return prefix + key


def _allowed_keys(location: tuple) -> list[str]:
    model: Any = PipelineConfig
    for position, part in enumerate(location[:-1]):
        if isinstance(part, int):
            continue
        if position == 1 and part in _UNION_TAGS and location[0] in ("accounts", "pages"):
            listed = AccountConfig if location[0] == "accounts" else PageConfig
            discovered = AccountDiscovery if location[0] == "accounts" else PageDiscovery
            model = discovered if part == "discover" else listed
            continue
        field = (
            model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        )
        if field is None:
            return []
        annotation = field.annotation
        inner = [a for a in get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        model = inner[0] if inner else annotation
    return list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


def _report_label(data: object, index: int) -> str:
    """`` (name)`` of the report at ``insights.reports[index]`` in the raw data, so errors name it."""
    try:
        entry = data["insights"]["reports"][index]  # type: ignore[index]
        name = entry.get("name") or entry.get("preset")
    except (KeyError, IndexError, TypeError, AttributeError):
        return ""
    return f" ({name})" if isinstance(name, str) and name else ""


def _describe(error: ErrorDetails, data: object = None) -> str:
    location = ""
    loc = tuple(error["loc"])
    for i, part in enumerate(loc):
        if i == 1 and part in _UNION_TAGS and loc[0] in ("accounts", "pages"):
            continue  # which form (list or discover:) was tried: the value says it
        location += f"[{part}]" if isinstance(part, int) else (f".{part}" if location else str(part))
        if i == 2 and loc[:2] == ("insights", "reports") and isinstance(part, int):
            location += _report_label(data, part)
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        allowed = ", ".join(_allowed_keys(tuple(error["loc"])))
        return f"{location}: unknown key; check its spelling (allowed here: {allowed}; see docs/CONFIG.md)"
    if error["type"] == "missing":
        return f"{location}: required key is missing"
    if isinstance(error.get("input"), dict):  # a check across keys: its message names them
        return f"{location + ': ' if location else ''}{message}"
    return f"{location} = {error.get('input')!r}: {message}"


def parse_config(data: object, *, source: str = "pipeline config") -> PipelineConfig:
    """Validate already-loaded YAML data; raise :class:`ConfigError` with every problem listed.

    The message's first line names the first bad key, its value and what is allowed; any further
    problems follow, one a line.
    """
    if data is None:
        raise ConfigError(f"{source} is empty: it needs at least an accounts: list (see docs/CONFIG.md)")
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of keys at the top level, got {type(data).__name__}")
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        first, *others = [_describe(error, data) for error in exc.errors()]
        more = "".join(f"\n  also: {problem}" for problem in others)
        raise ConfigError(f"{source}: {first}{more}") from None


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
