"""Discovery: the ad accounts and Pages a ``discover:`` config means, resolved on every run.

``accounts: {discover: [...]}`` and ``pages: {discover: [...]}`` (``meta_ads_elt.config``) name sources;
:func:`discover` asks Meta for them through the hook (real HTTP, governor, retries) and decides, per id,
what this run does with it:

* sources: ``me`` (``GET /me/adaccounts``; Pages: ``GET /me/accounts``), ``business:<id>:owned``
  (``/<id>/owned_ad_accounts``, ``/<id>/owned_pages``), ``business:<id>:client``
  (``/<id>/client_ad_accounts``, ``/<id>/client_pages``) and, for Pages, ``promoted`` (each extracted
  account's ``promote_pages``; an account Meta refuses, e.g. one the user is not assigned to (100/33),
  is a warning, but a refused token, ``appsecret_proof`` or a permission Meta names fails at once);
* Business edges list accounts the token's user is not assigned to (Meta answers those with code 100,
  subcode 33): an account a Business lists that ``/me/adaccounts`` does not is ``unreadable``, with the
  fix, instead of failing an extraction task (one ``/me/adaccounts`` read, 100 accounts a page);
* the promoted Pages come with the account listing (field expansion ``promote_pages.limit(100){id,name}``),
  so discovery costs a few paged calls in all, not calls per account; an account promoting more Pages
  than that first page (the expansion carries ``paging.next``) has the rest read from its
  ``promote_pages`` edge after that page's cursor: one more paged read for that account only. Accounts
  listed in the config (no expansion) are asked in one Graph batch, each continued the same way;
* ``include`` / ``exclude`` by id or shell-style name pattern (case-insensitive), then
  ``account_status`` and ``currency``; every filter entry that matches nothing is a warning naming it;
* **arrivals**: an id with no data in the lake yet is ``arrived`` and extracted for
  ``arrival_history_days`` (default: the lookback) instead of the lookback;
* **departures**: an id the previous discovery (the newest ``discovered_*`` partition before this run's
  date) extracted that no source lists any more is ``departed``; a departed or disabled account is only
  flagged: its lake partitions and mart rows stay as they were.

Errors: an unknown Business id (or one the token cannot see: Meta's 100/33) fails at once naming the
source and the fix; a source the token lacks a permission for fails at once when no source could be
read, else it is a warning; any other refusal (token, ``appsecret_proof``, parameter) fails with Meta's
message and its own fix; nothing left to extract after the filters fails naming the filters. An
account's ``promote_pages`` that stays unreadable after the hook's retries (a transient error, a
throttle) fails discovery with that retryable error, naming the account, so Airflow's retry reads them
again rather than never discovering those Pages; a permanent refusal of one account (100/33, a bare
#200) is a warning, any other refusal fails naming the account; Meta's "reduce the amount of data" on
a batched first page has the edge read from its start in halved pages. Nothing here deletes lake data.

The result is written to the lake (``discovered_accounts`` / ``discovered_pages``, partition
``date=<D>``, replaced on a rerun) and returned for the mapped extraction tasks.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from meta_ads_elt.access import node_type
from meta_ads_elt.config import (
    ACCOUNT_STATUSES,
    AccountDiscovery,
    IdNameFilter,
    PageDiscovery,
    PipelineConfig,
    ad_account_as_business_fix,
)
from meta_ads_elt.errors import (
    MetaApiError,
    MetaConfigError,
    MetaDataTooLargeError,
    MetaParameterError,
    MetaPermissionError,
    MetaRetryableError,
    in_context,
    is_missing_object,
    is_retryable,
    is_token_refusal,
)
from meta_ads_elt.hooks.graph_api import field_expansion
from meta_ads_elt.lake.partitions import LakeWriter

log = logging.getLogger(__name__)

STATUS_NAMES = {code: name for name, code in ACCOUNT_STATUSES.items()}
EXTRACTED_STATES = ("extracted", "arrived")
ACCOUNT_FIELDS = "account_id,name,currency,account_status,business"
PROMOTED_PAGE_FIELDS = ["id", "name"]
PROMOTED_PAGES_PARAMS = {"fields": ",".join(PROMOTED_PAGE_FIELDS), "limit": 100}
"""An account's ``promote_pages`` read as an edge (a batch item, the pages after the first)."""
PROMOTED_PAGES_EXPANSION = field_expansion("promote_pages", {"limit": 100}, PROMOTED_PAGE_FIELDS)
"""The same read expanded in the account listing's ``fields`` (its first page, 100 Pages)."""
_NOT_ASSIGNED_FIX = (
    "listed by {sources} but not by /me/adaccounts: the token's user is not assigned to it (reading it answers code "
    "100, subcode 33): assign "
    "the user (or system user) to the ad account in Business Settings > Accounts > Ad accounts, or exclude it"
)


