"""Replacing dates of a serving table: only the changed columns are updated when rows still match one
to one on the others, and whatever the change, the table ends equal to its source on those dates (and
untouched on the others)."""

from __future__ import annotations

import duckdb
import pytest
from meta_ads_elt import date_replace
from meta_ads_elt.date_replace import replace_dates, update_changed_columns
from meta_ads_elt.publish import _changed, _fingerprints

TABLE = """
create table {name} as
select
    date '2026-11-01' + cast(d as integer) as date,
    'ad ' || r as ad_id,
    cast(r % 5 as bigint) as clicks,
    cast(r * 1.5 as decimal(18, 2)) as spend,
    timestamptz '2026-11-20 00:00:00+00' as as_of
from range(5) as days(d), range(50) as rows(r)
"""


@pytest.fixture
def con():
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    for name in ("source", "target"):
        con.execute(TABLE.format(name=name))
    yield con
    con.close()


def differing_rows(con) -> int:
    return con.execute(
        "select count(*) from ((select * from source except all select * from target) "
        "union all (select * from target except all select * from source))"
    ).fetchone()[0]


def replace_changed(con, update_min_rows: int | None = 0) -> list[str]:
    """What the publisher does: fingerprint both, replace the dates that differ; returns those dates."""
    source_fp, target_fp = _fingerprints(con, "source"), _fingerprints(con, "target")
    changed = _changed(source_fp, target_fp)
    replace_dates(con, "source", "target", changed, source_fp, target_fp, update_min_rows=update_min_rows)
    return changed


def test_a_restated_column_is_updated_in_place_and_the_dates_equal_the_source(con):
    """(Tables this small are re-inserted by default: the tests lower ``update_min_rows`` to 0.)"""
    con.execute("update source set as_of = as_of + interval 1 hour where date >= date '2026-11-03'")
    con.execute("update source set spend = spend + 1 where date = date '2026-11-04' and clicks = 2")
    source_fp = _fingerprints(con, "source")
    changed = _changed(source_fp, _fingerprints(con, "target"))
    assert changed == ["2026-11-03", "2026-11-04", "2026-11-05"]
    assert update_changed_columns(con, "source", "target", changed, source_fp) == []  # nothing left over
    assert differing_rows(con) == 0


def test_dates_added_removed_or_with_other_rows_are_replaced_whole(con):
    con.execute("delete from source where date = date '2026-11-01'")
    con.execute(
        "insert into source select date '2026-11-09', ad_id, clicks, spend, as_of from source limit 7"
    )
    con.execute("delete from source where date = date '2026-11-02' and clicks = 0")
    con.execute("update source set as_of = as_of + interval 1 hour where date = date '2026-11-03'")
    assert replace_changed(con) == ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-09"]
    assert differing_rows(con) == 0


def test_rows_the_unchanged_columns_cannot_tell_apart_are_replaced_whole(con):
    # two rows equal but for as_of: matching on the other columns would be ambiguous
    for name in ("source", "target"):
        con.execute(f"update {name} set ad_id = 'ad 0', clicks = 0, spend = 0 where ad_id = 'ad 1'")
    con.execute(
        "update source set as_of = as_of + to_hours(cast(rowid % 2 as integer) + 1) "
        "where date = date '2026-11-02'"
    )
    source_fp = _fingerprints(con, "source")
    assert update_changed_columns(con, "source", "target", ["2026-11-02"], source_fp) == ["2026-11-02"]
    assert replace_changed(con) == ["2026-11-02"]
    assert differing_rows(con) == 0


def test_values_moved_between_rows_are_found_and_replaced_whole(con):
    # spend swapped between two rows (its sum unchanged) while as_of changed on every row: only as_of
    # looks changed, but the update cannot make the date equal, so it is replaced whole
    con.execute(
        "update source set spend = case ad_id when 'ad 3' then 6.00 else 4.50 end "
        "where date = date '2026-11-05' and ad_id in ('ad 3', 'ad 4')"
    )
    con.execute("update source set as_of = as_of + interval 1 hour where date = date '2026-11-05'")
    source_fp = _fingerprints(con, "source")
    assert update_changed_columns(con, "source", "target", ["2026-11-05"], source_fp) == ["2026-11-05"]
    assert replace_changed(con) == ["2026-11-05"]
    assert differing_rows(con) == 0


def test_rows_moved_between_dates_are_replaced_whole(con):
    # 'ad 7' moves from the 1st to the 2nd, 'ad 8' from the 2nd to the 1st: same row counts
    con.execute(
        "update source set date = case ad_id when 'ad 7' then date '2026-11-02' else date '2026-11-01' end "
        "where (ad_id = 'ad 7' and date = date '2026-11-01') or (ad_id = 'ad 8' and date = date '2026-11-02')"
    )
    assert replace_changed(con) == ["2026-11-01", "2026-11-02"]
    assert differing_rows(con) == 0


def test_dates_holding_fewer_rows_than_the_threshold_are_re_inserted(con):
    con.execute("update source set as_of = as_of + interval 1 hour where date >= date '2026-11-03'")
    con.execute("update source set spend = spend + 1 where date = date '2026-11-04' and clicks = 2")
    assert replace_changed(con, update_min_rows=None) == ["2026-11-03", "2026-11-04", "2026-11-05"]
    assert differing_rows(con) == 0


def test_a_table_with_a_column_named_like_the_row_key_is_re_inserted(con):
    for name in ("source", "target"):
        con.execute(f"alter table {name} add column {date_replace.ROW_KEY} bigint default 1")
    con.execute("update source set as_of = as_of + interval 1 hour where date = date '2026-11-02'")
    source_fp = _fingerprints(con, "source")
    assert update_changed_columns(con, "source", "target", ["2026-11-02"], source_fp) == ["2026-11-02"]
    assert replace_changed(con) == ["2026-11-02"]
    assert differing_rows(con) == 0
