"""What every Meta extraction operator shares: one parameter vocabulary, defaults from the config model.

Every operator takes ``meta_conn_id``, ``lake_root`` and ``max_rate_limit_wait_minutes``; those with a
window take ``data_interval_day`` (the day D, ``YYYY-MM-DD``; default: the run's data interval) and
``lookback_days``. An argument that carries a config key is named as the operator argument of
:data:`meta_ads_elt.config._OPERATOR_ARGUMENTS` and defaults to that key's default
(:func:`~meta_ads_elt.config.operator_default`), so an operator built by hand behaves as the DAG does
with an empty config.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from meta_ads_elt.config import check_operator_arguments, operator_default
from meta_ads_elt.errors import MetaArgumentError

if TYPE_CHECKING:
    from meta_ads_elt.hooks.graph_api import MetaGraphApiHook


def interval_day(context: Mapping[str, Any] | None, explicit: str | date | None = None) -> date:
    """The data interval day D: ``explicit`` if given, else the UTC date of ``data_interval_start``.

    Manual runs in Airflow 3 may have no data interval; they fall back to ``logical_date`` and then
    ``dag_run.run_after`` (the moment the run was asked for).
    """
    if explicit:
        return explicit if isinstance(explicit, date) else date.fromisoformat(str(explicit)[:10])
    context = context or {}
    for key in ("data_interval_start", "logical_date"):
        moment = context.get(key)
        if moment is not None:
            return as_utc(moment).date()
    run_after = getattr(context.get("dag_run"), "run_after", None)
    if run_after is not None:
        return as_utc(run_after).date()
    raise MetaArgumentError(
        "data_interval_day: the run has no data interval, logical date or run_after to take it from; "
        "pass data_interval_day='YYYY-MM-DD'"
    )


def as_utc(moment: Any) -> datetime:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class MetaOperator(BaseOperator):
    """Base of the Meta extraction operators: the connection, the lake, the rate-limit wait, the hook.

    :param meta_conn_id: Airflow connection of type ``meta_graph_api``.
    :param lake_root: lake root (local path, fsspec URL or ``ObjectStoragePath``).
    :param max_rate_limit_wait_minutes: longest rate-limit wait before failing with the time to retry.
    """

    template_fields: Sequence[str] = ("meta_conn_id", "lake_root")

    def __init__(
        self,
        *,
        meta_conn_id: str = operator_default("meta_conn_id"),
        lake_root: str = operator_default("lake_root"),
        max_rate_limit_wait_minutes: float = operator_default("max_rate_limit_wait_minutes"),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.meta_conn_id = meta_conn_id
        self.lake_root = lake_root
        self.max_rate_limit_wait_minutes = max_rate_limit_wait_minutes

    def hook_options(self) -> dict[str, Any]:
        """Further keyword arguments of this operator's hook (e.g. a governor)."""
        return {}

    @cached_property
    def hook(self) -> MetaGraphApiHook:
        from meta_ads_elt.hooks.graph_api import MetaGraphApiHook

        return MetaGraphApiHook(
            self.meta_conn_id, max_wait_seconds=self.max_rate_limit_wait_minutes * 60, **self.hook_options()
        )


class MetaAccountOperator(MetaOperator):
    """Base of the operators of one ad account.

    :param account_id: ad account id, with or without ``act_``.
    """

    template_fields: Sequence[str] = ("account_id", *MetaOperator.template_fields)

    def __init__(self, *, account_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_operator_arguments(type(self).__name__, account_id=account_id)
        self.account_id = account_id

    @property
    def numeric_account_id(self) -> str:
        return str(self.account_id).removeprefix("act_")
