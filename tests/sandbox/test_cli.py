"""The command line: help, the machine-readable first line, the printed credentials, bad flags."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

INCLUDE = str(pathlib.Path(__file__).resolve().parents[2] / "include")


def _env():
    return {**os.environ, "PYTHONPATH": INCLUDE}


def test_help_lists_the_knobs():
    out = subprocess.run(
        [sys.executable, "-m", "meta_sandbox", "--help"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
        check=True,
    ).stdout
    for flag in (
        "--seed",
        "--now",
        "--accounts",
        "--campaigns-per-account",
        "--adsets-per-campaign",
        "--ads-per-adset",
        "--history-days",
        "--leads-per-day",
        "--conversations-per-day",
        "--faults",
        "--require-proof",
        "--latency-ms",
        "--job-base-seconds",
        "--job-seconds-per-1k-rows",
        "--budgets",
        "--leadgen-budget-scale",
    ):
        assert flag in out


def test_port_zero_prints_url_first_and_the_default_credentials(sandbox_factory):
    sb = sandbox_factory()
    assert sb.url.startswith("http://127.0.0.1:") and sb.port > 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "meta_sandbox", "--port", "0"], stdout=subprocess.PIPE, text=True, env=_env()
    )
    try:
        lines = [proc.stdout.readline() for _ in range(5)]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert lines[0].startswith("SANDBOX_URL=http://127.0.0.1:")
    text = "".join(lines)
    assert "sandbox-token" in text and "sandbox-app" in text and "sandbox-secret" in text


def test_bad_fault_profile_fails_fast():
    proc = subprocess.run(
        [sys.executable, "-m", "meta_sandbox", "--port", "0", "--faults", "nonsense"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert proc.returncode == 2 and "fault" in proc.stderr.lower()


def test_stats_count_by_normalised_endpoint_and_reset(sandbox_factory, graph_for):
    sb = sandbox_factory()
    g = graph_for(sb)
    acct = sb.world()["accounts"][0]
    g.get(f"{acct['id']}/insights")
    run = g.post(f"{acct['id']}/insights", fields=["spend"])[1]["report_run_id"]
    g.get(run + "/")
    g.get(f"{run}/insights")
    g.get(acct["campaigns"][0]["id"] + "/insights")
    stats = sb.stats()
    assert stats["by_endpoint"] == {
        "GET /act_{id}/insights": 1,
        "POST /act_{id}/insights": 1,
        "GET /{report_run_id}": 1,
        "GET /{report_run_id}/insights": 1,
        "GET /{id}/insights": 1,
    }
    assert stats["total"] == 5
    sb.reset_stats()
    assert sb.stats()["total"] == 0


def test_clock_route(sandbox_factory):
    sb = sandbox_factory(now="2026-03-15T12:00:00Z")
    assert sb.now().startswith("2026-03-15T12:00:00")
    assert sb.set_clock(advance_days=2).startswith("2026-03-17T12:00:00")
    assert sb.set_clock(now="2026-04-01T00:00:00Z").startswith("2026-04-01T00:00:00")
    # 2026-04-01T00:00Z: the 1st has begun in Kolkata and Berlin (served as it stands), not in Los Angeles
    latest = {
        r["account_id"]: (r["date"], r["partial"])
        for r in sb.truth(since="2026-03-30")["accounts"]
        if r["partial"]
    }
    assert sorted(latest.values()) == [("2026-03-31", True), ("2026-04-01", True), ("2026-04-01", True)]


def test_handle_interface_used_by_other_tests(sandbox_factory):
    sb = sandbox_factory(now="2026-03-15T12:00:00Z")
    for attr in ("url", "port", "token", "app_id", "app_secret"):
        assert getattr(sb, attr)
    for method in (
        "truth",
        "stats",
        "reset_stats",
        "set_faults",
        "clear_faults",
        "set_clock",
        "world",
        "stop",
    ):
        assert callable(getattr(sb, method))
    assert (sb.token, sb.app_id, sb.app_secret) == ("sandbox-token", "sandbox-app", "sandbox-secret")
    assert sb.set_faults({"transient_error_rate": 0.1})["transient_error_rate"] == 0.1
    sb.clear_faults()
    sb.stop()
    sb.stop()  # idempotent
