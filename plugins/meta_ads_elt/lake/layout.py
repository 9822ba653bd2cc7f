"""How the lake's paths name a partition's date: ``<dataset>/<key>=<value>/.../date=YYYY-MM-DD/``.

Read here, once, for every caller (discovery, the Insights operator, the dbt runner, the run summary):

* :func:`partition_date` - the date a partition directory's path names, or ``None``;
* :func:`partition_dates` - the dates of the ``date=`` partitions in a directory.

A ``date=`` directory whose value is not a date as :class:`~meta_ads_elt.lake.partitions.LakeWriter`
writes it (``date=tmp``, ``date=20260105``) is never taken for a date: :func:`partition_date` gives
``None`` and :func:`partition_dates` leaves it out with a warning naming it. The dbt macro
``meta_window_start`` reads the same dates from file paths (``date=([0-9]{4}-[0-9]{2}-[0-9]{2})``).
Deliberately free of pyarrow: the dbt runner and the run summary read dates without loading it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

log = logging.getLogger(__name__)

DATE_DIR_PREFIX = "date="


def partition_date(path: str | os.PathLike[str]) -> dt.date | None:
    """The date named by the last part of ``path`` (``.../date=2026-03-09``), or ``None`` when that part
    is no ``date=`` directory or its value is not an ISO ``YYYY-MM-DD`` date."""
    name = os.fspath(path).rstrip("/").rsplit("/", 1)[-1]
    if not name.startswith(DATE_DIR_PREFIX):
        return None
    value = name.removeprefix(DATE_DIR_PREFIX)
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return None
    return day if day.isoformat() == value else None  # fromisoformat also reads 20260105, 2026-W10-1


def partition_dates(fs: Any, directory: str) -> list[dt.date]:
    """The dates of the ``date=`` partitions in ``directory`` (an fsspec ``fs`` path; glob wildcards
    allowed, e.g. ``insights/account_id=*``), sorted and unique; ``[]`` when there are none. A ``date=``
    entry that names no date is logged as a warning and left out."""
    dates = set()
    for path in fs.glob(f"{directory.rstrip('/')}/{DATE_DIR_PREFIX}*"):
        day = partition_date(path)
        if day is None:
            log.warning("%s: not a date partition (expected date=YYYY-MM-DD); left out", path)
        else:
            dates.add(day)
    return sorted(dates)
