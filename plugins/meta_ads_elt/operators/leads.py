"""Lead Ads, form first: every lead of a Page's forms created in the data interval's window.

Why form first: ``/<form_id>/leads`` is the only edge that returns organic leads as well as paid
ones (an ad's ``/leads`` misses organic leads and ads not updated lately).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from meta_ads_elt import fields
from meta_ads_elt.config import check_operator_arguments, operator_default
from meta_ads_elt.errors import MetaConfigError
from meta_ads_elt.leadgen_budget import LeadgenUsageTap, LeadRetrievalBudget
from meta_ads_elt.operators._pages import (
    MetaPageOperator,
    page_hook_or_raise,
    parse_meta_time,
    raise_for_page,
    window_dates,
)
from meta_ads_elt.pii import PiiPolicy, form_question_options

if TYPE_CHECKING:
    import pyarrow as pa
    from airflow.sdk import Context

    from meta_ads_elt.hooks.graph_api import MetaGraphApiHook

LEADS_PERMISSION = "leads_retrieval"
AD_IDS = ("ad_id", "adset_id", "campaign_id")
AD_FIELDS = ("ad_id", "ad_name", "adset_id", "adset_name", "campaign_id", "campaign_name")
"""A lead's ad, ad set and campaign: set when the lead is created, never changed."""


def has_ad(row: Mapping[str, Any]) -> bool:
    """Whether a lead row carries an ad, ad set or campaign id (seed 003: some come without)."""
    return any(row[f] for f in AD_IDS)


# --- turning API records into lake rows --------------------------------------------------------


def leads_filtering(start: datetime, end: datetime, overlap: timedelta) -> str:
    """The ``filtering`` param: ``time_created`` over the window widened by ``overlap`` on each side."""
    return json.dumps(
        [
            {
                "field": "time_created",
                "operator": "GREATER_THAN_OR_EQUAL",
                "value": int((start - overlap).timestamp()),
            },
            {"field": "time_created", "operator": "LESS_THAN", "value": int((end + overlap).timestamp())},
        ],
        separators=(",", ":"),
    )


def leads_on_record(form: Mapping[str, Any]) -> int | None:
    """The leads a form says it collected: ``leads_count`` plus ``organic_leads_count``, or None when it
    did not report both. Meta's form reference lists the two as separate counters (research/meta_api_facts.md
    section 5.1) and does not say whether the first includes organic leads; either way their sum is at
    least the form's leads, so a form is skipped only when it collected none at all (organic-only forms
    are read), and ``200 x 24 x`` the sum stays an upper bound of the lead-retrieval budget."""
    paid, organic = form.get("leads_count"), form.get("organic_leads_count")
    if paid is None or organic is None:
        return None
    return int(paid) + int(organic)


def _truthy(value: Any) -> bool:
    # Meta sends booleans as JSON bools, but custom_disclaimer_responses uses "1" / "".
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes"}
    return bool(value)