class DiscoveryError(MetaConfigError):
    """A ``discover:`` source or filter that cannot work as configured (fails at once, no retry)."""


@dataclass
class Found:
    """One discovered account or Page and what this run does with it."""

    id: str
    name: str | None = None
    currency: str | None = None
    account_status: str | None = None
    business_id: str | None = None
    sources: list[str] = field(default_factory=list)
    state: str = "extracted"
    reason: str | None = None
    first_seen_date: dt.date | None = None
    history_days: int | None = None
    promoted: dict | None = None  # the first page of its promote_pages, when the listing expanded them

    @property
    def extracted(self) -> bool:
        return self.state in EXTRACTED_STATES


@dataclass
class Discovery:
    accounts: list[Found]
    pages: list[Found]
    warnings: list[str]

    def summary(self) -> dict[str, Any]:
        """The discover task's XCom: what the mapped tasks extract, and every flagged id with its reason."""

        def flagged(items: list[Found]) -> list[dict[str, Any]]:
            return [
                {"id": f.id, "name": f.name, "state": f.state, "reason": f.reason}
                for f in items
                if not f.extracted
            ]

        return {
            "accounts": [
                {"account_id": f"act_{f.id}", "lookback_days": f.history_days}
                for f in self.accounts
                if f.extracted
            ],
            "pages": [{"page_id": f.id, "lookback_days": f.history_days} for f in self.pages if f.extracted],
            "arrived": [f.id for f in (*self.accounts, *self.pages) if f.state == "arrived"],
            "flagged_accounts": flagged(self.accounts),
            "flagged_pages": flagged(self.pages),
            "warnings": self.warnings,
        }


# ---- sources --------------------------------------------------------------------------------------


def _edge(source: str, kind: str) -> tuple[str, str]:
    """(node, edge) of a source: ``me`` or ``business:<id>:owned|client``."""
    if source == "me":
        return "me", "adaccounts" if kind == "accounts" else "accounts"
    _, business_id, relation = source.split(":")
    return business_id, f"{relation}_ad_accounts" if kind == "accounts" else f"{relation}_pages"


def _not_a_business(hook: Any, node: str) -> str | None:
    """The fix when the id of a ``business:<id>`` source is another kind of object Meta can name, else None.

    Meta answers a bare ad account id (no ``act_``) as an unknown one, 100/33 "does not exist"
    (facebook/facebook-nodejs-business-sdk#45, facebook/facebook-python-business-sdk#83), so ``act_<id>`` is
    asked too; other ids say what they are (``?metadata=1``, or "on node type (Page)" in Meta's message)."""
    kind = node_type(hook, node)
    if kind is None:
        kind = "adaccount" if node_type(hook, f"act_{node}") == "adaccount" else None
    if kind == "adaccount":
        return f"business:{node} expects a Business id; {ad_account_as_business_fix(f'act_{node}')}"
    if kind in (None, "business"):
        return None
    listed = f'list it under pages: (- id: "{node}")' if kind == "page" else "remove it"
    return (
        f"business:{node} expects a Business id; Meta says {node} is a {kind}: {listed}, or put the id of a "
        "Business here (Business Settings > Business info)"
    )


