"""The dbt build runner.

* :func:`run_dbt_build` runs ``dbt build`` (seeds, models, unit and data tests) in a subprocess of this
  environment's ``dbt`` with absolute paths (lake root, build DuckDB file), so it behaves the same from
  Airflow, ``make run`` and the tests. dbt's progress (one line per model, seed and test as it
  finishes, with its status and time) goes to this module's logger while dbt runs (the task log, in
  Airflow), then a PASS / WARN / ERROR / SKIP summary naming each warning and failure. A failure raises
  :class:`DbtBuildError` naming every failing node; warn-level results are returned.
  The build file is written by one process at a time: callers run it in a 1-slot pool.

Relative paths are resolved against the repository root (:func:`meta_ads_elt.marts.local_path`).
"""

from __future__ import annotations

import datetime as dt
import functools
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

from airflow.sdk.exceptions import AirflowFailException

from meta_ads_elt.lake.layout import DATE_DIR_PREFIX, partition_date
from meta_ads_elt.marts import DBT_PROJECT_DIR, REPO_ROOT, local_path

log = logging.getLogger(__name__)


class DbtBuildError(RuntimeError):
    """``dbt build`` failed; ``failures`` lists (node unique_id, status, message); ``crash_signal``
    names the signal that ended dbt when it crashed (``"SIGSEGV"``), else None."""

    def __init__(
        self, message: str, failures: Sequence[tuple[str, str, str]] = (), crash_signal: str | None = None
    ) -> None:
        super().__init__(message)
        self.failures = list(failures)
        self.crash_signal = crash_signal


class DbtNodesFailed(DbtBuildError, AirflowFailException):
    """dbt ran and nodes failed for reasons a retry of the same build cannot change (a data test that
    found rows, a model's SQL error): the lake and the project are what they were, so the task fails at
    once instead of running the same build Airflow's ``retries`` times. Failures that another moment can
    change (a lock held by another process, an I/O or memory error, DuckDB storage damage) stay a plain
    :class:`DbtBuildError`, retried."""


_TRANSIENT_FAILURE = re.compile(r"lock|IO Error|Out of Memory|Interrupt|Resource temporarily", re.IGNORECASE)
"""Failures another moment can change: a lock another process holds, I/O, memory, an interruption.
Storage damage is decided by :func:`_build_file_damage`."""


def build_error(
    message: str, failures: Sequence[tuple[str, str, str]], crash_signal: str | None
) -> DbtBuildError:
    """The error for a failed build: :class:`DbtNodesFailed` when nodes failed and nothing about the
    failure can pass on a retry, else :class:`DbtBuildError`."""
    error = DbtBuildError(message, failures, crash_signal=crash_signal)
    final = (
        bool(failures)
        and crash_signal is None
        and _build_file_damage(error) is None
        and not any(_TRANSIENT_FAILURE.search(m) for *_, m in failures)
    )
    return DbtNodesFailed(message, failures, crash_signal=crash_signal) if final else error


_CRASH_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS, signal.SIGILL, signal.SIGFPE})
"""Signals of a native crash. SIGKILL and SIGTERM come from outside (a timeout, the OOM killer, a
stopped task): dbt is not run again after those."""


def _crash_signal(returncode: int) -> str | None:
    return signal.Signals(-returncode).name if returncode < 0 and -returncode in _CRASH_SIGNALS else None


def default_lake_root() -> Path:
    return local_path(None, "META_LAKE_ROOT", REPO_ROOT / "data" / "lake")


def default_build_db_path() -> Path:
    return local_path(None, "META_DBT_DUCKDB_PATH", REPO_ROOT / "data" / "build" / "marts_build.duckdb")


def dbt_target_dir(build_db_path: str | os.PathLike[str]) -> Path:
    """Where the DAG's dbt build leaves dbt's artifacts (``run_results.json``): beside the build file."""
    return Path(build_db_path).parent / "dbt_target"


