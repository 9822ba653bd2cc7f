"""The HTML report of the marts: built from real marts, opened offline in headless Chromium."""

from __future__ import annotations

import datetime as dt
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from meta_ads_elt import marts, publish, report

from bench.lake_generator import generate_lake
from tests.chromium import headless_chromium
from tests.dbt.conftest import Build

pytestmark = pytest.mark.slow

END = dt.date(2026, 11, 20)
DAYS = 10


def _external_resources(text: str) -> list[str]:
    """The src/href of every script, stylesheet, image or frame of an HTML document."""
    found: list[str] = []

    class Resources(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag in {"script", "link", "img", "iframe"}:
                found.extend(value for name, value in attrs if name in {"src", "href"} and value)

    Resources().feed(text)
    return found


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> tuple[Path, str, list[dt.date]]:
    """Marts of a generated lake (2 accounts, 10 days) where one account was not extracted on 2 days."""
    root = tmp_path_factory.mktemp("report")
    lake = root / "lake"
    generate_lake(
        lake, insights_rows=800, leads=120, messages=400, accounts=2, days=DAYS, end_date=END, threads=2
    )
    account_dirs = sorted((lake / "insights").glob("account_id=*"))
    account_id = account_dirs[0].name.split("=", 1)[1]
    missing = [END - dt.timedelta(days=4), END - dt.timedelta(days=3)]
    for day in missing:
        shutil.rmtree(account_dirs[0] / f"date={day.isoformat()}")
    build = Build(root, lake)
    build.build(window_end=END)
    serving = root / "marts.duckdb"
    publish.publish_marts(build.db, serving, root / "marts")
    return serving, account_id, missing


def test_the_coverage_gaps_are_the_days_not_extracted(published):
    serving, account_id, missing = published
    data = report.load(serving)
    gaps = (
        data.gaps.groupby("account_id")["date"].apply(lambda days: sorted(d.date() for d in days)).to_dict()
    )
    assert gaps == {account_id: missing}


def test_the_report_is_one_offline_file_whose_charts_render_in_chromium(published, tmp_path):
    serving, account_id, missing = published
    path = report.write_report(serving, tmp_path / "report.html")
    text = path.read_text()
    assert _external_resources(text) == [], "plotly.js is inlined, nothing is loaded from elsewhere"
    assert (
        f"{missing[0].isoformat()}, {missing[1].isoformat()}" in text
    )  # the coverage table lists the gap days

    with headless_chromium() as (browser, refused):
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(path.as_uri())
        page.wait_for_function(
            "document.querySelectorAll('.js-plotly-plot .main-svg').length >= 7", timeout=60_000
        )
        charts = page.evaluate(
            """() => [...document.querySelectorAll('.js-plotly-plot')].map(plot => ({
                title: plot.layout.title.text,
                traces: plot.querySelectorAll('g.trace, g.point').length,
                points: plot._fullData.reduce(
                    (n, trace) => n + Array.from(trace.y || []).filter(y => y !== null && !Number.isNaN(y)).length, 0),
                shapes: (plot.layout.shapes || []).length,
            }))"""
        )
        shot = marts.REPO_ROOT / "data" / "build" / "report.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
    assert not errors and not refused, (errors, refused)
    titles = [chart["title"] for chart in charts]
    # Per account: cost per lead, leads, conversations started; then the Pages.
    assert len(titles) == 2 * 3 + 1 and titles[-1].startswith("Conversations started per Page")
    assert all(chart["traces"] > 0 and chart["points"] > 0 for chart in charts), charts
    name = report.load(serving).accounts.set_index("account_id").loc[account_id, "account_name"]
    shaded = {chart["title"] for chart in charts if chart["shapes"]}
    assert shaded == {t for t in titles if t.endswith(f" - {name}")}, (
        "the gap is shaded in each chart of its account"
    )
