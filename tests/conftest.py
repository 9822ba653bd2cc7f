"""Shared pytest fixtures: the Graph API sandbox on a free port (a subprocess per sandbox).

- ``sandbox`` (session): the default world, started once; tests must not leave faults, clock
  changes or budgets behind on it (use ``sandbox_factory`` for those).
- ``sandbox_factory`` (function): ``sandbox_factory(**options)`` starts a sandbox with its own
  world/faults/flags (CLI flags with underscores) and stops it at teardown.
Both return ``meta_sandbox.testing.SandboxHandle``.

Every process the suite starts carries ``META_ADS_ELT_TEST_SESSION`` in its environment (set here
before any test runs). At the end of the session, any such process still alive (an Airflow scheduler,
a sandbox, a database, a browser, a dbt run...) is stopped and **fails the session**: each test must
stop what it started, also when it fails or times out (``tests/processes.py`` helps).
"""

from __future__ import annotations

import json
import os
import resource
import time
import uuid

import pytest
from meta_sandbox.testing import SandboxHandle

from tests.processes import SESSION_MARKER, describe, left_behind, stop
from tests.sandboxes import start_test_sandbox


def pytest_configure(config: pytest.Config) -> None:
    worker = getattr(config, "workerinput", None)  # a pytest-xdist worker: inherits the controller's value
    if worker is None or not os.environ.get(SESSION_MARKER):
        os.environ[SESSION_MARKER] = uuid.uuid4().hex  # inherited by every process the tests start
    if worker is not None:
        os.environ[SESSION_MARKER] += f"-{worker['workerid']}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files with slow tests first, each file's own order kept: with parallel workers (``make test``
    runs one file per worker), the suite ends soon after its longest files, so they must start first."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


def pytest_runtest_logstart(nodeid: str, location) -> None:
    _timeline(nodeid, "start")


def pytest_runtest_logfinish(nodeid: str, location) -> None:
    _timeline(nodeid, "end")


def _timeline(nodeid: str, event: str) -> None:
    """With ``PYTEST_TIMELINE=<file>``, one JSON line per test start and end (worker, wall clock, CPU
    seconds): where a parallel run's time goes (which worker ran what, when), beyond ``--durations``."""
    path = os.environ.get("PYTEST_TIMELINE")
    if path:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        cpu = sum(
            usage.ru_utime + usage.ru_stime
            for usage in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
        )  # this worker's CPU seconds so far, with the processes its tests started and reaped
        with open(path, "a") as timeline:
            line = {"worker": worker, "test": nodeid, event: time.time(), f"{event}_cpu": cpu}
            timeline.write(json.dumps(line) + "\n")


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Each xdist worker checks its own processes; the controller then checks every worker's again.
    is_controller = session.config.pluginmanager.hasplugin("dsession")
    leftovers = left_behind(of_workers=is_controller)
    if not leftovers:
        return
    names = [describe(process) for process in leftovers]
    stop(leftovers, grace=10)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = (
        f"{len(names)} process(es) started by the tests were still running when the session ended "
        "(now stopped); the test that started them must stop them in its teardown:\n  " + "\n  ".join(names)
    )
    if reporter is not None:
        reporter.write_sep("=", "processes left running", red=True)
        reporter.write_line(message)
    else:
        print(message)


@pytest.fixture(scope="session")
def sandbox() -> SandboxHandle:
    handle = start_test_sandbox()
    yield handle
    handle.stop()


@pytest.fixture
def sandbox_factory():
    started: list[SandboxHandle] = []

    def _start(**options) -> SandboxHandle:
        handle = start_test_sandbox(**options)
        started.append(handle)
        return handle

    yield _start
    for handle in started:
        handle.stop()