def _read_source(hook: Any, source: str, kind: str, fields: str, warnings: list[str]) -> list[dict] | None:
    """The items one source lists, or None (warning recorded) when the token lacks a permission for it.

    An id Meta says is no Business (an ad account, a Page: :func:`_not_a_business`) fails with the fix;
    a Business Meta cannot load for this token (100/33) fails naming the source; any other error (a
    refused token or ``appsecret_proof``, an invalid parameter, a throttle) is raised as the hook
    classified it, with Meta's message and its own fix."""
    node, edge = _edge(source, kind)
    try:
        return [
            item for page in hook.paginate((node, edge), {"fields": fields, "limit": 100}) for item in page
        ]
    except MetaApiError as exc:
        where = f"{kind}.discover source {source!r} (GET /{node}/{edge})"
        if node != "me" and isinstance(exc, MetaParameterError):  # code 100: the id may be no Business
            fix = _not_a_business(hook, node)
            if fix:
                subcode = f"/{exc.subcode}" if exc.subcode else ""
                raise DiscoveryError(
                    f"{where}: {fix}. [code {exc.code}{subcode}, fbtrace {exc.fbtrace_id}]"
                ) from None
        if node != "me" and is_missing_object(exc):
            raise DiscoveryError(
                f"{where}: Business {node} does not exist or this token cannot see it ({exc.message}). "
                f"Check the Business id in include/pipeline.yaml (Business Settings > Business info), or "
                "remove the source."
            ) from None
        if not isinstance(exc, MetaPermissionError):
            raise
        warnings.append(
            f"{where} cannot be read with this token ({exc.message}). It needs "
            f"{'business_management and access to the Business' if node != 'me' else 'ads_read / pages_show_list'}; "
            "grant it or remove the source."
        )
        return None


def _matches(item: Found, rule: IdNameFilter) -> set[str]:
    """The entries of ``rule`` that match ``item`` (ids exactly, names as case-insensitive patterns)."""
    hits = {f"id {i}" for i in rule.ids if str(i).removeprefix("act_") == item.id}
    name = (item.name or "").lower()
    hits |= {f"name {p!r}" for p in rule.names if fnmatch.fnmatchcase(name, p.lower())}
    return hits


def _filter(
    items: Iterable[Found], include: IdNameFilter, exclude: IdNameFilter, kind: str, warnings: list[str]
) -> None:
    used_include: set[str] = set()
    used_exclude: set[str] = set()
    for item in items:
        if not include.empty:
            hits = _matches(item, include)
            used_include |= hits
            if not hits:
                item.state, item.reason = "excluded", f"not matched by {kind}.include"
                continue
        hits = _matches(item, exclude)
        used_exclude |= hits
        if hits:
            item.state, item.reason = "excluded", f"{kind}.exclude: {', '.join(sorted(hits))}"
    for rule, used, where in ((include, used_include, "include"), (exclude, used_exclude, "exclude")):
        entries = {f"id {i}" for i in rule.ids} | {f"name {p!r}" for p in rule.names}
        for entry in sorted(entries - used):
            warnings.append(
                f"{kind}.{where} {entry} matches no discovered {kind[:-1]}: check the id or pattern"
            )


# ---- history: arrivals and departures -------------------------------------------------------------


def _previous(writer: LakeWriter, dataset: str, day: dt.date, id_column: str) -> dict[str, dict]:
    """The newest discovery partition before ``day``, by id (a ``date=`` directory that names no date
    is left out, with a warning)."""
    earlier = [d for d in writer.partition_dates(dataset) if d < day]
    if not earlier:
        return {}
    from meta_ads_elt.lake.partitions import read_rows

    rows = read_rows(
        writer.root,
        dataset,
        {"date": earlier[-1].isoformat()},
        [id_column, "name", "state", "first_seen_date", "reason"],
    )
    return {str(r[id_column]): r for r in rows}


