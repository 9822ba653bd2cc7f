"""dbt build runner and the publish step that serves the marts to BI tools.

Guarantees:

* :func:`run_dbt_build` runs ``dbt build`` (seeds, models, unit and data tests) in a subprocess of this
  environment's ``dbt`` with absolute paths (lake root, build DuckDB file), so it behaves the same from
  Airflow, ``make run`` and the tests. dbt's progress (one line per model, seed and test as it
  finishes, with its status and time) goes to this module's logger while dbt runs (the task log, in Airflow), then a
  PASS / WARN / ERROR / SKIP summary naming each warning and failure. A failure raises
  :class:`DbtBuildError` naming every failing node; warn-level results are returned.
  The build file is written by one process at a time: callers run it in a 1-slot pool.
* :func:`publish_marts` (implemented in :mod:`meta_ads_elt.publish`) never writes a file readers
  have open: the serving file ``data/marts.duckdb`` is written aside and swapped in with one rename,
  the Parquet copies are immutable versions behind one swapped pointer, ``data/marts/_current``,
  and only the dates whose rows changed are copied. The serving file uses storage version ``v1.0.0``
  by default, so BI drivers that bundle DuckDB 1.x can open it.
* :func:`summarize_marts` prints a short human summary of the published marts.

Relative paths are resolved against the repository root (the directory holding ``dbt_project/``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import glob
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from meta_ads_elt.publish import DEFAULT_RETAIN_MINUTES, PublishError, publish  # noqa: F401 (PublishError: part of this API)

log = logging.getLogger(__name__)

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

DEFAULT_SERVING_STORAGE_VERSION = "v1.0.0"
"""Readable by every DuckDB >= 1.0 (checked with DuckDB 1.4.3); DuckDB 2.0 writes this when asked."""


class DbtBuildError(RuntimeError):
    """``dbt build`` failed; ``failures`` lists (node unique_id, status, message); ``crash_signal``
    names the signal that ended dbt when it crashed (``"SIGSEGV"``), else None."""

    def __init__(
        self, message: str, failures: Sequence[tuple[str, str, str]] = (), crash_signal: str | None = None
    ) -> None:
        super().__init__(message)
        self.failures = list(failures)
        self.crash_signal = crash_signal


_CRASH_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS, signal.SIGILL, signal.SIGFPE})
"""Signals of a native crash. SIGKILL and SIGTERM come from outside (a timeout, the OOM killer, a
stopped task): dbt is not run again after those."""


def _crash_signal(returncode: int) -> str | None:
    return signal.Signals(-returncode).name if returncode < 0 and -returncode in _CRASH_SIGNALS else None


def _resolve(path: str | os.PathLike[str] | None, env: str, default: Path) -> Path:
    if path is None:
        path = os.environ.get(env) or default
    resolved = Path(path).expanduser()
    if not resolved.is_absolute():
        resolved = REPO_ROOT / resolved
    return resolved.resolve()


def default_lake_root() -> Path:
    return _resolve(None, "META_LAKE_ROOT", REPO_ROOT / "data" / "lake")


def default_build_db_path() -> Path:
    return _resolve(None, "META_DBT_DUCKDB_PATH", REPO_ROOT / "data" / "build" / "marts_build.duckdb")


def dbt_target_dir(build_db_path: str | os.PathLike[str]) -> Path:
    """Where the DAG's dbt build leaves dbt's artifacts (``run_results.json``): beside the build file."""
    return Path(build_db_path).parent / "dbt_target"


def default_window_end(lake_root: str | os.PathLike[str] | None = None) -> dt.date:
    """The incremental window's default last day, as the dbt macro meta_window_start computes it when
    the var ``window_end`` is unset: the newest ``date=`` partition of the insights in the lake, else
    today in UTC."""
    root = _resolve(lake_root, "META_LAKE_ROOT", REPO_ROOT / "data" / "lake")
    dates = []
    for partition in root.glob("insights/account_id=*/date=*"):
        try:
            day = dt.date.fromisoformat(partition.name.removeprefix("date="))
        except ValueError:
            continue
        if any(partition.glob("*.parquet")):
            dates.append(day)
    return max(dates) if dates else dt.datetime.now(dt.UTC).date()


def _dbt_executable() -> str:
    candidate = Path(sys.executable).with_name("dbt")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("dbt")
    if not found:
        raise DbtBuildError("dbt executable not found next to the Python interpreter or on PATH")
    return found


def dbt_env(
    *,
    lake_root: str | os.PathLike[str] | None = None,
    build_db_path: str | os.PathLike[str] | None = None,
    threads: int | None = None,
) -> dict[str, str]:
    """Environment for a dbt subprocess: absolute paths and no network calls (no usage stats, no version check)."""
    env = dict(os.environ)
    env["META_LAKE_ROOT"] = str(_resolve(lake_root, "META_LAKE_ROOT", REPO_ROOT / "data" / "lake"))
    env["META_DBT_DUCKDB_PATH"] = str(
        _resolve(build_db_path, "META_DBT_DUCKDB_PATH", REPO_ROOT / "data" / "build" / "marts_build.duckdb")
    )
    if threads:
        env["META_DBT_THREADS"] = str(threads)
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "False"
    env["DBT_VERSION_CHECK"] = "False"
    env["DBT_PROFILES_DIR"] = str(DBT_PROJECT_DIR)
    env.setdefault("DBT_USE_COLORS", "False")
    return env


def run_dbt(
    args: Sequence[str],
    *,
    lake_root: str | os.PathLike[str] | None = None,
    build_db_path: str | os.PathLike[str] | None = None,
    project_dir: str | os.PathLike[str] | None = None,
    dbt_vars: Mapping[str, Any] | None = None,
    target_path: str | os.PathLike[str] | None = None,
    log_path: str | os.PathLike[str] | None = None,
    threads: int | None = None,
    timeout: float | None = None,
    progress: logging.Logger | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run one dbt command (``["build"]``, ``["docs", "generate"]``, ...) with the project's paths; no raise.

    With ``progress``, dbt's messages are logged there as they come (not only when dbt ends), and
    ``stdout`` holds those messages as text.
    """
    project = Path(project_dir or DBT_PROJECT_DIR).resolve()
    env = dbt_env(lake_root=lake_root, build_db_path=build_db_path, threads=threads)
    Path(env["META_DBT_DUCKDB_PATH"]).parent.mkdir(parents=True, exist_ok=True)
    command = [_dbt_executable(), *args, "--project-dir", str(project), "--profiles-dir", str(project)]
    if target_path:
        command += ["--target-path", str(Path(target_path).resolve())]
    if log_path:
        command += ["--log-path", str(Path(log_path).resolve())]
    if dbt_vars:
        command += ["--vars", json.dumps(dict(dbt_vars))]
    if progress is not None:
        return _run_streaming([*command, "--log-format", "json"], project, env, timeout, progress)
    return subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


