"""Graph nodes and list edges: field selection, defaults, nested expansion, permissions.

Every node kind has a set of known fields (anything else -> ``(#100) Unknown fields``), default
fields (served when ``fields`` is absent) and list edges that can be read as ``/<id>/<edge>`` or
expanded inside ``fields`` (``messages.limit(5){id,from}``), both paged the same way.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

from meta_sandbox import auth, conversations, leads, paging, rng
from meta_sandbox.clock import from_day_number, graph_time
from meta_sandbox.errors import GraphError, nonexisting_field, param_error, unknown_fields
from meta_sandbox.params import FieldSpec, json_param
from meta_sandbox.world import EFFECTIVE_STATUSES, Account, Ad, AdSet, Business, Campaign, LeadForm, Page


@dataclasses.dataclass
class Ctx:
    sandbox: object
    principal: auth.Principal | None
    params: dict
    base_url: str
    version: str


def _day_time(day: int, hour: int = 9) -> str:
    d = from_day_number(day)
    return dt.datetime(d.year, d.month, d.day, hour, tzinfo=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


# ---- simple fields per kind ---------------------------------------------------------------------


def _account_fields(a: Account, ctx: Ctx) -> dict:
    offset = a.tz.utcoffset(ctx.sandbox.clock.now().replace(tzinfo=None)).total_seconds() / 3600.0
    return {
        "id": a.id,
        "account_id": a.account_id,
        "name": a.name,
        "currency": a.currency,
        "timezone_name": a.timezone_name,
        "timezone_offset_hours_utc": offset,
        "timezone_id": {"America/Los_Angeles": 1, "Asia/Kolkata": 71, "Europe/Berlin": 47}.get(
            a.timezone_name, 0
        ),
        "account_status": a.account_status,
        "disable_reason": 0 if a.account_status == 1 else 1,
        "business_name": a.name.split(" (")[0],
        "created_time": _day_time(a.created_day),
        "is_personal": 0,
        "age": 1000.0,
        "business_country_code": {"USD": "US", "INR": "IN", "EUR": "DE", "GBP": "GB"}.get(a.currency, "US"),
        "spend_cap": "0",
        "min_daily_budget": 100,
        "owner": ctx.sandbox.world.user_id,
        "business": {"id": a.business.id, "name": a.business.name} if a.business else None,
    }


def _business_fields(b: Business, ctx: Ctx) -> dict:
    return {
        "id": b.id,
        "name": b.name,
        "created_time": _day_time(b.created_day),
        "link": f"https://business.facebook.com/settings/?business_id={b.id}",
        "verification_status": "verified",
        "timezone_id": 1,
        "is_hidden": False,
    }


def _status_fields(obj, created_day: int, ctx: Ctx) -> dict:
    """``status`` / ``configured_status`` (the object's own setting), ``effective_status`` (with its
    parents'), and ``updated_time`` (the day of the last status change), as of the clock."""
    today = ctx.sandbox.today(obj.account)
    configured = obj.configured_status(today) or "ACTIVE"
    changed = obj.schedule.changed_on(today) if obj.schedule.status(today) else created_day
    return {
        "status": configured,
        "configured_status": configured,
        "effective_status": obj.effective_status(today) or configured,
        "created_time": _day_time(created_day),
        "updated_time": _day_time(max(created_day, changed), 10),
    }


def _campaign_fields(c: Campaign, ctx: Ctx) -> dict:
    created = c.schedule.start if c.generation is not None else c.account.created_day + 30 + c.index
    return {
        "id": c.id,
        "name": c.name,
        "account_id": c.account.account_id,
        "objective": c.objective,
        "buying_type": "AUCTION",
        "start_time": _day_time(created),
        **_status_fields(c, created, ctx),
        "special_ad_categories": [],
        "bid_strategy": "LOWEST_COST_WITHOUT_CAP",
    }


def _adset_fields(s: AdSet, ctx: Ctx) -> dict:
    created = (
        s.schedule.start
        if s.campaign.generation is not None
        else s.account.created_day + 30 + s.campaign.index
    )
    promoted = {"page_id": s.account.page.id}
    return {
        "id": s.id,
        "name": s.name,
        "account_id": s.account.account_id,
        "campaign_id": s.campaign.id,
        "campaign": {"id": s.campaign.id},
        **_status_fields(s, created, ctx),
        "optimization_goal": s.optimization_goal,
        "billing_event": "IMPRESSIONS",
        "destination_type": s.destination_type,
        "daily_budget": str(s.daily_budget_cents),
        "promoted_object": promoted,
        "start_time": _day_time(created),
        "bid_strategy": "LOWEST_COST_WITHOUT_CAP",
    }


def _ad_fields(ad: Ad, ctx: Ctx) -> dict:
    created = (
        ad.schedule.start
        if ad.campaign.generation is not None
        else ad.account.created_day + 31 + ad.campaign.index
    )
    out = {
        "id": ad.id,
        "name": ad.name,
        "account_id": ad.account.account_id,
        "campaign_id": ad.campaign.id,
        "adset_id": ad.adset.id,
        "campaign": {"id": ad.campaign.id},
        "adset": {"id": ad.adset.id},
        **_status_fields(ad, created, ctx),
        "creative": {"id": ad.creative_id},
    }
    return out


def _page_fields(p: Page, ctx: Ctx) -> dict:
    out = {
        "id": p.id,
        "name": p.name,
        "username": p.username,
        "category": "Local business",
        "category_list": [{"id": "2500", "name": "Local business"}],
        "link": f"https://www.facebook.com/{p.username}",
        "fan_count": 1000 + p.index * 137,
        "tasks": [t for t in auth.ALL_TASKS if ctx.principal is None or t in ctx.principal.tasks],
        "instagram_business_account": {"id": p.ig_id},
        "connected_instagram_account": {"id": p.ig_id},
        "verification_status": "not_verified",
    }
    return out


def _ig_fields(p: Page, ctx: Ctx) -> dict:
    return {
        "id": p.ig_id,
        "username": p.ig_username,
        "name": p.name,
        "followers_count": 500 + 31 * p.index,
        "profile_picture_url": f"https://example.invalid/ig/{p.ig_id}.jpg",
    }


def _form_fields(f: LeadForm, ctx: Ctx) -> dict:
    all_leads = ctx.sandbox.page_leads(f.page)
    mine = [lead for lead in all_leads if lead.form is f]
    return {
        "id": f.id,
        "name": f.name,
        "status": "ACTIVE",
        "locale": f.locale,
        "created_time": _day_time(f.created_day),
        "leads_count": len(mine),
        "organic_leads_count": sum(1 for lead in mine if lead.is_organic),
        "expired_leads_count": 0,
        "page": {"id": f.page.id, "name": f.page.name},
        "page_id": f.page.id,
        "questions": [
            {"key": "full_name", "label": "Full name", "type": "FULL_NAME", "id": f"{f.id}1"},
            {"key": "email", "label": "Email", "type": "EMAIL", "id": f"{f.id}2"},
            {"key": "phone_number", "label": "Phone number", "type": "PHONE", "id": f"{f.id}3"},
        ]
        + [
            {
                "key": q["key"],
                "label": q["label"],
                "type": q["type"],
                "id": f"{f.id}{4 + i}",
                **(
                    {"options": [{"key": o.lower().replace(" ", "_"), "value": o} for o in q["options"]]}
                    if q["options"]
                    else {}
                ),
            }
            for i, q in enumerate(f.questions)
        ],
        "privacy_policy_url": f"https://example.invalid/{f.page.username}/privacy",
        "follow_up_action_url": f"https://example.invalid/{f.page.username}/thanks",
        "allow_organic_lead": True,
        "block_display_for_non_targeted_viewer": False,
        "is_optimized_for_quality": False,
        "question_page_custom_headline": "Tell us about you",
        "tracking_parameters": [],
    }


@dataclasses.dataclass(frozen=True)
class Kind:
    name: str  # SDK-ish node type name, used in errors
    simple: object  # callable(obj, ctx) -> dict
    known: frozenset
    default: tuple
    edges: tuple = ()


KINDS = {
    "user": Kind(
        "User",
        lambda u, ctx: {"id": ctx.sandbox.world.user_id, "name": ctx.sandbox.world.user_name},
        frozenset({"id", "name", "email", "first_name", "last_name"}),
        ("id", "name"),
        ("adaccounts", "accounts", "permissions"),
    ),
    "permission": Kind(
        "Permission",
        lambda perm, ctx: perm,
        frozenset({"permission", "status"}),
        ("permission", "status"),
        (),
    ),
    "account": Kind(
        "AdAccount",
        _account_fields,
        frozenset(
            {
                "id",
                "account_id",
                "name",
                "currency",
                "timezone_name",
                "timezone_offset_hours_utc",
                "timezone_id",
                "account_status",
                "disable_reason",
                "business_name",
                "created_time",
                "is_personal",
                "age",
                "business_country_code",
                "spend_cap",
                "min_daily_budget",
                "owner",
                "business",
            }
        ),
        ("account_id", "id"),
        ("campaigns", "adsets", "ads", "promote_pages"),
    ),
    "business": Kind(
        "Business",
        _business_fields,
        frozenset({"id", "name", "created_time", "link", "verification_status", "timezone_id", "is_hidden"}),
        ("id", "name"),
        ("owned_ad_accounts", "owned_pages", "client_ad_accounts", "client_pages"),
    ),
    "campaign": Kind(
        "Campaign",
        _campaign_fields,
        frozenset(
            {
                "id",
                "name",
                "account_id",
                "objective",
                "status",
                "effective_status",
                "configured_status",
                "buying_type",
                "created_time",
                "updated_time",
                "start_time",
                "special_ad_categories",
                "bid_strategy",
                "stop_time",
                "daily_budget",
                "lifetime_budget",
            }
        ),
        ("id",),
        ("adsets", "ads"),
    ),
    "adset": Kind(
        "AdSet",
        _adset_fields,
        frozenset(
            {
                "id",
                "name",
                "account_id",
                "campaign_id",
                "campaign",
                "status",
                "effective_status",
                "configured_status",
                "optimization_goal",
                "billing_event",
                "destination_type",
                "daily_budget",
                "promoted_object",
                "created_time",
                "updated_time",
                "start_time",
                "bid_strategy",
                "end_time",
                "lifetime_budget",
                "targeting",
                "bid_amount",
            }
        ),
        ("id",),
        ("ads",),
    ),
    "ad": Kind(
        "Ad",
        _ad_fields,
        frozenset(
            {
                "id",
                "name",
                "account_id",
                "campaign_id",
                "adset_id",
                "campaign",
                "adset",
                "status",
                "effective_status",
                "configured_status",
                "created_time",
                "updated_time",
                "creative",
                "tracking_specs",
                "conversion_specs",
                "bid_amount",
            }
        ),
        ("id",),
        ("leads",),
    ),
    "page": Kind(
        "Page",
        _page_fields,
        frozenset(
            {
                "id",
                "name",
                "username",
                "category",
                "category_list",
                "link",
                "fan_count",
                "tasks",
                "instagram_business_account",
                "connected_instagram_account",
                "verification_status",
                "access_token",
                "about",
                "emails",
                "phone",
                "website",
            }
        ),
        ("name", "id"),
        ("leadgen_forms", "conversations"),
    ),
    "iguser": Kind(
        "IGUser",
        _ig_fields,
        frozenset({"id", "username", "name", "followers_count", "profile_picture_url", "biography"}),
        ("id",),
        (),
    ),
    "form": Kind(
        "LeadgenForm",
        _form_fields,
        frozenset(
            {
                "id",
                "name",
                "status",
                "locale",
                "created_time",
                "leads_count",
                "organic_leads_count",
                "expired_leads_count",
                "page",
                "page_id",
                "questions",
                "privacy_policy_url",
                "follow_up_action_url",
                "allow_organic_lead",
                "block_display_for_non_targeted_viewer",
                "is_optimized_for_quality",
                "question_page_custom_headline",
                "tracking_parameters",
                "context_card",
                "legal_content",
                "thank_you_page",
                "creator",
                "creator_id",
            }
        ),
        ("id", "locale", "name", "status"),
        ("leads",),
    ),
    "lead": Kind("Lead", None, frozenset(leads.LEAD_FIELDS), tuple(leads.LEAD_DEFAULT_FIELDS), ()),
    "conversation": Kind(
        "UnifiedThread",
        None,
        frozenset(conversations.CONVERSATION_FIELDS),
        tuple(conversations.CONVERSATION_DEFAULT_FIELDS),
        ("messages",),
    ),
    "message": Kind(
        "Message",
        None,
        frozenset(conversations.MESSAGE_FIELDS),
        tuple(conversations.MESSAGE_DEFAULT_FIELDS),
        (),
    ),
}


INSIGHTS_NODES = ("account", "campaign", "adset", "ad")
"""Node kinds whose ``insights`` edge can also be expanded inside ``fields`` (seed 002, field expansion)."""


def metadata(kind: str) -> dict:
    """``?metadata=1`` (seed 002): the node's type and the fields it supports."""
    k = KINDS[kind]
    return {"type": k.name.lower(), "fields": [{"name": name} for name in sorted(k.known)]}


def check_fields(kind: str, specs: list[FieldSpec]) -> None:
    k = KINDS[kind]
    bad = [
        s.name
        for s in specs
        if s.name not in k.known
        and s.name not in k.edges
        and not (s.name == "insights" and kind in INSIGHTS_NODES)
    ]
    if bad:
        raise unknown_fields(bad)


def specs_or_default(kind: str, specs: list[FieldSpec]) -> list[FieldSpec]:
    return specs or [FieldSpec(n) for n in KINDS[kind].default]


# ---- rendering ----------------------------------------------------------------------------------


def render(kind: str, obj, specs: list[FieldSpec], ctx: Ctx, nested_path: str | None = None) -> dict:
    """A node with the requested fields; edges named in ``fields`` are expanded (one page)."""
    check_fields(kind, specs)
    specs = specs_or_default(kind, specs)
    k = KINDS[kind]
    names = [s.name for s in specs if s.name not in k.edges]
    if kind == "lead":
        out = leads.render(obj, names, graph_time, leads.ad_ids_visible(obj, ctx.principal))
    elif kind == "conversation":
        out = _render_conversation(obj, names, ctx)
    elif kind == "message":
        conv, msg, detailed = obj
        out = conversations.render_message(conv, msg, names, graph_time, detailed)
    else:
        full = k.simple(obj, ctx)
        out = {}
        for n in names:
            if n == "access_token" and kind == "page":
                out[n] = page_access_token(obj, ctx)
            elif n in full:
                out[n] = full[n]
        if "id" not in out and "id" in full:
            out["id"] = full["id"]
    for s in specs:
        if s.name == "insights" and kind in INSIGHTS_NODES:
            page = ctx.sandbox.nested_insights(obj, out.get("id") or node_id(kind, obj), s, ctx)
            if page is not None:
                out["insights"] = page
        elif s.name in k.edges:
            items_kind, items = edge_items(kind, obj, s.name, ctx, nested=True)
            oid = out.get("id") or node_id(kind, obj)
            cut = paging.gapped_cut(
                {},
                list_key(ctx, kind, obj, s.name),
                item_keys(items_kind, items),
                s.limit or paging.DEFAULT_LIMIT,
            )
            sub = s.subfields or []
            rendered = [render(items_kind, it, sub, ctx) for it in items[cut.start : cut.end]]
            query = {"access_token": ctx.params.get("access_token")} if ctx.params.get("access_token") else {}
            if s.limit:
                query["limit"] = s.limit
            if sub:
                query["fields"] = ",".join(spec_text(x) for x in sub)
            out[s.name] = paging.page_dict(
                ctx, rendered, cut.vstart, cut.vend, cut.vtotal, f"{oid}/{s.name}", query
            )
    return out


def spec_text(s: FieldSpec) -> str:
    text = s.name + "".join(f".{k}({v})" for k, v in s.modifiers.items())
    if s.subfields:
        text += "{" + ",".join(spec_text(x) for x in s.subfields) + "}"
    return text


UNGAPPED_EDGES = frozenset({"messages", "permissions"})
"""Lists without hidden entries: a conversation's messages (the Page takes part in the thread and sees
every message; the 20-message rule limits details, not visibility) and the token's own permissions."""


def list_key(ctx: Ctx, kind: str, obj, edge: str) -> int | None:
    """The key of the hidden entries of ``obj``'s ``edge`` (``paging.gapped_cut``), the same whether the edge
    is read as a route or expanded in a node's fields; None when the sandbox plays no hidden entries."""
    sandbox = ctx.sandbox
    if not sandbox.options.paging_gaps or edge in UNGAPPED_EDGES:
        return None
    return rng.key(sandbox.options.seed, "paging-gaps", node_id(kind, obj), edge)


def item_keys(kind: str, items: list) -> list[str]:
    """A stable key per item of a list edge: its id (its position when it has none)."""
    return [(None if isinstance(it, dict) else node_id(kind, it)) or str(i) for i, it in enumerate(items)]


def node_id(kind: str, obj) -> str:
    if kind == "lead":
        return obj.id
    if kind == "conversation":
        return obj.id
    if kind == "iguser":
        return obj.ig_id
    return getattr(obj, "id", "")


def _render_conversation(conv, names: list[str], ctx: Ctx) -> dict:
    cutoff = ctx.sandbox.cutoff_ts(conv.page)
    visible = conv.visible(cutoff)
    out: dict = {}
    for n in names:
        if n == "id":
            out["id"] = conv.id
        elif n == "updated_time":
            out["updated_time"] = graph_time(visible[-1].ts)
        elif n == "message_count":
            out["message_count"] = len(visible)
        elif n == "unread_count":
            out["unread_count"] = 0
        elif n in ("participants", "senders"):
            out[n] = {"data": [conversations.participant(conv, True), conversations.participant(conv, False)]}
        elif n == "former_participants":
            out[n] = {"data": []}
        elif n == "snippet":
            out[n] = visible[-1].text[:100]
        elif n == "can_reply" or n == "is_subscribed":
            out[n] = True
        elif n == "folder":
            out[n] = "inbox"
        elif n == "link":
            out[n] = f"/{conv.page.username}/inbox/{conv.id}"
        elif n == "name":
            out[n] = conv.user_name
    out.setdefault("id", conv.id)
    return out


def page_access_token(page: Page, ctx: Ctx) -> str:
    """Only a user token may read a Page token; it inherits that user token's permissions."""
    p = ctx.principal
    if p is None or p.kind != "user":
        raise GraphError(
            "(#100) Tried accessing nonexisting field (access_token) on node type (Page) with a "
            "Page access token",
            100,
        )
    life = ctx.sandbox.options.page_token_seconds
    return auth.page_token(ctx.sandbox.app_secret, page.id, p.token, time.time() if life else None)


# ---- edges --------------------------------------------------------------------------------------


def _edge_statuses(params: dict, level: str) -> set[str]:
    """The effective statuses a list edge returns. Meta's "Manage your ad object's status": without a
    status filter only live objects (not ARCHIVED, not DELETED); ARCHIVED ones when the filter names
    ARCHIVED; DELETED objects are never returned as a connection, and asking for them is an error."""
    allowed = EFFECTIVE_STATUSES[level]
    wanted: set[str] | None = None
    statuses = json_param(params, "effective_status")
    if statuses not in (None, "", []):
        values = statuses if isinstance(statuses, list) else [statuses]
        for i, v in enumerate(values):
            if str(v) not in allowed:
                raise param_error(
                    f"Param effective_status[{i}] must be one of {{{', '.join(allowed)}}}; got {v!r}"
                )
        wanted = {str(v) for v in values}
    flt = json_param(params, "filtering")
    if isinstance(flt, list):
        for f in flt:
            if not (isinstance(f, dict) and str(f.get("field", "")).endswith("effective_status")):
                continue
            vals = f.get("value") if isinstance(f.get("value"), list) else [f.get("value")]
            for i, v in enumerate(vals):
                if str(v) not in allowed:
                    raise param_error(
                        f"Filtering field {f.get('field')}: value[{i}] {v!r} is not a valid "
                        f"effective_status; it must be one of {{{', '.join(allowed)}}}",
                        1487300,
                    )
            op = str(f.get("operator", "IN")).upper()
            chosen = (
                {str(v) for v in vals}
                if op in ("IN", "EQUAL", "ANY")
                else set(allowed) - {str(v) for v in vals}
            )
            wanted = chosen if wanted is None else wanted & chosen
    if wanted is None:
        return set(allowed) - {"ARCHIVED", "DELETED"}
    if "DELETED" in wanted:
        raise param_error(
            "Deleted objects cannot be read as a connection of another object: remove DELETED from the "
            "effective_status filter and read deleted objects by their id (GET /<id>)"
        )
    return wanted


def edge_items(kind: str, obj, edge: str, ctx: Ctx, nested: bool = False) -> tuple[str, list]:
    """(item kind, items) of a list edge, after permission checks and edge params."""
    sb = ctx.sandbox
    p = ctx.principal
    params = {} if nested else ctx.params
    if kind == "user":
        if edge == "adaccounts":  # the ad accounts the user is assigned to (disabled ones included)
            auth.require(p, "ads_read")
            return "account", [a for a in sb.world.accounts if sb.readable(a)]
        if edge == "accounts":
            if p.kind != "user":
                raise nonexisting_field("accounts", "Page")
            auth.require(p, "pages_show_list")
            return "page", [pg for pg in sb.world.pages if pg.account is None or sb.managed(pg.account)]
        if edge == "permissions":
            # GET /me/permissions: every permission the app asked for, granted or declined
            return "permission", [
                {"permission": perm, "status": "granted" if perm in p.permissions else "declined"}
                for perm in sorted(auth.ALL_PERMISSIONS)
            ]
    if kind in ("account", "campaign", "adset") and edge in ("campaigns", "adsets", "ads"):
        auth.require(p, "ads_read")
        level = {"campaigns": "campaign", "adsets": "adset", "ads": "ad"}[edge]
        statuses = _edge_statuses(params, level)
        account = obj if kind == "account" else obj.account
        start, today = sb.window(account)
        camps = (
            sb.world.campaigns_of(obj, start, today)
            if kind == "account"
            else [obj]
            if kind == "campaign"
            else []
        )
        sets = [s for c in camps for s in c.adsets] if kind != "adset" else [obj]
        if edge == "campaigns" and kind == "account":
            items = list(camps)
        elif edge == "adsets" and kind in ("account", "campaign"):
            items = sets
        elif edge == "ads":
            items = [ad for s in sets for ad in s.ads]
        else:
            raise nonexisting_field(edge, KINDS[kind].name)
        return level, [o for o in items if o.effective_status(today) in statuses]
    if kind == "business" and edge in (
        "owned_ad_accounts",
        "owned_pages",
        "client_ad_accounts",
        "client_pages",
    ):
        # Business Manager lists every account the business owns (or manages for a client), assigned to the
        # token's user or not; an unassigned one answers 100/33 when read (Marketing API, "Business Manager")
        auth.require(p, "business_management")
        if edge.startswith("owned_"):
            accounts = [a for a in sb.world.accounts if a.business is obj and sb.managed(a)]
        else:
            accounts = [a for a in sb.world.accounts if a.managed_by is obj and sb.managed(a)]
        if edge.endswith("_ad_accounts"):
            return "account", accounts
        return "page", [a.page for a in accounts if a.page is not None]
    if kind == "account" and edge == "promote_pages":
        auth.require(p, "ads_read")
        return "page", obj.promote_pages
    if kind == "page" and edge == "leadgen_forms":
        auth.require_page_token(p, obj.id)
        auth.require(p, "leads_retrieval")
        return "form", list(obj.forms)
    if kind == "page" and edge == "conversations":
        auth.require_page_token(p, obj.id)
        platform = str(params.get("platform") or "messenger").lower()
        if platform not in ("messenger", "instagram"):
            raise param_error("Param platform must be one of {MESSENGER, INSTAGRAM}")
        auth.require_conversations(p, obj.id, platform)
        # Standard Access: the edge answers normally and leaves out people without an app role (seed 004)
        convs = [
            c for c in sb.page_conversations(obj) if c.platform == platform and conversations.visible_to(c, p)
        ]
        user_id = params.get("user_id")
        if user_id:
            convs = [c for c in convs if c.user_id == str(user_id)]
        if sb.faults.profile.conversations_order == "pairs_swapped":
            for i in range(0, len(convs) - 1, 2):
                convs[i], convs[i + 1] = convs[i + 1], convs[i]
        return "conversation", convs
    if kind == "conversation" and edge == "messages":
        auth.require_conversations(p, obj.page.id, obj.platform)
        visible = obj.visible(sb.cutoff_ts(obj.page))
        newest_first = list(reversed(visible))
        return "message", [(obj, m, i < conversations.DETAIL_LIMIT) for i, m in enumerate(newest_first)]
    if edge == "leads" and kind in ("form", "ad"):
        page = obj.page if kind == "form" else obj.account.page
        auth.require_page_token(p, page.id)
        auth.require_leads(p)
        items = sb.page_leads(page)
        items = [lead for lead in items if (lead.form is obj if kind == "form" else lead.ad is obj)]
        return "lead", filter_leads(items, params)
    raise nonexisting_field(edge, KINDS[kind].name)


_OPS = {
    "LESS_THAN": lambda a, b: a < b,
    "GREATER_THAN": lambda a, b: a > b,
    "GREATER_THAN_OR_EQUAL": lambda a, b: a >= b,
}
"""The operators of a leads ``time_created`` filter, and only those (seed 003: "El parámetro operator tiene
uno de los siguientes valores: LESS_THAN ... GREATER_THAN ... GREATER_THAN_OR_EQUAL")."""


def filter_leads(items: list, params: dict) -> list:
    flt = json_param(params, "filtering")
    if not flt:
        return items
    if not isinstance(flt, list):
        raise param_error("Param filtering must be a list of {field, operator, value}")
    for f in flt:
        if not isinstance(f, dict) or f.get("field") != "time_created":
            raise param_error(
                f"Filtering field {f.get('field') if isinstance(f, dict) else f} is invalid. "
                "Leads can be filtered on time_created",
                1487300,
            )
        op = str(f.get("operator", "")).upper()
        if op not in _OPS:
            raise param_error(f"Filtering operator {op} is invalid: it must be one of {', '.join(_OPS)}")
        try:
            value = int(float(f.get("value")))
        except (TypeError, ValueError) as exc:
            raise param_error("Each timestamp must be a Unix timestamp") from exc
        cmp = _OPS[op]
        items = [lead for lead in items if cmp(lead.created_ts, value)]
    return items