@dataclass
class LeadRows:
    """Rows of ``leads`` and ``lead_answers`` for one Page, grouped by UTC created date."""

    leads: dict[date, list[dict]]
    answers: dict[date, list[dict]]
    ad_ids_kept: int = 0
    """Leads Meta now serves without ad ids that an earlier pull of their date saw with them (kept)."""

    @classmethod
    def empty(cls, dates: Iterable[date]) -> LeadRows:
        dates = list(dates)
        return cls({d: [] for d in dates}, {d: [] for d in dates})

    @property
    def lead_count(self) -> int:
        return sum(len(rows) for rows in self.leads.values())

    def add(
        self,
        lead: Mapping[str, Any],
        form_id: str,
        policy: PiiPolicy,
        options: Mapping[str, frozenset[str]],
        extracted_at: datetime,
    ) -> bool:
        """Add one API lead if its UTC created date is one of the window's; ``False`` if outside."""
        created = parse_meta_time(lead["created_time"])
        bucket = self.leads.get(created.date())
        if bucket is None:
            return False
        pii = policy.apply(lead.get("field_data") or (), options)
        lead_id = str(lead["id"])
        lead_form = str(lead.get("form_id") or form_id)
        bucket.append(
            {
                "lead_id": lead_id,
                "created_time": created,
                "form_id": lead_form,
                "ad_id": _str_or_none(lead.get("ad_id")),
                "ad_name": _str_or_none(lead.get("ad_name")),
                "adset_id": _str_or_none(lead.get("adset_id")),
                "adset_name": _str_or_none(lead.get("adset_name")),
                "campaign_id": _str_or_none(lead.get("campaign_id")),
                "campaign_name": _str_or_none(lead.get("campaign_name")),
                "is_organic": _truthy(lead.get("is_organic")),
                "platform": _str_or_none(lead.get("platform")),
                "email_sha256": pii.email_sha256,
                "phone_sha256": pii.phone_sha256,
                "custom_disclaimer_responses": [
                    {
                        "checkbox_key": _str_or_none(r.get("checkbox_key")),
                        "is_checked": _truthy(r.get("is_checked")),
                    }
                    for r in _data(lead.get("custom_disclaimer_responses"))
                ],
                "_extracted_at": extracted_at,
            }
        )
        self.answers[created.date()].extend(
            {
                "lead_id": lead_id,
                "form_id": lead_form,
                "question": a.question,
                "value": a.value,
                "value_is_hashed": a.value_is_hashed,
                "_extracted_at": extracted_at,
            }
            for a in pii.answers
        )
        return True

    def without_ad_ids(self) -> set[str]:
        """The ids of the leads that came without ad, ad set and campaign ids."""
        return {r["lead_id"] for rows in self.leads.values() for r in rows if not has_ad(r)}

    def keep_ad_ids_an_earlier_pull_saw(self, earlier: Iterable[Mapping[str, Any]]) -> None:
        """A rerun of a date replaces the date's leads. A lead the earlier pull saw with ad ids and Meta now
        serves without (the token's user lost advertiser privileges on the ad account, seed 003) keeps the
        earlier pull's ad, ad set and campaign, ids and names: a lead's ad never changes, and without them
        the lead would leave its ad's numbers. The rest of the row is this pull's; counted in
        ``ad_ids_kept``. A lead no pull saw with ad ids (organic, an ad preview) stays without."""
        seen = {r["lead_id"]: r for r in earlier if has_ad(r)}
        for rows in self.leads.values():
            for index, row in enumerate(rows):
                attribution = seen.get(row["lead_id"])
                if attribution is not None and not has_ad(row):
                    rows[index] = {**row, **{f: attribution[f] for f in AD_FIELDS}}
                    self.ad_ids_kept += 1

    def tables(self, day: date) -> tuple[pa.Table, pa.Table]:
        """The ``leads`` and ``lead_answers`` tables of one date, sorted so reruns write the same files."""
        import pyarrow as pa  # imported here, not when the DAG file is parsed

        from meta_ads_elt import schemas
        from meta_ads_elt.lake.rows import skip_pandas_probe

        skip_pandas_probe()
        leads = sorted(self.leads[day], key=lambda r: (r["created_time"], r["lead_id"]))
        answers = sorted(self.answers[day], key=lambda r: (r["lead_id"], r["question"], r["value"] or ""))
        return (
            pa.Table.from_pylist(leads, schema=schemas.LEADS),
            pa.Table.from_pylist(answers, schema=schemas.LEAD_ANSWERS),
        )


