"""`make run`: the daily DAG, through Airflow, against the bundled sandbox, then a summary of the marts.

Steps, each printed as it happens:
1. start the Graph API sandbox (or reuse one already answering on ``$SANDBOX_PORT``);
2. prepare a local Airflow home (``.airflow/``, SQLite), its pools, and the ``meta_default``
   Connection pointing at the sandbox (an environment-variable Connection: nothing written to disk);
3. run ``airflow dags test meta_ads_daily <today 00:00 UTC>``: a real DAG run for the most recent
   complete UTC day, whose lookback fills the last 28 days;
4. print a short summary of the published marts (``data/marts.duckdb``).

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
from datetime import UTC, date, datetime, timedelta
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
            raise SystemExit(f"the sandbox exited at start (code {process.returncode}); see .airflow/sandbox.log")
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
    say(f"using the Connection '{conn_id}' from ${variable} (base URL {settings.base_url}), not the sandbox's")
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
            f"AIRFLOW_CONN_{conn_id.upper()}": os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}") or json.dumps(
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


def summarize(sandbox_url: str, day: date) -> None:
    """Print the marts' summary, then check the last 7 days against the sandbox's ground truth."""
    from marts_vs_truth import fetch_truth, reconcile
    from meta_ads_elt.config import load_config
    from meta_ads_elt.marts import summarize_marts

    config = load_config()
    serving_path = config.resolve(config.marts.serving_path)
    print(summarize_marts(serving_path), flush=True)
    since, until = (day - timedelta(days=6)).isoformat(), day.isoformat()
    result = reconcile(serving_path, fetch_truth(sandbox_url, since, until), since, until)
    if result.equal:
        say(
            f"marts equal the sandbox truth for {since}..{until}: {result.account_days} account-days "
            f"(spend to the cent, leads, conversations) and {result.page_days} page-days"
        )
        return
    for line in result.differences[:20]:
        say(f"  differs: {line}")
    raise SystemExit(f"the marts differ from the sandbox truth in {len(result.differences)} places ({since}..{until})")


def serve_airflow_ui() -> None:
    """`make airflow`: an `airflow standalone` (UI on :8080) with this project's DAGs, pools and the sandbox."""
    (PROJECT_DIR / ".airflow").mkdir(exist_ok=True)
    port = int(os.environ.get("SANDBOX_PORT", "8765"))
    with ExitStack() as stack:
        sandbox_url = start_sandbox(stack, port)
        env = airflow_env(sandbox_url)
        env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
        airflow(env, "db", "migrate", quiet=True)
        create_pools(env)
        say("starting airflow standalone on http://localhost:8080 (Ctrl-C to stop); the admin password is")
        say("printed below and kept in .airflow/simple_auth_manager_passwords.json.generated")
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
        today = datetime.now(UTC).date()
        logical_date = f"{today.isoformat()}T00:00:00+00:00"
        say(f"running DAG {DAG_ID} for the most recent complete UTC day (logical date {logical_date})")
        started = time.monotonic()
        airflow(env, "dags", "test", DAG_ID, logical_date)
        say(f"DAG run finished in {time.monotonic() - started:.0f} s")
        if own_base_url not in (None, sandbox_url):
            from meta_ads_elt.marts import summarize_marts

            print(summarize_marts(config.resolve(config.marts.serving_path)), flush=True)
            say(f"marts built from {own_base_url}: no sandbox truth to compare them with")
            return
        summarize(sandbox_url, today - timedelta(days=1))
        say(f"sandbox truth for comparison: {sandbox_url}/_sandbox/truth?since=YYYY-MM-DD&until=YYYY-MM-DD")


if __name__ == "__main__":
    main()