def _has_data(writer: LakeWriter, datasets: Iterable[tuple[str, str]], item_id: str) -> bool:
    return any(writer.fs.exists(f"{writer.dataset_path(ds)}/{key}={item_id}") for ds, key in datasets)


def _history(
    items: list[Found],
    previous: dict[str, dict],
    writer: LakeWriter,
    data: list[tuple[str, str]],
    config: PipelineConfig,
    day: dt.date,
) -> list[Found]:
    """Mark arrivals (no lake data yet), carry first-seen dates, and add the departed ids."""
    for item in items:
        before = previous.get(item.id)
        item.first_seen_date = (before or {}).get("first_seen_date") or day
        if item.extracted:
            if _has_data(writer, data, item.id):
                item.history_days = config.lookback_days
            else:
                item.state, item.history_days = "arrived", config.history_days_on_arrival
                item.reason = f"first seen: extracting {item.history_days} days of history"
    listed = {item.id for item in items}
    departed = []
    for item_id, row in previous.items():
        if item_id in listed or row.get("state") not in (*EXTRACTED_STATES, "departed"):
            continue
        departed.append(
            Found(
                id=item_id,
                name=row.get("name"),
                state="departed",
                first_seen_date=row.get("first_seen_date"),
                reason=row.get("reason")
                if row.get("state") == "departed"
                else f"no discovery source lists it since {day.isoformat()}: no longer extracted; its data stays in the "
                "lake and the marts",
            )
        )
    return items + departed


# ---- the two resolutions --------------------------------------------------------------------------


def discover_accounts(
    hook: Any, settings: AccountDiscovery, pages: PageDiscovery | None, warnings: list[str]
) -> list[Found]:
    """The ad accounts ``accounts: {discover: ...}`` (``settings``) means; with their promoted Pages when
    ``pages: {discover: ...}`` (``pages``) lists the source ``promoted``."""
    found: dict[str, Found] = {}
    read_any = False
    promoted = pages is not None and "promoted" in pages.discover
    fields = ACCOUNT_FIELDS + (f",{PROMOTED_PAGES_EXPANSION}" if promoted else "")
    for source in settings.discover:
        rows = _read_source(hook, source, "accounts", fields, warnings)
        if rows is None:
            continue
        read_any = True
        if not rows:
            warnings.append(f"accounts.discover source {source!r} lists no ad account")
        for row in rows:
            acct = str(row.get("account_id") or str(row.get("id", "")).removeprefix("act_"))
            item = found.setdefault(acct, Found(id=acct))
            item.sources.append(source)
            item.name = row.get("name", item.name)
            item.currency = row.get("currency", item.currency)
            status = row.get("account_status")
            item.account_status = STATUS_NAMES.get(int(status), str(status)) if status is not None else None
            item.business_id = str((row.get("business") or {}).get("id") or "") or None
            if promoted and isinstance(row.get("promote_pages"), dict):
                item.promoted = row["promote_pages"]
    if not read_any:
        raise DiscoveryError("accounts.discover: no source could be read:\n  - " + "\n  - ".join(warnings))
    _unassigned(hook, [f for f in found.values() if "me" not in f.sources], "me" in settings.discover)
    items = sorted(found.values(), key=lambda f: f.id)
    _filter([f for f in items if f.extracted], settings.include, settings.exclude, "accounts", warnings)
    for item in items:
        if not item.extracted:
            continue
        if item.account_status and item.account_status not in settings.account_status:
            item.state = "skipped_status"
            item.reason = (
                f"account_status {item.account_status}: not extracted (accounts.account_status allows "
                f"{', '.join(settings.account_status)}); its data stays in the lake and the marts"
            )
        elif settings.currency and item.currency not in settings.currency:
            item.state, item.reason = "skipped_currency", f"currency {item.currency} not in accounts.currency"
    if not any(f.extracted for f in items):
        raise DiscoveryError(
            f"accounts.discover {list(settings.discover)} found {len(items)} ad account(s) and the filters "
            "(include / exclude / account_status / currency) leave none to extract: "
            + "; ".join(f"act_{f.id} {f.state} ({f.reason})" for f in items[:10])
        )
    return items


