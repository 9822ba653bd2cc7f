"""The base of the Page-level operators (leads, conversations): their arguments, the data-interval
window, Graph API times, errors that name the Page and the permission, and the landing of a Page's two
datasets (rows, the Page snapshot, manifests)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from meta_ads_elt.config import check_operator_arguments, operator_default
from meta_ads_elt.errors import (
    MetaArgumentError,
    MetaFatalError,
    MetaParameterError,
    MetaPermissionError,
    MetaTokenError,
    is_invalid_request,
    reply_fields,
)
from meta_ads_elt.operators._base import MetaOperator, as_utc, interval_day

if TYPE_CHECKING:
    import pyarrow as pa

    from meta_ads_elt.hooks.graph_api import MetaGraphApiHook
    from meta_ads_elt.lake.partitions import LakeWriter


TIMEZONE_MARGIN = timedelta(days=1)
"""Ad accounts report in their own time zone (UTC-12 to UTC+14): leads and messages are pulled one
UTC day beyond each end of the window, so every account-local day of the window is complete."""


def utc_window(day: date, lookback_days: int) -> tuple[datetime, datetime]:
    """``[D - lookback + 1, D + 1)`` widened by one UTC day on each side (``TIMEZONE_MARGIN``).

    The last UTC date (D + 1) may still be in progress when the run starts: its partition holds what
    existed at run time and is replaced, complete, by the next day's run.
    """
    if int(lookback_days) < 1:
        raise MetaArgumentError(
            f"lookback_days = {lookback_days!r}: must be a whole number of days, 1 or more (e.g. 28)"
        )
    start = datetime.combine(day - timedelta(days=int(lookback_days) - 1), time(), UTC) - TIMEZONE_MARGIN
    return start, datetime.combine(day + timedelta(days=1), time(), UTC) + TIMEZONE_MARGIN


def window_dates(start: datetime, end: datetime) -> list[date]:
    """Every UTC date of ``[start, end)`` (both at midnight)."""
    return [start.date() + timedelta(days=i) for i in range((end - start).days)]


def parse_meta_time(value: Any) -> datetime:
    """A Graph API time (``2018-02-28T08:49:14+0000``, ISO, or Unix seconds) as an aware UTC datetime."""
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        return datetime.fromtimestamp(int(value), UTC)
    return as_utc(value)


def page_error(exc: BaseException, page_id: str, permission: str) -> BaseException:
    """The hook's error re-worded to name the Page and the permission this operator needs.

    Non-API errors (and API errors that are not about the token, the Page or a permission) are
    returned unchanged, so retries and the lead budget keep their own types.
    """
    if not isinstance(exc, MetaFatalError):
        return exc
    state = reply_fields(exc)
    said = f"Meta said: {exc.message}"
    text = exc.message.lower()
    if "nonexisting field (access_token)" in text:
        return MetaTokenError(
            f"Page {page_id}: the connection holds a Page access token, but a user (or system-user) token "
            f"is needed: the hook derives each Page's token from it. Store a user token with "
            f"'{permission}' as the connection's password. {said}",
            **state,
        )
    if "page access token" in text:
        return MetaPermissionError(
            f"Page {page_id}: this call needs a Page access token of Page {page_id}, not a user token (or "
            f"another Page's token). Read Page edges through MetaGraphApiHook.for_page('{page_id}'), which "
            f"derives it from the user token; the user must manage the Page and have '{permission}'. {said}",
            **state,
        )
    if isinstance(exc, MetaPermissionError):
        permission = "', '".join(exc.permissions) or permission  # the one(s) Meta names, else the usual one
        return MetaPermissionError(
            f"Page {page_id}: permission '{permission}' is missing (or the token cannot act for this Page). "
            f"Grant '{permission}' to the app / user, give the user a role on Page {page_id}, then issue a "
            f"new token. {said}",
            **state,
        )
    if isinstance(exc, MetaTokenError):
        return MetaTokenError(f"Page {page_id} (needs '{permission}'): {exc.message}", **state)
    if isinstance(exc, MetaParameterError) and is_invalid_request(exc):
        return MetaParameterError(
            f"Page {page_id} was not found or cannot be read with this token (it needs '{permission}'); "
            f"check the Page id in the config. {said}",
            **state,
        )
    return exc


def raise_for_page(exc: BaseException, page_id: str, permission: str) -> NoReturn:
    """Raise :func:`page_error` of ``exc`` (chained to it), or ``exc`` itself when it is not re-worded."""
    better = page_error(exc, page_id, permission)
    if better is exc:
        raise exc
    raise better from exc


def page_hook_or_raise(hook: MetaGraphApiHook, page_id: str, permission: str) -> MetaGraphApiHook:
    """``hook.for_page(page_id)``, or a clear error: the id is not a Page (Meta says what it is), the
    connection holds another Page's token, or the user lacks the Page or the permission."""
    from meta_ads_elt.access import not_a_page, page_token_in_connection

    try:
        return hook.for_page(page_id)
    except MetaParameterError as exc:
        state = reply_fields(exc)
        if "nonexisting field (access_token)" in exc.message:
            raise MetaTokenError(f"Page {page_id}: {page_token_in_connection(hook)}", **state) from exc
        raise MetaParameterError(
            f"{not_a_page(hook, page_id, exc)} (It needs '{permission}'.)", **state
        ) from exc
    except Exception as exc:
        raise_for_page(exc, page_id, permission)


