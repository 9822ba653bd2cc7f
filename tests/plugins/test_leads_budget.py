"""The per-Page lead-retrieval budget counter."""

from __future__ import annotations

import json

import pytest
from meta_ads_elt.leadgen_budget import (
    LeadgenUsageTap,
    LeadRetrievalBudget,
    LeadRetrievalBudgetExceeded,
    leadgen_call_pct,
)


def test_limit_is_200_x_24_x_leads_of_the_last_90_days():
    assert LeadRetrievalBudget("p1", leads_last_90_days=3).limit == 14_400


def test_charge_stops_before_the_call_that_would_exceed_the_limit():
    budget = LeadRetrievalBudget("p1", leads_last_90_days=1, calls_used=4_798)
    budget.charge()
    budget.charge()
    assert budget.remaining == 0
    with pytest.raises(LeadRetrievalBudgetExceeded, match=r"Page p1 .*4800 calls counted of 4800"):
        budget.charge()
    assert budget.calls_used == 4_800  # the refused call is not counted


def test_a_page_without_recent_leads_has_no_budget():
    with pytest.raises(LeadRetrievalBudgetExceeded, match="0 leads created"):
        LeadRetrievalBudget("p1", leads_last_90_days=0).charge()


def test_metas_reported_usage_counts_calls_made_by_other_runs():
    header = {"X-Business-Use-Case-Usage": json.dumps({"p1": [{"type": "leadgen", "call_count": 99.99}]})}
    budget = LeadRetrievalBudget("p1", leads_last_90_days=1)
    budget.observe_usage(header)
    assert budget.used == 4_800  # ceil(99.99 % of 4800)
    with pytest.raises(LeadRetrievalBudgetExceeded):
        budget.charge()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (None, None),
        ({"x-business-use-case-usage": "not json"}, None),
        ({"x-business-use-case-usage": json.dumps({"p2": [{"type": "leadgen", "call_count": 5}]})}, None),
        ({"x-business-use-case-usage": json.dumps({"p1": [{"type": "pages", "call_count": 5}]})}, None),
        ({"X-Business-Use-Case-Usage": json.dumps({"p1": [{"type": "leadgen", "call_count": 7}]})}, 7.0),
    ],
)
def test_leadgen_usage_is_read_only_for_the_page(headers, expected):
    assert leadgen_call_pct(headers, "p1") == expected


class _Recorder:
    def __init__(self):
        self.seen = []

    def observe(self, headers, scope=None):
        self.seen.append(scope)
        return []

    def waited(self, scope=None):
        return 1.5


def test_the_usage_tap_reads_leadgen_usage_and_leaves_decisions_to_the_governor():
    inner = _Recorder()
    tap = LeadgenUsageTap(inner)
    batch_item_headers = [
        {"name": "x-business-use-case-usage", "value": json.dumps({"p1": [{"type": "leadgen", "call_count": 40}]})}
    ]
    tap.observe(batch_item_headers, "p1")
    tap.observe({"X-Business-Use-Case-Usage": json.dumps({"p1": [{"type": "pages", "call_count": 3}]})}, "p1")
    assert tap.leadgen_pct("p1") == 40.0  # a response without a leadgen entry changes nothing
    assert tap.leadgen_pct("p2") is None
    assert inner.seen == ["p1", "p1"]  # every reading still reaches the real governor
    assert tap.waited("p1") == 1.5  # and everything else is the governor's
