"""Fault profiles: each injected failure, its shape, and determinism under the seed."""

from __future__ import annotations

import itertools
import json
import time

import pytest
import requests
from meta_sandbox.faults import PROFILES, Profile, load


def _statuses(g, n=60, path="me/adaccounts"):
    out = []
    for _ in range(n):
        try:
            status, body, _headers = g.get(path)
            out.append((status, body["error"]["code"] if status != 200 else 0))
        except requests.ConnectionError:
            out.append(("dropped", None))
            g.http = requests.Session()
    return out


def test_transient_errors(sandbox_factory, graph_for):
    sb = sandbox_factory(faults={"transient_error_rate": 0.5})
    g = graph_for(sb)
    results = []
    for _ in range(40):
        status, body, headers = g.get("me/adaccounts")
        results.append(status)
        if status != 200:
            err = body["error"]
            assert status == 500 and err["code"] in (1, 2) and err["is_transient"] is True
            assert "x-app-usage" in headers
    assert 5 < results.count(500) < 35


def test_throttle_bursts_come_in_windows_with_regain_time(sandbox_factory, graph_for):
    sb = sandbox_factory(
        faults={
            "throttle": {"burst_rate": 0.2, "burst_length": 4, "codes": [17, 80000, 613], "regain_minutes": 3}
        }
    )
    g = graph_for(sb)
    acct = sb.world()["accounts"][0]
    codes = []
    for _ in range(60):
        status, body, headers = g.get(f"{acct['id']}/insights", fields="spend")
        if status == 200:
            codes.append(0)
            continue
        codes.append(body["error"]["code"])
        assert status == 400
        buc = json.loads(headers["x-business-use-case-usage"])  # keyed by the business of the token
        assert buc[acct["business_id"]][0]["estimated_time_to_regain_access"] == 3
    runs = [c for i, c in enumerate(codes) if c and (i == 0 or codes[i - 1] != c)]
    assert set(runs) <= {17, 80000, 613} and len(set(runs)) >= 2
    for code in set(runs):  # each burst is burst_length long
        first = codes.index(code)
        assert codes[first : first + 4] == [code] * 4


def test_dropped_connections_close_without_response(sandbox_factory, graph_for):
    sb = sandbox_factory(faults="drops")
    results = _statuses(graph_for(sb), 40)
    assert 2 <= sum(1 for s, _ in results if s == "dropped") <= 20
    assert sb.stats()["dropped"] == sum(1 for s, _ in results if s == "dropped")


def test_latency(sandbox_factory, graph_for):
    sb = sandbox_factory(faults={"latency_ms": 400})
    g = graph_for(sb)
    g.get("me")
    t = time.perf_counter()
    g.get("me")
    assert time.perf_counter() - t >= 0.4
    sb.clear_faults()
    t = time.perf_counter()
    g.get("me")
    assert time.perf_counter() - t < 0.4


@pytest.mark.parametrize(
    ("profile", "status", "extra"),
    [
        (
            "jobs_fail",
            "Job Failed",
            {"error_code", "error_message", "error_subcode", "error_user_title", "error_user_msg"},
        ),
        ("jobs_skip", "Job Skipped", set()),
    ],
)
def test_jobs_fail_or_get_skipped(sandbox_factory, graph_for, profile, status, extra, error_of):
    sb = sandbox_factory(faults=profile)
    g = graph_for(sb)
    acct = sb.world()["accounts"][0]["id"]
    run = g.post(f"{acct}/insights", fields=["spend"], level="account")[1]["report_run_id"]
    rr = g.ok(run + "/")
    assert rr["async_status"] == status and extra <= set(rr)
    code, body, _ = g.get(f"{run}/insights")
    assert code == 400 and error_of(body)["code"] == 2601


def test_jobs_stall(sandbox_factory, graph_for):
    sb = sandbox_factory(faults={"jobs": {"stalled_rate": 1.0, "stall_percent": 37}})
    g = graph_for(sb)
    acct = sb.world()["accounts"][0]["id"]
    run = g.post(f"{acct}/insights", fields=["spend"])[1]["report_run_id"]
    for _ in range(3):
        rr = g.ok(run + "/")
        assert (rr["async_status"], rr["async_percent_completion"]) == ("Job Running", 37)
        time.sleep(0.05)


def test_too_much_data_sync_async_and_page_size(sandbox_factory, graph_for, error_of):
    sb = sandbox_factory(faults={"too_much_data": {"max_rows": 200, "max_page_rows": 10}})
    g = graph_for(sb)
    acct = sb.world()["accounts"][0]["id"]
    big = {"level": "ad", "time_increment": 1, "date_preset": "last_30d", "fields": ["ad_id", "spend"]}
    status, body, _ = g.get(f"{acct}/insights", **big)
    err = error_of(body)
    assert status == 400 and (err["code"], err["error_subcode"]) == (100, 1487534)
    run = g.post(f"{acct}/insights", **big)[1]["report_run_id"]
    rr = g.ok(run + "/")
    assert rr["async_status"] == "Job Failed" and (rr["error_code"], rr["error_subcode"]) == (100, 1487534)
    small = {"level": "ad", "time_increment": 1, "date_preset": "last_3d", "fields": ["ad_id", "spend"]}
    assert g.get(f"{acct}/insights", limit=10, **small)[0] == 200
    run = g.post(f"{acct}/insights", **small)[1]["report_run_id"]
    assert g.ok(run + "/")["async_status"] == "Job Completed"
    status, body, _ = g.get(f"{run}/insights", limit=500)
    err = error_of(body)
    assert status == 500 and err["code"] == 1 and "reduce the amount of data" in err["message"]
    assert len(g.page_all(f"{run}/insights", limit=10)) > 10


