"""A static HTML report of the published marts: the numbers an analyst looks at first, as pictures.

``make report`` (and the end of ``make run``) writes ``report.html`` beside the serving DuckDB file
(``data/report.html`` by default) and prints its path. One self-contained file: plotly's JavaScript
is inlined once, nothing is fetched from a CDN, so it opens offline, from disk or as a mail attachment.

Per ad account (its own currency, so no sum ever mixes currencies):

* cost per lead over time: the account's reported (Meta's ``lead`` action) and collected (Lead Ads
  records) cost per lead, and each campaign's reported cost per lead;
* leads per day, reported vs collected;
* conversations started per day: first-party (the Pages' messages) vs reported by Meta, and each
  campaign's reported starts;

then conversations started per Page and platform, and a coverage table. **Coverage gaps** are days
between an account's first and last day in the marts with no row in any account mart: days the
pipeline did not extract (the marts keep only extracted days) or, rarely, days extracted with no
delivery, lead or conversation at all. They are shaded in every chart of the account and listed in the
table, and lines break there instead of drawing straight across.

Reads only the marts' contract columns (``docs/DESIGN.md``); each chart is one function over
:class:`ReportData`, so a new mart column is one query and one trace away.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

GAP_COLOUR = "rgba(120, 120, 120, 0.22)"
REPORTED, COLLECTED = "reported", "collected"


@dataclass(frozen=True)
class ReportData:
    """What the charts draw, read once from the serving file."""

    serving_path: Path
    published_at: Any
    accounts: pd.DataFrame  # account_id, account_name, currency, first_date, last_date
    account_days: pd.DataFrame  # per (account_id, date): spend, leads and conversations, both sources
    campaign_days: pd.DataFrame  # per (account_id, campaign_id, date): names, spend, leads, conversations
    page_days: pd.DataFrame  # conversations_started_by_page as published
    gaps: pd.DataFrame  # account_id, date: coverage gaps (see module docstring)


def load(serving_path: str | os.PathLike[str]) -> ReportData:
    """Read the marts the report needs from the serving DuckDB file (read-only)."""
    import duckdb

    path = Path(serving_path)
    con = duckdb.connect(str(path), read_only=True)
    try:
        (published_at,) = con.execute("select max(published_at) from _published").fetchone() or (None,)
        campaign_days = con.execute(
            """
            with leads as (
                select account_id, campaign_id, date, any_value(campaign_name) as campaign_name,
                    sum(spend) as spend, sum(leads_reported) as leads_reported,
                    sum(leads_collected) as leads_collected,
                from cost_per_lead group by all
            ),
            conversations as (
                select account_id, campaign_id, date,
                    sum(conversations_started_reported) as conversations_started_reported,
                from conversations_started group by all
            )
            select account_id, campaign_id, date, leads.campaign_name,
                coalesce(leads.spend, 0)::double as spend,
                coalesce(leads_reported, 0)::bigint as leads_reported,
                coalesce(leads_collected, 0)::bigint as leads_collected,
                coalesce(conversations_started_reported, 0)::bigint as conversations_started_reported,
            from leads full outer join conversations using (account_id, campaign_id, date)
            order by all
            """
        ).df()
        account_days = con.execute(
            """
            with spend as (
                select account_id, date, sum(spend)::double as spend from cost_per_lead group by all
            )
            select account_id, date, coalesce(spend.spend, 0) as spend,
                coalesce(rec.leads_reported, 0)::bigint as leads_reported,
                coalesce(rec.leads_collected, 0)::bigint as leads_collected,
                coalesce(rec.conversations_started, 0)::bigint as conversations_started,
                coalesce(rec.conversations_started_reported, 0)::bigint as conversations_started_reported,
            from lead_reconciliation as rec full outer join spend using (account_id, date)
            order by all
            """
        ).df()
        accounts = con.execute(
            """
            with days as (
                select account_id, date from lead_reconciliation
                union select account_id, date from cost_per_lead
                union select account_id, date from conversations_started
            ),
            names as (
                select account_id, any_value(account_name) as account_name, any_value(currency) as currency,
                from cost_per_lead group by all
            )
            select account_id, names.account_name, coalesce(names.currency, '') as currency,
                min(date) as first_date, max(date) as last_date,
            from days left join names using (account_id)
            group by all order by account_id
            """
        ).df()
        page_days = con.execute(
            "select date, page_id, platform, conversations_started from conversations_started_by_page order by all"
        ).df()
    finally:
        con.close()
    for frame in (campaign_days, account_days, page_days):
        frame["date"] = pd.to_datetime(frame["date"])
    return ReportData(
        path,
        published_at,
        accounts,
        account_days,
        campaign_days,
        page_days,
        coverage_gaps(accounts, account_days),
    )


def coverage_gaps(accounts: pd.DataFrame, account_days: pd.DataFrame) -> pd.DataFrame:
    """Per account, the days between its first and last mart day that have no row (module docstring)."""
    rows = []
    for account in accounts.itertuples():
        present = set(account_days.loc[account_days["account_id"] == account.account_id, "date"].dt.date)
        day = _as_date(account.first_date)
        while day <= _as_date(account.last_date):
            if day not in present:
                rows.append({"account_id": account.account_id, "date": pd.Timestamp(day)})
            day += dt.timedelta(days=1)
    return pd.DataFrame(rows, columns=["account_id", "date"])


def _as_date(value: Any) -> dt.date:
    return pd.Timestamp(value).date()


def _full_range(frame: pd.DataFrame, first: Any, last: Any) -> pd.DataFrame:
    """One row per day from ``first`` to ``last`` (missing days as NaN: lines break there)."""
    days = pd.date_range(pd.Timestamp(first), pd.Timestamp(last), freq="D", name="date")
    return frame.set_index("date").reindex(days).reset_index()


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    return numerator / denominator.where(denominator != 0)


def _shade_gaps(figure: Any, gaps: list[dt.date]) -> None:
    """Grey bands over the coverage gaps, consecutive days merged into one band."""
    runs: list[list[dt.date]] = []
    for day in sorted(gaps):
        if runs and day - runs[-1][-1] == dt.timedelta(days=1):
            runs[-1].append(day)
        else:
            runs.append([day])
    for run in runs:
        figure.add_vrect(
            x0=pd.Timestamp(run[0]) - pd.Timedelta(hours=12),
            x1=pd.Timestamp(run[-1]) + pd.Timedelta(hours=12),
            fillcolor=GAP_COLOUR,
            line_width=0,
            layer="below",
            annotation_text="not extracted" if len(run) > 1 else "gap",
            annotation_position="top left",
        )


def _figure(title: str, yaxis: str, gaps: list[dt.date]) -> Any:
    import plotly.graph_objects as go

    figure = go.Figure()
    figure.update_layout(
        title=title,
        yaxis_title=yaxis,
        hovermode="x unified",
        template="plotly_white",
        height=360,
        margin={"l": 60, "r": 20, "t": 60, "b": 40},
        legend={"orientation": "h", "y": -0.18},
    )
    _shade_gaps(figure, gaps)
    return figure


def cost_per_lead_chart(data: ReportData, account: Any) -> Any:
    import plotly.graph_objects as go

    days = _account_days(data, account)
    figure = _figure(
        f"Cost per lead - {account.account_name or account.account_id}",
        f"{account.currency} per lead",
        _gaps(data, account),
    )
    for source, dash in ((REPORTED, "solid"), (COLLECTED, "dash")):
        figure.add_trace(
            go.Scatter(
                x=days["date"],
                y=_ratio(days["spend"], days[f"leads_{source}"]),
                name=f"account (all its spend), leads {source}",
                mode="lines+markers",
                line={"width": 3, "dash": dash},
            )
        )
    campaigns = data.campaign_days[data.campaign_days["account_id"] == account.account_id]
    for (campaign_id, name), rows in campaigns.groupby(["campaign_id", "campaign_name"], dropna=False):
        if not rows["leads_reported"].any():
            continue  # a campaign without leads (e.g. messaging) has no cost per lead
        rows = _full_range(rows, account.first_date, account.last_date)
        figure.add_trace(
            go.Scatter(
                x=rows["date"],
                y=_ratio(rows["spend"], rows["leads_reported"]),
                name=f"campaign {name if isinstance(name, str) else campaign_id}, reported",
                mode="lines",
                line={"width": 1},
            )
        )
    return figure


def leads_chart(data: ReportData, account: Any) -> Any:
    import plotly.graph_objects as go

    days = _account_days(data, account)
    figure = _figure(
        f"Leads per day - {account.account_name or account.account_id}", "leads", _gaps(data, account)
    )
    for source in (REPORTED, COLLECTED):
        figure.add_trace(go.Bar(x=days["date"], y=days[f"leads_{source}"], name=f"leads {source}"))
    figure.update_layout(barmode="group")
    return figure


def conversations_chart(data: ReportData, account: Any) -> Any:
    import plotly.graph_objects as go

    days = _account_days(data, account)
    figure = _figure(
        f"Conversations started - {account.account_name or account.account_id}",
        "conversations started",
        _gaps(data, account),
    )
    figure.add_trace(
        go.Scatter(
            x=days["date"],
            y=days["conversations_started"],
            name="first-party (the promoted Pages' messages)",
            mode="lines+markers",
            line={"width": 3},
        )
    )
    figure.add_trace(
        go.Scatter(
            x=days["date"],
            y=days["conversations_started_reported"],
            name="reported by Meta (all campaigns)",
            mode="lines+markers",
            line={"width": 3, "dash": "dash"},
        )
    )
    campaigns = data.campaign_days[data.campaign_days["account_id"] == account.account_id]
    names = _campaign_names(data)
    for campaign_id, rows in campaigns.groupby("campaign_id"):
        if not rows["conversations_started_reported"].any():
            continue
        rows = _full_range(rows, account.first_date, account.last_date)
        figure.add_trace(
            go.Scatter(
                x=rows["date"],
                y=rows["conversations_started_reported"],
                name=f"campaign {names.get(campaign_id, campaign_id)}, reported",
                mode="lines",
                line={"width": 1},
            )
        )
    return figure


def pages_chart(data: ReportData) -> Any:
    import plotly.graph_objects as go

    figure = _figure("Conversations started per Page and platform", "conversations started", [])
    for (page_id, platform), rows in data.page_days.groupby(["page_id", "platform"]):
        figure.add_trace(
            go.Bar(x=rows["date"], y=rows["conversations_started"], name=f"Page {page_id} {platform}")
        )
    figure.update_layout(barmode="stack")
    return figure


def coverage_table(data: ReportData) -> str:
    rows = []
    for account in data.accounts.itertuples():
        gaps = _gaps(data, account)
        span = (_as_date(account.last_date) - _as_date(account.first_date)).days + 1
        listed = ", ".join(day.isoformat() for day in gaps) or "none"
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(value))}</td>"
                for value in (
                    account.account_name or "",
                    account.account_id,
                    account.currency,
                    f"{_as_date(account.first_date)} .. {_as_date(account.last_date)}",
                    span - len(gaps),
                    len(gaps),
                )
            )
            + f'<td class="gaps">{html.escape(listed)}</td></tr>'
        )
    return (
        '<table class="coverage"><thead><tr><th>account</th><th>id</th><th>currency</th><th>days</th>'
        "<th>days with data</th><th>gaps</th><th>gap days</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _account_days(data: ReportData, account: Any) -> pd.DataFrame:
    rows = data.account_days[data.account_days["account_id"] == account.account_id]
    return _full_range(rows, account.first_date, account.last_date)


def _gaps(data: ReportData, account: Any) -> list[dt.date]:
    return [day.date() for day in data.gaps.loc[data.gaps["account_id"] == account.account_id, "date"]]


def _campaign_names(data: ReportData) -> dict[str, str]:
    named = data.campaign_days.dropna(subset=["campaign_name"])
    return dict(zip(named["campaign_id"], named["campaign_name"], strict=False))


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0; } p.meta { color: #666; margin-top: .3rem; }
table.coverage { border-collapse: collapse; margin: 1rem 0 2rem; }
table.coverage td, table.coverage th { border: 1px solid #ddd; padding: .3rem .6rem; text-align: left; }
td.gaps { max-width: 32rem; }
section { margin-top: 2.5rem; }
"""