def _str_or_none(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _data(value: Any) -> list:
    if isinstance(value, Mapping):  # an edge wrapped as {"data": [...]}
        value = value.get("data")
    return list(value or [])


def discover_page_ids(hook: MetaGraphApiHook) -> list[str]:
    """The ids of every Page the connection's user manages (``/me/accounts``), for configs."""
    return [
        str(page["id"]) for batch in hook.paginate("me/accounts", {"fields": "id,name"}) for page in batch
    ]


# --- the operator --------------------------------------------------------------------------------


class MetaLeadsOperator(MetaPageOperator):
    """Export every lead of one Page's lead forms created in the window of the data interval.

    Guarantees:

    * Window: ``time_created`` in ``[D - lookback_days + 1, D + 1)`` UTC for the data interval day D.
      The filter sent to Meta is widened by ``overlap_minutes`` and trimmed here, so a lead on a
      boundary is neither lost nor taken twice.
    * Idempotent and atomic: every ``leads/page_id=/date=`` and ``lead_answers/page_id=/date=``
      partition of the window is replaced, empty dates included, through the lake writer's swap;
      a rerun of D leaves identical rows (``_extracted_at`` aside). A manifest records the run.
      A lead the earlier pull saw with ad ids that Meta now serves without (the token's user lost
      advertiser privileges on the ad account, seed 003) keeps them (manifest ``ad_ids_kept``).
    * PII: see :mod:`meta_ads_elt.pii` (email/phone hashed, names and free text dropped unless a
      question key is in ``pii_allow_list``). No lead value is logged.
    * Nothing to fetch, no call: a form whose ``leads_count`` and ``organic_leads_count`` are both 0
      is skipped (:func:`leads_on_record`), and a Page without forms (or whose forms all report 0)
      writes its empty partitions and succeeds.
    * Lead-retrieval budget (200 x 24 x L per Page per 24 h, L = leads created in the last 90
      days): Meta decides (:mod:`meta_ads_elt.leadgen_budget`). Before every lead read, the Page's
      ``leadgen`` reading in ``X-Business-Use-Case-Usage`` (which also sees other runs' calls) stops
      the run once it says 100 %, and a refusal while it says so ends the task at once; either way
      :class:`~meta_ads_elt.leadgen_budget.LeadRetrievalBudgetExceeded` is raised and nothing is
      written. ``200 x 24 x`` the forms' leads on record (all-time counts: an upper bound of the
      limit) stops it only when even that is spent; a form without its counts never blocks a call.
    * ``form_ids``: only these forms of the Page (default: all); an id that is not one of the
      Page's forms fails before any lead is read, naming the Page it belongs to.
    * Errors: a bad Page id, a token that cannot act for the Page, or a missing
      ``leads_retrieval`` permission fail at once with a message naming the Page and permission.
      Transient errors and throttling are retried by the hook.
    """

    extractor = "leads"
    datasets = ("leads", "lead_answers")
    default_page_limit = fields.LEADS_PAGE_LIMIT
    template_fields: Sequence[str] = (*MetaPageOperator.template_fields, "pii_allow_list", "form_ids")

    def __init__(
        self,
        *,
        pii_allow_list: Sequence[str] = operator_default("pii_allow_list"),
        default_phone_country_code: str | None = operator_default("default_phone_country_code"),
        overlap_minutes: int = fields.LEADS_FILTER_OVERLAP_MINUTES,
        form_ids: Sequence[str] = operator_default("form_ids"),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_operator_arguments(
            type(self).__name__,
            pii_allow_list=pii_allow_list,
            default_phone_country_code=default_phone_country_code,
        )
        self.form_ids = form_ids
        self.pii_allow_list = pii_allow_list
        self.default_phone_country_code = default_phone_country_code
        self.overlap_minutes = overlap_minutes

    @cached_property
    def usage_tap(self) -> LeadgenUsageTap:
        """The process-wide governor, read along for the Page's ``leadgen`` usage header."""
        from meta_ads_elt.governor import get_governor

        return LeadgenUsageTap(get_governor())

    def hook_options(self) -> dict[str, Any]:
        return {"governor": self.usage_tap}

    def execute(self, context: Context) -> dict[str, Any]:
        page_id = str(self.page_id)
        day, start, end = self.window(context)
        extracted_at = datetime.now(UTC).replace(microsecond=0)
        policy = PiiPolicy.build(self.pii_allow_list, self.default_phone_country_code)

        page_hook = page_hook_or_raise(self.hook, page_id, LEADS_PERMISSION)
        forms = self._selected(self._forms(page_hook, page_id), page_id)
        counts = [leads_on_record(f) for f in forms]
        # Unknown (None) as soon as one form did not report its counts: see LeadRetrievalBudget.
        leads_count = None if None in counts else sum(c for c in counts if c is not None)
        # The form listing is counted as lead retrieval too: over-counting is the safe side.
        budget = LeadRetrievalBudget(page_id, leads_count, calls_used=page_hook.calls)
        rows = LeadRows.empty(window_dates(start, end))
        filtering = leads_filtering(start, end, timedelta(minutes=self.overlap_minutes))
        seen: set[str] = set()
        for form in forms:
            if leads_on_record(form) == 0:
                continue  # Meta says the form never collected a lead, paid or organic: nothing to fetch
            options = form_question_options(_data(form.get("questions")))
            for lead in self._leads(page_hook, page_id, str(form["id"]), filtering, budget):
                if str(lead["id"]) not in seen and rows.add(
                    lead, str(form["id"]), policy, options, extracted_at
                ):
                    seen.add(str(lead["id"]))
        self.log.info(
            "Page %s: %d leads from %d forms for %s..%s (%d lead-retrieval calls; Meta's leadgen usage %s %%)",
            page_id, rows.lead_count, len(forms), start.date(), day, budget.calls_used,
            "unknown" if budget.reported_pct is None else f"{budget.reported_pct:g}",
        )  # fmt: skip
        self._keep_earlier_ad_ids(rows)
        return self._write(day, rows, context, budget, len(forms), extracted_at)

    def _keep_earlier_ad_ids(self, rows: LeadRows) -> None:
        """Keeps the ad ids an earlier pull of the window's dates saw on leads Meta now serves without
        (:meth:`LeadRows.keep_ad_ids_an_earlier_pull_saw`)."""
        if not rows.without_ad_ids():
            return  # every lead came with its ad: nothing to read
        from meta_ads_elt.lake.partitions import read_rows

        page_id, columns = str(self.page_id), ("lead_id", *AD_FIELDS)
        earlier = [
            row
            for day in rows.leads  # the window's dates: the partitions this run replaces
            for row in read_rows(
                self.lake_root, "leads", {"page_id": page_id, "date": day.isoformat()}, columns
            )
        ]
        rows.keep_ad_ids_an_earlier_pull_saw(earlier)
        if rows.ad_ids_kept:
            self.log.warning(
                "Page %s: %d leads an earlier pull saw with their ad, ad set and campaign ids now come without "
                "them: the token's user no longer has advertiser privileges on the ad account (seed 003). The "
                "earlier ids are kept (a lead's ad never changes); leads created from now on will stay "
                "unattributed until the user is given an advertiser role on the ad account",
                page_id, rows.ad_ids_kept,
            )  # fmt: skip

    # -- API ------------------------------------------------------------------------------------

    def _selected(self, forms: list[dict], page_id: str) -> list[dict]:
        """The configured ``form_ids`` among the Page's forms (all of them when none is configured)."""
        if not self.form_ids:
            return forms
        from meta_ads_elt.access import form_of_another_page

        wanted = [str(f) for f in self.form_ids]
        by_id = {str(f["id"]): f for f in forms}
        problems = [
            p for f in wanted if f not in by_id and (p := form_of_another_page(self.hook, f, page_id))
        ]
        if problems:
            raise MetaConfigError("; ".join(problems))
        return [by_id[f] for f in wanted if f in by_id]

    def _forms(self, page_hook: MetaGraphApiHook, page_id: str) -> list[dict]:
        params = {"fields": ",".join(fields.LEADGEN_FORM_FIELDS), "limit": 100}
        try:
            pages = page_hook.paginate(f"{page_id}/leadgen_forms", params, scope=page_id)
            return [form for batch in pages for form in batch]
        except Exception as exc:
            raise_for_page(exc, page_id, LEADS_PERMISSION)

    def _leads(
        self,
        page_hook: MetaGraphApiHook,
        page_id: str,
        form_id: str,
        filtering: str,
        budget: LeadRetrievalBudget,
    ) -> Iterator[dict]:
        params = {"fields": ",".join(fields.LEAD_FIELDS), "filtering": filtering, "limit": self.page_limit}
        pages = page_hook.paginate(f"{form_id}/leads", params, scope=page_id)
        while True:
            budget.observe(self.usage_tap.reading(page_id))
            budget.check()  # before the call: stop when Meta says the budget is spent
            calls_before = page_hook.calls
            try:
                batch = next(pages)
            except StopIteration:
                return
            except Exception as exc:
                raise_for_page(exc, page_id, LEADS_PERMISSION)
            finally:
                # the hook's own count: retries included, and no call when the last page had no "next"
                budget.charge(page_hook.calls - calls_before)
            yield from batch

    # -- lake -----------------------------------------------------------------------------------

    def _write(
        self,
        day: date,
        rows: LeadRows,
        context: Mapping[str, Any],
        budget: LeadRetrievalBudget,
        form_count: int,
        extracted_at: datetime,
    ) -> dict[str, Any]:
        dates = sorted(rows.leads)
        partitions = [{"page_id": str(self.page_id), "date": d.isoformat()} for d in dates]
        manifest = {
            "since": dates[0].isoformat(),
            "until": dates[-1].isoformat(),
            "forms": form_count,
            "lead_retrieval_calls": budget.calls_used,
            # 200 x 24 x the forms' all-time leads_count: an upper bound of Meta's limit (null: unknown)
            "lead_retrieval_limit": budget.ceiling,
            "leads_count_all_time": budget.leads_count,
            "leadgen_usage_pct": budget.reported_pct,
            # leads served without ad ids that keep those an earlier pull saw (seed 003: no advertiser role)
            "ad_ids_kept": rows.ad_ids_kept,
            "pii_allow_list": sorted(str(k) for k in self.pii_allow_list),
            "partitions": [p["date"] for p in partitions],
        }
        return self.land(context, day, extracted_at, partitions, [rows.tables(d) for d in dates], manifest)
