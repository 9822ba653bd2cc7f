"""The package is an Airflow provider: its connection type, the form Airflow builds from it, the Test button."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from meta_ads_elt.get_provider_info import CONN_TYPE, get_provider_info
from meta_ads_elt.hooks.graph_api import MetaGraphApiHook

PROJECT_DIR = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def _airflow_schema(name: str) -> dict:
    return json.loads(resources.files("airflow").joinpath(name).read_text())


def _connection_type() -> dict:
    (connection_type,) = get_provider_info()["connection-types"]
    return connection_type


def test_the_provider_info_is_valid_for_airflows_providers_manager():
    jsonschema.validate(get_provider_info(), _airflow_schema("provider_info.schema.json"))
    # The stricter provider.yaml schema is the one that defines conn-fields and ui-field-behaviour.
    item_schema = _airflow_schema("provider.yaml.schema.json")["properties"]["connection-types"]["items"]
    jsonschema.validate(_connection_type(), item_schema)


def test_the_entry_point_and_package_name_match_pyproject():
    project = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())["project"]
    module_name, function_name = project["entry-points"]["apache_airflow_provider"]["provider_info"].split(
        ":"
    )
    assert getattr(importlib.import_module(module_name), function_name) is get_provider_info
    assert project["name"] == get_provider_info()["package-name"]
    hook_path = _connection_type()["hook-class-name"]
    module_name, class_name = hook_path.rsplit(".", 1)
    assert getattr(importlib.import_module(module_name), class_name) is MetaGraphApiHook
    assert MetaGraphApiHook.conn_type == _connection_type()["connection-type"] == CONN_TYPE


def test_the_form_labels_every_field_masks_the_secrets_and_hides_the_rest():
    connection_type = _connection_type()
    labels = {name: field["label"] for name, field in connection_type["conn-fields"].items()}
    assert labels == {
        "app_id": "App ID",
        "app_secret": "App secret",
        "api_version": "API version",
        "base_url": "Base URL",
        "timeout": "Timeout (seconds)",
        "instagram_calls_per_second": "Instagram calls per second",
    }
    assert connection_type["conn-fields"]["app_secret"]["schema"]["format"] == "password"
    behaviour = connection_type["ui-field-behaviour"]
    assert behaviour["relabeling"] == {"password": "Access token"}
    assert set(behaviour["hidden-fields"]) == {"host", "schema", "login", "port", "extra"}


@pytest.fixture(scope="module")
def installed_airflow(tmp_path_factory) -> dict[str, str]:
    """The environment of an `airflow` CLI of this venv, which must have the project installed."""
    try:
        importlib.metadata.distribution("meta-ads-elt")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail("meta-ads-elt is not installed in this venv: `make venv` installs it (pip install -e .)")
    home = tmp_path_factory.mktemp("airflow_home")
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "PYTHONPATH": os.pathsep.join([str(PROJECT_DIR / "plugins"), str(PROJECT_DIR / "include")]),
    }


def _airflow_json(env: dict[str, str], *args: str) -> list[dict]:
    result = subprocess.run(
        [str(VENV_BIN / "airflow"), *args, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout[result.stdout.index("[") :])


@pytest.mark.slow
def test_airflow_lists_the_provider_and_its_connection_type(installed_airflow):
    providers = {p["package_name"]: p for p in _airflow_json(installed_airflow, "providers", "list")}
    assert "meta-ads-elt" in providers
    hooks = {h["connection_type"]: h for h in _airflow_json(installed_airflow, "providers", "hooks")}
    assert hooks[CONN_TYPE]["class"] == "meta_ads_elt.hooks.graph_api.MetaGraphApiHook"
    assert hooks[CONN_TYPE]["package_name"] == "meta-ads-elt"


@pytest.mark.slow
def test_airflow_builds_the_connection_form_from_the_declaration(installed_airflow):
    widgets = {
        w["connection_parameter_name"]: w for w in _airflow_json(installed_airflow, "providers", "widgets")
    }
    assert {f"extra__{CONN_TYPE}__{name}" for name in _connection_type()["conn-fields"]} <= set(widgets)
    assert widgets[f"extra__{CONN_TYPE}__timeout"]["field_type"] == ["number", "null"]
    behaviours = [b["field_behaviours"] for b in _airflow_json(installed_airflow, "providers", "behaviours")]
    assert CONN_TYPE in behaviours


@pytest.fixture
def meta_connection(monkeypatch, sandbox):
    def _connect(token: str = sandbox.token, base_url: str = sandbox.url) -> MetaGraphApiHook:
        monkeypatch.setenv(
            "AIRFLOW_CONN_META_TEST_BUTTON",
            json.dumps(
                {
                    "conn_type": CONN_TYPE,
                    "password": token,
                    "extra": {
                        "base_url": base_url,
                        "app_id": sandbox.app_id,
                        "app_secret": sandbox.app_secret,
                    },
                }
            ),
        )
        return MetaGraphApiHook("meta_test_button", max_attempts=2, backoff_base=0.01)

    return _connect


def test_the_test_button_says_who_is_connected(meta_connection, sandbox):
    ok, message = meta_connection().test_connection()
    assert ok, message
    assert message.startswith(f"Connected to {sandbox.url} (v26.0) with appsecret_proof as ")
    assert sandbox.token not in message


def test_the_test_button_explains_a_bad_token_without_showing_it(meta_connection):
    ok, message = meta_connection(token="sandbox-expired-token").test_connection()
    assert not ok
    assert "token" in message.lower() and "sandbox-expired-token" not in message


def test_the_test_button_reports_an_unreachable_base_url(meta_connection):
    ok, message = meta_connection(base_url="http://127.0.0.1:9").test_connection()
    assert not ok and message