def render(data: ReportData) -> str:
    """The whole report as one HTML document (plotly.js inlined once)."""
    from plotly.offline import get_plotlyjs

    charts: list[tuple[str, list[Any]]] = []
    for account in data.accounts.itertuples():
        heading = f"{account.account_name or 'account'} (act_{account.account_id}, {account.currency})"
        charts.append(
            (
                heading,
                [
                    cost_per_lead_chart(data, account),
                    leads_chart(data, account),
                    conversations_chart(data, account),
                ],
            )
        )
    if not data.page_days.empty:
        charts.append(("Pages", [pages_chart(data)]))
    sections = []
    for heading, figures in charts:
        divs = "".join(
            figure.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})
            for figure in figures
        )
        sections.append(f"<section><h2>{html.escape(heading)}</h2>{divs}</section>")
    if data.accounts.empty:
        sections.append("<p>The marts have no rows yet: run the pipeline (<code>make run</code>).</p>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Meta ads marts report</title>
<style>{STYLE}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
<h1>Meta ads marts</h1>
<p class="meta">{html.escape(str(data.serving_path))}, published {html.escape(str(data.published_at))}.
Dates are each ad account's local dates; money is in the account's currency. Grey bands: coverage gaps,
days without any mart row (not extracted, or extracted with no delivery, leads or conversations).</p>
<h2>Coverage</h2>
{coverage_table(data)}
{"".join(sections)}
</body></html>
"""


def write_report(
    serving_path: str | os.PathLike[str], out_path: str | os.PathLike[str] | None = None
) -> Path:
    """Write the report of the marts in ``serving_path``; return its path (default: beside the marts)."""
    serving = Path(serving_path)
    out = Path(out_path) if out_path else serving.with_name("report.html")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(render(load(serving)), encoding="utf-8")
    os.replace(tmp, out)  # a browser reloading the report never sees half a file
    return out


def main(argv: list[str] | None = None) -> None:
    from meta_ads_elt.config import load_config

    parser = argparse.ArgumentParser(
        prog="python -m meta_ads_elt.report", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--marts", help="the serving DuckDB file (default: marts.serving_path of the config)")
    parser.add_argument("--out", help="the HTML file to write (default: report.html beside the marts)")
    args = parser.parse_args(argv)
    if args.marts:
        serving = Path(args.marts)
    else:
        config = load_config()
        serving = Path(config.resolve(config.marts.serving_path))
    if not serving.exists():
        raise SystemExit(f"no marts at {serving}: run the pipeline first (`make run`)")
    print(f"report of the marts: {write_report(serving, args.out)}", flush=True)


if __name__ == "__main__":
    main()
