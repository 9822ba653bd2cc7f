"""Fixtures and helpers (`sandbox_lake.py`, beside this file) shared by the extraction tests that run
against the sandbox."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sandbox_lake import calm_governor_in, use_connection


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
