"""Bad inputs are named where they are read, in our words: the key (or field, or argument), the value
and what is allowed, on the first line the user sees, never another library's error or traceback.

One table per place a user types something: the config file (include/pipeline.yaml), the Airflow
Connection, operator arguments, and the DAG import that reads the config. A Meta refusal of the
``appsecret_proof`` (a wrong app secret) is checked against the sandbox over HTTP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from airflow.sdk import Connection
from meta_ads_elt.config import ConfigError, load_config, parse_config
from meta_ads_elt.errors import MetaAppSecretProofError, MetaConfigError
from meta_ads_elt.hooks.graph_api import MetaGraphApiHook, settings_from_connection

PROJECT_DIR = Path(__file__).resolve().parents[2]
VALID = {"accounts": [{"id": "act_101"}], "pages": [{"id": "201"}]}
FOREIGN = ("croniter", "pydantic", "Traceback", "fsspec", "ValidationError", "json.decoder")


def first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0]


def assert_ours(line: str, expected: str) -> None:
    assert line.startswith(expected), f"first line {line!r} does not start with {expected!r}"
    assert not any(word in line for word in FOREIGN), f"another library speaks first: {line!r}"


def with_key(path: str, value: object) -> dict:
    """VALID with ``a.b`` set to ``value``."""
    data = json.loads(json.dumps(VALID))
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return data


# ---- include/pipeline.yaml -------------------------------------------------------------------------

CONFIG_CASES = [
    ("meta_conn_id", "", "meta_conn_id = '': must be an Airflow Connection id"),
    ("meta_conn_id", "meta default", "meta_conn_id = 'meta default': must be an Airflow Connection id"),
    ("lake_root", "/dev/null", "lake_root = '/dev/null': /dev/null is a device, not a directory"),
    (
        "lake_root",
        "/proc/version/lake",
        "lake_root = '/proc/version/lake': /proc/version is a file, not a directory",
    ),
    (
        "lake_root",
        "foo://bucket/lake",
        "lake_root = 'foo://bucket/lake': protocol 'foo://' is not a known protocol",
    ),
    (
        "lake_root",
        "memory://lake",
        "lake_root = 'memory://lake': protocol 'memory://' cannot be read by dbt-duckdb",
    ),
    ("lake_root", " ", "lake_root = ' ': is empty"),
    ("lookback_days", 0, "lookback_days = 0: Input should be greater than or equal to 1"),
    ("lookback_days", 91, "lookback_days = 91: Input should be less than or equal to 90"),
    ("lookback_days", "four", "lookback_days = 'four': Input should be a valid integer"),
    ("schedule", "0 0 * *", "schedule = '0 0 * *': is not a cron expression Airflow accepts"),
    ("schedule", "61 0 * * *", "schedule = '61 0 * * *': is not a cron expression Airflow accepts"),
    ("schedule", "every day", "schedule = 'every day': is not a cron expression Airflow accepts"),
    ("schedule", "0 0 * * * 30", "schedule = '0 0 * * * 30': has 6 fields; use a 5-field cron expression"),
    ("schedule", "@fortnightly", "schedule = '@fortnightly': is not a cron expression Airflow accepts"),
    ("max_active_runs", 0, "max_active_runs = 0: Input should be greater than or equal to 1"),
    ("accounts", [], "accounts = []: Tuple should have at least 1 item"),
    ("accounts", [{"id": "12345"}], "accounts[0].id = '12345': must be 'act_' followed by digits"),
    ("accounts", [{"id": "act_1"}, {"id": "act_1"}], "accounts[1].id 'act_1' is listed twice"),
    (
        "lookbak_days",
        7,
        "lookbak_days: unknown key; check its spelling (allowed here: meta_conn_id, lake_root",
    ),
    (
        "insights.chunk_day",
        3,
        "insights.chunk_day: unknown key; check its spelling (allowed here: attribution_windows",
    ),
    ("pages", [{"id": "my-page"}], "pages[0].id = 'my-page': must be the Page's numeric id"),
    (
        "pages",
        [{"id": "9", "platforms": ["whatsapp"]}],
        "pages[0].platforms[0] = 'whatsapp': Input should be 'messenger' or 'instagram'",
    ),
    ("pages", [{"id": "9", "leads": "maybe"}], "pages[0].leads = 'maybe': Input should be a valid boolean"),
    (
        "insights.attribution_windows",
        ["7d_view"],
        "insights.attribution_windows[0] = '7d_view': Input should be",
    ),
    ("insights.chunk_days", 0, "insights.chunk_days = 0: Input should be greater than or equal to 1"),
    (
        "insights.max_concurrent_jobs",
        101,
        "insights.max_concurrent_jobs = 101: Input should be less than or equal to 100",
    ),
    (
        "insights.poll_interval_seconds",
        0,
        "insights.poll_interval_seconds = 0: Input should be greater than 0",
    ),
    (
        "insights.stall_timeout_minutes",
        -1,
        "insights.stall_timeout_minutes = -1: Input should be greater than 0",
    ),
    (
        "privacy.default_phone_country_code",
        "+49",
        "privacy.default_phone_country_code = '+49': String should match",
    ),
    (
        "privacy.keep_message_text",
        "sometimes",
        "privacy.keep_message_text = 'sometimes': Input should be a valid boolean",
    ),
    (
        "marts.build_path",
        "/dev/null",
        "marts.build_path = '/dev/null': /dev/null is a device; give a file path",
    ),
    ("marts.serving_path", "/tmp", "marts.serving_path = '/tmp': /tmp is a directory; give a file path"),
    (
        "marts.serving_path",
        "s3://bucket/marts.duckdb",
        "marts.serving_path = 's3://bucket/marts.duckdb': must be a local path",
    ),
    (
        "marts.parquet_dir",
        "/dev/null",
        "marts.parquet_dir = '/dev/null': /dev/null is a device, not a directory",
    ),
    ("marts.serving_path", "data/build/marts_build.duckdb", "marts: build_path and serving_path are both"),
]


@pytest.mark.parametrize(
    ("key", "value", "expected"), CONFIG_CASES, ids=[f"{c[0]}={c[1]!r}" for c in CONFIG_CASES]
)
def test_a_bad_config_value_is_named_on_the_first_line(key, value, expected):
    with pytest.raises(ConfigError) as excinfo:
        parse_config(with_key(key, value), source="pipeline.yaml")
    assert_ours(first_line(excinfo.value), f"pipeline.yaml: {expected}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", " is empty: it needs at least an accounts: list"),
        ("- act_1\n", ": expected a mapping of keys at the top level, got list"),
        ("accounts: [\n", " is not valid YAML"),
    ],
    ids=["empty file", "a list", "broken YAML"],
)
def test_a_bad_config_file_is_named(tmp_path, text, expected):
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    assert_ours(first_line(excinfo.value), f"{path}{expected}")


def test_a_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError) as excinfo:
        load_config(tmp_path / "nope.yaml")
    assert_ours(first_line(excinfo.value), f"cannot read the pipeline config {tmp_path / 'nope.yaml'}")


def test_a_bad_lake_root_override_names_the_environment_variable(monkeypatch):
    monkeypatch.setenv("META_LAKE_ROOT", "/dev/null")
    with pytest.raises(ConfigError) as excinfo:
        _ = parse_config(VALID).lake_root_resolved
    assert_ours(
        first_line(excinfo.value), "environment variable META_LAKE_ROOT = '/dev/null': /dev/null is a device"
    )


def test_every_problem_is_listed_after_the_first():
    with pytest.raises(ConfigError) as excinfo:
        parse_config({**VALID, "lookback_days": 0, "schedule": "x"}, source="p.yaml")
    lines = str(excinfo.value).splitlines()
    assert lines[0].startswith("p.yaml: lookback_days = 0")
    assert lines[1].startswith("  also: schedule = 'x'")


# ---- the Airflow Connection ----------------------------------------------------------------------


def connection(**fields) -> Connection:
    extra = fields.pop("extra", {"base_url": "http://127.0.0.1:8765"})
    return Connection(
        conn_id="meta_default",
        conn_type=fields.pop("conn_type", "meta_graph_api"),
        password=fields.pop("password", "sandbox-token"),
        extra=extra if isinstance(extra, str) else json.dumps(extra),
        **fields,
    )


CONNECTION_CASES = [
    (
        "no token",
        connection(password=None),
        "Connection 'meta_default' has no access token: put the Meta access token",
    ),
    ("empty token", connection(password=""), "Connection 'meta_default' has no access token"),
    (
        "token with spaces",
        connection(password="  "),
        "Connection 'meta_default': the access token (Password) contains spaces or a line break",
    ),
    (
        "token with a line break",
        connection(password="EAAB123\n"),
        "Connection 'meta_default': the access token (Password) contains spaces",
    ),
    (
        "extra not JSON",
        connection(extra="{base_url: http://x}"),
        "Connection 'meta_default': its Extra field is not valid JSON",
    ),
    (
        "extra a list",
        connection(extra="[1, 2]"),
        "Connection 'meta_default': its Extra field is a JSON list, not an object",
    ),
    (
        "misspelt extra",
        connection(extra={"app_secert": "s"}),
        "Connection 'meta_default': extra 'app_secert' is not a setting of this hook",
    ),
    (
        "base_url without scheme",
        connection(extra={"base_url": "graph.facebook.com"}),
        "Connection 'meta_default': extra base_url = 'graph.facebook.com': must be an http(s) URL",
    ),
    (
        "base_url ftp",
        connection(extra={"base_url": "ftp://graph.facebook.com"}),
        "Connection 'meta_default': extra base_url = 'ftp://graph.facebook.com': must be",
    ),
    (
        "base_url with the version",
        connection(extra={"base_url": "https://graph.facebook.com/v26.0"}),
        "Connection 'meta_default': extra base_url = 'https://graph.facebook.com/v26.0' has a path '/v26.0' (the Graph API version goes in extra api_version)",
    ),
    (
        "base_url bad port",
        connection(extra={"base_url": "http://127.0.0.1:99999"}),
        "Connection 'meta_default': extra base_url = 'http://127.0.0.1:99999' has an invalid port",
    ),
    (
        "base_url with a query",
        connection(extra={"base_url": "https://graph.facebook.com?x=1"}),
        "Connection 'meta_default': extra base_url = 'https://graph.facebook.com?x=1' has a query",
    ),
    (
        "api_version",
        connection(extra={"api_version": "latest"}),
        "Connection 'meta_default': extra api_version = 'latest': must be a Graph API version such as 'v26.0'",
    ),
    (
        "timeout zero",
        connection(extra={"timeout": 0}),
        "Connection 'meta_default': extra timeout = 0: must be a number of seconds above 0",
    ),
    (
        "timeout text",
        connection(extra={"timeout": "soon"}),
        "Connection 'meta_default': extra timeout = 'soon': must be a number of seconds",
    ),
    (
        "timeout huge",
        connection(extra={"timeout": 1e9}),
        "Connection 'meta_default': extra timeout = 1000000000.0: must be a number of seconds above 0 and at most 3600",
    ),
    (
        "instagram pace zero",
        connection(extra={"instagram_calls_per_second": 0}),
        "Connection 'meta_default': extra instagram_calls_per_second = 0: must be a whole number of calls of at "
        "least 1; Meta allows 2",
    ),
    (
        "instagram pace fraction",
        connection(extra={"instagram_calls_per_second": 1.5}),
        "Connection 'meta_default': extra instagram_calls_per_second = 1.5: must be a whole number",
    ),
    (
        "conn_type",
        connection(conn_type="http"),
        "Connection 'meta_default': conn_type = 'http': must be 'meta_graph_api'",
    ),
    (
        "host",
        connection(host="graph.facebook.com"),
        "Connection 'meta_default': field host = 'graph.facebook.com' is not used by this hook; put the API URL in extra base_url",
    ),
    (
        "login",
        connection(login="me@example.com"),
        "Connection 'meta_default': field login = 'me@example.com' is not used by this hook; put the token in Password",
    ),
    (
        "app_secret a number",
        connection(extra={"app_secret": 1234}),
        "Connection 'meta_default': extra app_secret must be a string, got a int (value not shown)",
    ),
    (
        "app_id with a space",
        connection(extra={"app_id": "12 34"}),
        "Connection 'meta_default': extra app_id = '12 34': must be the app's id",
    ),
    (
        "two different tokens",
        connection(extra={"access_token": "other"}),
        "Connection 'meta_default': both Password and extra access_token hold a token, and they differ",
    ),
]


@pytest.mark.parametrize(("name", "conn", "expected"), CONNECTION_CASES, ids=[c[0] for c in CONNECTION_CASES])
def test_a_bad_connection_field_is_named_on_the_first_line(name, conn, expected):
    with pytest.raises(MetaConfigError) as excinfo:
        settings_from_connection(conn, "meta_default")
    assert_ours(first_line(excinfo.value), expected)
    assert "sandbox-token" not in str(excinfo.value) and "EAAB123" not in str(excinfo.value)


def test_a_connection_that_does_not_exist_is_named(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_META_NOPE", raising=False)
    with pytest.raises(MetaConfigError) as excinfo:
        _ = MetaGraphApiHook("meta_nope").connection
    assert_ours(
        first_line(excinfo.value),
        "Airflow connection 'meta_nope' is not defined. Create it with conn_type meta_graph_api",
    )


def test_a_wrong_app_secret_is_reported_as_a_refused_appsecret_proof(sandbox, monkeypatch, tmp_path):
    """Not as "Page ... was not found": the leads operator's first call (the Page token) is refused."""
    from meta_ads_elt.operators.leads import MetaLeadsOperator

    page_id = sandbox.world()["pages"][0]["id"]
    monkeypatch.setenv(
        "AIRFLOW_CONN_META_DEFAULT",
        json.dumps(
            {
                "conn_type": "meta_graph_api",
                "password": sandbox.token,
                "extra": {"base_url": sandbox.url, "app_secret": "not-the-app-secret"},
            }
        ),
    )
    operator = MetaLeadsOperator(
        task_id="leads", page_id=page_id, lake_root=str(tmp_path / "lake"), data_interval_day="2026-03-01"
    )
    with pytest.raises(MetaAppSecretProofError) as excinfo:
        operator.execute({"run_id": "test"})
    assert_ours(first_line(excinfo.value), "Meta refused the appsecret_proof (connection 'meta_default')")
    assert "not the secret of the app that issued the token" in str(excinfo.value)


