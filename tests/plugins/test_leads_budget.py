"""The per-Page lead-retrieval budget counter."""

from __future__ import annotations

import json

import pytest
from airflow.sdk.exceptions import AirflowFailException
from meta_ads_elt.leadgen_budget import (
    LeadgenReading,
    LeadgenUsageTap,
    LeadRetrievalBudget,
    LeadRetrievalBudgetExceeded,
    leadgen_call_pct,
    leadgen_reading,
)
from meta_ads_elt.operators.leads import leads_on_record


def test_the_ceiling_is_200_x_24_x_the_forms_leads_count():
    assert LeadRetrievalBudget("p1", leads_count=3).ceiling == 14_400


def test_the_ceiling_stops_only_when_even_the_upper_bound_is_spent():
    # leads_count is all-time, so 200 x 24 x leads_count can only over-state Meta's limit
    budget = LeadRetrievalBudget("p1", leads_count=1, calls_used=4_799)
    budget.check()
    budget.charge()
    with pytest.raises(
        LeadRetrievalBudgetExceeded,
        match=r"Page p1 .*4800 calls made, the most the forms' leads_count allows \(4800\)",
    ):
        budget.check()


def test_an_unknown_leads_count_never_blocks_a_call():
    budget = LeadRetrievalBudget("p1", leads_count=None, calls_used=1_000_000)
    budget.check()
    assert budget.ceiling is None


def test_metas_leadgen_reading_is_the_authority():
    budget = LeadRetrievalBudget("p1", leads_count=1_000)
    budget.observe(LeadgenReading(99.9))
    budget.check()  # Meta still allows calls
    budget.observe(LeadgenReading(100.0, regain_minutes=600))
    with pytest.raises(LeadRetrievalBudgetExceeded, match=r"Meta reports 100 % .*about 600 minutes"):
        budget.check()
    budget.observe(None)  # no reading in a response changes nothing
    assert budget.spent_per_meta


def test_the_budget_error_fails_the_task_at_once():
    assert issubclass(LeadRetrievalBudgetExceeded, AirflowFailException)


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
        {
            "name": "x-business-use-case-usage",
            "value": json.dumps({"p1": [{"type": "leadgen", "call_count": 40}]}),
        }
    ]
    tap.observe(batch_item_headers, "p1")
    tap.observe({"X-Business-Use-Case-Usage": json.dumps({"p1": [{"type": "pages", "call_count": 3}]})}, "p1")
    assert tap.leadgen_pct("p1") == 40.0  # a response without a leadgen entry changes nothing
    assert tap.leadgen_pct("p2") is None
    assert inner.seen == ["p1", "p1"]  # every reading still reaches the real governor
    assert tap.waited("p1") == 1.5  # and everything else is the governor's


class _Blocker(_Recorder):
    def __init__(self):
        super().__init__()
        self.blocked = []

    def block(self, scope, seconds):
        self.blocked.append((scope, seconds))


def test_a_refusal_while_meta_reports_the_budget_spent_ends_the_task_instead_of_sleeping():
    inner = _Blocker()
    tap = LeadgenUsageTap(inner)
    tap.block("p1", 30)  # no leadgen reading: the governor decides
    spent = {
        "x-business-use-case-usage": json.dumps(
            {"p1": [{"type": "leadgen", "call_count": 100, "estimated_time_to_regain_access": 1440}]}
        )
    }
    tap.observe(spent, "p1")
    assert tap.reading("p1") == LeadgenReading(100.0, 1440.0)
    with pytest.raises(LeadRetrievalBudgetExceeded, match=r"Page p1 .*about 1440 minutes"):
        tap.block("p1", 86_400)
    tap.block("p2", 5)  # other Pages are untouched
    assert inner.blocked == [("p1", 30), ("p2", 5)]
    assert leadgen_reading(spent, "p2") is None


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        ({"leads_count": 0, "organic_leads_count": 3}, 3),  # organic-only: read, whatever leads_count means
        ({"leads_count": 5, "organic_leads_count": 2}, 7),  # an upper bound if leads_count holds both
        ({"leads_count": 0, "organic_leads_count": 0}, 0),  # collected nothing: skipped, no call
        ({"leads_count": 0}, None),  # organic unknown: never skipped, the budget's bound unknown
        ({"organic_leads_count": 0}, None),
    ],
)
def test_a_form_is_skipped_only_when_it_collected_no_lead_paid_or_organic(form, expected):
    assert leads_on_record(form) == expected
