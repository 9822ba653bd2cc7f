"""docker-compose.yaml cannot run here (no Docker engine): check what can be checked statically."""

from __future__ import annotations

import json
import os
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
        line for line in (PROJECT_DIR / "requirements.txt").read_text().splitlines() if line.startswith("apache-airflow==")
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
                assert value.startswith("${"), "the Meta token comes from the environment / .env, never the file"


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
