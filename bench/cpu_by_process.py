"""Where a command's CPU goes, by kind of process: ``python -m bench.cpu_by_process OUT.json -- CMD ...``.

Runs ``CMD`` and, until it ends, reads the own CPU time (user + system, psutil) of each process that
descends from it twice a second; each is put in a kind by its command line when first seen (dbt,
Airflow's scheduler, a pytest worker, the sandbox, ...), and the CPU it used while seen is added to that
kind. Writes ``{"wall_seconds", "cpu_seconds", "by_kind": {kind: seconds}}`` to
``OUT.json`` and exits with ``CMD``'s status. A process that lives less than half a second between two
readings, or whose last half second falls after the last reading, is partly missed; a process that left
the tree (re-parented to init) before it was first seen is not counted. Used for the *Test suite* section of BENCHMARKS.md
(``python -m bench.cpu_by_process /tmp/cpu.json -- make test``).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil

SAMPLE_SECONDS = 0.5

KINDS = (  # first match wins: linters before dbt (sqlfluff's command line names dbt_project)
    ("sqlfluff", "lint: sqlfluff"),
    ("mypy", "lint: mypy"),
    ("ruff", "lint: ruff"),
    ("bin/dbt ", "dbt"),
    (" dags test ", "airflow dags test"),
    ("airflow scheduler", "airflow scheduler"),
    ("airflow triggerer", "airflow triggerer"),
    ("airflow dag-processor", "airflow dag-processor"),
    ("airflow api-server", "airflow api-server"),
    ("celery", "airflow celery worker"),
    ("airflow supervisor", "airflow task"),
    ("airflow worker", "airflow task"),
    ("airflow standalone", "airflow standalone"),
    ("bin/airflow ", "airflow cli"),
    ("meta_sandbox", "sandbox"),
    ("chrom", "browser"),
    ("postgres", "postgres"),
    ("redis", "redis"),
    ("exec(eval(", "pytest worker"),
    ("pytest", "pytest"),
)


def kind_of(command_line: str) -> str:
    for needle, kind in KINDS:
        if needle in command_line:
            return kind
    return "other: " + command_line[:40]


def measure(command: list[str]) -> tuple[int, dict]:
    started = time.monotonic()
    child = subprocess.Popen(command)
    root = psutil.Process(child.pid)
    seen: dict[tuple[int, float], list] = {}  # (pid, created) -> [process, kind, CPU at last reading]
    by_kind: Counter[str] = Counter()
    while True:
        done = child.poll() is not None
        if not done:
            with contextlib.suppress(psutil.NoSuchProcess):
                for process in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                        key = (process.pid, process.create_time())
                        if key not in seen:
                            seen[key] = [process, kind_of(" ".join(process.cmdline())), 0.0]
        for key, entry in list(seen.items()):
            process, kind, before = entry
            try:
                if not process.is_running():  # gone, or its pid reused: its last reading stands
                    raise psutil.NoSuchProcess(process.pid)
                times = process.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                del seen[key]
                continue
            entry[2] = times.user + times.system
            by_kind[kind] += entry[2] - before
        if done:
            break
        time.sleep(SAMPLE_SECONDS)
    result = {
        "wall_seconds": round(time.monotonic() - started, 1),
        "cpu_seconds": round(sum(by_kind.values()), 1),
        "by_kind": {kind: round(seconds, 1) for kind, seconds in by_kind.most_common()},
    }
    return child.returncode, result


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        raise SystemExit("usage: python -m bench.cpu_by_process OUT.json -- CMD [ARGS ...]")
    status, result = measure(argv[2:])
    Path(argv[0]).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