# ---- operator arguments ----------------------------------------------------------------------------


def _insights(**kwargs):
    from meta_ads_elt.operators.insights import MetaInsightsOperator

    return MetaInsightsOperator(task_id="i", **{"account_id": "act_1", **kwargs})


def _leads(**kwargs):
    from meta_ads_elt.operators.leads import MetaLeadsOperator

    return MetaLeadsOperator(task_id="l", **{"page_id": "1", "lake_root": "data/lake", **kwargs})


def _conversations(**kwargs):
    from meta_ads_elt.operators.conversations import MetaConversationsOperator

    return MetaConversationsOperator(task_id="c", **{"page_id": "1", "lake_root": "data/lake", **kwargs})


def _ad_objects(**kwargs):
    from meta_ads_elt.operators.ad_objects import MetaAdObjectsOperator

    return MetaAdObjectsOperator(task_id="o", **kwargs)


OPERATOR_CASES = [
    (
        _insights,
        {"account_id": "act_12x"},
        "MetaInsightsOperator: argument account_id = 'act_12x': must be 'act_' followed by digits",
    ),
    (
        _insights,
        {"lookback_days": 0},
        "MetaInsightsOperator: argument lookback_days = 0: Input should be greater than or equal to 1",
    ),
    (
        _insights,
        {"chunk_days": 91},
        "MetaInsightsOperator: argument chunk_days = 91: Input should be less than or equal to 90 (the rule of insights.chunk_days",
    ),
    (
        _insights,
        {"attribution_windows": ["7d_view"]},
        "MetaInsightsOperator: argument attribution_windows = ['7d_view']: Input should be",
    ),
    (
        _insights,
        {"max_concurrent_jobs": 0},
        "MetaInsightsOperator: argument max_concurrent_jobs = 0: Input should be greater than or equal to 1",
    ),
    (
        _insights,
        {"poll_interval": 0},
        "MetaInsightsOperator: argument poll_interval = 0: Input should be greater than 0 (the rule of insights.poll_interval_seconds",
    ),
    (
        _ad_objects,
        {"account_id": "my account"},
        "MetaAdObjectsOperator: argument account_id = 'my account': must be 'act_' followed by digits",
    ),
    (
        _leads,
        {"page_id": "my-page"},
        "MetaLeadsOperator: argument page_id = 'my-page': must be the Page's numeric id",
    ),
    (
        _leads,
        {"default_phone_country_code": "+49"},
        "MetaLeadsOperator: argument default_phone_country_code = '+49': String should match",
    ),
    (
        _conversations,
        {"platforms": ["whatsapp"]},
        "MetaConversationsOperator: argument platforms = ['whatsapp']: Input should be 'messenger' or 'instagram'",
    ),
    (
        _conversations,
        {"lookback_days": -3},
        "MetaConversationsOperator: argument lookback_days = -3: Input should be greater than or equal to 1",
    ),
]


