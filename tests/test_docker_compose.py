"""docker-compose.yaml cannot run here (no Docker engine): check what can be checked statically."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PROJECT_DIR = Path(__file__).resolve().parents[1]
AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-init",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((PROJECT_DIR / "docker-compose.yaml").read_text())


def test_it_has_the_production_services(compose):
    services = compose["services"]
    assert AIRFLOW_SERVICES | {"postgres", "redis", "sandbox"} <= set(services)
    assert services["airflow-worker"]["command"] == "celery worker"
    assert services["sandbox"]["profiles"] == ["sandbox"], "the sandbox is optional"
    for name in AIRFLOW_SERVICES:
        assert services[name]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert "postgres" in services[name]["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert services[name]["environment"]["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")


def test_the_image_is_built_from_requirements_not_installed_at_start(compose):
    text = (PROJECT_DIR / "docker-compose.yaml").read_text()
    assert "_PIP_ADDITIONAL_REQUIREMENTS:" not in text
    for name in AIRFLOW_SERVICES:
        assert compose["services"][name]["build"]["dockerfile"] == "Dockerfile"
    dockerfile = (PROJECT_DIR / "Dockerfile").read_text()
    assert "requirements.txt" in dockerfile and "constraints.txt" in dockerfile
    airflow_pin = next(
        line
        for line in (PROJECT_DIR / "requirements.txt").read_text().splitlines()
        if line.startswith("apache-airflow==")
    )
    assert f"apache/airflow:{airflow_pin.split('==')[1]}-python3.11" in dockerfile


def test_mounts_match_the_paths_the_code_expects(compose):
    service = compose["services"]["airflow-worker"]
    mounts = dict(volume.split(":", 1) for volume in service["volumes"])
    for folder in ("dags", "plugins", "include", "dbt_project", "data"):
        assert mounts[f"./{folder}"] == f"/opt/airflow/{folder}"
        if folder != "data":
            assert (PROJECT_DIR / folder).is_dir()
    env = service["environment"]
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == mounts["./dags"]
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == mounts["./plugins"]
    assert env["PYTHONPATH"].split(":") == [mounts["./plugins"], mounts["./include"]]
    config_in_container = env["META_PIPELINE_CONFIG"]
    assert config_in_container.startswith(mounts["./include"] + "/")
    assert (PROJECT_DIR / "include" / Path(config_in_container).name).is_file()
    # The lake and marts resolve under the mounted data folder, as config.PROJECT_DIR does in the image.
    assert env["META_LAKE_ROOT"] == f"{mounts['./data']}/lake"


def test_no_secret_is_committed_in_compose(compose):
    for service in compose["services"].values():
        for key, value in (service.get("environment") or {}).items():
            if key == "AIRFLOW_CONN_META_DEFAULT":
                assert value.startswith("${"), (
                    "the Meta token comes from the environment / .env, never the file"
                )


def test_the_init_service_creates_the_pools_the_dag_uses(compose):
    command = " ".join(compose["services"]["airflow-init"]["command"])
    assert "include/pools_file.py" in command and "airflow pools import" in command
    result = subprocess.run(
        [sys.executable, str(PROJECT_DIR / "include" / "pools_file.py")],
        env={**os.environ, "PYTHONPATH": f"{PROJECT_DIR / 'plugins'}:{PROJECT_DIR / 'include'}"},
        capture_output=True,
        text=True,
        check=True,
    )
    pools = json.loads(result.stdout)
    assert pools["duckdb_writer"]["slots"] == 1
    assert any(name.startswith("meta_account_") for name in pools)


def test_the_sandbox_service_serves_the_documented_port(compose):
    sandbox = compose["services"]["sandbox"]
    assert "8765:8765" in sandbox["ports"]
    assert sandbox["entrypoint"][:3] == ["python", "-m", "meta_sandbox"]


# -- compose and the Celery end-to-end test (tests/e2e/test_celery_executor.py) run the same deployment --


@pytest.fixture(scope="module")
def e2e_deployment():
    """The Celery e2e test's deployment module (its settings, components and database role)."""
    sys.path.insert(0, str(PROJECT_DIR / "tests" / "e2e"))
    return importlib.import_module("celery_cluster")


def container_port(mapping: str) -> int:
    return int(str(mapping).rsplit(":", 1)[-1])


def test_compose_runs_the_components_the_celery_e2e_test_runs(compose, e2e_deployment):
    commands = [compose["services"][name]["command"] for name in sorted(AIRFLOW_SERVICES - {"airflow-init"})]
    assert sorted(commands) == sorted(e2e_deployment.COMPONENTS)


def test_every_airflow_service_has_the_settings_the_celery_e2e_test_runs_with(compose, e2e_deployment):
    """Executor, metadata database, result backend, broker and execution API URL, as the test's
    deployment builds them for compose's host names and ports; the shared secrets from the environment."""
    services = compose["services"]
    api_port = container_port(services["airflow-apiserver"]["ports"][0])
    redis_port = container_port(services["redis"]["expose"][0])
    expected = e2e_deployment.deployment_settings(
        postgres="postgres:5432",
        redis=f"redis:{redis_port}",
        api_server=f"airflow-apiserver:{api_port}",
        shared_secrets=dict.fromkeys(e2e_deployment.SECRET_SETTINGS, ""),
    )
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        for key, value in expected.items():
            if key in e2e_deployment.SECRET_SETTINGS:
                assert re.fullmatch(rf"\$\{{{key}:\?.+\}}", str(env.get(key))), (
                    f"{name}: {key} must be required from the environment (`${{{key}:?...}}`), not {env.get(key)!r}"
                )
            else:
                assert env.get(key) == value, (
                    f"{name}: {key} is {env.get(key)!r}; the Celery e2e test runs {value!r}"
                )
    # The API server listens on Airflow's default port, the one the execution API URL names.
    assert "AIRFLOW__API__PORT" not in services["airflow-apiserver"]["environment"] and api_port == 8080
    assert f"localhost:{api_port}/" in " ".join(services["airflow-apiserver"]["healthcheck"]["test"])


def test_the_database_and_broker_services_are_the_ones_the_celery_e2e_test_starts(compose, e2e_deployment):
    postgres, redis = compose["services"]["postgres"], compose["services"]["redis"]
    assert postgres["image"].startswith("postgres:") and redis["image"].startswith("redis:")
    assert postgres["environment"] == {
        "POSTGRES_USER": e2e_deployment.DATABASE_USER,
        "POSTGRES_PASSWORD": e2e_deployment.DATABASE_PASSWORD,
        "POSTGRES_DB": e2e_deployment.DATABASE_NAME,
    }


def test_compose_and_the_celery_e2e_test_create_the_same_pools(compose):
    """compose's airflow-init imports include/pools_file.py's output; the e2e test imports
    pools_import_document(load_config()) (airflow_standalone.prepare_home): the same document."""
    from meta_ads_elt.config import load_config
    from meta_ads_elt.pools import pools_import_document

    result = subprocess.run(
        [sys.executable, str(PROJECT_DIR / "include" / "pools_file.py")],
        env={**os.environ, "PYTHONPATH": f"{PROJECT_DIR / 'plugins'}:{PROJECT_DIR / 'include'}"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout) == pools_import_document(load_config())