_DBT_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}


def _run_streaming(
    command: list[str], cwd: Path, env: dict[str, str], timeout: float | None, progress: logging.Logger
) -> subprocess.CompletedProcess[str]:
    """Run dbt with JSON log lines on stdout; log each message at dbt's level while dbt runs."""
    messages: list[str] = []
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            try:
                info = json.loads(line)["info"]
                level, message = _DBT_LEVELS.get(info.get("level"), logging.INFO), str(info.get("msg", ""))
                if info.get("name") == "LogStartLine":  # "N of M START ...": the result line follows
                    level = logging.DEBUG
            except (ValueError, KeyError, TypeError):  # not a dbt event (a crash before logging started)
                level, message = logging.INFO, line.rstrip("\n")
            if not message.strip():
                continue
            messages.append(message)
            if level > logging.DEBUG:
                progress.log(level, "dbt: %s", message)

    reader = threading.Thread(target=pump, name="dbt-output", daemon=True)
    reader.start()
    try:
        returncode = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        reader.join(timeout=10)
        raise
    reader.join(timeout=30)
    return subprocess.CompletedProcess(command, returncode, stdout="\n".join(messages), stderr="")


_FAILED = frozenset({"error", "fail", "runtime error"})
_SUMMARY_STATUSES = {"success": "PASS", "pass": "PASS", "warn": "WARN", "skipped": "SKIP", "no-op": "NO-OP"}


