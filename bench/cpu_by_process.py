"""Where a command's CPU goes, by kind of process: ``python -m bench.cpu_by_process OUT.json -- CMD ...``.

Runs ``CMD`` and, until it ends, reads every process's own CPU time (user + system, ``/proc/<pid>/stat``)
twice a second; each process that descends from ``CMD`` is put in a kind by its command line when first
seen (dbt, Airflow's scheduler, a pytest worker, the sandbox, ...), and the CPU it used while seen is
added to that kind. Writes ``{"wall_seconds", "cpu_seconds", "by_kind": {kind: seconds}}`` to
``OUT.json`` and exits with ``CMD``'s status. A process that lives less than half a second between two
readings, or whose last half second falls after the last reading, is partly missed; processes that left
the tree (re-parented to init) are not counted. Used for the *Test suite* section of BENCHMARKS.md
(``python -m bench.cpu_by_process /tmp/cpu.json -- make test``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
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


def _stat(pid: str) -> tuple[int, str, int] | None:
    """(parent pid, start time, CPU ticks) of a process, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), fields[19], int(fields[11]) + int(fields[12])


def measure(command: list[str]) -> tuple[int, dict]:
    started = time.monotonic()
    child = subprocess.Popen(command)
    tracked: dict[str, tuple[str, str, int]] = {}  # pid -> (start time, kind, ticks at last reading)
    ours = {str(child.pid)}
    by_kind: Counter[str] = Counter()
    while True:
        done = child.poll() is not None
        for pid in filter(str.isdigit, os.listdir("/proc")):
            stat = _stat(pid)
            if stat is None:
                continue
            parent, start, ticks = stat
            known = tracked.get(pid)
            if known is not None and known[0] != start:  # the pid was reused
                known = None
            if known is None:
                if pid not in ours and str(parent) not in ours:
                    continue
                ours.add(pid)
                try:
                    command_line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                except OSError:
                    continue
                known = (start, kind_of(command_line), 0)
            by_kind[known[1]] += (ticks - known[2]) / CLOCK_TICKS
            tracked[pid] = (start, known[1], ticks)
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
