"""Starting the Graph API sandbox for the tests (``meta_sandbox.testing.start_sandbox``), as the shared
fixtures do (``tests/conftest.py``, ``tests/plugins/e2e/conftest.py``)."""

from __future__ import annotations

import datetime as dt

from meta_sandbox.testing import SandboxHandle, start_sandbox

UNPACED_INSTAGRAM = "instagram=100000"
"""The sandboxes of the pipeline's tests let Instagram conversations be read as fast as the tests go (their
Connections say so: ``instagram_calls_per_second``); Meta's quota of 2 a second is the sandbox's default,
kept by the tests that pass ``budgets`` with ``instagram`` (the quota's own tests, and one paced pull)."""


def start_test_sandbox(**options) -> SandboxHandle:
    """``start_sandbox(**options)``, with Instagram unpaced unless ``budgets`` says otherwise."""
    budgets = str(options.get("budgets") or "")
    if "instagram=" not in budgets:
        options["budgets"] = ",".join(b for b in (budgets, UNPACED_INSTAGRAM) if b)
    return start_sandbox(**options)


def still_now() -> str:
    """The current time to the second, for a sandbox clock that stays there (``now=``): the world of
    today, without leads and messages arriving while a test compares two reads of it."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