@pytest.mark.parametrize(
    ("make", "kwargs", "expected"),
    OPERATOR_CASES,
    ids=[f"{c[0].__name__}-{next(iter(c[1]))}" for c in OPERATOR_CASES],
)
def test_a_bad_operator_argument_is_named_when_the_dag_is_defined(make, kwargs, expected):
    with pytest.raises(ConfigError) as excinfo:
        make(**kwargs)
    assert_ours(first_line(excinfo.value), expected)


def test_templated_arguments_are_left_for_rendering():
    assert _leads(page_id="{{ params.page_id }}").page_id == "{{ params.page_id }}"


# ---- the DAG import --------------------------------------------------------------------------------

PARSE_MANY = r"""
import json, os, sys
from airflow.dag_processing.dagbag import DagBag
from meta_ads_elt.config import load_config_cached

out = {}
for config_path in sys.argv[2:]:
    os.environ["META_PIPELINE_CONFIG"] = config_path
    load_config_cached.cache_clear()
    bag = DagBag(dag_folder=sys.argv[1])
    out[config_path] = list(bag.import_errors.values())
print(json.dumps(out))
"""

DAG_CASES = [
    ("schedule", "0 0 * *", "schedule = '0 0 * *': is not a cron expression Airflow accepts"),
    ("lake_root", "/dev/null", "lake_root = '/dev/null': /dev/null is a device, not a directory"),
    (
        "lake_root",
        "foo://bucket/lake",
        "lake_root = 'foo://bucket/lake': protocol 'foo://' is not a known protocol",
    ),
    ("marts.serving_path", "/dev/null", "marts.serving_path = '/dev/null': /dev/null is a device"),
]


