"""CallPacer: at most N calls in any window, batch items counted one by one, a call counted from its answer
(fake clock, no sleeping)."""

from __future__ import annotations

import pytest
from meta_ads_elt.pacing import MARGIN_SECONDS, CallPacer


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_two_calls_a_second_go_at_once_and_the_third_waits_for_the_first_to_leave_the_window():
    t = FakeTime()
    pacer = CallPacer(2, 1.0, clock=t.clock, sleep=t.sleep)
    pacer.wait()
    t.now += 0.3
    pacer.wait()
    assert t.slept == []
    pacer.wait()
    assert t.slept == [pytest.approx(0.7 + MARGIN_SECONDS)]
    assert pacer.waited == pytest.approx(0.7 + MARGIN_SECONDS)


def test_a_batch_of_two_items_waits_until_both_fit():
    t = FakeTime()
    pacer = CallPacer(2, 1.0, clock=t.clock, sleep=t.sleep)
    pacer.wait(2)
    t.now += 0.5
    pacer.wait(2)
    assert sum(t.slept) == pytest.approx(0.5 + MARGIN_SECONDS)
    with pytest.raises(ValueError, match="do not fit"):
        pacer.wait(3)


def test_calls_spread_over_time_never_wait():
    t = FakeTime()
    pacer = CallPacer(2, 1.0, clock=t.clock, sleep=t.sleep)
    for _ in range(10):
        pacer.wait()
        t.now += 0.6
    assert t.slept == []


def test_a_call_made_in_sending_counts_from_its_answer_the_latest_moment_meta_can_have_counted_it():
    t = FakeTime()
    pacer = CallPacer(1, 1.0, clock=t.clock, sleep=t.sleep)
    with pacer.sending():
        t.now += 0.4  # the round trip: Meta counted the call somewhere in it
    t.now += 0.5
    with pacer.sending():
        pass
    assert t.slept == [pytest.approx(0.5 + MARGIN_SECONDS)]  # from the answer, not from the send
    with pytest.raises(RuntimeError), pacer.sending():
        raise RuntimeError("connection dropped")
    with pacer.sending():
        pass
    assert t.slept[-1] == pytest.approx(1.0 + MARGIN_SECONDS)  # a failed send counts too
