"""`make bench`: run every benchmark once, side by side with its peer, and record the results.

Each module under bench/ with a ``run() -> dict`` contributes keys to ``bench/results.json``
(the file is merged, so running one benchmark keeps the others' last numbers).
Usage: ``python -m bench [name ...]`` with names among BENCHMARKS below.
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.json"
BENCHMARKS = ("sandbox_paging", "insights", "conversations", "dbt_build", "dbt_scale", "scale")


def main(names: list[str]) -> None:
    selected = names or list(BENCHMARKS)
    unknown = sorted(set(selected) - set(BENCHMARKS))
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; choose among {list(BENCHMARKS)}")
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for name in selected:
        print(f"[bench] {name} ...", flush=True)
        started = time.monotonic()
        module = importlib.import_module(f"bench.{name}")
        numbers = module.run()
        print(f"[bench] {name} done in {time.monotonic() - started:.0f} s: {json.dumps(numbers)}", flush=True)
        results.update(numbers)
        results["_meta"] = {
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()} {platform.system()}, python {platform.python_version()}",
            "command": "make bench",
        }
        RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"[bench] results in {RESULTS}")


if __name__ == "__main__":
    main(sys.argv[1:])
