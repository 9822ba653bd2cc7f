"""Tests stop every process they start, and the session fails when one is left running."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import psutil

from tests.processes import SESSION_MARKER, TREE_MARKER, stop_tree

PROJECT_DIR = Path(__file__).resolve().parents[1]

# A parent that starts a child in a process group of its own (as Airflow does for each task) which
# ignores SIGTERM (as the scheduler does for seconds), then waits. Both ignore SIGTERM before the child
# prints its pid, so the test never signals a process that is not yet stubborn.
STUBBORN_TREE = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
subprocess.Popen([sys.executable, "-c",
    "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(os.getpid(), flush=True); "
    "time.sleep(600)"],
    start_new_session=True)
time.sleep(600)
"""


def test_stop_tree_stops_children_that_left_the_group_and_ignore_sigterm():
    tag = uuid.uuid4().hex
    parent = subprocess.Popen(
        [sys.executable, "-c", STUBBORN_TREE],
        env={**os.environ, TREE_MARKER: tag},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    child_pid = int(parent.stdout.readline())
    assert os.getpgid(child_pid) != os.getpgid(parent.pid)
    started = time.monotonic()
    killed = stop_tree(parent, tag, grace=1)
    assert {p.pid for p in killed} == {parent.pid, child_pid}  # both needed SIGKILL
    assert time.monotonic() - started < 15
    assert parent.poll() is not None
    assert not psutil.pid_exists(child_pid) or psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE


def test_the_session_fails_when_a_test_leaves_a_process_running(tmp_path):
    pid_file = tmp_path / "pid"
    (tmp_path / "test_leak.py").write_text(
        textwrap.dedent(f"""
        import subprocess, sys
        def test_forgets_its_server():
            process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
            open({str(pid_file)!r}, "w").write(str(process.pid))
    """)
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(PROJECT_DIR / part) for part in ("plugins", "include", ".")),
    }
    env.pop(SESSION_MARKER, None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.conftest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(tmp_path / "test_leak.py"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 passed" in result.stdout
    assert "processes left running" in result.stdout and "time.sleep(600)" in result.stdout
    leaked = int(pid_file.read_text())
    assert not psutil.pid_exists(leaked) or psutil.Process(leaked).status() == psutil.STATUS_ZOMBIE