def _unassigned(hook: Any, business_listed: list[Found], me_read: bool) -> None:
    """Business edges list accounts the user is not assigned to: those missing from ``/me/adaccounts``."""
    if not business_listed:
        return
    if me_read:
        assigned: set[str] = set()  # every account /me/adaccounts lists already has "me" among its sources
    else:
        assigned = {
            str(row.get("account_id"))
            for page in hook.paginate(("me", "adaccounts"), {"fields": "account_id", "limit": 100})
            for row in page
        }
    for item in business_listed:
        if item.id not in assigned:
            item.state = "unreadable"
            item.reason = _NOT_ASSIGNED_FIX.format(sources=", ".join(item.sources))


def discover_pages(
    hook: Any, settings: PageDiscovery, accounts: list[Found], warnings: list[str]
) -> list[Found]:
    """The Pages ``pages: {discover: ...}`` (``settings``) means; ``promoted`` reads those of ``accounts``."""
    found: dict[str, Found] = {}
    read_any = False
    for source in settings.discover:
        if source == "promoted":
            read_any = True
            rows = _promoted_pages(hook, [a for a in accounts if a.extracted], warnings)
        else:
            listed = _read_source(hook, source, "pages", "id,name", warnings)
            if listed is None:
                continue
            read_any = True
            rows = listed
        for row in rows:
            item = found.setdefault(str(row["id"]), Found(id=str(row["id"])))
            if source not in item.sources:
                item.sources.append(source)
            item.name = row.get("name", item.name)
    if not read_any:
        raise DiscoveryError("pages.discover: no source could be read:\n  - " + "\n  - ".join(warnings))
    items = sorted(found.values(), key=lambda f: f.id)
    _filter(items, settings.include, settings.exclude, "pages", warnings)
    if not any(f.extracted for f in items):
        warnings.append(f"pages.discover {list(settings.discover)}: no Page to extract after the filters")
    return items


def _promoted_pages(hook: Any, accounts: list[Found], warnings: list[str]) -> list[dict]:
    """Every Page the ``accounts`` promote: each account's first page of ``promote_pages`` (expanded in
    the listing, else one Graph batch for all the accounts without it), then, for an account whose first
    page has ``paging.next``, the rest of its edge after that page's cursor."""
    first_pages: dict[str, dict | None] = {a.id: a.promoted for a in accounts if a.promoted is not None}
    unexpanded = [a for a in accounts if a.promoted is None]  # listed accounts: ask each (batched)
    replies = hook.batch(
        [
            {"method": "GET", "path": (f"act_{a.id}", "promote_pages"), "params": PROMOTED_PAGES_PARAMS}
            for a in unexpanded
        ]
    )
    for account, reply in zip(unexpanded, replies, strict=True):
        body, error = reply.get("body"), reply.get("error")  # error: classified once, by the hook
        if error is None and isinstance(body, dict):
            first_pages[account.id] = body
        elif isinstance(error, MetaDataTooLargeError):
            first_pages[account.id] = None  # read from the edge's start: paginate halves the page size
        else:
            _unreadable(account, error, warnings)
    rows: list[dict] = []
    for account in accounts:
        if account.id not in first_pages:
            continue
        path = (f"act_{account.id}", "promote_pages")
        try:  # no call unless the first page has paging.next
            for page in hook.paginate(path, PROMOTED_PAGES_PARAMS, first=first_pages[account.id]):
                rows.extend(page)
        except MetaApiError as exc:
            _unreadable(account, exc, warnings)  # the Pages read before the refusal are kept
    return rows


