"""``python -m meta_sandbox``: serve the Graph API sandbox in the foreground.

The first stdout line is machine-readable: ``SANDBOX_URL=http://127.0.0.1:PORT`` (with ``--port 0``
a free port is picked). The default credentials follow on the next lines.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys

from meta_sandbox import API_VERSION
from meta_sandbox.app import Options, Sandbox
from meta_sandbox.faults import PROFILES
from meta_sandbox.server import make_server


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m meta_sandbox",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    d = Options()
    p.add_argument("--host", default=d.host)
    p.add_argument("--port", type=int, default=d.port, help="0 picks a free port")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--now", default=None, help="freeze the clock at this ISO time (default: real time)")
    p.add_argument("--accounts", type=int, default=d.accounts)
    p.add_argument(
        "--campaigns-per-account",
        type=int,
        default=d.campaigns_per_account,
        help="even-indexed campaigns are lead generation, odd-indexed are messaging",
    )
    p.add_argument("--adsets-per-campaign", type=int, default=d.adsets_per_campaign)
    p.add_argument("--ads-per-adset", type=int, default=d.ads_per_adset)
    p.add_argument("--history-days", type=int, default=d.history_days)
    p.add_argument(
        "--leads-per-day", type=float, default=d.leads_per_day, help="paid leads per Page per day (mean)"
    )
    p.add_argument("--organic-leads-per-day", type=float, default=d.organic_leads_per_day)
    p.add_argument(
        "--conversations-per-day",
        type=float,
        default=d.conversations_per_day,
        help="new conversations per Page per day (mean; 75%% from messaging ads)",
    )
    p.add_argument(
        "--faults",
        default=None,
        help=f"a profile name ({', '.join(sorted(PROFILES))}), a YAML/JSON path or inline JSON",
    )
    p.add_argument("--require-proof", action="store_true", help="reject calls without appsecret_proof")
    p.add_argument(
        "--page-token-seconds",
        type=float,
        default=d.page_token_seconds,
        help="Page tokens expire this many seconds (wall time) after they are issued (190/463; "
        "default: never)",
    )
    p.add_argument("--latency-ms", type=float, default=d.latency_ms, help="added to every Graph request")
    p.add_argument("--job-base-seconds", type=float, default=d.job_base_seconds)
    p.add_argument("--job-seconds-per-1k-rows", type=float, default=d.job_seconds_per_1k_rows)
    p.add_argument(
        "--budgets",
        default=None,
        help="rate-limit budgets, e.g. 'ads_insights=100,window_s=60' "
        "(keys: window_s, app, user, ads_insights, ads_management, pages, leadgen_scale, instagram, "
        "instagram_window_s)",
    )
    p.add_argument(
        "--leadgen-budget-scale",
        type=float,
        default=d.leadgen_budget_scale,
        help="multiplies Meta's 200 x 24 x leads-in-90-days lead-retrieval budget",
    )
    p.add_argument(
        "--usage-header-key",
        choices=("business", "account"),
        default=d.usage_header_key,
        help="which id keys the ads types of x-business-use-case-usage (Meta: the token's business)",
    )
    p.add_argument(
        "--no-promo-campaigns",
        dest="promo_campaigns",
        action="store_false",
        help="no rotating promo campaigns (no paused, archived or deleted objects)",
    )
    p.add_argument(
        "--no-paging-gaps",
        dest="paging_gaps",
        action="store_false",
        help="every page of an object edge full but the last (no short or empty pages: see paging.py)",
    )
    p.add_argument(
        "--agency",
        action="store_true",
        help="the agency world: two Businesses (owned and client ad accounts), disabled, unreadable "
        "and late-joining accounts (use with --accounts 300)",
    )
    p.add_argument(
        "--extra-promoted-pages",
        type=int,
        default=d.extra_promoted_pages,
        help="the first account also promotes this many Pages that run no ads (a franchise's Pages): more "
        "than one page of its promote_pages",
    )
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    options = Options(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Options)})
    try:
        sandbox = Sandbox(options)
    except ValueError as exc:
        print(f"meta_sandbox: {exc}", file=sys.stderr)
        return 2
    server = make_server(sandbox, options.host, options.port)
    host, port = server.server_address[:2]
    url = f"http://{host}:{port}"
    print(f"SANDBOX_URL={url}", flush=True)
    print(f"Meta Graph API sandbox ({API_VERSION} and any v<N>.0) serving at {url}")
    print(
        f"  user access token: {sandbox.token}\n  app id:            {sandbox.app_id}\n"
        f"  app secret:        {sandbox.app_secret}"
    )
    counts = sandbox.world.summary()["counts"]
    print(
        f"  world: seed={options.seed} {counts} history_days={options.history_days} "
        f"now={sandbox.clock.now().isoformat()} faults={sandbox.faults.profile.name}",
        flush=True,
    )

    def _stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
