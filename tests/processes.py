"""Find and stop the processes the tests start, and only those.

Every process the suite starts inherits an environment marker (``tests/conftest.py`` sets
``META_ADS_ELT_TEST_SESSION`` before any test runs, and some helpers add their own, e.g. one per
``airflow standalone``), so it is found by that marker even after it moved to a process group of its
own (Airflow runs each task in a new process group) or lost its parent. Nothing is found, nor killed,
by name: other work on the same machine runs the same programs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable

import psutil

SESSION_MARKER = "META_ADS_ELT_TEST_SESSION"
TREE_MARKER = "META_ADS_ELT_TEST_TREE"


def marked(name: str, value: str, *, prefix: bool = False) -> list[psutil.Process]:
    """Live processes (other than this one) whose environment has ``name=value`` (or, with ``prefix``,
    a value starting with ``value``)."""
    found = []
    for process in psutil.process_iter():
        if process.pid == os.getpid():
            continue
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            found_value = process.environ().get(name) or ""
            if found_value == value or (prefix and found_value.startswith(value)):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def in_group(pgid: int) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and process.pid != os.getpid():
                found.append(process)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return found


def describe(process: psutil.Process) -> str:
    try:
        return f"pid {process.pid}: {' '.join(process.cmdline())[:160]}"
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return f"pid {process.pid}"


def stop(processes: Iterable[psutil.Process], grace: float = 15.0) -> list[psutil.Process]:
    """SIGTERM each, wait up to ``grace`` seconds, SIGKILL the rest (Airflow's scheduler ignores SIGTERM
    for seconds); return the processes that had to be killed."""
    processes = list({p.pid: p for p in processes}.values())
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()
    _gone, alive = psutil.wait_procs(processes, timeout=grace)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(alive, timeout=10)
    return alive


def stop_tree(popen: subprocess.Popen, tag: str | None = None, grace: float = 15.0) -> list[psutil.Process]:
    """Stop ``popen`` (started with ``start_new_session=True``), every process of its process group and
    every process carrying its ``TREE_MARKER`` value ``tag`` (children that left the group)."""
    processes = []
    with contextlib.suppress(psutil.NoSuchProcess):
        processes.append(psutil.Process(popen.pid))
    with contextlib.suppress(ProcessLookupError):
        processes += in_group(os.getpgid(popen.pid))
    if tag:
        processes += marked(TREE_MARKER, tag)
    if popen.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGTERM)  # the group first: children get the signal together
    killed = stop(processes, grace)
    try:
        popen.wait(timeout=10)
    except subprocess.TimeoutExpired:
        popen.kill()
    return killed


def left_behind(settle: float = 5.0, *, of_workers: bool = False) -> list[psutil.Process]:
    """Processes of this test session still alive after ``settle`` seconds (time to finish exiting).

    ``of_workers``: in the pytest-xdist controller, the processes of every worker (their markers are the
    controller's value plus ``-<worker id>``; the workers themselves carry the bare value)."""
    value = os.environ.get(SESSION_MARKER)
    if not value:
        return []
    deadline = time.monotonic() + settle
    while True:
        alive = (
            marked(SESSION_MARKER, f"{value}-", prefix=True) if of_workers else marked(SESSION_MARKER, value)
        )
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)
