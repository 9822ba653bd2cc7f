"""Airflow's distributed engine on this machine, in the shape of docker-compose.yaml.

PostgreSQL (metadata database and Celery result backend), Redis (Celery broker), then the API server,
scheduler, dag-processor, triggerer and two Celery workers: real processes, each with its own
AIRFLOW_HOME (as each compose service has its own container and config), sharing the DAGs, the data and
one logs folder (as the compose volumes do). Every setting they share is declared once,
in ``deployment_settings``; tests/test_docker_compose.py holds docker-compose.yaml to it.

The servers bind loopback on free ports, with their data in temporary directories. PostgreSQL refuses to
run as root, so under root (CI) it runs as Debian's ``postgres`` system user (``setpriv``). Binaries come
from Debian's packages (``make services-deps``; ``.ci/run`` runs it).

Each process started here leads a new session and carries a marker in its environment.
``CeleryDeployment.stop`` signals each, kills its process group after a grace period, then kills whatever
is still in those sessions, below those processes or carries the marker (task processes put themselves
in process groups of their own), and fails if anything survives.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import psycopg2
import pytest
import redis
from airflow_standalone import PROJECT_DIR, VENV_BIN, Standalone, airflow_env, free_port, prepare_home

E2E_DIR = Path(__file__).resolve().parent

# What docker-compose.yaml runs, as `airflow <command>`, one service each.
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer", "celery worker")
# The test runs the `celery worker` component twice, as two hosts would.
WORKERS = ("worker-1", "worker-2")
WORKER_CONCURRENCY = 2
# The compose `postgres` service's role, password and database.
DATABASE_USER = DATABASE_PASSWORD = DATABASE_NAME = "airflow"
# Settings whose values are secrets every component must share: from the environment, never committed.
SECRET_SETTINGS = ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY")

MARKER = "META_E2E_DEPLOYMENT"
SERVERS = ("postgres", "redis")
STOP_GRACE_SECONDS = 20
START_TIMEOUT_SECONDS = 180


def deployment_settings(
    *, postgres: str, redis: str, api_server: str, shared_secrets: dict[str, str]
) -> dict:
    """The settings every Airflow component shares, given each server's ``host:port``."""
    database = f"{DATABASE_USER}:{DATABASE_PASSWORD}@{postgres}/{DATABASE_NAME}"
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{database}",
        # The driver named: SQLAlchemy 2.1 reads a bare `postgresql://` as psycopg (3), not psycopg2.
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{database}",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://:@{redis}/0",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{api_server}/execution/",
        **{name: shared_secrets[name] for name in SECRET_SETTINGS},
    }


# -- server binaries ---------------------------------------------------------------------------------


def missing(what: str) -> None:
    """A binary the test needs is not installed: fail in CI (where the test must run), skip elsewhere."""
    message = (
        f"{what}: install the server binaries with `make services-deps` (Debian: postgresql, redis-server)"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def postgres_bindir() -> Path:
    """Debian's newest /usr/lib/postgresql/<major>/bin, else the directory of `postgres` on PATH."""
    debian = [path.parent for path in Path("/usr/lib/postgresql").glob("*/bin/postgres")]
    debian.sort(
        key=lambda bindir: int(bindir.parent.name) if bindir.parent.name.isdigit() else 0, reverse=True
    )
    on_path = shutil.which("postgres")
    for bindir in [*debian, *([Path(on_path).resolve().parent] if on_path else [])]:
        if (bindir / "initdb").exists():
            return bindir
    missing("PostgreSQL's `postgres` and `initdb` were not found")
    raise AssertionError("unreachable")


def redis_server_binary() -> str:
    binary = shutil.which("redis-server")
    if not binary:
        missing("`redis-server` was not found on PATH")
    return binary


def postgres_run_as() -> tuple[list[str], tuple[int, int] | None]:
    """The command prefix that runs PostgreSQL unprivileged, and that user's (uid, gid) to own its files."""
    if os.geteuid() != 0:
        return [], None
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        missing("PostgreSQL refuses to run as root and there is no `postgres` system user to run it as")
        raise
    setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
    return [setpriv, f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups"], (
        user.pw_uid,
        user.pw_gid,
    )


# -- processes ----------------------------------------------------------------------------------------


@dataclass
class Managed:
    """A process this deployment started, leader of its own process group, its output in ``log_path``."""

    name: str
    process: subprocess.Popen
    log_path: Path
    stop_signal: int = signal.SIGTERM

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, chars: int = 2500) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)


@dataclass
class CeleryAirflow(Standalone):
    """The REST client of `airflow_standalone`, for the deployment's API server."""

    deployment: CeleryDeployment | None = None

    def log_tail(self) -> str:
        return self.deployment.log_tails()

    def stop(self) -> None:
        self.deployment.stop()