def default_window_end(lake_root: str | os.PathLike[str] | None = None) -> dt.date:
    """The incremental window's default last day, as the dbt macro meta_window_start computes it when
    the var ``window_end`` is unset: the newest ``date=`` partition of the insights in the lake, else
    today in UTC. A ``date=`` directory that names no date (``date=tmp``) is not a partition, as in the
    macro."""
    root = local_path(lake_root, "META_LAKE_ROOT", REPO_ROOT / "data" / "lake")
    dates = []
    for partition in root.glob(f"insights/account_id=*/{DATE_DIR_PREFIX}*"):
        day = partition_date(partition)
        if day is not None and any(partition.glob("*.parquet")):
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
    window_end: str | dt.date | None = None,
) -> dict[str, str]:
    """Environment for a dbt subprocess: absolute paths and no network calls (no usage stats, no version check).

    ``window_end`` goes to the macro meta_window_start as ``META_DBT_WINDOW_END``, not as a dbt var: dbt
    re-parses the whole project (~4 s) whenever the command line's vars differ from the previous run's,
    and the window's last day changes with every daily run. The macro reads it only when a node runs,
    so it is no part of what dbt parses.
    """
    env = dict(os.environ)
    env["META_LAKE_ROOT"] = str(local_path(lake_root, "META_LAKE_ROOT", REPO_ROOT / "data" / "lake"))
    env["META_DBT_DUCKDB_PATH"] = str(
        local_path(build_db_path, "META_DBT_DUCKDB_PATH", REPO_ROOT / "data" / "build" / "marts_build.duckdb")
    )
    if threads:
        env["META_DBT_THREADS"] = str(threads)
    if window_end:
        env["META_DBT_WINDOW_END"] = str(window_end)
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
    window_end: str | dt.date | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run one dbt command (``["build"]``, ``["docs", "generate"]``, ...) with the project's paths; no raise.

    With ``progress``, dbt's messages are logged there as they come (not only when dbt ends), and
    ``stdout`` holds those messages as text.
    """
    project = Path(project_dir or DBT_PROJECT_DIR).resolve()
    env = dbt_env(lake_root=lake_root, build_db_path=build_db_path, threads=threads, window_end=window_end)
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


PRODUCTION_BUILD_EXCLUDES = ("--exclude-resource-type", "unit_test")
"""What a pipeline build leaves out: dbt's unit tests. Their inputs are static rows in the project, so their
outcome is decided by the project's code, not by the lake, and dbt recommends running them in development
and CI only ("Since the inputs of the unit tests are static, there's no need to use additional compute
cycles running them in production", docs.getdbt.com/docs/build/unit-tests). ``make test`` runs them
(tests/dbt/test_build_options.py); the data tests, which check the lake's rows, still gate every
build."""


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
    The build leaves dbt's unit tests out (:data:`PRODUCTION_BUILD_EXCLUDES`).

    ``reports`` (``insights.reports`` of the config): when the project's dbt sources and report staging
    models differ from what they need (:mod:`meta_ads_elt.dbt_contract`), build a copy of the project
    with them generated, ``dbt_project/`` beside the build file; the shipped config builds the project
    as is, and the project itself is never written.

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
    the summary says so under ``retried_after_crash``. When a release changed the columns of an
    incremental model (``on_schema_change='fail'``: dbt says the model's "source and target schemas ...
    are out of sync"), the build runs again once with ``--full-refresh``, so every row has the new
    columns (never nulls in old rows), and the summary names the models under
    ``full_refresh_after_schema_change``.
    """
    build_db_path = build_db_path or build_path  # `build_path`: alias used by the DAG's config
    build_file = Path(dbt_env(build_db_path=build_db_path)["META_DBT_DUCKDB_PATH"])
    project = Path(project_dir or DBT_PROJECT_DIR).resolve()
    if reports is not None:
        from meta_ads_elt.dbt_contract import project_for

        project = project_for(project, reports, build_file.parent / "dbt_project")
        log.info("dbt project for insights.reports: %s", project)
    dbt_vars: dict[str, Any] = {}
    if window_end is None:
        # Resolved once here rather than by every node's meta_window_start() (a glob over the lake each).
        window_end = default_window_end(lake_root)
    if lookback_days is not None:
        dbt_vars["lookback_days"] = int(lookback_days)
    if reporting_currency:
        dbt_vars["reporting_currency"] = str(reporting_currency).upper()
    if fx_rates_path:
        rates = Path(fx_rates_path).expanduser()
        dbt_vars["fx_rates_path"] = str(rates if rates.is_absolute() else REPO_ROOT / rates)
    if coverage_start_date:
        dbt_vars["coverage_start_date"] = str(coverage_start_date)
    build = functools.partial(
        _build,
        lake_root=lake_root,
        build_db_path=build_db_path,
        project=project,
        dbt_vars=dbt_vars,
        window_end=str(window_end),
        select=select,
        target_path=target_path,
        log_path=log_path,
        threads=threads,
        timeout=timeout,
    )
    recovered: dict[str, Any] = {}
    while True:
        try:
            return {**build(full_refresh=full_refresh), **recovered}
        except DbtBuildError as error:
            damage = _build_file_damage(error)
            if damage and "rebuilt_damaged_build_file" not in recovered:
                kept = _set_damaged_build_file_aside(build_file)
                log.warning(
                    "The build file %s is damaged (DuckDB: %s). It is derived from the lake, so it was "
                    "moved to %s (keep it for a DuckDB bug report, or delete it) and every model is "
                    "rebuilt from the lake with --full-refresh; the serving file was not touched.",
                    build_file,
                    damage,
                    kept,
                )
                recovered["rebuilt_damaged_build_file"] = {"damage": damage, "kept_at": str(kept)}
                full_refresh = True
            elif (changed := _schema_changed_models(error)) and not full_refresh:
                log.warning(
                    "The columns of incremental model(s) %s changed since the build file was written "
                    "(a new release of the dbt project); the build runs again with --full-refresh, "
                    "from the lake (the serving file is untouched until the publish).",
                    ", ".join(changed),
                )
                recovered["full_refresh_after_schema_change"] = changed
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


_SCHEMA_OUT_OF_SYNC = "source and target schemas on this incremental model are out of sync"
"""dbt's words (on_schema_change.sql) when an incremental model's columns differ from its table's."""


def _schema_changed_models(error: DbtBuildError) -> list[str]:
    """The incremental models whose columns no longer match their table in the build file."""
    return sorted(uid for uid, _, message in error.failures if _SCHEMA_OUT_OF_SYNC in message)


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
    window_end: str,
    select: str | None,
    target_path: str | os.PathLike[str] | None,
    log_path: str | os.PathLike[str] | None,
    threads: int | None,
    timeout: float | None,
) -> dict[str, Any]:
    """One ``dbt build``: its summary, or :class:`DbtBuildError` naming each failing node."""
    args = ["build", *PRODUCTION_BUILD_EXCLUDES]
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
        window_end=window_end,
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
        raise build_error(
            message + "\nFix the data or model named above, then re-run the task (the build is idempotent).",
            failures,
            _crash_signal(proc.returncode),
        )
    return {
        "build_db_path": dbt_env(build_db_path=build_db_path)["META_DBT_DUCKDB_PATH"],
        "lake_root": dbt_env(lake_root=lake_root)["META_LAKE_ROOT"],
        "started_at": started.isoformat(),
        "seconds": seconds,
        "vars": {**dbt_vars, "window_end": window_end},
        "results": summary["counts"],
        "warnings": summary["warnings"],
    }
