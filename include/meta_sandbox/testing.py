"""Test helpers: start a sandbox in a subprocess and talk to its control routes.

``start_sandbox(**options)`` runs ``python -m meta_sandbox --port 0 ...`` (a subprocess keeps the
sandbox off the test process's GIL), reads the ``SANDBOX_URL=`` line and returns a ``SandboxHandle``.
Options are the CLI flags with underscores (``faults="chaos"``, ``require_proof=True``,
``now="2026-03-01T12:00:00Z"``, ``budgets="ads_insights=5"``, ...); a dict ``faults`` is passed as JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from meta_sandbox import DEFAULT_APP_ID, DEFAULT_APP_SECRET, DEFAULT_TOKEN
from meta_sandbox.ratelimit import Budgets

_INCLUDE_DIR = str(pathlib.Path(__file__).resolve().parent.parent)
# Fast jobs by default in tests; a test that wants real timing passes its own values.
TEST_DEFAULTS = {"job_base_seconds": 0.0, "job_seconds_per_1k_rows": 0.0}


class SandboxError(RuntimeError):
    pass


class SandboxHandle:
    """A running sandbox: its URL and credentials, and its control routes as methods."""

    def __init__(self, url: str, process: subprocess.Popen | None = None):
        self.url = url.rstrip("/")
        self.port = int(urllib.parse.urlsplit(self.url).port)
        self.token = DEFAULT_TOKEN
        self.app_id = DEFAULT_APP_ID
        self.app_secret = DEFAULT_APP_SECRET
        self.process = process
        # what a client may send one Instagram account each second: the default budget (Meta's quota)
        self.instagram_calls_per_second = Budgets().instagram_per_second

    def __repr__(self) -> str:
        return f"SandboxHandle({self.url!r})"

    def connection_extra(self, **overrides) -> dict:
        """The extras of a ``meta_graph_api`` Connection to this sandbox (its token goes in Password):
        its URL, app, and the Instagram pace its ``instagram`` budget allows."""
        return {
            "base_url": self.url,
            "app_id": self.app_id,
            "app_secret": self.app_secret,
            "instagram_calls_per_second": self.instagram_calls_per_second,
            **overrides,
        }

    # -- plumbing --
    def _call(
        self, method: str, path: str, body: dict | None = None, query: dict | None = None, timeout: float = 60
    ):
        url = self.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(  # noqa: S310 - our loopback URL
            url,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data else {},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - our loopback URL
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise SandboxError(f"{method} {path}: HTTP {exc.code}: {exc.read()[:500]!r}") from exc

    # -- control routes --
    def truth(self, since: str | None = None, until: str | None = None, timeout: float = 60) -> dict:
        """``timeout``: the truth is computed on request, over every account of the world (minutes at 300)."""
        query = {k: v for k, v in (("since", since), ("until", until)) if v}
        return self._call("GET", "/_sandbox/truth", query=query, timeout=timeout)

    def stats(self) -> dict:
        return self._call("GET", "/_sandbox/stats")

    def reset_stats(self) -> None:
        self._call("POST", "/_sandbox/stats/reset", body={})

    def set_faults(self, profile: dict | str) -> dict:
        body = {"profile": profile} if isinstance(profile, str) else profile
        return self._call("POST", "/_sandbox/faults", body=body)

    def clear_faults(self) -> None:
        self._call("DELETE", "/_sandbox/faults")

    def set_clock(self, now: str | None = None, advance_days: float | None = None) -> str:
        body = {k: v for k, v in (("now", now), ("advance_days", advance_days)) if v is not None}
        return self._call("POST", "/_sandbox/clock", body=body)["now"]

    def now(self) -> str:
        return self._call("GET", "/_sandbox/clock")["now"]

    def set_budgets(self, **budgets) -> dict:
        return self._call("POST", "/_sandbox/budgets", body=budgets)

    def world(self) -> dict:
        return self._call("GET", "/_sandbox/world")

    def graph_url(self, path: str = "", version: str = "v26.0") -> str:
        return f"{self.url}/{version}/{path.lstrip('/')}"

    def stop(self) -> None:
        """Stop the sandbox's process group: SIGTERM, then SIGKILL after 10 s."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)  # started with start_new_session=True: its group is its pid


def _args(options: dict) -> list[str]:
    out = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is False and name in ("promo_campaigns", "paging_gaps"):
            out.append("--no-" + name.replace("_", "-"))
            continue
        if value is None or value is False:
            continue
        if value is True:
            out.append(flag)
        elif isinstance(value, dict):
            out += [flag, json.dumps(value)]
        else:
            out += [flag, str(value)]
    return out


def start_sandbox(timeout: float = 30.0, **options) -> SandboxHandle:
    """Start ``python -m meta_sandbox`` on a free loopback port and wait until it answers."""
    opts = {**TEST_DEFAULTS, **options}
    opts.setdefault("host", "127.0.0.1")
    opts["port"] = 0
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_INCLUDE_DIR, env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "meta_sandbox", *_args(opts)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        start_new_session=True,
    )
    first: list[str] = []

    def _read():
        first.append(proc.stdout.readline())

    reader = threading.Thread(target=_read, daemon=True)
    reader.start()
    reader.join(timeout)
    line = first[0].strip() if first else ""
    if not line.startswith("SANDBOX_URL="):
        _signal_group(proc, signal.SIGKILL)
        proc.wait(timeout=10)
        err = proc.stderr.read() if proc.stderr else ""
        raise SandboxError(f"sandbox did not start (args {opts}): {line!r} {err[-2000:]}")
    # Keep draining stdout/stderr so the child never blocks on a full pipe.
    for stream in (proc.stdout, proc.stderr):
        threading.Thread(target=lambda s=stream: [None for _ in s], daemon=True).start()
    handle = SandboxHandle(line.split("=", 1)[1], proc)
    handle.instagram_calls_per_second = Budgets.parse(opts.get("budgets")).instagram_per_second
    deadline = time.monotonic() + timeout
    while True:
        try:
            handle._call("GET", "/_sandbox/health")
            return handle
        except (OSError, SandboxError):
            if time.monotonic() > deadline or proc.poll() is not None:
                handle.stop()
                raise
            time.sleep(0.05)
