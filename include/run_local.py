"""`make run`: the daily DAG, through Airflow, against the bundled sandbox, then a summary of the marts.

Steps, each printed as it happens:
1. start the Graph API sandbox (or reuse one already answering on ``$SANDBOX_PORT``);
2. prepare a local Airflow home (``.airflow/``, SQLite), its pools, and the ``meta_default``
   Connection pointing at the sandbox (an environment-variable Connection: nothing written to disk);
3. run ``airflow dags test meta_ads_daily <end of the latest data interval>``: a real DAG run for the
   newest day D the schedule has completed (with the default ``0 12 * * *``, D is over in every time
   zone: yesterday from 12:00 UTC on, the day before yesterday earlier), whose lookback fills the 28 days up to D;
4. print a short summary of the published marts (``data/marts.duckdb``), check all 28 days against
   the sandbox's ground truth (archived and deleted ads included, each day's ``day_status`` too), and
   write the HTML report of the marts (``data/report.html``).

Real credentials: put them in an Airflow Connection instead (see README); this script is for the sandbox.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import ExitStack, suppress
from datetime import date, datetime, timedelta
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
DAG_ID = "meta_ads_daily"
SANDBOX_TOKEN = "sandbox-token"  # noqa: S105  (the sandbox's documented, well-known credential)
SANDBOX_APP_ID = "sandbox-app"
SANDBOX_APP_SECRET = "sandbox-secret"  # noqa: S105


def say(message: str) -> None:
    print(f"[make run] {message}", flush=True)


def sandbox_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_sandbox/world", timeout=2) as response:  # noqa: S310 (loopback)
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start_sandbox(stack: ExitStack, port: int) -> str:
    url = f"http://127.0.0.1:{port}"
    if sandbox_answers(url):
        say(f"reusing the sandbox already serving {url}")
        return url
    say(f"starting the Graph API sandbox on {url} (default world)")
    log = open(PROJECT_DIR / ".airflow" / "sandbox.log", "w")  # noqa: SIM115 (closed by the stack)
    stack.callback(log.close)
    process = subprocess.Popen(
        [sys.executable, "-m", "meta_sandbox", "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=os.environ.copy(),
    )
    stack.callback(_stop, process)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(
                f"the sandbox exited at start (code {process.returncode}); see .airflow/sandbox.log"
            )
        if sandbox_answers(url):
            return url
        time.sleep(0.3)
    raise SystemExit(f"the sandbox did not answer on {url} within 60 s; see .airflow/sandbox.log")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def user_connection(conn_id: str) -> str | None:
    """The Connection the user defined in the environment for ``conn_id`` (validated), if any.

    `make run` used to overwrite it with the sandbox's, so a Connection without a token "worked"; now a
    Connection of the user's own is used as it is, and a bad one stops the run with the field named.
    """
    from airflow.sdk import Connection
    from meta_ads_elt.errors import MetaConfigError
    from meta_ads_elt.hooks.graph_api import settings_from_connection

    variable = f"AIRFLOW_CONN_{conn_id.upper()}"
    value = os.environ.get(variable, "").strip()
    if not value:
        return None
    try:
        if value.startswith("{"):
            connection = Connection.from_json(value, conn_id=conn_id)
        else:
            connection = Connection.from_uri(value, conn_id=conn_id)
        settings = settings_from_connection(connection, conn_id)
    except MetaConfigError as exc:
        raise SystemExit(f"${variable}: {exc}") from None
    except ValueError as exc:
        raise SystemExit(f"${variable} is neither a JSON Connection nor a connection URI: {exc}") from None
    say(
        f"using the Connection '{conn_id}' from ${variable} (base URL {settings.base_url}), not the sandbox's"
    )
    return settings.base_url


def airflow_env(sandbox_url: str) -> dict[str, str]:
    from meta_ads_elt.config import load_config

    conn_id = load_config().meta_conn_id
    env = os.environ.copy()
    airflow_home = PROJECT_DIR / ".airflow"
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_DIR / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_DIR / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": env.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO"),
            "PYTHONPATH": os.pathsep.join([str(PROJECT_DIR / "plugins"), str(PROJECT_DIR / "include")]),
            f"AIRFLOW_CONN_{conn_id.upper()}": os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
            or json.dumps(
                {
                    "conn_type": "meta_graph_api",
                    "password": SANDBOX_TOKEN,
                    "extra": {
                        "base_url": sandbox_url,
                        "app_id": SANDBOX_APP_ID,
                        "app_secret": SANDBOX_APP_SECRET,
                        "timeout": 60,
                    },
                }
            ),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        }
    )
    return env


def airflow(env: dict[str, str], *args: str, quiet: bool = False) -> None:
    command = [str(VENV_BIN / "airflow"), *args]
    result = subprocess.run(command, env=env, cwd=PROJECT_DIR, capture_output=quiet, text=True, check=False)
    if result.returncode != 0:
        if quiet:
            sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        raise SystemExit(f"`airflow {' '.join(args)}` failed (exit {result.returncode})")


def create_pools(env: dict[str, str]) -> None:
    from meta_ads_elt.config import load_config
    from meta_ads_elt.pools import pools_import_document

    pools_file = PROJECT_DIR / ".airflow" / "pools.json"
    pools_file.write_text(json.dumps(pools_import_document(load_config()), indent=2))
    airflow(env, "pools", "import", str(pools_file), quiet=True)


def latest_data_interval() -> tuple[datetime, datetime]:
    """The newest complete data interval of the DAG's schedule (what a scheduled run would cover now)."""
    from airflow.timetables.interval import CronDataIntervalTimetable
    from meta_ads_elt.config import load_config
    from pendulum import now

    interval = CronDataIntervalTimetable(load_config().schedule, "UTC").infer_manual_data_interval(
        run_after=now("UTC")
    )
    return interval.start, interval.end