def _run_results(target: Path) -> list[dict[str, Any]]:
    path = target / "run_results.json"
    return json.loads(path.read_text())["results"] if path.exists() else []


def _failures(results: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [
        (r["unique_id"], r["status"], (r.get("message") or "").strip())
        for r in results
        if r["status"] in _FAILED
    ]


def summarize_results(results: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"counts": {"PASS": n, "WARN": n, "ERROR": n, "SKIP": n}, "warnings": [{"node", "message"}]}``."""
    counts = dict.fromkeys(("PASS", "WARN", "ERROR", "SKIP"), 0)
    warnings = []
    for result in results:
        if result["unique_id"].startswith("exposure."):  # nothing runs for an exposure (dbt: NO-OP)
            continue
        status = "ERROR" if result["status"] in _FAILED else _SUMMARY_STATUSES.get(result["status"], "PASS")
        counts[status] = counts.get(status, 0) + 1
        if status == "WARN":
            warnings.append({"node": result["unique_id"], "message": (result.get("message") or "").strip()})
    return {"counts": counts, "warnings": warnings}


def _log_summary(summary: dict[str, Any], failures: list[tuple[str, str, str]], seconds: float) -> None:
    counts = summary["counts"]
    line = " ".join(f"{status}={n}" for status, n in counts.items())
    log.log(
        logging.ERROR if counts["ERROR"] else logging.WARNING if counts["WARN"] else logging.INFO,
        "dbt build summary: %s TOTAL=%d in %.1f s",
        line,
        sum(counts.values()),
        seconds,
    )
    for warning in summary["warnings"]:
        log.warning("dbt WARN %s: %s", warning["node"], warning["message"][:500])
    for node, status, message in failures:
        log.error("dbt %s %s: %s", status.upper(), node, message[:500])


def run_dbt_build(
    *,
    lake_root: str | os.PathLike[str] | None = None,
    build_db_path: str | os.PathLike[str] | None = None,
    project_dir: str | os.PathLike[str] | None = None,
    window_end: str | dt.date | None = None,
    lookback_days: int | None = None,
    full_refresh: bool = False,
    select: str | None = None,
    target_path: str | os.PathLike[str] | None = None,
    log_path: str | os.PathLike[str] | None = None,
    threads: int | None = None,
    timeout: float | None = None,
    build_path: str | os.PathLike[str] | None = None,
    reporting_currency: str | None = None,
    fx_rates_path: str | os.PathLike[str] | None = None,
    coverage_start_date: str | dt.date | None = None,
    reports: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """Run ``dbt build`` over the lake into ``build_db_path``; return a summary, raise on failure.

    ``reports`` (``insights.reports`` of the config): first bring the dbt sources and the reports'
    staging models in line with them (:mod:`meta_ads_elt.dbt_contract`; nothing is written when the
    project already matches, as it does for the shipped config).

    ``window_end`` (last account-local date, e.g. the data interval's date) and ``lookback_days``
    set the incremental window (default: the newest insights date in the lake, 28 days). Re-running
    the same window is idempotent. Pass the data interval's date as ``window_end`` in backfills, so an
    old day is re-processed even when newer dates are already in the lake. Raises
    :class:`DbtBuildError` naming each failing node. The returned dict can be passed as is to
    :func:`publish_marts` (its ``build_db_path`` key is used). ``reporting_currency`` (ISO 4217) adds
    spend converted with the rates of ``fx_rates_path`` (CSV or Parquet; default: the seed fx_rates);
    ``coverage_start_date`` starts extraction_coverage there (config keys ``marts.*``).

    When DuckDB reports the build file itself as damaged (a corrupted segment, a failed checkpoint,
    not a database file), the file is moved to ``<name>.damaged`` and the build runs again once with
    ``--full-refresh``: the build file holds nothing the lake does not, and the serving file is
    untouched. The summary then names the damage under ``rebuilt_damaged_build_file``. When dbt
    crashes (SIGSEGV and the like: a native crash, not a data or model error) it runs once more, and
    the summary says so under ``retried_after_crash``.
    """
    build_db_path = build_db_path or build_path  # `build_path`: alias used by the DAG's config
    project = Path(project_dir or DBT_PROJECT_DIR).resolve()
    if reports is not None:
        from meta_ads_elt.dbt_contract import write

        for path in write(project, reports):
            log.info("dbt contract: wrote %s for insights.reports", path)
    dbt_vars: dict[str, Any] = {}
    if window_end is None:
        # Resolved once here rather than by every node's meta_window_start() (a glob over the lake each).
        window_end = default_window_end(lake_root)
    dbt_vars["window_end"] = str(window_end)
    if lookback_days is not None:
        dbt_vars["lookback_days"] = int(lookback_days)
    if reporting_currency:
        dbt_vars["reporting_currency"] = str(reporting_currency).upper()
    if fx_rates_path:
        rates = Path(fx_rates_path).expanduser()
        dbt_vars["fx_rates_path"] = str(rates if rates.is_absolute() else REPO_ROOT / rates)
    if coverage_start_date:
        dbt_vars["coverage_start_date"] = str(coverage_start_date)
    run = dict(
        lake_root=lake_root,
        build_db_path=build_db_path,
        project=project,
        dbt_vars=dbt_vars,
        select=select,
        target_path=target_path,
        log_path=log_path,
        threads=threads,
        timeout=timeout,
    )
    recovered: dict[str, Any] = {}
    while True:
        try:
            return {**_build(full_refresh=full_refresh, **run), **recovered}
        except DbtBuildError as error:
            damage = _build_file_damage(error)
            if damage and "rebuilt_damaged_build_file" not in recovered:
                path = Path(dbt_env(build_db_path=build_db_path)["META_DBT_DUCKDB_PATH"])
                kept = _set_damaged_build_file_aside(path)
                log.warning(
                    "The build file %s is damaged (DuckDB: %s). It is derived from the lake, so it was "
                    "moved to %s (keep it for a DuckDB bug report, or delete it) and every model is "
                    "rebuilt from the lake with --full-refresh; the serving file was not touched.",
                    path,
                    damage,
                    kept,
                )
                recovered["rebuilt_damaged_build_file"] = {"damage": damage, "kept_at": str(kept)}
                full_refresh = True
            elif error.crash_signal and "retried_after_crash" not in recovered:
                log.warning(
                    "dbt crashed (%s: a native crash in DuckDB, not a data or model error); building "
                    "once more (a damaged build file would then be rebuilt from the lake).",
                    error.crash_signal,
                )
                recovered["retried_after_crash"] = error.crash_signal
            else:
                raise


_BUILD_FILE_DAMAGE = re.compile(
    r"(Corrupt\w*[^\n]{0,200}|[^\n]{0,120}not a valid DuckDB database file[^\n]{0,80}"
    r"|[^\n]{0,120}checksum[^\n]{0,120}|database has been invalidated[^\n]{0,200}"
    r"|FATAL Error[^\n]{0,200})",
    re.IGNORECASE,
)
"""DuckDB's words for a damaged database file (storage corruption, failed checkpoint, invalidated
instance): the build cannot succeed on that file again, whatever the models say."""


def _build_file_damage(error: DbtBuildError) -> str | None:
    """What DuckDB said about a damaged build file, or None when the failure is about data or models."""
    for text in [message for _, _, message in error.failures] + [str(error)]:
        for found in _BUILD_FILE_DAMAGE.finditer(text):
            if "parquet" not in found.group(0).lower():  # a damaged lake file: rebuilding cannot help
                return found.group(0).strip()
    return None


def _set_damaged_build_file_aside(path: Path) -> Path:
    """Move the build file (and its WAL) to ``<name>.damaged`` (replacing an older one); return that path."""
    kept = path.with_name(path.name + ".damaged")
    for source, target in ((path, kept), (Path(f"{path}.wal"), Path(f"{kept}.wal"))):
        target.unlink(missing_ok=True)
        if source.exists():
            source.replace(target)
    return kept


def _build(
    *,
    full_refresh: bool,
    lake_root: str | os.PathLike[str] | None,
    build_db_path: str | os.PathLike[str] | None,
    project: Path,
    dbt_vars: dict[str, Any],
    select: str | None,
    target_path: str | os.PathLike[str] | None,
    log_path: str | os.PathLike[str] | None,
    threads: int | None,
    timeout: float | None,
) -> dict[str, Any]:
    """One ``dbt build``: its summary, or :class:`DbtBuildError` naming each failing node."""
    args = ["build"]
    if full_refresh:
        args.append("--full-refresh")
    if select:
        args += ["--select", select]
    started = dt.datetime.now(dt.UTC)
    proc = run_dbt(
        args,
        lake_root=lake_root,
        build_db_path=build_db_path,
        project_dir=project,
        dbt_vars=dbt_vars,
        target_path=target_path,
        log_path=log_path,
        threads=threads,
        timeout=timeout,
        progress=log,
    )
    results = _run_results(Path(target_path).resolve() if target_path else project / "target")
    failures = _failures(results)
    summary = summarize_results(results)
    seconds = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 2)
    _log_summary(summary, failures, seconds)
    if proc.returncode != 0 or failures:
        if failures:
            detail = "; ".join(f"{uid} [{status}]: {msg[:300]}" for uid, status, msg in failures)
            message = f"dbt build failed on {len(failures)} node(s): {detail}"
        else:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            ended = _crash_signal(proc.returncode) or f"exit {proc.returncode}"
            message = f"dbt build failed ({ended}) before running nodes:\n{tail}"
        raise DbtBuildError(
            message + "\nFix the data or model named above, then re-run the task (the build is idempotent).",
            failures,
            crash_signal=_crash_signal(proc.returncode),
        )
    return {
        "build_db_path": dbt_env(build_db_path=build_db_path)["META_DBT_DUCKDB_PATH"],
        "lake_root": dbt_env(lake_root=lake_root)["META_LAKE_ROOT"],
        "started_at": started.isoformat(),
        "seconds": seconds,
        "vars": dbt_vars,
        "results": summary["counts"],
        "warnings": summary["warnings"],
    }


def publish_marts(
    build_db_path: str | os.PathLike[str] | Mapping[str, Any] | None = None,
    serving_db_path: str | os.PathLike[str] = "data/marts.duckdb",
    parquet_dir: str | os.PathLike[str] | None = "data/marts/",
    *,
    storage_version: str | None = DEFAULT_SERVING_STORAGE_VERSION,
    marts: Sequence[str] = MARTS,
    rollups: Sequence[str] = (*ROLLUPS, *BREAKDOWN_MARTS),
    serving_path: str | os.PathLike[str] | None = None,
    retain_minutes: float = DEFAULT_RETAIN_MINUTES,
    incremental: bool = True,
    failures: Sequence[Any] = (),
) -> dict[str, Any]:
    """Atomically publish the marts of ``build_db_path`` to ``serving_db_path`` and ``parquet_dir``,
    copying only the dates that changed since the last publish (:mod:`meta_ads_elt.publish`).

    Returns ``{"serving_db_path", "parquet_files", "rows": {mart: n}, "published_at", "version", ...}``.
    The serving file gets a ``_published`` table (mart, rows, min/max date, published_at, version,
    open_failures) and ``_published_failures``: the extractions still failed (``failures``: the
    :class:`~meta_ads_elt.failures.ExtractionFailure` list of :func:`~meta_ads_elt.failures.reconcile_failures`,
    or dicts with its fields), each with its account or Page, dates, reason and how to fill the gap.
    Nothing is replaced unless every mart was copied. ``build_db_path`` may be the dict returned by
    :func:`run_dbt_build`; ``serving_path`` is an alias of ``serving_db_path``. ``storage_version=None``
    writes DuckDB's default (2.0) format, which DuckDB < 2.0 cannot open. ``incremental=False`` writes
    everything afresh. Superseded Parquet versions are kept ``retain_minutes`` for readers still on them.
    """
    if isinstance(build_db_path, Mapping):  # the summary returned by run_dbt_build
        build_db_path = build_db_path["build_db_path"]
    if serving_path is not None:  # alias used by the DAG's config
        serving_db_path = serving_path
    build = _resolve(
        build_db_path, "META_DBT_DUCKDB_PATH", REPO_ROOT / "data" / "build" / "marts_build.duckdb"
    )
    serving = _resolve(serving_db_path, "META_SERVING_DUCKDB_PATH", REPO_ROOT / "data" / "marts.duckdb")
    out_dir = (
        _resolve(parquet_dir, "META_MARTS_PARQUET_DIR", REPO_ROOT / "data" / "marts")
        if parquet_dir is not None
        else None
    )
    return publish(
        build,
        serving,
        out_dir,
        storage_version=storage_version,
        marts=marts,
        rollups=rollups,
        retain_minutes=retain_minutes,
        incremental=incremental,
        failures=[f if isinstance(f, Mapping) else dataclasses.asdict(f) for f in failures],
    )


def zero_decimal_currencies() -> frozenset[str]:
    """Currencies whose minor unit is 1 (dbt var ``zero_decimal_currencies``, Meta's currency table)."""
    import yaml

    config = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    return frozenset(config["vars"]["zero_decimal_currencies"])


def format_money(amount: Any, currency: str | None, zero_decimal: frozenset[str] = frozenset()) -> str:
    """``1,234.56 USD`` (``12,345 JPY`` for a zero-decimal currency); ``-`` for no amount."""
    if amount is None:
        return "-"
    digits = 0 if currency in zero_decimal else 2
    return f"{amount:,.{digits}f} {currency or '(currency unknown)'}"


def _account_label(account_id: str, name: str | None) -> str:
    return f"{name} (act {account_id})" if name else f"act {account_id}"


def _partial_days_line(con: Any) -> str:
    """The account-days whose local day was not over when extracted (day_status = 'partial')."""
    partial = con.execute(
        "select account_id, date, account_name from lead_reconciliation where day_status = 'partial' order by all"
    ).fetchall()
    if not partial:
        return "Partial account-days (not over when extracted): none"
    days = ", ".join(
        f"act {account_id} {day}" + (f" ({name})" if name else "") for account_id, day, name in partial
    )
    return f"Partial account-days (not over when extracted; the next run replaces them): {days}"


def coverage_gap_lines(con: Any) -> list[str]:
    """The account-days never extracted (extraction_coverage.coverage_status = 'missing'), as runs of
    consecutive days per account: the marts have no rows there (a gap, not a zero)."""
    present = con.execute(
        "select count(*) from information_schema.tables where table_name = 'extraction_coverage'"
    ).fetchone()[0]
    if not present:
        return []
    runs = con.execute(
        """
        with missing as (
            select account_id, account_name, date,
                date - cast(row_number() over (partition by account_id order by date) as integer) as run_key,
            from extraction_coverage where coverage_status = 'missing'
        )
        select account_id, any_value(account_name), min(date), max(date), count(*)
        from missing group by account_id, run_key order by account_id, min(date)
        """
    ).fetchall()
    if not runs:
        return ["Coverage gaps (account-days never extracted): none"]
    lines = [
        f"WARNING coverage gaps: {sum(r[4] for r in runs)} account-day(s) never extracted (the marts have no "
        "rows there; backfill them: Trigger -> Backfill, or `airflow dags test meta_ads_daily <day>`):"
    ]
    for account_id, name, first, last, days in runs:
        span = f"{first}" if first == last else f"{first} .. {last} ({days} days)"
        lines.append(f"  {_account_label(account_id, name)}: {span}")
    return lines


def dbt_warning_lines(target: str | os.PathLike[str] | None) -> list[str]:
    """The warn-level results of the dbt build whose ``run_results.json`` is in ``target``."""
    path = Path(target) / "run_results.json" if target else None
    if path is None or not path.is_file():
        return []
    document = json.loads(path.read_text())
    warnings = summarize_results(document.get("results", []))["warnings"]
    generated = document.get("metadata", {}).get("generated_at", "?")
    if not warnings:
        return [f"dbt warnings (build of {generated}): none"]
    lines = [f"dbt warnings (build of {generated}; the build passed, these need a look):"]
    lines.extend(f"  WARN {w['node'].split('.')[2]}: {w['message'][:200]}" for w in warnings)
    return lines


def summarize_marts(
    serving_db_path: str | os.PathLike[str] = "data/marts.duckdb",
    dbt_target: str | os.PathLike[str] | None = None,
    lake_root: str | os.PathLike[str] | None = None,
) -> str:
    """A short human summary of the published marts: rows and dates per mart, totals per account (by
    name, money with its currency), coverage gaps, the warn-level results of the dbt build whose
    target directory is ``dbt_target`` (when given), and, with ``discover:`` sources, what the newest
    discovery in ``lake_root`` left out and why (when given)."""
    import duckdb

    serving = _resolve(serving_db_path, "META_SERVING_DUCKDB_PATH", REPO_ROOT / "data" / "marts.duckdb")
    zero_decimal = zero_decimal_currencies()
    con = duckdb.connect(str(serving), read_only=True)
    try:
        lines = [f"Marts in {serving}:"]
        present = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}
        for mart in (*MARTS, *(m for m in BREAKDOWN_MARTS if m in present)):
            n, lo, hi = con.execute(f'select count(*), min(date), max(date) from "{mart}"').fetchone()
            lines.append(f"  {mart:<31} {n:>9,} rows  {lo or '-'} .. {hi or '-'}")
        lines.append(
            "Totals per account (cost_per_lead, lead_reconciliation; money in each account's currency):"
        )
        per_account = con.execute(
            """
            with cpl as (
                select account_id, arg_max(account_name, date) as account_name, any_value(currency) as currency,
                    sum(spend) as spend, sum(leads_reported) as leads_reported,
                    sum(leads_collected) as leads_collected,
                from cost_per_lead group by account_id
            ),
            rec as (
                select account_id, sum(conversations_started) as conversations_started,
                    sum(conversations_started_reported) as conversations_started_reported,
                from lead_reconciliation group by account_id
            )
            select cpl.account_id, cpl.account_name, cpl.currency, cpl.spend, cpl.leads_reported,
                cpl.leads_collected, cpl.spend / nullif(cpl.leads_reported, 0),
                coalesce(rec.conversations_started, 0), coalesce(rec.conversations_started_reported, 0),
            from cpl left join rec using (account_id)
            order by cpl.account_id
            """
        ).fetchall()
        for account_id, name, currency, spend, reported, collected, cpl, conv, conv_reported in per_account:
            lines.append(
                f"  {_account_label(account_id, name)}: spend {format_money(spend, currency, zero_decimal)}, "
                f"leads reported {reported} / collected {collected}, "
                f"cost per lead {format_money(cpl, currency, zero_decimal)}, "
                f"conversations started {conv} (reported {conv_reported})"
            )
        if not per_account:
            lines.append("  (no rows)")
        lines.extend(conversation_access_warnings(con))
        lines.append(_partial_days_line(con))
        lines.extend(failed_extraction_lines(con))
        lines.extend(coverage_gap_lines(con))
        lines.extend(dbt_warning_lines(dbt_target))
        if lake_root is not None:
            lines.extend(discovery_lines(con, lake_root))
        return "\n".join(lines)
    finally:
        con.close()


DISCOVERY_EXTRACTED_STATES = ("extracted", "arrived")
"""States of a discovered account or Page whose data this run extracted (meta_ads_elt.schemas.DISCOVERY_COMMON)."""


def discovery_lines(con: Any, lake_root: str | os.PathLike[str], *, limit: int = 40) -> list[str]:
    """What the newest run's discovery found, by state, and each account or Page it did not extract
    (unreadable, disabled, departed, excluded...) with the reason: never a silent omission."""
    lines = []
    for dataset, id_column, label in (
        ("discovered_accounts", "account_id", "accounts"),
        ("discovered_pages", "page_id", "Pages"),
    ):
        files = f"{Path(lake_root).resolve()}/{dataset}/date=*/*.parquet"
        if not glob.glob(files):
            continue
        rows = con.execute(
            f"""
            with found as (select * from read_parquet('{files}', hive_partitioning = true, union_by_name = true))
            select date, {id_column}, name, state, reason from found
            where date = (select max(date) from found)
            order by state, {id_column}
            """
        ).fetchall()
        if not rows:
            continue
        counts: dict[str, int] = {}
        for _day, _id, _name, state, _reason in rows:
            counts[state] = counts.get(state, 0) + 1
        by_state = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        lines.append(f"Discovered {label} ({rows[0][0]}): {by_state}")
        left_out = [row for row in rows if row[3] not in DISCOVERY_EXTRACTED_STATES]
        for _day, entity, name, state, reason in left_out[:limit]:
            who = f"{entity} ({name})" if name else entity
            lines.append(f"  {who}: {state}: {reason or 'no reason given'}")
        if len(left_out) > limit:
            lines.append(f"  ... and {len(left_out) - limit} more (lake dataset {dataset})")
    return lines


def failed_extraction_lines(con: Any) -> list[str]:
    """The extractions still failed (``_published_failures``): each account or Page, its dates, the
    reason and how to fill the gap. The marts keep the earlier data of those dates."""
    has_table = con.execute(
        "select count(*) from information_schema.tables where table_name = '_published_failures'"
    ).fetchone()[0]
    if not has_table:
        return []
    rows = con.execute(
        "select kind, entity, data_date, first_date, last_date, reason, action from _published_failures "
        "order by data_date, kind, entity"
    ).fetchall()
    if not rows:
        return ["Failed extractions: none"]
    lines = [f"FAILED extractions ({len(rows)}; their dates keep the earlier data in the marts):"]
    for kind, entity, day, first, last, reason, action in rows:
        span = str(first) if first == last else f"{first}..{last}"
        lines.append(
            f"  {entity}: {kind} of the run for {day} (dates {span}): {reason} To fill the gap: {action}"
        )
    return lines


def conversation_access_warnings(con: Any) -> list[str]:
    """Warnings for account-days whose first-party conversation starts are far below Meta's reported
    paid starts (``lead_reconciliation.first_party_starts_far_below_reported``): the signature of a
    token whose app has only Standard Access, which sees no conversation with people who have no
    role on the app (seed 004). Never a silent zero."""
    flagged = con.execute(
        """
        select account_id, count(*) as days, sum(conversations_started), sum(conversations_started_reported),
            min(date), max(date),
        from lead_reconciliation
        where first_party_starts_far_below_reported
        group by account_id
        order by account_id
        """
    ).fetchall()
    lines = []
    for account_id, days, first_party, reported, lo, hi in flagged:
        lines.append(
            f"WARNING act {account_id}: on {days} day(s) between {lo} and {hi} the Conversations API gave "
            f"{first_party} conversation starts where Meta reports {reported} paid ones. The token's app "
            "probably has only Standard Access, which hides conversations with people who have no role on "
            "the app (seed 004): request Advanced Access for pages_messaging / instagram_manage_messages."
        )
    return lines
