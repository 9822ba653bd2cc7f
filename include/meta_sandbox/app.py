"""The sandbox core: one ``Sandbox`` turns a parsed request into a response.

The HTTP server (``server.py``) and the batch endpoint (``batch.py``) both call ``Sandbox.handle``,
so a batch item is served, counted, rate-limited and fault-injected exactly like a single request.
Pipeline per Graph request: stats -> fault decision (latency, drop, injected error) -> auth
(token, appsecret_proof) -> rate-limit charge -> route -> headers (usage headers on errors too).
Unexpected exceptions become Meta's code-1 envelope (HTTP 500), never a traceback.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import datetime as dt
import email.utils
import json
import re
import sys
import threading
import time
import traceback

from meta_sandbox import (
    API_VERSION,
    DEFAULT_APP_ID,
    DEFAULT_APP_SECRET,
    DEFAULT_TOKEN,
    auth,
    errors,
    insights,
    metrics,
    objects,
    paging,
)
from meta_sandbox import conversations as conv_mod
from meta_sandbox import leads as leads_mod
from meta_sandbox.clock import Clock, day_number, parse_iso
from meta_sandbox.errors import GraphError, missing_object
from meta_sandbox.faults import Faults, load
from meta_sandbox.jobs import PRERENDER_MIN_ROWS, Job, JobStore
from meta_sandbox.params import FieldSpec, parse_fields
from meta_sandbox.ratelimit import Budgets, RateLimiter, Scope
from meta_sandbox.stats import Stats
from meta_sandbox.world import (
    TAIL_DAYS,
    TERMINAL_STATUSES,
    Account,
    Ad,
    AdSet,
    Business,
    Campaign,
    LeadForm,
    Page,
    World,
    WorldConfig,
)

VERSION_RE = re.compile(r"^/(v\d+\.\d+)(/.*)?$")
JOB_FIELDS = {
    "id",
    "account_id",
    "async_percent_completion",
    "async_report_url",
    "async_status",
    "date_start",
    "date_stop",
    "emails",
    "error_code",
    "error_message",
    "error_subcode",
    "error_user_msg",
    "error_user_title",
    "friendly_name",
    "is_async_export",
    "is_bookmarked",
    "is_running",
    "schedule_id",
    "time_completed",
    "time_ref",
}

REACH_FIELDS = ("reach", "frequency", "cpp")
REACH_BREAKDOWN_MONTHS = 13
REACH_BREAKDOWN_JOBS_PER_DAY = 10
"""Meta's limit on async jobs with breakdowns asking reach further back than 13 months (per ad account
per day): :meth:`Sandbox._charge_reach_breakdowns`."""


@dataclasses.dataclass
class Options:
    """Every knob of a sandbox (the CLI flags, one to one)."""

    host: str = "127.0.0.1"
    port: int = 8765
    seed: int = 42
    now: str | None = None
    accounts: int = 3
    campaigns_per_account: int = 2
    adsets_per_campaign: int = 2
    ads_per_adset: int = 2
    history_days: int = 90
    leads_per_day: float = 6.0
    organic_leads_per_day: float = 1.0
    conversations_per_day: float = 5.0
    faults: str | None = None
    require_proof: bool = False
    page_token_seconds: float | None = None
    latency_ms: float = 0.0
    job_base_seconds: float = 1.0
    job_seconds_per_1k_rows: float = 0.2
    budgets: str | None = None
    leadgen_budget_scale: float = 1.0
    usage_header_key: str = "business"
    promo_campaigns: bool = True
    paging_gaps: bool = True  # short and empty pages on object edges (paging.py: Meta's "Paginated Results")
    agency: bool = False
    extra_promoted_pages: int = 0
    verbose: bool = False


@dataclasses.dataclass
class Request:
    method: str
    path: str
    params: dict
    headers: dict
    base_url: str
    body: bytes = b""
    batch_item: bool = False
    auth_time: float | None = None  # a batch item with the batch's token: when the batch came (wall time)


@dataclasses.dataclass
class Response:
    status: int
    body: bytes
    headers: dict = dataclasses.field(default_factory=dict)
    content_type: str = "application/json; charset=UTF-8"
    drop: bool = False
    null: bool = False  # batch item answered with null


class Sandbox:
    def __init__(self, options: Options | None = None):
        self.options = o = options or Options()
        self.token = DEFAULT_TOKEN
        self.app_id = DEFAULT_APP_ID
        self.app_secret = DEFAULT_APP_SECRET
        self.world = World(
            WorldConfig(
                seed=o.seed,
                accounts=o.accounts,
                campaigns_per_account=o.campaigns_per_account,
                adsets_per_campaign=o.adsets_per_campaign,
                ads_per_adset=o.ads_per_adset,
                history_days=o.history_days,
                leads_per_day=o.leads_per_day,
                organic_leads_per_day=o.organic_leads_per_day,
                conversations_per_day=o.conversations_per_day,
                promo_campaigns=o.promo_campaigns,
                agency=o.agency,
                extra_promoted_pages=o.extra_promoted_pages,
            )
        )
        self.clock = Clock(parse_iso(o.now) if o.now else None)
        self.started_day = day_number(self.clock.now().date())  # UTC day at start-up (agency arrivals)
        budgets = Budgets.parse(o.budgets)
        if o.leadgen_budget_scale != 1.0:
            budgets.leadgen_scale = o.leadgen_budget_scale
        self.ratelimiter = RateLimiter(budgets, o.usage_header_key)
        self.faults = Faults(o.seed, load(o.faults))
        self.jobs = JobStore(o.seed)
        self.stats = Stats()
        self._cache_lock = threading.Lock()
        self._reach_breakdown_jobs: collections.Counter = collections.Counter()  # (account, UTC date)
        self._cache: dict = {}
        self._sync_keys: collections.OrderedDict = collections.OrderedDict()
        self._prefetch: collections.OrderedDict = collections.OrderedDict()
        self._renderer = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch")
        self._means = {}
        for page in self.world.pages:
            n_lead, n_msg = len(page.lead_ads), len(page.messaging_ads)
            for ad in page.lead_ads:
                self._means[ad.gindex] = (o.leads_per_day / n_lead, 0.0)
            for ad in page.messaging_ads:
                self._means[ad.gindex] = (0.0, 0.75 * o.conversations_per_day / n_msg)
            if page.account is None:  # a Page no account promotes runs no promo campaigns
                continue
            # promo slots: a lead ad or a messaging ad, depending on the generation
            for slot in range(3):
                self._means[self.world.promo_slot_base + 3 * page.account.index + slot] = (
                    o.leads_per_day / max(1, n_lead),
                    0.75 * o.conversations_per_day / max(1, n_msg),
                )

    # ---- world helpers ------------------------------------------------------------------------

    def window(self, account: Account | Page) -> tuple[int, int]:
        """(first served day, local today) for an account (or a Page: its ``tz``). Served days are
        ``[first, today]``: the complete days before today, and today as it stands at the clock (partial)."""
        today = self.clock.local_today(account.tz)
        return today - self.world.config.history_days, today

    def managed(self, account: Account) -> bool:
        """Whether the account is in the token user's reach today: a late client (``joins_after_days``)
        is neither listed nor readable before its day (UTC)."""
        if account.joins_after_days is None:
            return True
        return day_number(self.clock.now().date()) >= self.started_day + account.joins_after_days

    def readable(self, account: Account) -> bool:
        """Whether the token's user can read the ad account (assigned to it, and managed already)."""
        return account.assigned and self.managed(account)

    def now_ts(self) -> int:
        """The clock in whole minutes: what exists "so far" (today's leads, messages, delivery)."""
        return int(self.clock.now().timestamp()) // 60 * 60

    def cutoff_ts(self, account: Account) -> int:
        """Records (leads, messages) created before this instant are visible."""
        return self.now_ts()

    def midnight_ts(self, account: Account, day: int) -> int:
        d = dt.date(1970, 1, 1) + dt.timedelta(days=day)
        return int(dt.datetime(d.year, d.month, d.day, tzinfo=account.tz).timestamp())

    def day_fraction(self, account: Account, day: int) -> float:
        """Share of the account-local ``day`` gone at the clock (0 before it starts, 1 once over)."""
        start, end = self.midnight_ts(account, day), self.midnight_ts(account, day + 1)
        return min(1.0, max(0.0, (self.now_ts() - start) / (end - start)))

    def local_day(self, account: Account, ts: float) -> int:
        return day_number(dt.datetime.fromtimestamp(ts, account.tz).date())

    def today(self, account: Account) -> int:
        return self.clock.local_today(account.tz)

    def status_now(self, obj) -> str | None:
        """An ad object's effective status as of the clock (its account's local today)."""
        return obj.effective_status(self.today(obj.account))

    def delivery(self, ad: Ad, day: int):
        """The final facts of an ad-day (None without delivery): live days deliver; a lead ad that
        stopped (archived / deleted) still reports pixel leads for ``TAIL_DAYS`` days."""
        lead_mean, conv_mean = self._means[ad.gindex]
        if ad.steady:
            return metrics.delivery(ad, day, lead_mean, conv_mean)
        status = ad.effective_status(day)
        if status == "ACTIVE":
            return metrics.delivery(ad, day, lead_mean, conv_mean)
        if status in TERMINAL_STATUSES:
            stopped = ad.stopped_day()
            if stopped is not None and stopped <= day < stopped + TAIL_DAYS:
                return metrics.tail_delivery(ad, day, lead_mean)
        return None

    def delivers(self, ad: Ad, day: int) -> bool:
        """Cheap: whether an ad-day has a row (complete days)."""
        if ad.steady or ad.effective_status(day) == "ACTIVE":
            return metrics.delivers(ad, day)
        return self.delivery(ad, day) is not None

    def observed(self, ad: Ad, day: int, today: int):
        """What Meta reports for an ad-day as of the clock: complete days in full, the account's
        current day (``today``) as it stands (partial), nothing for later days."""
        if day < today:
            return self.delivery(ad, day)
        if day > today:
            return None
        dl = self.delivery(ad, day)
        if dl is None:
            return None
        account = ad.account
        fraction = self.day_fraction(account, day)
        if fraction >= 1.0:
            return dl
        cutoff = self.now_ts()
        leads = sum(1 for lead in leads_mod.paid_leads(self, ad, day) if lead.created_ts < cutoff)
        convs = 0
        if dl.conv_final:
            midnight = self.midnight_ts(account, day)
            page = account.page
            for conv in self._cached(
                ("day-convs", page.index, day), lambda: conv_mod.day_conversations(self, page, day)
            ):
                if conv.ad is ad and min(m.ts for m in conv.messages if m.ts >= midnight) < cutoff:
                    convs += 1
        return metrics.partial(dl, fraction, leads, convs)

    def ads_of(self, obj, lo: int, hi: int) -> list[Ad]:
        """The ads under an account, campaign, ad set or ad that may report on ``[lo, hi]``."""
        if isinstance(obj, Account):
            return [ad for c in self.world.campaigns_of(obj, lo, hi) for s in c.adsets for ad in s.ads]
        if isinstance(obj, Campaign):
            return [ad for s in obj.adsets for ad in s.ads]
        if isinstance(obj, AdSet):
            return list(obj.ads)
        return [obj]

    def page_ads(self, page: Page, kind: str, day: int) -> list[Ad]:
        """The lead ads (``kind="leads"``) or messaging ads of a Page's account that may deliver on ``day``."""
        permanent = page.lead_ads if kind == "leads" else page.messaging_ads
        if page.account is None:  # a Page no account promotes runs no ads
            return permanent
        promo = [
            ad
            for c in self.world.promo_campaigns(page.account, day, day)
            if c.kind == kind
            for s in c.adsets
            for ad in s.ads
        ]
        return permanent + promo

    def organic_conv_mean(self, page: Page) -> float:
        cpd = self.options.conversations_per_day
        return 0.25 * cpd if page.messaging_ads else cpd

    def _cached(self, key: tuple, build):
        with self._cache_lock:
            if key in self._cache:
                return self._cache[key]
        value = build()
        with self._cache_lock:
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[key] = value
        return value

    def page_leads(self, page: Page) -> list:
        today = self.window(page)[1]
        return self._cached(
            ("leads", page.index, today, self.now_ts()), lambda: leads_mod.page_leads(self, page)
        )

    def page_conversations(self, page: Page) -> list:
        today = self.window(page)[1]
        return self._cached(
            ("convs", page.index, today, self.now_ts()), lambda: conv_mod.page_conversations(self, page)
        )

    def leadgen_budget(self, page: Page) -> int:
        """200 x 24 x leads created on the Page in the last 90 days (x the scale knob), per 24 h."""
        now = self.clock.now().timestamp()
        n = sum(1 for lead in self.page_leads(page) if lead.created_ts >= now - 90 * 86400)
        return int(200 * 24 * n * self.ratelimiter.budgets.leadgen_scale)

    def world_summary(self) -> dict:
        """``/_sandbox/world``: the world's ids, plus each account's campaigns, ad sets and ads of the
        served window (promo generations included) with their statuses as of the clock."""
        out = self.world.summary()
        for doc, account in zip(out["accounts"], self.world.accounts, strict=True):
            start, today = self.window(account)
            objects = []
            for c in self.world.campaigns_of(account, start, today):
                for level, obj, parents in [("campaign", c, {})] + [
                    item
                    for s in c.adsets
                    for item in [("adset", s, {"campaign_id": c.id})]
                    + [("ad", ad, {"campaign_id": c.id, "adset_id": s.id}) for ad in s.ads]
                ]:
                    status = obj.effective_status(today)
                    if status is None:
                        continue
                    objects.append(
                        {
                            "level": level,
                            "id": obj.id,
                            "name": obj.name,
                            **parents,
                            "effective_status": status,
                            "configured_status": obj.configured_status(today),
                        }
                    )
            doc["business_id"] = account.business.id if account.business else None
            doc["objects"] = objects
        return out

    def fields_of(self, params: dict):
        return parse_fields(params.get("fields"))

    # ---- request pipeline ---------------------------------------------------------------------

    def endpoint_name(self, method: str, segs: list[str]) -> str:
        if not segs:
            return "POST /batch" if method == "POST" else f"{method} /"
        out = []
        for i, s in enumerate(segs):
            if s.startswith("act_"):
                out.append("act_{id}")
            elif i == 0 and s == "me":
                out.append("me")
            elif i == 0 and s == self.app_id:
                out.append("{app_id}")
            elif i == 0 and self.jobs.get(s) is not None:
                out.append("{report_run_id}")
            elif i == 0 and s != "ads":
                out.append("{id}")
            else:
                out.append(s)
        return f"{method} /" + "/".join(out)

    def scope(self, segs: list[str], params: dict) -> Scope:
        if not segs:
            return Scope()
        head = segs[0]
        edge = segs[1] if len(segs) > 1 else None
        ins = edge == "insights" or (edge is None and self._expands_insights(params))
        if head == "ads" and edge == "lead_gen":
            form = self.world.by_id.get(str(params.get("id", "")))
            return Scope("leadgen", page_id=form.page.id) if isinstance(form, LeadForm) else Scope()
        obj = self.world.account(head) if head.startswith("act_") else self.world.find(head)
        if isinstance(obj, Account | Campaign | AdSet) or (isinstance(obj, Ad) and edge != "leads"):
            acct = obj if isinstance(obj, Account) else obj.account
            return Scope(
                "ads_insights" if ins else "ads_management",
                account_id=acct.account_id,
                insights=ins,
                business_id=acct.business.id if acct.business else None,
            )
        if isinstance(obj, Ad):
            return Scope("leadgen", page_id=obj.account.page.id)
        if isinstance(obj, Page):
            instagram = edge == "conversations" and str(params.get("platform") or "").lower() == "instagram"
            return Scope("pages", page_id=obj.id, ig_id=obj.ig_id if instagram else None)
        if isinstance(obj, LeadForm):
            return Scope("leadgen" if edge == "leads" else "pages", page_id=obj.page.id)
        job = self.jobs.get(head)
        if job is not None:
            acct = self.world.account(job.account_id)
            return Scope(
                "ads_insights",
                account_id=job.account_id,
                insights=True,
                business_id=acct.business.id if acct is not None and acct.business else None,
            )
        if head in self.world.ig_pages:
            return Scope("pages", page_id=self.world.ig_pages[head].id)
        parsed = leads_mod.parse_lead_id(head)
        if parsed is not None:
            kind, owner, day, _seq = parsed
            if kind != leads_mod.PAID and owner < len(self.world.pages):
                return Scope("leadgen", page_id=self.world.pages[owner].id)
            ad = self.world.ad_for_gindex(owner, day)
            if kind == leads_mod.PAID and ad is not None:
                return Scope("leadgen", page_id=ad.account.page.id)
        parsed = conv_mod.parse_id(head)
        if parsed and parsed[0] < len(self.world.pages):
            page = self.world.pages[parsed[0]]
            return Scope(
                "pages", page_id=page.id, ig_id=page.ig_id if self._is_instagram(page, parsed) else None
            )
        return Scope()

    def _is_instagram(self, page: Page, parsed: tuple[int, ...]) -> bool:
        """Whether a conversation or message id (``conversations.parse_id``) is of an Instagram conversation."""
        day, seq = parsed[1], parsed[2]
        convs = self._cached(
            ("day-convs", page.index, day), lambda: conv_mod.day_conversations(self, page, day)
        )
        return seq < len(convs) and convs[seq].platform == "instagram"

    def _expands_insights(self, params: dict) -> bool:
        """``fields=insights.level(account)...{...}`` on a node: an Insights read (seed 002, field expansion)."""
        try:
            return any(spec.name == "insights" for spec in self.fields_of(params))
        except GraphError:
            return False  # the route answers the syntax error

    def handle(self, req: Request) -> Response:
        """Serve one request; whatever happens, the answer is Meta-shaped (never a traceback)."""
        try:
            return self._handle(req)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            exc = errors.internal()
            return Response(
                exc.status,
                paging.dumps(exc.body()).encode(),
                self._headers(API_VERSION, Scope(), None, None, None),
            )

    def _handle(self, req: Request) -> Response:
        m = VERSION_RE.match(req.path)
        version = m.group(1) if m else API_VERSION
        rest = (m.group(2) or "/") if m else req.path
        if rest.startswith("/_sandbox"):
            from meta_sandbox.control import control

            return control(self, req, rest)
        segs = [s for s in rest.split("/") if s]
        if req.method == "POST" and not segs and not req.batch_item:
            from meta_sandbox.batch import handle_batch

            return handle_batch(self, req, version)
        if req.method == "POST" and len(segs) == 2 and segs[1] == "instruments":
            # The SDK's crash reporter: accept and forget (it carries no token).
            self.stats.call("POST /{app_id}/instruments")
            return self._finish({"success": True}, 200, version, Scope(), None)
        return self.graph(req, segs, version)

    def graph(self, req: Request, segs: list[str], version: str) -> Response:
        endpoint = self.endpoint_name(req.method, segs)
        self.stats.call(endpoint, req.batch_item)
        decision = self.faults.decide(endpoint, batch_item=req.batch_item)
        if decision.null_item:
            return Response(200, b"null", null=True)
        delay = decision.latency_s + self.options.latency_ms / 1000.0
        if delay > 0:
            time.sleep(delay)
        if decision.drop:
            self.stats.drop()
            return Response(0, b"", drop=True)
        scope = self.scope(segs, req.params)
        user_key = None
        leadgen_budget = None
        regain = None
        try:
            if decision.error is not None:
                raise decision.error
            token = auth.token_from(req.params, req.headers)
            principal = auth.authenticate(
                token,
                self.app_secret,
                req.params.get("appsecret_proof"),
                self.options.require_proof,
                self.options.page_token_seconds,
                req.auth_time,
            )
            user_key = principal.rate_key
            # Every Page-scoped response reports the Page's leadgen usage against its real budget
            # (not only lead reads), or clients would see 100 % and back off for nothing.
            page = self.world.by_id.get(scope.page_id) if scope.page_id else None
            if isinstance(page, Page):
                leadgen_budget = self.leadgen_budget(page)
            self.ratelimiter.charge(scope, user_key, leadgen_budget)
            lost = self.faults.lost_access(scope.account_id, scope.page_id, segs[0] if segs else "/")
            if lost is not None:
                raise lost
            ctx = objects.Ctx(self, principal, req.params, req.base_url, version)
            result = self.route(req.method, segs, ctx)
            if isinstance(result, Response):
                result.headers.update(self._headers(version, scope, user_key, leadgen_budget, None))
                return result
            return self._finish(result, 200, version, scope, user_key, leadgen_budget)
        except GraphError as exc:
            self.stats.error(exc.code)
            throttle = getattr(exc, "throttle", None)
            if throttle is not None:
                key, minutes = throttle
                if key is None:
                    kind = scope.buc or "ads_management"
                    key = (kind, scope.account_id if kind.startswith("ads") else scope.page_id)
                regain = {key: minutes}
            return self._finish(exc.body(), exc.status, version, scope, user_key, leadgen_budget, regain)
        except Exception:  # never leak a traceback to the client
            traceback.print_exc(file=sys.stderr)
            exc = errors.internal()
            self.stats.error(exc.code)
            return self._finish(exc.body(), exc.status, version, scope, user_key, leadgen_budget)

    def _headers(self, version, scope, user_key, leadgen_budget, regain) -> dict:
        trace = errors.trace_id()
        h = {
            "Date": email.utils.formatdate(self.clock.now().timestamp(), usegmt=True),  # the sandbox's now
            "facebook-api-version": version,
            "x-fb-trace-id": trace,
            "x-fb-request-id": "A" + trace[::-1] + "Q",
            "x-fb-rev": "1019283746",
            "Access-Control-Allow-Origin": "*",
            "Cache-Control": "private, no-cache, no-store, must-revalidate",
            "Pragma": "no-cache",
            "Expires": "Sat, 01 Jan 2000 00:00:00 GMT",
        }
        h.update(self.ratelimiter.headers(scope, user_key, leadgen_budget, regain))
        if regain and h.get("x-business-use-case-usage") == "{}":
            minutes = next(iter(regain.values()))
            h["x-business-use-case-usage"] = paging.dumps(
                {
                    self.app_id: [
                        {
                            "type": "ads_management",
                            "call_count": 100,
                            "total_cputime": 100,
                            "total_time": 100,
                            "estimated_time_to_regain_access": minutes,
                        }
                    ]
                }
            )
        return h

    def _finish(self, body, status, version, scope, user_key, leadgen_budget=None, regain=None) -> Response:
        data = body if isinstance(body, bytes) else paging.dumps(body).encode()
        return Response(status, data, self._headers(version, scope, user_key, leadgen_budget, regain))

    # ---- routing ------------------------------------------------------------------------------

    def resolve(self, head: str, ctx: objects.Ctx, method: str = "GET") -> tuple[str, object]:
        if head == "me":
            p = ctx.principal
            if p is not None and p.kind == "page":
                return "page", self.world.by_id[p.page_id]
            return "user", None
        if head.startswith("act_"):
            acct = self.world.account(head)
            if acct is None or not self.readable(acct):  # an account not assigned to the user: Meta's 100/33
                raise missing_object(head, method.lower())
            return "account", acct
        obj = self.world.find(head)
        if obj is not None:
            kinds = {
                Campaign: "campaign",
                AdSet: "adset",
                Ad: "ad",
                Page: "page",
                LeadForm: "form",
                Business: "business",
            }
            return kinds[type(obj)], obj
        if head in self.world.ig_pages:
            return "iguser", self.world.ig_pages[head]
        job = self.jobs.get(head)
        if job is not None:
            return "job", job
        lead = leads_mod.find_lead(self, head) if head.isdigit() else None
        if lead is not None:
            return "lead", lead
        parsed = conv_mod.parse_id(head)
        if parsed:
            conv = conv_mod.find_conversation(self, *parsed[:3])
            if conv is not None:
                if head.startswith("t_"):
                    return "conversation", conv
                visible = conv.visible(self.cutoff_ts(conv.page))
                idx = parsed[3]
                if idx < len(visible):
                    return "message", (conv, visible[idx], len(visible) - 1 - idx < conv_mod.DETAIL_LIMIT)
        raise missing_object(head, method.lower())

    def route(self, method: str, segs: list[str], ctx: objects.Ctx):
        if not segs:
            raise missing_object("/", method.lower())
        if segs[0] == "ads" and segs[1:3] == ["lead_gen", "export_csv"]:
            from meta_sandbox.export import export_csv

            return export_csv(self, ctx)
        if len(segs) > 2:
            raise GraphError(f"Unknown path components: /{'/'.join(segs[2:])}", 2500)
        kind, obj = self.resolve(segs[0], ctx, method)
        edge = segs[1] if len(segs) > 1 else None
        p = ctx.principal
        if kind == "job":
            if method != "GET":
                raise missing_object(segs[0], method.lower())
            auth.require(p, "ads_read")
            if edge is None:
                return self.job_status(obj, ctx)
            if edge == "insights":
                return self.job_results(obj, segs[0], ctx)
            raise errors.nonexisting_field(edge, "AdReportRun")
        if edge == "insights" and kind in ("account", "campaign", "adset", "ad"):
            auth.require(p, "ads_read")
            if method == "POST":
                return self.submit_job(obj, ctx)
            if method == "GET":
                return self.sync_insights(obj, segs[0], ctx)
        if method != "GET":
            raise missing_object(segs[0], method.lower())
        if kind in ("account", "campaign", "adset", "ad"):
            auth.require(p, "ads_read")
        if kind == "business":
            auth.require(p, "business_management")
        if kind in ("lead",):
            auth.require_page_token(p, obj.page.id)
            auth.require_leads(p)
        if kind in ("conversation", "message"):
            conv = obj if kind == "conversation" else obj[0]
            auth.require_conversations(p, conv.page.id, conv.platform)
            if not conv_mod.visible_to(conv, p):
                raise missing_object(segs[0], method.lower())
        if kind == "form":
            auth.require(p, "leads_retrieval")
        specs = self.fields_of(ctx.params)
        if edge is None:
            if kind == "message" and not obj[2]:
                raise GraphError(
                    f"Unsupported get request. Object with ID '{segs[0]}' does not exist, cannot be loaded due "
                    "to missing permissions, or does not support this operation. This message has been deleted: "
                    "only the 20 most recent messages of a conversation can be read.",
                    100,
                    subcode=33,
                    type_="GraphMethodException",
                )
            out = objects.render(kind, obj, specs, ctx)
            if str(ctx.params.get("metadata", "")).lower() in ("1", "true"):
                out["metadata"] = objects.metadata(kind)  # seed 002, "Metadatos del nodo"
            return out
        items_kind, items = objects.edge_items(kind, obj, edge, ctx)
        if items_kind == "conversation" and ctx.params.get("after") and self.faults.take_update():
            items = self._the_next_conversation_updated(items, kind, obj, edge, ctx)
        objects.check_fields(items_kind, specs)
        if edge == "conversations" and ctx.params.get("user_id") and not specs:
            # seed 004, "Buscar una conversación con un usuario concreto": the answer is {"data": [{"id": ...}]}
            specs = [FieldSpec("id")]
        # Items arriving while a client pages an edge (a message, a conversation, an ad, a lead): the
        # sandbox's cursor is the item's position, so the next page repeats the end of the one before
        # (README, "Faults")
        arrived = int(self.faults.profile.arrivals_between_pages)
        cut = paging.gapped_cut(
            ctx.params,
            objects.list_key(ctx, kind, obj, edge),
            objects.item_keys(items_kind, items),
            arrived=arrived,
        )
        page_limit = self.faults.max_page_rows()
        if page_limit is not None and cut.end - cut.start > page_limit:
            raise errors.reduce_data()  # on any edge: Meta's code 1 "reduce the amount of data" (HTTP 500)
        rendered = [objects.render(items_kind, it, specs, ctx) for it in items[cut.start : cut.end]]
        summary = None
        if str(ctx.params.get("summary", "")).lower() in ("true", "1", "total_count"):
            summary = {"total_count": len(items)}
        return paging.page_dict(
            ctx, rendered, cut.vstart, cut.vend, cut.vtotal, f"{segs[0]}/{edge}", ctx.params, summary
        )

    def _the_next_conversation_updated(self, items: list, kind: str, obj, edge: str, ctx) -> list:
        """Fault ``updates_between_pages`` (one of its N): before this page is served, the first conversation
        from this page on that has a message to come receives it (the clock moves on to that message), so it
        leaves its place for the head of the newest-first list, behind the client's cursor (README, "Faults")."""
        now = self.now_ts()
        for conversation in items[paging.decode_cursor(str(ctx.params["after"])) + 1 :]:
            upcoming = [m.ts for m in conversation.messages if m.ts >= now]
            if upcoming:
                self.clock.set(now=dt.datetime.fromtimestamp((min(upcoming) // 60 + 1) * 60, dt.UTC))
                return objects.edge_items(kind, obj, edge, ctx)[1]
        return items

    # ---- insights -----------------------------------------------------------------------------

    def _query_key(self, obj_id: str, params: dict, q) -> tuple:
        skip = {"after", "before", "limit", "access_token", "appsecret_proof", "summary"}
        return (
            obj_id,
            tuple(sorted((k, str(v)) for k, v in params.items() if k not in skip)),
            tuple(sorted(q.todays.items())),
        )

    def sync_insights(self, obj, obj_id: str, ctx: objects.Ctx) -> Response:
        q = insights.parse(self, obj, ctx.params)
        if self._asks_reach_by_breakdown_over_13_months_back(q):
            # Meta: "reach (and frequency, cpp) is omitted for sync queries that have breakdowns and a
            # start date more than 13 months back" (_charge_reach_breakdowns)
            q.fields = [f for f in q.fields if f not in REACH_FIELDS]
        limit = self.faults.max_rows()
        if limit is not None and q.estimated_rows() > limit:
            raise errors.too_much_data()
        key = self._query_key(obj_id, ctx.params, q)
        with self._cache_lock:
            keys = self._sync_keys.get(key)
            if keys is not None:
                self._sync_keys.move_to_end(key)
        if keys is None:
            keys = insights.row_keys(self, q)
            with self._cache_lock:
                self._sync_keys[key] = keys
                while len(self._sync_keys) > 64:
                    self._sync_keys.popitem(last=False)
        return self._rows_page(q, keys, ctx, f"{obj_id}/insights")

    def nested_insights(self, obj, obj_id: str, spec, ctx: objects.Ctx) -> dict:
        """``insights`` expanded inside ``fields`` of an ad object (seed 002, "Field Expansion": an edge
        named in ``fields`` with ``.modifier(value)`` arguments and ``{subfields}``): the same query, rows
        and paging as ``GET /<obj_id>/insights`` with those arguments as parameters; the page's ``next``
        points at that edge, as every nested edge's does."""
        params = {name: value for name, value in spec.modifiers.items()}
        if spec.subfields:
            params["fields"] = ",".join(objects.spec_text(x) for x in spec.subfields)
        if ctx.params.get("access_token"):
            params["access_token"] = ctx.params["access_token"]
        sub = objects.Ctx(ctx.sandbox, ctx.principal, params, ctx.base_url, ctx.version)
        return json.loads(self.sync_insights(obj, obj_id, sub).body)

    def _rows_page(self, q, keys, ctx, edge_path: str) -> Response:
        t0 = time.perf_counter()
        start, end = paging.window(ctx.params, len(keys))
        page_limit = self.faults.max_page_rows()
        if page_limit is not None and end - start > page_limit:
            raise errors.reduce_data()
        rows = self._page_rows(q, keys, start, end)
        body = paging.page_json(ctx, rows, start, end, len(keys), edge_path, ctx.params)
        self.stats.rows(len(rows), time.perf_counter() - t0)
        return Response(200, body)

    def _page_rows(self, q, keys, start: int, end: int) -> list[str]:
        """Rows of a page; the next page is rendered in the background while the client reads this
        one (clients page sequentially), which keeps rendering off the paging critical path."""
        with self._cache_lock:
            entry = self._prefetch.pop((id(keys), start, end), None)
        if entry is not None and entry[0] is keys:  # same listing (ids of dead lists can be reused)
            rows = entry[1].result()
        else:
            rows = insights.render_rows(self, q, keys[start:end])
        if end < len(keys):
            nxt = (id(keys), end, min(len(keys), end + (end - start)))
            with self._cache_lock:
                if nxt not in self._prefetch:
                    self._prefetch[nxt] = (
                        keys,
                        self._renderer.submit(insights.render_rows, self, q, keys[nxt[1] : nxt[2]]),
                    )
                    while len(self._prefetch) > 16:
                        self._prefetch.popitem(last=False)
        return rows

    def submit_job(self, obj, ctx: objects.Ctx) -> dict:
        q = insights.parse(self, obj, ctx.params)
        self._charge_reach_breakdowns(q, obj if isinstance(obj, Account) else obj.account)
        fate, stall = self.faults.job_fate()
        limit = self.faults.max_rows()
        if limit is not None and q.estimated_rows() > limit:
            fate = "too_much_data"
        o = self.options
        duration = o.job_base_seconds + o.job_seconds_per_1k_rows * q.estimated_rows() / 1000.0
        account = obj if isinstance(obj, Account) else obj.account
        profile = self.faults.profile
        job = Job(
            id=self.jobs.new_id(),
            account_id=account.account_id,
            query=q,
            created=time.time(),
            duration=duration,
            fate=fate,
            stall_percent=stall,
            date_start=insights.date_str(min(b[0] for b in q.buckets)),
            date_stop=insights.date_str(max(b[1] for b in q.buckets)),
            params=dict(ctx.params),
            queued=profile.queued_minutes * 60.0,
            finishing=profile.running_at_100_seconds,
            unreadable_reads=profile.unreadable_reads,
        )
        self.jobs.add(job)
        if fate == "ok" and q.estimated_rows() >= PRERENDER_MIN_ROWS:
            self.jobs.start_prerender(self, job)
        return {"report_run_id": job.id}

    def _asks_reach_by_breakdown_over_13_months_back(self, q) -> bool:
        """Whether ``q`` has breakdowns, asks a field of REACH_FIELDS and starts more than 13 months
        before the UTC date (:meth:`_charge_reach_breakdowns`)."""
        if not q.breakdowns or not set(q.fields) & set(REACH_FIELDS):
            return False
        return insights.starts_over_months_back(self, q.buckets, REACH_BREAKDOWN_MONTHS)

    def _charge_reach_breakdowns(self, q, account) -> None:
        """Meta: "Since June 10 2025, reach (and frequency, cpp) is omitted for sync queries that have
        breakdowns and a start date more than 13 months back. Async jobs are limited to 10 such requests
        per ad account per day", with the message "Reach-related metric breakdowns are unavailable due to
        rate limit threshold." (research/meta_api_facts.md section 1.4, [DOC]). The 11th such job of an
        account on a (UTC) day is refused at submission with that message; Meta documents no code for it,
        so the sandbox answers 100, and no header value (``x-Fb-Ads-Insights-Reach-Throttle``)."""
        if not self._asks_reach_by_breakdown_over_13_months_back(q):
            return
        today = self.clock.now().date()
        with self._cache_lock:
            key = (account.account_id, today)
            if self._reach_breakdown_jobs[key] >= REACH_BREAKDOWN_JOBS_PER_DAY:
                raise GraphError(
                    "(#100) Reach-related metric breakdowns are unavailable due to rate limit threshold.", 100
                )
            self._reach_breakdown_jobs[key] += 1

    def job_status(self, job: Job, ctx: objects.Ctx) -> dict:
        status, pct = job.status()
        out = {
            "id": job.id,
            "account_id": job.account_id,
            "time_ref": int(job.created),
            "async_status": status,
            "async_percent_completion": pct,
            "date_start": job.date_start,
            "date_stop": job.date_stop,
        }
        if status in ("Job Completed", "Job Failed", "Job Skipped"):
            out["time_completed"] = job.finished_at()
        out["is_running"] = status in ("Job Started", "Job Running")
        if status == "Job Failed":
            if job.fate == "too_much_data":
                err = errors.too_much_data()
            else:
                err = GraphError(
                    "Report failed. An intermittent error occurred, please retry.",
                    2,
                    subcode=1504043,
                    user_title="Report Failed",
                    user_msg="The report could not be generated. Please try again later.",
                )
            out.update(
                {
                    "error_code": err.code,
                    "error_subcode": err.subcode,
                    "error_message": err.message,
                    "error_user_title": err.user_title,
                    "error_user_msg": err.user_msg,
                }
            )
        specs = self.fields_of(ctx.params)
        if specs:
            bad = [s.name for s in specs if s.name not in JOB_FIELDS]
            if bad:
                raise errors.unknown_fields(bad)
            wanted = {s.name for s in specs} | {"id"}
            out = {k: v for k, v in out.items() if k in wanted}
        return out

    def job_results(self, job: Job, job_id: str, ctx: objects.Ctx) -> Response:
        status, _pct = job.status()
        unreadable = status != "Job Completed"
        if not unreadable and job.unreadable_reads > 0:
            with self._cache_lock:
                unreadable, job.unreadable_reads = job.unreadable_reads > 0, max(0, job.unreadable_reads - 1)
        if unreadable:
            raise errors.report_not_loadable()
        t0 = time.perf_counter()
        keys = job.ensure_keys(self)
        rendered = job.rendered
        if rendered is None:
            return self._rows_page(job.query, keys, ctx, f"{job_id}/insights")
        start, end = paging.window(ctx.params, len(keys))
        page_limit = self.faults.max_page_rows()
        if page_limit is not None and end - start > page_limit:
            raise errors.reduce_data()
        rows = rendered.rows(start, end) if end > start else []
        body = paging.page_json_bytes(ctx, rows, start, end, len(keys), f"{job_id}/insights", ctx.params)
        self.stats.rows(len(rows), time.perf_counter() - t0)
        return Response(200, body)

    # ---- control helpers ----------------------------------------------------------------------

    def set_clock(self, now: str | None = None, advance_days: float | None = None) -> dt.datetime:
        value = self.clock.set(parse_iso(now) if now else None, advance_days)
        with self._cache_lock:
            self._cache.clear()
            self._sync_keys.clear()
            self._prefetch.clear()
        return value

    def set_faults(self, spec) -> None:
        self.faults.set(load(spec))
