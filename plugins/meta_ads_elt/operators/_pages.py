"""Helpers shared by the Page-level operators (leads, conversations): the data-interval window,
Graph API times, and errors that name the Page and the permission."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from meta_ads_elt.errors import (
    MetaFatalError,
    MetaParameterError,
    MetaPermissionError,
    MetaTokenError,
)

if TYPE_CHECKING:
    from meta_ads_elt.hooks.graph_api import MetaGraphApiHook
    from meta_ads_elt.lake.partitions import LakeWriter


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
    raise ValueError("no data interval in the context: pass data_interval_day='YYYY-MM-DD'")


TIMEZONE_MARGIN = timedelta(days=1)
"""Ad accounts report in their own time zone (UTC-12 to UTC+14): leads and messages are pulled one
UTC day beyond each end of the window, so every account-local day of the window is complete."""


def utc_window(day: date, lookback_days: int) -> tuple[datetime, datetime]:
    """``[D - lookback + 1, D + 1)`` widened by one UTC day on each side (``TIMEZONE_MARGIN``).

    The last UTC date (D + 1) may still be in progress when the run starts: its partition holds what
    existed at run time and is replaced, complete, by the next day's run.
    """
    if int(lookback_days) < 1:
        raise ValueError(f"lookback_days must be >= 1, got {lookback_days}")
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


def as_utc(moment: Any) -> datetime:
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def page_error(exc: BaseException, page_id: str, permission: str) -> BaseException:
    """The hook's error re-worded to name the Page and the permission this operator needs.

    Non-API errors (and API errors that are not about the token, the Page or a permission) are
    returned unchanged, so retries and the lead budget keep their own types.
    """
    if not isinstance(exc, MetaFatalError):
        return exc
    state = {
        "code": exc.code,
        "subcode": exc.subcode,
        "http_status": exc.http_status,
        "fbtrace_id": exc.fbtrace_id,
    }
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
        return MetaPermissionError(
            f"Page {page_id}: permission '{permission}' is missing (or the token cannot act for this Page). "
            f"Grant '{permission}' to the app / user, give the user a role on Page {page_id}, then issue a "
            f"new token. {said}",
            **state,
        )
    if isinstance(exc, MetaTokenError):
        return MetaTokenError(f"Page {page_id} (needs '{permission}'): {exc.message}", **state)
    if isinstance(exc, MetaParameterError) and exc.code == 100:
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
        state = {
            "code": exc.code,
            "subcode": exc.subcode,
            "http_status": exc.http_status,
            "fbtrace_id": exc.fbtrace_id,
        }
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