def test_endpoint_targeting(sandbox_factory, graph_for):
    sb = sandbox_factory(faults={"transient_error_rate": 1.0, "endpoints": ["GET /{report_run_id}"]})
    g = graph_for(sb)
    acct = sb.world()["accounts"][0]["id"]
    status, body, _ = g.post(f"{acct}/insights", fields=["spend"])
    assert status == 200
    assert g.get(body["report_run_id"] + "/")[0] == 500
    assert g.get(f"{body['report_run_id']}/insights")[0] == 200


def test_faults_are_deterministic_under_the_seed(sandbox_factory, graph_for):
    runs = []
    for seed in (5, 5, 6):
        sb = sandbox_factory(seed=seed, faults="chaos")
        runs.append(_statuses(graph_for(sb), 50, path="me"))
        sb.stop()
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_chaos_profile_and_runtime_switching(sandbox_factory, graph_for, sandbox):
    p = load("chaos")
    assert (p.transient_error_rate, p.failed_rate) == (0.10, 0.20)
    assert p.burst_rate > 0 and p.dropped_connection_rate > 0
    sb = sandbox_factory()
    g = graph_for(sb)
    assert sb.set_faults("chaos")["name"] == "chaos"
    results = _statuses(g, 150, path="me")
    kinds = {s if s == "dropped" else code for s, code in results}
    assert {0, "dropped"} <= kinds and kinds & {1, 2} and kinds & {17, 80000, 613}
    sb.clear_faults()
    assert all(s == 200 for s, _ in _statuses(g, 20, path="me"))


