"""Shared pytest fixtures: the Graph API sandbox on a free port (a subprocess per sandbox).

- ``sandbox`` (session): the default world, started once; tests must not leave faults, clock
  changes or budgets behind on it (use ``sandbox_factory`` for those).
- ``sandbox_factory`` (function): ``sandbox_factory(**options)`` starts a sandbox with its own
  world/faults/flags (CLI flags with underscores) and stops it at teardown.
Both return ``meta_sandbox.testing.SandboxHandle``.
"""

from __future__ import annotations

import pytest
from meta_sandbox.testing import SandboxHandle, start_sandbox


@pytest.fixture(scope="session")
def sandbox() -> SandboxHandle:
    handle = start_sandbox()
    yield handle
    handle.stop()


@pytest.fixture
def sandbox_factory():
    started: list[SandboxHandle] = []

    def _start(**options) -> SandboxHandle:
        handle = start_sandbox(**options)
        started.append(handle)
        return handle

    yield _start
    for handle in started:
        handle.stop()
