"""Access checks: what the connection's token may read, asked of Meta before a run spends its budget.

:func:`preflight` makes a handful of calls per run and raises one :class:`AccessCheckError` (an
``AirflowFailException``) listing every problem it found, each naming the id, the missing
permission or Page task, and the fix:

* ``GET /me/permissions``: the permissions granted to the app by the token's user, against
  :data:`REQUIRED_PERMISSIONS` for what the config extracts.
* Per Page, ``GET /<page_id>?fields=id,name,tasks,access_token`` with the user token: the id is a
  Page (else ``?metadata=1`` tells what it is, seed 002), the user manages it (a Page token comes
  back) and can perform the Page task the Conversations API needs (seed 004: MESSAGING or
  MODERATE; MESSAGING for Instagram).
* Per Page, with its Page token, what the Page edges answer: ``leadgen_forms`` (and that every
  configured form belongs to the Page) and ``conversations`` per platform, one item each.

What no call can tell: whether the app has Advanced Access. With Standard Access the conversations
edge answers normally and leaves out everyone without a role on the app (seed 004); the marts flag
that signature instead (``lead_reconciliation.first_party_starts_far_below_reported``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from meta_ads_elt.errors import (
    MetaApiError,
    MetaFatalError,
    MetaParameterError,
    MetaTokenError,
    in_context,
    is_retryable,
)

if TYPE_CHECKING:
    from meta_ads_elt.config import PipelineConfig
    from meta_ads_elt.hooks.graph_api import MetaGraphApiHook

REQUIRED_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "accounts": ("ads_read",),  # seed 002, permissions reference: Ads Insights
    # seed 003: leads_retrieval is required to read leads; Retrieving Leads (meta_api_facts.md section 5.2)
    # lists all five: Meta refuses the leads to a token lacking any (its forms still list)
    "leads": (
        "leads_retrieval",
        "ads_management",
        "pages_show_list",
        "pages_read_engagement",
        "pages_manage_ads",
    ),
    "messenger": ("pages_messaging",),
    "instagram": ("instagram_basic", "instagram_manage_messages", "pages_manage_metadata"),  # seed 004
}
"""App permissions each extraction needs."""

CONVERSATION_TASKS: dict[str, tuple[str, ...]] = {
    "messenger": ("MESSAGING", "MODERATE"),
    "instagram": ("MESSAGING",),
}
"""Seed 004: the Page token must come from a user who can perform one of these tasks on the Page."""

_NODE_TYPE = re.compile(r"on node type \((\w+)\)")


class AccessCheckError(AirflowFailException):
    """The token cannot read what the config asks for; ``problems`` lists each (id, problem and fix)."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        listed = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"Access check failed ({len(self.problems)} problem(s)); nothing was extracted:\n{listed}"
        )


@dataclass(frozen=True)
class PageAccess:
    """What the config extracts for one Page (a ``PageConfig`` fits)."""

    id: str
    leads: bool = True
    conversations: bool = True
    platforms: tuple[str, ...] = ("messenger", "instagram")
    forms: tuple[str, ...] = ()


@dataclass
class AccessReport:
    permissions: set[str] = field(default_factory=set)
    pages: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    page_problems: dict[str, list[str]] = field(default_factory=dict)


def needed_permissions(has_accounts: bool, pages: Iterable[PageAccess]) -> dict[str, str]:
    """Permission -> what needs it, for this config."""
    need: dict[str, str] = {}
    if has_accounts:
        need.update(dict.fromkeys(REQUIRED_PERMISSIONS["accounts"], "Insights and ad objects"))
    for page in pages:
        if page.leads:
            need.update(dict.fromkeys(REQUIRED_PERMISSIONS["leads"], f"the leads of Page {page.id}"))
        if page.conversations:
            for platform in page.platforms:
                need.update(
                    dict.fromkeys(
                        REQUIRED_PERMISSIONS[platform], f"the {platform} conversations of Page {page.id}"
                    )
                )
    return need


def granted_permissions(hook: MetaGraphApiHook) -> set[str]:
    """``GET /me/permissions``: the permissions the token's user granted (status ``granted``)."""
    granted: set[str] = set()
    for batch in hook.paginate("me/permissions", {"limit": 500}):
        granted.update(str(p["permission"]) for p in batch if p.get("status") == "granted")
    return granted


def node_type(hook: MetaGraphApiHook, node_id: str) -> str | None:
    """What kind of object ``node_id`` is (``?metadata=1``, seed 002), or None if Meta does not say."""
    try:
        body = hook.call("GET", (str(node_id),), {"metadata": 1, "fields": "id"})
    except MetaApiError as exc:
        found = _NODE_TYPE.search(exc.message)
        return found.group(1).lower() if found else None
    metadata = body.get("metadata") if isinstance(body, dict) else None
    return str(metadata["type"]).lower() if isinstance(metadata, dict) and metadata.get("type") else None


