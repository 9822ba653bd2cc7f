"""`make lint` (ruff check, ruff format --check, mypy, sqlfluff with the dbt templater) as a test of the
suite, so `make test` and CI run it on one pytest worker beside the other test files: run before them,
its ~80 s on one core (mypy without a cache, sqlfluff compiling the dbt project) left the other core
idle. The commands stay declared once, in the Makefile; a failure shows what the linters said."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.processes import stop_tree

PROJECT_DIR = Path(__file__).resolve().parents[1]
LINT_TIMEOUT_SECONDS = 480  # below pytest-timeout's 600 s, so make and its linters are stopped here

pytestmark = pytest.mark.slow  # handed out with the long files first (tests/conftest.py)


def test_make_lint_passes():
    lint = subprocess.Popen(
        ["make", "--no-print-directory", "lint"],
        cwd=PROJECT_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # mypy and sqlfluff are stopped with make if the lint hangs
    )
    try:
        output, _ = lint.communicate(timeout=LINT_TIMEOUT_SECONDS)
    finally:
        stop_tree(lint)
    assert lint.returncode == 0, f"`make lint` failed (exit {lint.returncode}):\n{output[-12000:]}"