@dataclass
class CeleryDeployment:
    workdir: Path
    marker: str = field(default_factory=lambda: uuid.uuid4().hex)
    processes: list[Managed] = field(default_factory=list)
    scratch_dirs: list[Path] = field(default_factory=list)
    postgres_address: str = ""
    redis_address: str = ""
    env: dict[str, str] = field(default_factory=dict)
    started_at: float = field(default_factory=lambda: time.time() - 1)

    # -- starting --

    def spawn(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        *,
        cwd: Path = PROJECT_DIR,
        stop_signal: int = signal.SIGTERM,
    ) -> Managed:
        log_path = self.workdir / "process_logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "w") as log:  # the child writes to its own copy of the descriptor
            process = subprocess.Popen(
                argv,
                env={**env, MARKER: self.marker},
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        managed = Managed(name, process, log_path, stop_signal)
        self.processes.append(managed)
        return managed

    def wait_until(self, managed: Managed, ready, what: str, timeout: float = START_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not managed.alive():
                raise AssertionError(
                    f"{managed.name} exited ({managed.process.returncode}):\n{managed.tail()}"
                )
            with contextlib.suppress(Exception):
                if ready():
                    return
            time.sleep(0.5)
        raise AssertionError(f"{managed.name}: {what} within {timeout:.0f} s:\n{managed.tail()}")

    def start_postgres(self) -> str:
        bindir = postgres_bindir()
        run_as, owner = postgres_run_as()
        base = Path(tempfile.mkdtemp(prefix="meta-e2e-postgres-"))
        self.scratch_dirs.append(base)
        password_file = base / "password"
        password_file.write_text(DATABASE_PASSWORD)
        if owner:
            for path in (base, password_file):
                os.chown(path, *owner)
        initdb_options = {
            "pgdata": str(base / "data"),
            "username": DATABASE_USER,
            "pwfile": str(password_file),
            "auth": "scram-sha-256",
            "encoding": "UTF8",
            "locale": "C",
        }
        initdb = subprocess.run(
            [*run_as, str(bindir / "initdb"), *long_options(initdb_options), "--no-sync"],
            cwd=base,
            env={**os.environ, MARKER: self.marker},
            capture_output=True,
            text=True,
            check=False,
        )
        if initdb.returncode != 0:
            raise AssertionError(f"initdb failed:\n{initdb.stdout[-2000:]}\n{initdb.stderr[-2000:]}")
        port = free_port()
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": "",
            "max_connections": "200",
            # A throwaway test database: durability off for speed.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        server = self.spawn(
            "postgres",
            [*run_as, str(bindir / "postgres"), "-D", str(base / "data"), "-p", str(port)]
            + [arg for name, value in settings.items() for arg in ("-c", f"{name}={value}")],
            dict(os.environ),
            cwd=base,
            stop_signal=signal.SIGINT,  # PostgreSQL's "fast" shutdown
        )
        self.postgres_address = f"127.0.0.1:{port}"
        self.wait_until(server, lambda: self.query("select 1", database="postgres"), "accepted no connection")
        self.query(f"CREATE DATABASE {DATABASE_NAME}", database="postgres")
        return self.postgres_address

    def query(self, sql: str, params: tuple = (), *, database: str = DATABASE_NAME) -> list[tuple]:
        """Run one statement on the deployment's PostgreSQL (autocommit) and return its rows."""
        host, port = self.postgres_address.split(":")
        connection = psycopg2.connect(
            host=host,
            port=int(port),
            user=DATABASE_USER,
            password=DATABASE_PASSWORD,
            dbname=database,
            connect_timeout=5,
        )
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall() if cursor.description else []
        finally:
            connection.close()

    def start_redis(self) -> str:
        binary = redis_server_binary()
        base = Path(tempfile.mkdtemp(prefix="meta-e2e-redis-"))
        self.scratch_dirs.append(base)
        port = free_port()
        options = {
            "bind": "127.0.0.1",
            "port": str(port),
            "dir": str(base),
            "save": "",
            "appendonly": "no",
            "protected-mode": "yes",
            "daemonize": "no",
        }
        server = self.spawn("redis", [binary, *long_options(options)], dict(os.environ), cwd=base)
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
        self.wait_until(server, client.ping, "answered no PING")
        client.close()
        self.redis_address = f"127.0.0.1:{port}"
        return self.redis_address

    def start(self, config_path: Path, sandbox) -> CeleryAirflow:
        """Servers, the metadata database and pools (compose's airflow-init), then every component."""
        postgres, broker = self.start_postgres(), self.start_redis()
        api_port = free_port()
        homes = self.workdir / "homes"
        # The API server's home holds the logs folder every component writes to (compose's ./logs),
        # so the REST client's failure report finds the task logs there.
        api_home = homes / "api-server"
        shared_secrets = {name: secrets.token_urlsafe(32) for name in SECRET_SETTINGS}
        self.env = {
            **airflow_env(api_home, config_path, sandbox, api_port),
            **deployment_settings(
                postgres=postgres,
                redis=broker,
                api_server=f"localhost:{api_port}",
                shared_secrets=shared_secrets,
            ),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(api_home / "logs"),
            # Unpaused by the test once every worker is ready, so that both take part in the run.
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__API__HOST": "127.0.0.1",
            # One parse at start is all the run needs: no re-parsing every few seconds on 2 cores.
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
        }
        init_env = self.component_env("init")
        prepare_home({**init_env, MARKER: self.marker})

        api_server = self.start_component("api-server", [])
        client = CeleryAirflow(
            env=self.component_env("api-server"),
            port=api_port,
            process=api_server.process,
            log_path=api_server.log_path,
            deployment=self,
        )
        for name in ("scheduler", "dag-processor"):
            self.start_component(name, [])
        self.start_component("triggerer", [], AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=str(free_port()))
        workers = [
            self.start_component(
                worker,
                ["--celery-hostname", f"{worker}@%h", "--concurrency", str(WORKER_CONCURRENCY)],
                command="celery worker",
                AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
                AIRFLOW__CORE__HOSTNAME_CALLABLE="worker_hostname.worker_hostname",
                E2E_WORKER_HOSTNAME=worker,
                PYTHONPATH=os.pathsep.join([self.env["PYTHONPATH"], str(E2E_DIR)]),
            )
            for worker in WORKERS
        ]

        def api_ready() -> bool:
            ok = client.session.get(f"http://localhost:{api_port}/api/v2/version", timeout=5).ok
            if ok:
                client.authenticate()
            return ok

        self.wait_until(api_server, api_ready, "served no /api/v2/version")
        for worker in workers:
            self.wait_until(
                worker, lambda w=worker: re.search(r"\bready\.", w.tail(100_000)), "never became ready"
            )
        for component in self.processes:
            if not component.alive():
                raise AssertionError(f"{component.name} exited:\n{component.tail()}")
        return client

    def component_env(self, name: str, **overrides: str) -> dict[str, str]:
        home = self.workdir / "homes" / name
        home.mkdir(parents=True, exist_ok=True)
        return {**self.env, "AIRFLOW_HOME": str(home), **overrides}

    def start_component(self, name: str, args: list[str], command: str | None = None, **env: str) -> Managed:
        command = command or name
        assert command in COMPONENTS, f"{command} is not a component of the deployment"
        return self.spawn(
            name, [str(VENV_BIN / "airflow"), *command.split(), *args], self.component_env(name, **env)
        )

    # -- looking and stopping --

    def log_tails(self) -> str:
        return "\n".join(f"--- {managed.name}\n{managed.tail(1500)}" for managed in self.processes)

    def own_processes(self, started: list[Managed], *, marked: bool = True) -> list[psutil.Process]:
        """Every live process that ``started`` gave rise to: those in their sessions (each leads a new
        one; task processes change process group, not session), their descendants (PostgreSQL's
        backends start sessions of their own), and, if ``marked``, whatever carries this deployment's
        marker in its environment (setproctitle may overwrite the environment of the others)."""
        leaders = {managed.process.pid for managed in started}
        found: dict[int, psutil.Process] = {}
        for process in psutil.process_iter():
            with contextlib.suppress(psutil.Error, OSError):
                if process.create_time() < self.started_at or process.status() == psutil.STATUS_ZOMBIE:
                    continue
                if os.getsid(process.pid) in leaders or (
                    marked and process.environ().get(MARKER) == self.marker
                ):
                    found[process.pid] = process
        for managed in started:
            with contextlib.suppress(psutil.Error):
                for child in psutil.Process(managed.process.pid).children(recursive=True):
                    found.setdefault(child.pid, child)
        return list(found.values())

    def stop(self) -> None:
        """Stop every process started here, also after a failed start: the Airflow components, then the
        API server (it waits for their connections to close), then the servers."""
        airflow = [managed for managed in self.processes if managed.name not in SERVERS]
        servers = [managed for managed in self.processes if managed.name in SERVERS]
        self._stop_group([managed for managed in airflow if managed.name != "api-server"])
        self._stop_group([managed for managed in airflow if managed.name == "api-server"])
        self._kill(self.own_processes(airflow, marked=False))
        self._stop_group(servers)
        self._kill(self.own_processes(self.processes))
        survivors = self.own_processes(self.processes)
        for directory in self.scratch_dirs:
            shutil.rmtree(directory, ignore_errors=True)
        if survivors:
            raise AssertionError(f"processes of the deployment survived its teardown: {survivors}")

    @staticmethod
    def _stop_group(group: list[Managed]) -> None:
        for managed in group:
            if managed.alive():
                with contextlib.suppress(ProcessLookupError):
                    managed.process.send_signal(managed.stop_signal)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for managed in group:
            with contextlib.suppress(subprocess.TimeoutExpired):
                managed.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for managed in group:
            managed.signal_group(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                managed.process.wait(timeout=10)

    @staticmethod
    def _kill(processes) -> None:
        processes = list(processes)
        for process in processes:
            with contextlib.suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(processes, timeout=10)


def long_options(options: dict[str, str]) -> list[str]:
    return [arg for name, value in options.items() for arg in (f"--{name}", value)]


@contextlib.contextmanager
def celery_deployment(workdir: Path, config_path: Path, sandbox) -> Iterator[CeleryAirflow]:
    """A running deployment and its REST client; everything is stopped on exit, however it exits."""
    deployment = CeleryDeployment(workdir)
    try:
        yield deployment.start(config_path, sandbox)
    finally:
        deployment.stop()