def token_owner(hook: MetaGraphApiHook) -> dict[str, Any]:
    """``GET /me``: the user (or, for a Page token, the Page) the token belongs to."""
    try:
        return hook.call("GET", ("me",), {"fields": "id,name"})
    except MetaApiError:
        return {}


def page_token_in_connection(hook: MetaGraphApiHook) -> str:
    me = token_owner(hook)
    who = f"Page {me.get('id')} ({me.get('name')})" if me.get("id") else "a Page"
    return (
        f"the connection '{hook.meta_conn_id}' holds the Page access token of {who}, not a user token: a "
        "Page token reads only its own Page. Store a user or system-user token of someone who manages "
        "every configured Page as the connection's password (the pipeline derives each Page's token)."
    )


def not_a_page(hook: MetaGraphApiHook, page_id: str, exc: BaseException | None = None) -> str:
    """Why ``page_id`` cannot be read as a Page, and the fix."""
    kind = node_type(hook, page_id)
    if kind and kind != "page":
        return (
            f"pages[].id {page_id} is not a Page: Meta says it is a {kind}. Use the Page's numeric id "
            "(GET /me/accounts lists the Pages the token's user manages)."
        )
    said = f" Meta said: {exc.message}" if isinstance(exc, MetaApiError) else ""
    return (
        f"Page {page_id} was not found: it does not exist or the token's user cannot see it. Check pages[].id "
        f"in the config and give the user a role on the Page (GET /me/accounts lists the Pages it manages).{said}"
    )


def check_page(
    hook: MetaGraphApiHook, page: PageAccess, report: AccessReport, missing: frozenset[str] = frozenset()
) -> None:
    """The per-Page checks of :func:`preflight` (problems appended to ``report``); edges needing a
    permission in ``missing`` (already reported) are not probed."""
    page_id = str(page.id)
    try:
        node = hook.call("GET", (page_id,), {"fields": "id,name,tasks,access_token"}, scope=page_id)
    except MetaTokenError:
        raise
    except MetaParameterError as exc:
        if "nonexisting field (access_token)" in exc.message:
            report.problems.append(page_token_in_connection(hook))
        else:
            report.problems.append(not_a_page(hook, page_id, exc))
        return
    except MetaFatalError as exc:
        report.problems.append(f"Page {page_id}: {exc.message}")
        return
    tasks = {str(t).upper() for t in node.get("tasks") or ()}
    report.pages[page_id] = {"name": node.get("name"), "tasks": sorted(tasks)}
    if not node.get("access_token"):
        report.problems.append(
            f"Page {page_id} ({node.get('name')}): Meta gives no Page access token to the token's user, who "
            "does not manage the Page. Give the user a role on the Page (Page settings > Page access), "
            "then issue a new token."
        )
        return
    no_task = set()
    if page.conversations:
        no_task = {p for p in page.platforms if tasks and not tasks & set(CONVERSATION_TASKS[p])}
        if no_task:
            need = " or ".join(CONVERSATION_TASKS["messenger" if "messenger" in no_task else "instagram"])
            report.problems.append(
                f"Page {page_id} ({node.get('name')}): the token's user can perform {sorted(tasks)}, but "
                f"{' and '.join(sorted(no_task))} conversations need the {need} task (seed 004). Give the user "
                "the Messages task on the Page (Page settings > Page access) or set "
                f"pages[].conversations: false for Page {page_id}."
            )
    page_hook = hook.for_page(page_id)
    if page.leads and not missing & set(REQUIRED_PERMISSIONS["leads"]):
        _probe(
            page_hook,
            f"{page_id}/leadgen_forms",
            {"fields": "id", "limit": 100},
            page_id,
            "leads_retrieval",
            report,
            forms=page.forms,
            user_hook=hook,
        )
    if page.conversations:
        for platform in page.platforms:
            if platform in no_task or missing & set(REQUIRED_PERMISSIONS[platform]):
                continue  # already reported
            _probe(
                page_hook,
                f"{page_id}/conversations",
                {"platform": platform, "fields": "id", "limit": 1},
                page_id,
                " and ".join(REQUIRED_PERMISSIONS[platform]),
                report,
            )


def _probe(
    page_hook: MetaGraphApiHook,
    path: str,
    params: dict,
    page_id: str,
    permission: str,
    report: AccessReport,
    *,
    forms: Sequence[str] = (),
    user_hook: MetaGraphApiHook | None = None,
) -> None:
    from meta_ads_elt.operators._pages import page_error

    try:
        body = page_hook.call("GET", path, params, scope=page_id)
    except MetaFatalError as exc:
        report.problems.append(str(page_error(exc, page_id, permission)))
        return
    if forms and user_hook is not None:
        listed = {str(f.get("id")) for f in body.get("data") or ()}
        # the listing's first page: Pages rarely have more than 100 forms; a form beyond it is looked up
        for form_id in forms:
            if str(form_id) not in listed:
                problem = form_of_another_page(user_hook, str(form_id), page_id)
                if problem:
                    report.problems.append(problem)


