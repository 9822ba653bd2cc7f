"""Rate-limit governor: decisions from header values, and sharing between threads."""

from __future__ import annotations

import json
import threading

import pytest
from meta_ads_elt.governor import APP_SCOPE, RateLimitGovernor, parse_usage, regain_seconds


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += s


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def gov(clock):
    return RateLimitGovernor(clock=clock, sleep=clock.sleep)


def buc(pct, regain=0, obj="123"):
    return {
        "X-Business-Use-Case-Usage": json.dumps(
            {
                obj: [
                    {
                        "type": "ads_insights",
                        "call_count": pct,
                        "total_cputime": 1,
                        "total_time": 1,
                        "estimated_time_to_regain_access": regain,
                    }
                ]
            }
        )
    }


def test_all_four_headers_are_read():
    headers = {
        **buc(10),
        "X-Ad-Account-Usage": json.dumps({"acc_id_util_pct": 20.5, "reset_time_duration": 30}),
        "X-App-Usage": json.dumps({"call_count": 30, "total_time": 5, "total_cputime": 5}),
        "x-fb-ads-insights-throttle": json.dumps({"app_id_util_pct": 40, "acc_id_util_pct": 50}),
    }
    readings = {(u.source, u.scope): u.pct for u in parse_usage(headers, "123")}
    assert readings == {
        ("buc", "123"): 10,
        ("ad-account", "123"): 20.5,
        ("app", APP_SCOPE): 30,
        ("insights-app", APP_SCOPE): 40,
        ("insights-account", "123"): 50,
    }


def test_batch_item_header_lists_are_read():
    items = [{"name": "X-App-Usage", "value": json.dumps({"call_count": 77})}]
    assert parse_usage(items)[0].pct == 77


def test_regain_time_is_minutes():
    assert regain_seconds(buc(100, regain=2)) == 120


def test_low_usage_means_no_wait(gov):
    gov.observe(buc(50), "123")
    assert gov.reserve("123") == 0


def test_slows_down_from_75_percent_before_the_limit(gov):
    assert gov.spacing_for(74) == 0
    assert 0 < gov.spacing_for(80) < gov.spacing_for(90) < gov.max_spacing
    gov.observe(buc(90), "123")
    assert gov.reserve("123") == 0
    second = gov.reserve("123")
    assert second == pytest.approx(gov.spacing_for(90))


def test_pauses_at_95_percent(gov):
    gov.observe(buc(96), "123")
    assert gov.reserve("123") >= gov.min_pause


def test_waits_out_the_regain_time(gov, clock):
    gov.observe(buc(100, regain=3), "123")
    assert gov.wait("123") == pytest.approx(180)
    assert clock.t == pytest.approx(1180)
    assert gov.waited("123") == pytest.approx(180)


def test_error_responses_headers_block_too(gov):
    # The hook calls observe() on error responses as well; a block from a 80000 error applies to the scope.
    gov.block("123", 30)
    assert gov.reserve("123") == pytest.approx(30)
    assert gov.reserve("999") == 0  # other accounts are not held back


def test_app_wide_usage_holds_every_scope(gov):
    gov.observe({"X-App-Usage": json.dumps({"call_count": 99})})
    assert gov.reserve("123") >= gov.min_pause
    assert gov.reserve("456") >= gov.min_pause


def test_usage_dropping_lifts_the_spacing(gov):
    gov.observe(buc(90), "123")
    gov.observe(buc(10), "123")
    gov.reserve("123")
    assert gov.reserve("123") == pytest.approx(0, abs=gov.spacing_for(90))


def test_parallel_threads_queue_instead_of_bursting():
    gov = RateLimitGovernor()  # real clock
    gov.observe(buc(85), "123")
    spacing = gov.spacing_for(85)
    delays = []
    lock = threading.Lock()

    def worker():
        d = gov.reserve("123")
        with lock:
            delays.append(d)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    delays.sort()
    # Slots are handed out one spacing apart: the 8 threads are spread over ~7 spacings.
    assert delays[-1] == pytest.approx(7 * spacing, rel=0.2)


def test_a_business_keyed_reading_slows_the_account_that_received_it(gov):
    # Meta keys X-Business-Use-Case-Usage by the business of the token: an id no call is scoped to.
    gov.reserve("123")
    gov.observe(buc(97, obj="2181089985940348"), "123")
    assert gov.reserve("123") >= gov.min_pause
    assert gov.reserve("456") == 0  # another account of the same business is judged on its own readings


def test_a_reading_under_another_known_scope_is_filed_there(gov):
    gov.reserve("123")
    gov.reserve("456")
    gov.observe(buc(97, obj="act_456"), "123")  # a multi-object header: the other account's reading
    assert gov.reserve("456") >= gov.min_pause
    assert gov.reserve("123") == 0


def test_page_app_and_unknown_keys_all_slow_somebody(gov):
    gov.observe(buc(100, regain=2, obj="777"), "page-1")  # Page id key, read in a Page call
    assert gov.reserve("page-1") == pytest.approx(120)
    gov.observe(buc(100, regain=1, obj="some-app"), None)  # app-keyed, a call without a scope
    assert gov.reserve("other") == pytest.approx(60)  # app-wide block holds every scope


def test_a_wait_longer_than_allowed_raises_instead_of_sleeping(gov, clock):
    from meta_ads_elt.governor import WaitTooLong

    gov.observe(buc(100, regain=45, obj="biz"), "123")
    with pytest.raises(WaitTooLong) as raised:
        gov.wait("123", max_wait=30 * 60)
    assert raised.value.scope == "123" and raised.value.seconds == pytest.approx(45 * 60)
    assert clock.t == 1000  # nothing slept