def write_page_snapshot(
    writer: LakeWriter,
    page_id: str,
    extractor: str,
    page_hook: MetaGraphApiHook,
    extracted_at: datetime,
    run_id: str,
) -> None:
    """Replace the ``pages`` snapshot of ``page_id`` written by ``extractor`` (``leads`` or
    ``conversations``): the Page's name as the call for its token returned it (no extra call). Each
    extractor has its own partition, so the two tasks of one Page never swap the same directory."""
    partition = {"page_id": page_id, "extractor": extractor}
    with writer.replace_partitions("pages", [partition], run_id=run_id) as tx:
        tx.write([{"name": page_hook.page_name, "_extracted_at": extracted_at}], partition=partition)


class MetaPageOperator(MetaOperator):
    """Base of the operators of one Page (leads, conversations).

    :param page_id: the Page's numeric id.
    :param data_interval_day: the day D (``YYYY-MM-DD``); default: the UTC date of the data interval.
    :param lookback_days: days of the window ending at D.
    :param page_limit: records per API page (default: the subclass's ``default_page_limit``).
    """

    extractor: ClassVar[str]
    """The ``pages`` snapshot partition this operator writes (``leads`` / ``conversations``)."""
    datasets: ClassVar[tuple[str, str]]
    """The two lake datasets it replaces, e.g. ``("leads", "lead_answers")``."""
    default_page_limit: ClassVar[int]

    template_fields: Sequence[str] = ("page_id", "data_interval_day", *MetaOperator.template_fields)
    ui_color = "#e7f0fd"

    def __init__(
        self,
        *,
        page_id: str,
        data_interval_day: str | None = None,
        lookback_days: int = operator_default("lookback_days"),
        page_limit: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_operator_arguments(type(self).__name__, page_id=page_id, lookback_days=lookback_days)
        self.page_id = page_id
        self.data_interval_day = data_interval_day
        self.lookback_days = lookback_days
        self.page_limit = self.default_page_limit if page_limit is None else page_limit

    def window(self, context: Mapping[str, Any] | None) -> tuple[date, datetime, datetime]:
        """The day D and the UTC window ``[start, end)`` of this run (see :func:`utc_window`)."""
        day = interval_day(context, self.data_interval_day)
        return (day, *utc_window(day, self.lookback_days))

    def land(
        self,
        context: Mapping[str, Any] | None,
        day: date,
        extracted_at: datetime,
        partitions: Sequence[Mapping[str, str]],
        tables: Sequence[tuple[pa.Table, pa.Table]],
        manifest: Mapping[str, Any],
    ) -> dict[str, Any]:
        """Replace ``partitions`` of both :attr:`datasets` (``tables[i]`` holds partition i's two tables),
        then the Page snapshot, then one manifest per dataset (``manifest`` plus the common keys)."""
        from meta_ads_elt.lake.partitions import LakeWriter

        page_id = str(self.page_id)
        run_id = str((context or {}).get("run_id") or f"manual__{extracted_at:%Y%m%dT%H%M%S}")
        writer = LakeWriter(self.lake_root)
        counts: dict[str, int] = {}
        for index, dataset in enumerate(self.datasets):
            with writer.replace_partitions(dataset, partitions, run_id=run_id) as tx:
                for partition, pair in zip(partitions, tables, strict=True):
                    tx.write(pair[index], partition=partition)
            counts[dataset] = tx.rows
        page_hook = self.hook.for_page(page_id)
        write_page_snapshot(writer, page_id, self.extractor, page_hook, extracted_at, run_id)
        body = {
            **manifest,
            "run_id": run_id,
            "page_id": page_id,
            "data_interval_day": day.isoformat(),
            "rows": counts,
            "calls": self.hook.calls + page_hook.calls,
            "page_token_renewals": page_hook.token_renewals,  # Page token refused (190), fetched again
            "extracted_at": extracted_at.isoformat(),
        }
        for dataset in self.datasets:
            path = writer.write_manifest(dataset, {**body, "dataset": dataset})
        return {"rows": counts, "calls": body["calls"], "manifest": path, "partitions": len(partitions)}