def test_profile_loading_from_yaml_and_errors(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("name: mine\nlatency_ms: 5\njobs:\n  failed_rate: 0.5\n")
    p = load(str(path))
    assert (p.name, p.latency_ms, p.failed_rate) == ("mine", 5.0, 0.5)
    assert load('{"transient_error_rate": 0.3}').transient_error_rate == 0.3
    assert set(PROFILES) >= {
        "none",
        "chaos",
        "flaky",
        "throttled",
        "slow",
        "jobs_fail",
        "jobs_skip",
        "jobs_stall",
        "too_much_data",
        "drops",
        "null_batch",
    }
    with pytest.raises(ValueError, match="unknown fault profile keys"):
        Profile.from_dict({"transient": 1})
    with pytest.raises(ValueError):
        load("no-such-profile-name")


def test_faults_via_yaml_flag(sandbox_factory, graph_for, tmp_path):
    path = tmp_path / "flaky.yaml"
    path.write_text("transient_error_rate: 1.0\n")
    sb = sandbox_factory(faults=str(path))
    assert graph_for(sb).get("me")[0] == 500


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_named_profile_serves_meta_shaped_answers(name):
    from meta_sandbox.app import Options, Request, Sandbox

    sb = Sandbox(
        Options(now="2026-03-15T12:00:00Z", faults=name, job_base_seconds=0, job_seconds_per_1k_rows=0)
    )
    acct = sb.world.accounts[0].id
    if name == "slow":
        sb.faults.profile.latency_ms = sb.faults.profile.latency_jitter_ms = 0  # shape only, not timing
    kinds = set()
    for i in range(40):
        method, path = (
            ("POST", f"/v26.0/{acct}/insights") if i % 4 == 0 else ("GET", f"/v26.0/{acct}/insights")
        )
        resp = sb.handle(
            Request(
                method,
                path,
                {"access_token": "sandbox-token", "fields": "spend", "level": "ad", "time_increment": "1"},
                {},
                "http://x",
            )
        )
        if resp.drop:
            kinds.add("drop")
            continue
        body = json.loads(resp.body)
        if resp.status == 200:
            kinds.add("ok")
            if "report_run_id" in body:
                run = sb.handle(
                    Request(
                        "GET",
                        f"/v26.0/{body['report_run_id']}/",
                        {"access_token": "sandbox-token"},
                        {},
                        "http://x",
                    )
                )
                rr = {} if run.drop else json.loads(run.body)
                assert run.status != 200 or rr["async_status"] in (
                    "Job Completed",
                    "Job Failed",
                    "Job Skipped",
                    "Job Running",
                    "Job Not Started",
                )
        else:
            assert set(body["error"]) >= {"message", "type", "code", "fbtrace_id"}
            assert "x-app-usage" in resp.headers
            kinds.add(body["error"]["code"])
    assert "ok" in kinds or name == "too_much_data"


def test_queued_jobs_wait_at_0_percent_then_run(sandbox_factory, graph_for):
    sb = sandbox_factory(faults={"jobs": {"queued_minutes": 0.02}})  # 1.2 s in Meta's queue
    g = graph_for(sb)
    acct = sb.world()["accounts"][0]["id"]
    run = g.post(f"{acct}/insights", fields=["spend"], level="account")[1]["report_run_id"]
    rr = g.ok(run + "/")
    assert (rr["async_status"], rr["async_percent_completion"]) == ("Job Not Started", 0)
    time.sleep(1.4)
    assert g.ok(run + "/")["async_status"] == "Job Completed"


def test_a_job_at_100_percent_can_still_be_running_and_unreadable(sandbox_factory, graph_for, error_of):
    sb = sandbox_factory(faults={"jobs": {"running_at_100_seconds": 1.0, "unreadable_reads": 1}})
    g = graph_for(sb)
    acct = sb.world()["accounts"][0]["id"]
    run = g.post(f"{acct}/insights", fields=["spend"], level="account")[1]["report_run_id"]
    rr = g.ok(run + "/")
    assert (rr["async_status"], rr["async_percent_completion"]) == ("Job Running", 100)
    code, body, _ = g.get(f"{run}/insights")
    err = error_of(body)
    assert code == 400 and (err["code"], err["error_subcode"], err["is_transient"]) == (2601, 1815107, True)
    assert err["message"] == "Error accessing adreport job."
    time.sleep(1.2)
    assert g.ok(run + "/")["async_status"] == "Job Completed"
    assert g.get(f"{run}/insights")[0] == 400  # the first read after completion still fails (transient)...
    assert g.get(f"{run}/insights")[0] == 200  # ...then the results are served


def test_arrivals_between_pages_repeat_the_end_of_the_page_before(sandbox_factory, graph_for):
    """`arrivals_between_pages`: each page of a Page's conversations (and of a conversation's messages)
    after the first starts with the last item of the page before, as a list paged by position does when
    one item arrived at its head between the two reads; no item is lost and the walk ends (pages without
    hidden entries, whose runs would hide the repeated item: ``test_paging.py`` has both)."""
    sb = sandbox_factory(faults={"arrivals_between_pages": True}, paging_gaps=False)
    g = graph_for(sb)
    page_id = sb.world()["pages"][0]["id"]
    pg = graph_for(sb, token=g.page_token(page_id))
    pages, after = [], None
    while True:
        body = pg.ok(
            f"{page_id}/conversations", platform="messenger", limit=3, **({"after": after} if after else {})
        )
        pages.append([c["id"] for c in body["data"]])
        if "next" not in body.get("paging", {}):
            break
        after = body["paging"]["cursors"]["after"]
    assert len(pages) > 2
    assert all(later[0] == earlier[-1] for earlier, later in itertools.pairwise(pages))
    calm = graph_for(sandbox_factory(paging_gaps=False), token=None)
    calm_token = calm.page_token(page_id)
    every = graph_for(calm.handle, token=calm_token).page_all(
        f"{page_id}/conversations", platform="messenger", limit=3
    )
    assert list(dict.fromkeys(cid for page in pages for cid in page)) == [c["id"] for c in every]
    with pytest.raises(ValueError, match="arrivals_between_pages must be true or false"):
        Profile.from_dict({"arrivals_between_pages": "yes"})


def test_updates_between_pages_move_a_later_conversation_to_the_head(sandbox_factory, graph_for):
    """`updates_between_pages: N`: before each of the next N pages after a first of a Page's conversations,
    a conversation not yet served receives its next message (the clock moves on to it): it is at the head
    of the list afterwards, behind the client's cursor, and the page served does not hold it."""
    sb = sandbox_factory(now="2026-11-20T12:00:00Z", faults={"updates_between_pages": 1})
    g = graph_for(sb)
    page_id = sb.world()["pages"][0]["id"]
    pg = graph_for(sb, token=g.page_token(page_id))
    first = pg.ok(f"{page_id}/conversations", platform="messenger", limit=3, fields="updated_time")
    second = pg.ok(
        f"{page_id}/conversations", platform="messenger", limit=3, after=first["paging"]["cursors"]["after"]
    )
    assert sb.now() > "2026-11-20T12:00:00+00:00"
    head = pg.ok(f"{page_id}/conversations", platform="messenger", limit=3, fields="updated_time")["data"][0]
    assert head["updated_time"] > first["data"][0]["updated_time"]
    assert head["id"] not in {c["id"] for c in first["data"] + second["data"]}
    moved_to = sb.now()
    third = pg.ok(  # the fault's one update is spent: the clock stays
        f"{page_id}/conversations", platform="messenger", limit=3, after=second["paging"]["cursors"]["after"]
    )
    assert third["data"] and sb.now() == moved_to
    with pytest.raises(ValueError, match="updates_between_pages must be a whole number >= 0"):
        Profile.from_dict({"updates_between_pages": True})
