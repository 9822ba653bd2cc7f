"""Fixtures and helpers (`sandbox_lake.py`, beside this file) shared by the extraction tests that run
against the sandbox."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sandbox_lake import calm_governor_in, use_connection

from tests.sandboxes import start_test_sandbox, still_now


@pytest.fixture(scope="session")
def sandbox():
    """The default world (as ``tests/conftest.py``'s), its clock standing at the session's start: these
    tests compare a pull with a second pull, or with ``/_sandbox/truth`` read after it, and on a ticking
    clock a lead or message arriving in between (or pushing an older message beyond the 20 most recent)
    made them differ. Tests that need time to pass move this clock on their own sandbox
    (``sandbox_factory``); the Airflow tests (``tests/e2e``) keep the ticking clock, as Meta's is."""
    handle = start_test_sandbox(now=still_now())
    yield handle
    handle.stop()


@pytest.fixture
def calm_governor(monkeypatch):
    """A fresh, never-pausing governor for each test (see ``sandbox_lake.calm_governor_in``). Opt in
    with ``pytestmark = pytest.mark.usefixtures("calm_governor")``."""
    calm_governor_in(monkeypatch)


@pytest.fixture(scope="module")
def world(sandbox):
    return sandbox.world()


@pytest.fixture
def conn(monkeypatch, sandbox):
    use_connection(monkeypatch, sandbox)