def summarize(sandbox_url: str, day: date) -> None:
    """Print the marts' summary, then check the whole lookback window ending with ``day`` against the
    sandbox's ground truth (every account-day, page-day, and archived or deleted ad-day)."""
    from marts_vs_truth import BREAKDOWN_MARTS, fetch_truth, reconcile
    from meta_ads_elt.config import load_config
    from meta_ads_elt.dbt_runner import dbt_target_dir
    from meta_ads_elt.run_summary import summarize_marts

    config = load_config()
    serving_path = config.resolve(config.marts.serving_path)
    print(
        summarize_marts(
            serving_path,
            dbt_target_dir(config.resolve(config.marts.build_path)),
            lake_root=config.resolve(config.lake_root),
        ),
        flush=True,
    )
    since, until = (day - timedelta(days=config.lookback_days - 1)).isoformat(), day.isoformat()
    result = reconcile(serving_path, fetch_truth(sandbox_url, since, until), since, until)
    configured = {f"cost_per_lead_{r.name}" for r in config.insights.reports}
    for mart in sorted(configured & set(BREAKDOWN_MARTS) - set(result.breakdown_rows)):
        result.differences.append(f"{mart}: no rows, though its report is configured in insights.reports")
    if result.equal:
        say(
            f"marts equal the sandbox truth for {since}..{until}: {result.account_days} account-days "
            f"(spend to the cent, leads with and without an ad, conversations, day status) and "
            f"{result.page_days} page-days ({result.inferred_starts} conversation starts inferred beyond the "
            f"API's 20-message reach, of {result.beyond_reach_starts} beyond it now), and "
            f"{result.retired_ad_days} ad-days of archived or deleted ads"
            + (
                ", and by breakdown: "
                + ", ".join(f"{n} {mart} rows" for mart, n in result.breakdown_rows.items())
                if result.breakdown_rows
                else ""
            )
            + (f"; partial: {', '.join(result.partial_account_days)}" if result.partial_account_days else "")
        )
        return
    for line in result.differences[:20]:
        say(f"  differs: {line}")
    raise SystemExit(
        f"the marts differ from the sandbox truth in {len(result.differences)} places ({since}..{until})"
    )