def test_the_dag_import_shows_our_message_for_a_bad_config(tmp_path):
    """What Airflow shows for the DAG file (UI, `airflow dags list-import-errors`): the exception line is
    ours, naming the key, and no other library's frame or message appears (croniter, pydantic)."""
    shipped = yaml.safe_load((PROJECT_DIR / "include" / "pipeline.yaml").read_text())
    paths = []
    for index, (key, value, _expected) in enumerate(DAG_CASES):
        data = json.loads(json.dumps(shipped))
        node = data
        *parents, last = key.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
        path = tmp_path / f"bad{index}.yaml"
        path.write_text(yaml.safe_dump(data))
        paths.append(str(path))
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_DIR / "plugins"),
        "PYTHONPATH": os.pathsep.join([str(PROJECT_DIR / "plugins"), str(PROJECT_DIR / "include")]),
    }
    result = subprocess.run(
        [sys.executable, "-c", PARSE_MANY, str(PROJECT_DIR / "dags"), *paths],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    errors = json.loads(result.stdout.strip().splitlines()[-1])
    for path, (_key, _value, expected) in zip(paths, DAG_CASES, strict=True):
        assert len(errors[path]) == 1, errors[path]
        text = errors[path][0]
        exception_lines = [
            line
            for line in text.splitlines()
            if line and not line.startswith((" ", "Traceback", "During handling", "The above exception"))
        ]
        assert_ours(exception_lines[0], f"meta_ads_elt.config.ConfigError: {path}: {expected}")
        assert "croniter" not in text and "pydantic" not in text and "Asset" not in text, text


# ---- `make run` --------------------------------------------------------------------------------------


def test_make_run_uses_and_checks_a_connection_the_user_defined(monkeypatch):
    """Why "a Connection with no token at all was accepted and the run succeeded": `make run` replaced the
    user's $AIRFLOW_CONN_META_DEFAULT with the sandbox's. It now keeps it, and checks it before starting."""
    import run_local

    monkeypatch.setenv("AIRFLOW_CONN_META_DEFAULT", json.dumps({"conn_type": "meta_graph_api", "extra": {}}))
    with pytest.raises(SystemExit) as excinfo:
        run_local.user_connection("meta_default")
    assert_ours(
        str(excinfo.value), "$AIRFLOW_CONN_META_DEFAULT: Connection 'meta_default' has no access token"
    )
    good = json.dumps(
        {"conn_type": "meta_graph_api", "password": "t", "extra": {"base_url": "http://127.0.0.1:9"}}
    )
    monkeypatch.setenv("AIRFLOW_CONN_META_DEFAULT", good)
    assert run_local.user_connection("meta_default") == "http://127.0.0.1:9"
    assert run_local.airflow_env("http://127.0.0.1:1")["AIRFLOW_CONN_META_DEFAULT"] == good