def _unreadable(account: Found, error: MetaApiError | None, warnings: list[str]) -> None:
    """An account whose ``promote_pages`` Meta did not give: a refused token fails at once (no other
    account can succeed); a permanent refusal of this account alone (100/33, a bare #200) is a warning;
    anything else fails naming the account: an error still retryable after the hook's retries (a retry
    of the task reads them again: skipping would lose those Pages silently) or a refusal that is no
    "absent" (e.g. another code 100), with its own fix."""
    if error is not None and is_token_refusal(error):
        raise error
    what = f"pages.discover 'promoted': act_{account.id}/promote_pages"
    if error is not None and (is_missing_object(error) or isinstance(error, MetaPermissionError)):
        warnings.append(f"{what} not readable")
        return
    if error is None or is_retryable(error):
        raise in_context(
            error or MetaRetryableError(f"GET /act_{account.id}/promote_pages answered no page"),
            f"{what} (still failing after the hook's retries)",
        ) from error
    raise in_context(error, f"{what} (refused; not retried)") from error


def discover(hook: Any, config: PipelineConfig, day: dt.date, run_id: str = "manual") -> Discovery:
    """Resolve the config's ``discover:`` settings for the run covering ``day``; write the lake datasets."""
    writer = LakeWriter(config.lake_root_resolved)
    warnings: list[str] = []
    account_discovery, page_discovery = config.account_discovery, config.page_discovery
    if account_discovery is not None:
        accounts = discover_accounts(hook, account_discovery, page_discovery, warnings)
        accounts = _history(
            accounts,
            _previous(writer, "discovered_accounts", day, "account_id"),
            writer,
            [("insights", "account_id")],
            config,
            day,
        )
    else:
        accounts = [
            Found(id=a.numeric_id, sources=["config"], history_days=config.lookback_days, first_seen_date=day)
            for a in config.listed_accounts
        ]
    if page_discovery is not None:
        pages = discover_pages(hook, page_discovery, accounts, warnings)
        pages = _history(
            pages,
            _previous(writer, "discovered_pages", day, "page_id"),
            writer,
            [("leads", "page_id"), ("conversations", "page_id")],
            config,
            day,
        )
    else:
        pages = [
            Found(id=p.id, sources=["config"], history_days=config.lookback_days, first_seen_date=day)
            for p in config.listed_pages
        ]
    for message in warnings:
        log.warning("Discovery: %s", message)
    for item in (*accounts, *pages):
        if not item.extracted or item.state == "arrived":
            log.warning(
                "Discovery: %s %s (%s): %s - %s",
                "Page" if item in pages else "act",
                item.id,
                item.name or "?",
                item.state,
                item.reason,
            )
    _write(writer, day, accounts, pages, run_id, config)
    return Discovery(accounts, pages, warnings)


def _write(
    writer: LakeWriter,
    day: dt.date,
    accounts: list[Found],
    pages: list[Found],
    run_id: str,
    config: PipelineConfig,
) -> None:
    now = dt.datetime.now(dt.UTC)
    partition = {"date": day.isoformat()}
    for dataset, items, id_column, discovered in (
        ("discovered_accounts", accounts, "account_id", config.accounts_discovered),
        ("discovered_pages", pages, "page_id", config.pages_discovered),
    ):
        if not discovered:
            continue
        rows = []
        for f in items:
            row = {
                id_column: f.id,
                "name": f.name,
                "sources": f.sources,
                "state": f.state,
                "reason": f.reason,
                "first_seen_date": f.first_seen_date,
                "history_days": f.history_days,
                "_extracted_at": now,
            }
            if id_column == "account_id":
                row |= {
                    "currency": f.currency,
                    "account_status": f.account_status,
                    "business_id": f.business_id,
                }
            rows.append(row)
        with writer.replace_partitions(dataset, [partition], run_id=run_id) as tx:
            tx.write(rows, partition=partition)


def batches(items: list[dict], size: int) -> list[list[dict]]:
    """Consecutive groups of at most ``size`` items (one mapped task each)."""
    return [items[i : i + size] for i in range(0, len(items), size)]
