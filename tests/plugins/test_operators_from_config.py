"""The operators take every config value from one factory, and every default from the config model."""

from __future__ import annotations

import inspect

import pytest
from meta_ads_elt.config import PipelineConfig, operator_default, parse_config
from meta_ads_elt.operators import from_config
from meta_ads_elt.operators._base import MetaOperator
from meta_ads_elt.operators.ad_objects import MetaAdObjectsOperator
from meta_ads_elt.operators.conversations import MetaConversationsOperator
from meta_ads_elt.operators.insights import MetaInsightsOperator
from meta_ads_elt.operators.leads import MetaLeadsOperator

ACCOUNT = "act_1001"
PAGE = "2001"

# Every value differs from its default, so a key the factory forgets shows.
CONFIG = {
    "meta_conn_id": "meta_agency",
    "lake_root": "data/lake-elsewhere",
    "lookback_days": 11,
    "max_rate_limit_wait_minutes": 7,
    "accounts": [{"id": ACCOUNT}],
    "pages": [{"id": PAGE, "platforms": ["messenger"], "forms": ["3001"]}],
    "insights": {
        "attribution_windows": ["1d_click"],
        "chunk_days": 3,
        "max_concurrent_jobs": 4,
        "deferrable": False,
        "poll_interval_seconds": 12,
        "stall_timeout_minutes": 9,
        "queued_timeout_minutes": 33,
        "worker_poll_seconds": 5,
        "effective_statuses": ["ACTIVE", "DELETED"],
        "reports": [{"name": "default"}, {"preset": "by_country"}],
    },
    "privacy": {
        "raw_lead_fields_allow_list": ["city"],
        "keep_message_text": True,
        "default_phone_country_code": "44",
    },
}


@pytest.fixture(scope="module")
def config() -> PipelineConfig:
    return parse_config(CONFIG)


def common(config: PipelineConfig, op: MetaOperator) -> None:
    assert op.meta_conn_id == "meta_agency"
    assert op.lake_root == config.lake_root_resolved
    assert op.max_rate_limit_wait_minutes == 7
    assert op.hook.max_wait_seconds == 7 * 60


def test_insights_operators_carry_every_insights_key(config):
    default, by_country = (
        from_config.insights_operator(config, ACCOUNT, report) for report in config.insights.reports
    )
    assert (default.task_id, by_country.task_id) == ("insights_1001", "insights_by_country_1001")
    assert default.report.is_default and by_country.report.name == "by_country"
    for op in (default, by_country):
        common(config, op)
        assert op.lookback_days == 11
        assert op.attribution_windows == ["1d_click"]
        assert (op.chunk_days, op.max_concurrent_jobs, op.deferrable) == (3, 4, False)
        assert (op.poll_interval, op.stall_timeout_minutes, op.queued_timeout_minutes) == (12, 9, 33)
        assert op.worker_poll_seconds == 5
        assert op.effective_statuses == ["ACTIVE", "DELETED"]


def test_a_batch_overrides_what_it_must_and_keeps_the_rest(config):
    op = from_config.insights_operator(config, ACCOUNT, lookback_days=40, deferrable=True, pool="p")
    assert (op.lookback_days, op.deferrable, op.pool) == (40, True, "p")
    assert op.max_concurrent_jobs == 4


def test_page_and_ad_object_operators_carry_their_keys(config):
    page = config.listed_pages[0]
    leads = from_config.leads_operator(config, PAGE, page)
    conversations = from_config.conversations_operator(config, PAGE, page)
    objects = from_config.ad_objects_operator(config, ACCOUNT)
    assert (leads.task_id, conversations.task_id, objects.task_id) == (
        f"leads_{PAGE}",
        f"conversations_{PAGE}",
        "ad_objects_1001",
    )
    for op in (leads, conversations, objects):
        common(config, op)
    for op in (leads, conversations):
        assert op.lookback_days == 11
    assert tuple(leads.form_ids) == ("3001",)
    assert tuple(leads.pii_allow_list) == ("city",) and leads.default_phone_country_code == "44"
    assert tuple(conversations.platforms) == ("messenger",) and conversations.keep_message_text is True


@pytest.mark.parametrize(
    "operator", [MetaInsightsOperator, MetaAdObjectsOperator, MetaLeadsOperator, MetaConversationsOperator]
)
def test_an_operator_built_by_hand_defaults_to_the_config_defaults(operator):
    """No operator declares a default of its own for an argument that carries a config key."""
    checked = 0
    for cls in operator.__mro__:
        if not (isinstance(cls, type) and issubclass(cls, MetaOperator)):
            continue
        for name, parameter in inspect.signature(cls.__init__).parameters.items():
            try:
                expected = operator_default(name)
            except KeyError:
                continue
            if parameter.default is not inspect.Parameter.empty:
                assert parameter.default == expected, f"{cls.__name__}({name}=...)"
                checked += 1
    assert checked >= 3


def test_every_windowed_operator_names_its_day_data_interval_day():
    for operator in (MetaInsightsOperator, MetaLeadsOperator, MetaConversationsOperator):
        assert "data_interval_day" in operator.template_fields
        assert "date" not in operator.template_fields