def form_of_another_page(hook: MetaGraphApiHook, form_id: str, page_id: str) -> str | None:
    """None if ``form_id`` is a lead form of ``page_id``; else what it is, and the fix. An error still
    retryable after the hook's retries is raised (naming the form), never worded as "not a lead form": a
    retry of the task can read it, and a config problem would fail it for good."""
    try:
        body = hook.call("GET", (form_id,), {"fields": "id,page"})
    except MetaApiError as exc:
        if is_retryable(exc):
            raise in_context(
                exc,
                f"pages[{page_id}].forms: form {form_id} could not be looked up (still failing after "
                "the hook's retries)",
            ) from exc
        kind = node_type(hook, form_id)
        what = f"a {kind}" if kind else "not readable with this token"
        return f"pages[{page_id}].forms: {form_id} is not a lead form ({what}). List only ids from GET /{page_id}/leadgen_forms."
    owner = str((body.get("page") or {}).get("id") or "")
    if owner == page_id:
        return None
    return (
        f"pages[{page_id}].forms: lead form {form_id} belongs to Page {owner or '(unknown)'}, not to Page {page_id}. "
        f"Move it under the Page {owner} entry of the config (or remove it)."
    )


def preflight(
    hook: MetaGraphApiHook, has_accounts: bool, pages: Iterable[PageAccess], *, isolate_pages: bool = False
) -> AccessReport:
    """Check the token against what the config extracts; raise :class:`AccessCheckError` listing every problem.

    With ``isolate_pages``, problems of single Pages (not readable, a missing Page task, a foreign form)
    do not fail the check while something else is extractable: they are logged, each with its fix, and
    returned in ``page_problems``; those Pages' own tasks then fail and the run's final check names them
    (failure isolation, :mod:`meta_ads_elt.failures`). Token-wide problems always fail the check.
    """
    pages = list(pages)
    report = AccessReport()
    try:
        report.permissions = granted_permissions(hook)
    except MetaParameterError as exc:
        if "nonexisting field (permissions)" in exc.message:
            raise AccessCheckError([page_token_in_connection(hook)]) from None
        raise
    missing = set()
    for permission, why in needed_permissions(has_accounts, pages).items():
        if permission not in report.permissions:
            missing.add(permission)
            report.problems.append(
                f"permission '{permission}' is not granted to the token (needed for {why}). Add it to the app's "
                "login / system-user permissions, have the user grant it, then store the new token."
            )
    for page in pages:
        before = len(report.problems)
        check_page(hook, page, report, frozenset(missing))
        if len(report.problems) > before:
            report.page_problems[page.id] = report.problems[before:]
    if not report.problems:
        return report
    only_pages = sum(len(v) for v in report.page_problems.values()) == len(report.problems)
    something_left = has_accounts or len(report.page_problems) < len(pages)
    if isolate_pages and only_pages and something_left:
        import logging

        for page_id, problems in report.page_problems.items():
            for problem in problems:
                logging.getLogger(__name__).error(
                    "Page %s is left out of this run (its tasks will fail; the other accounts and Pages are "
                    "extracted and published): %s",
                    page_id,
                    problem,
                )
        return report
    raise AccessCheckError(report.problems)


def check_config(config: PipelineConfig) -> dict[str, Any]:
    """:func:`preflight` for a ``PipelineConfig`` through its connection; a summary for the task's XCom."""
    from meta_ads_elt.hooks.graph_api import MetaGraphApiHook

    hook = MetaGraphApiHook(meta_conn_id=config.meta_conn_id)
    pages = [
        PageAccess(p.id, p.leads, p.conversations, tuple(p.platforms), tuple(p.forms))
        for p in config.listed_pages
    ]
    d = config.page_discovery
    if d is not None:
        # the Pages are known after discovery: check the permissions their settings need (Page tasks are
        # checked by each Page's extraction)
        need = needed_permissions(
            False, [PageAccess("(discovered)", d.leads, d.conversations, tuple(d.platforms))]
        )
        granted = granted_permissions(hook)
        missing = [
            f"permission '{perm}' is not granted to the token (needed for {why}). Add it to the app's "
            "login / system-user permissions, have the user grant it, then store the new token."
            for perm, why in need.items()
            if perm not in granted
        ]
        if missing:
            raise AccessCheckError(missing)
    report = preflight(hook, bool(config.accounts), pages, isolate_pages=True)
    return {
        "permissions": sorted(report.permissions),
        "pages": report.pages,
        "page_problems": report.page_problems,
    }