def standalone_settings(api_port: int, cpus: int | None = None) -> dict[str, str]:
    """What `make airflow` changes in an `airflow standalone` (also what the browser test runs).

    One port sets both the API server's port and the execution API URL the task workers call (apart,
    every task fails with "Connection refused" on :8080); the server binds to loopback only; API
    workers and the LocalExecutor's worker processes are sized for this machine (Airflow's default
    forks 32 task workers at once); the connection form's Test button is enabled (loopback only).
    """
    cpus = cpus or os.cpu_count() or 1
    return {
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API__WORKERS": str(max(1, min(4, cpus // 2))),
        # Tasks mostly wait on HTTP or defer (a deferred task holds no worker): 4 per core.
        "AIRFLOW__CORE__PARALLELISM": str(max(4, min(32, 4 * cpus))),
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": str(max(1, min(2, cpus // 2))),
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
    }


def write_report() -> Path:
    """The static HTML report of the published marts (meta_ads_elt.report), beside them."""
    from meta_ads_elt.config import load_config
    from meta_ads_elt.report import write_report as write

    config = load_config()
    return write(config.resolve(config.marts.serving_path))


def serve_airflow_ui() -> None:
    """`make airflow`: an `airflow standalone` on 127.0.0.1:$AIRFLOW_PORT with this project's DAGs,
    pools and the sandbox."""
    (PROJECT_DIR / ".airflow").mkdir(exist_ok=True)
    port = int(os.environ.get("SANDBOX_PORT", "8765"))
    api_port = int(os.environ.get("AIRFLOW_PORT", "8080"))
    with ExitStack() as stack:
        sandbox_url = start_sandbox(stack, port)
        env = airflow_env(sandbox_url)
        env.update(standalone_settings(api_port))
        env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
        airflow(env, "db", "migrate", quiet=True)
        create_pools(env)
        say(f"starting airflow standalone on http://127.0.0.1:{api_port} (Ctrl-C to stop; another port:")
        say("`AIRFLOW_PORT=8090 make airflow`); the admin password is printed below and kept in")
        say(".airflow/simple_auth_manager_passwords.json.generated")
        with suppress(KeyboardInterrupt):
            subprocess.run([str(VENV_BIN / "airflow"), "standalone"], env=env, cwd=PROJECT_DIR, check=False)


def main() -> None:
    if sys.argv[1:] == ["airflow"]:
        serve_airflow_ui()
        return
    (PROJECT_DIR / ".airflow").mkdir(exist_ok=True)
    port = int(os.environ.get("SANDBOX_PORT", "8765"))
    from meta_ads_elt.config import load_config

    config = load_config()
    own_base_url = user_connection(config.meta_conn_id)
    with ExitStack() as stack:
        sandbox_url = start_sandbox(stack, port)
        env = airflow_env(sandbox_url)
        say("preparing the local Airflow metadata database (.airflow/airflow.db)")
        airflow(env, "db", "migrate", quiet=True)
        create_pools(env)
        start, end = latest_data_interval()
        day = start.date()
        say(
            f"running DAG {DAG_ID} for day {day} (data interval {start.isoformat()} .. {end.isoformat()}: "
            "the newest day that is over in every account's time zone)"
        )
        started = time.monotonic()
        airflow(env, "dags", "test", DAG_ID, end.isoformat())
        say(f"DAG run finished in {time.monotonic() - started:.0f} s")
        if own_base_url not in (None, sandbox_url):
            from meta_ads_elt.dbt_runner import dbt_target_dir
            from meta_ads_elt.run_summary import summarize_marts

            print(
                summarize_marts(
                    config.resolve(config.marts.serving_path),
                    dbt_target_dir(config.resolve(config.marts.build_path)),
                    lake_root=config.resolve(config.lake_root),
                ),
                flush=True,
            )
            say(f"marts built from {own_base_url}: no sandbox truth to compare them with")
            return
        summarize(sandbox_url, day)
        say(f"sandbox truth for comparison: {sandbox_url}/_sandbox/truth?since=YYYY-MM-DD&until=YYYY-MM-DD")
        say(f"report of the marts (open it in a browser; `make report` rewrites it): {write_report()}")


if __name__ == "__main__":
    main()
