"""The sandbox's world: a Business, ad accounts, campaigns, ad sets, ads, Pages, Instagram accounts,
lead forms, and the status of every ad object on every day.

Guarantees:
- Everything is a pure function of ``WorldConfig`` (seed + scale knobs) and of the absolute day:
  two sandboxes with the same config have the same ids, names, currencies, timezones and statuses.
- Ids are numeric strings (accounts are addressed as ``act_<id>``).
- One Business owns every ad account (the account's ``business`` field, ``GET /<business_id>``).
  The opt-in **agency world** (``WorldConfig.agency``, sandbox ``--agency``) is different: two
  Businesses, the agency owning the first half of the accounts and managing the second half (owned by
  its client Business) as client ad accounts; every 23rd account DISABLED (``account_status`` 2);
  every 37th listed by its Business but not assigned to the token's user (unreadable: code 100,
  subcode 33); every 29th managed from the day after the sandbox starts (``joins_after_days``: not listed and
  unreadable before; its history, all of it, readable after), as a new client arrives part-way through.
- Permanent campaigns alternate kinds: even index = lead generation (``OUTCOME_LEADS``), odd =
  messaging (``OUTCOME_ENGAGEMENT`` with ``CONVERSATIONS`` ad sets); each account promotes exactly one
  Page, and each Page has one Instagram professional account. The last ad set of the first messaging
  campaign is paused one week in four (``PAUSED``, its ads ``ADSET_PAUSED``).
- Promo campaigns rotate (Meta's "Manage your ad object's status" lifecycle): every account runs one
  promo campaign generation per ``PROMO_DAYS`` days (new ids each time), with two ad sets and three
  ads. Inside a generation the first ad set pauses for two days, the second ad of the first ad set is
  DELETED after a week, the second ad set ends after ten days (ARCHIVED or DELETED) and the campaign
  ends after ``PROMO_DAYS`` days (DELETED or ARCHIVED, alternating). So any 28-day window holds paused,
  archived and deleted campaigns, ad sets and ads that delivered before they stopped, and lead ads
  that keep reporting pixel leads for ``TAIL_DAYS`` days after they stopped delivering ("it may still
  track impressions, clicks, and actions for 28 days after the date of last delivery").
- Two more Pages no account promotes (``UNPROMOTED_PAGES``): one with lead forms that never
  collected a lead, one with no lead forms at all. Both have (organic) conversations. Their local
  dates are UTC (a Page's ``tz`` is its promoting account's timezone, else UTC).
- Opt-in (``WorldConfig.extra_promoted_pages``, sandbox ``--extra-promoted-pages``): the first account
  also promotes that many more Pages (a franchise's Pages), after the Pages above. They run no ads and
  have no lead forms, like the Pages no account promotes (organic conversations, UTC dates), but the
  account's ``promote_pages`` lists them after its own Page: with more than one page of them, that edge
  (read, or expanded in ``fields``) is paged like any edge (Graph API "Field Expansion", seed 002).
  Off (0) in every default world.
Per-day facts (delivery, leads, conversations) are not stored here: see ``metrics.py``,
``leads.py`` and ``conversations.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import zoneinfo

from meta_sandbox import rng

# (currency, timezone, cpm in currency units, lead value) per account index, cycled.
ACCOUNT_PROFILES = [
    ("USD", "America/Los_Angeles", 11.0, 12.0),
    ("INR", "Asia/Kolkata", 140.0, 600.0),
    ("EUR", "Europe/Berlin", 8.5, 10.0),
    ("GBP", "Europe/London", 9.0, 9.0),
    ("USD", "America/New_York", 12.0, 12.0),
    ("BRL", "America/Sao_Paulo", 25.0, 40.0),
    ("AUD", "Australia/Sydney", 14.0, 15.0),
    ("MXN", "America/Mexico_City", 70.0, 150.0),
]

# (name, has lead forms) of the Pages no account promotes, after the accounts' Pages.
UNPROMOTED_PAGES = [("Lakeside Florist", True), ("Corner Bakery", False)]
# Meta's effective_status enums (facebook_business Ad/AdSet/Campaign.EffectiveStatus).
AD_EFFECTIVE_STATUSES = (
    "ACTIVE",
    "ADSET_PAUSED",
    "ARCHIVED",
    "CAMPAIGN_PAUSED",
    "DELETED",
    "DISAPPROVED",
    "IN_PROCESS",
    "PAUSED",
    "PENDING_BILLING_INFO",
    "PENDING_REVIEW",
    "PREAPPROVED",
    "WITH_ISSUES",
)
ADSET_EFFECTIVE_STATUSES = (
    "ACTIVE",
    "ARCHIVED",
    "CAMPAIGN_PAUSED",
    "DELETED",
    "IN_PROCESS",
    "PAUSED",
    "WITH_ISSUES",
)
CAMPAIGN_EFFECTIVE_STATUSES = ("ACTIVE", "ARCHIVED", "DELETED", "IN_PROCESS", "PAUSED", "WITH_ISSUES")
EFFECTIVE_STATUSES = {
    "campaign": CAMPAIGN_EFFECTIVE_STATUSES,
    "adset": ADSET_EFFECTIVE_STATUSES,
    "ad": AD_EFFECTIVE_STATUSES,
}
TERMINAL_STATUSES = ("ARCHIVED", "DELETED")
PROMO_DAYS = 14
TAIL_DAYS = 7

BRANDS = [
    "Acme Solar",
    "Bharat Homes",
    "Berlin Bikes",
    "Thames Tutors",
    "Hudson Dental",
    "Rio Fitness",
    "Harbour Realty",
    "Casa Verde",
    "Nordic Kitchens",
    "Lotus Clinic",
    "Atlas Movers",
    "Pine Insurance",
]


@dataclasses.dataclass(frozen=True)
class Schedule:
    """An object's configured status by absolute day: ACTIVE from ``start``, PAUSED inside ``pauses``
    (``[from, to)`` day ranges) and in week ``weekly_pause[1]`` of every ``weekly_pause[0]`` weeks,
    then ``end_status`` (ARCHIVED or DELETED, terminal) from day ``end`` on."""

    start: int = 0
    end: int | None = None
    end_status: str = "DELETED"
    pauses: tuple[tuple[int, int], ...] = ()
    weekly_pause: tuple[int, int] | None = None

    @property
    def steady(self) -> bool:
        return self.end is None and not self.pauses and self.weekly_pause is None

    def status(self, day: int) -> str | None:
        """The configured status on ``day`` (None before the object exists)."""
        if day < self.start:
            return None
        if self.end is not None and day >= self.end:
            return self.end_status
        for lo, hi in self.pauses:
            if lo <= day < hi:
                return "PAUSED"
        if self.weekly_pause is not None:
            period, week = self.weekly_pause
            if (day // 7) % period == week:
                return "PAUSED"
        return "ACTIVE"

    def changed_on(self, day: int) -> int:
        """The first day of the status run that ``day`` is in (its ``updated_time``): fixed however long
        the run lasts. Meta's ``updated_time`` is the time of the object's last update (Marketing API
        reference, Campaign / Ad Set / Ad fields; a ``datetime`` field in facebook_business.adobjects), so
        it does not move while nobody changes the object; the status changes are this sandbox's only
        updates."""
        current = self.status(day)
        if self.end is not None and day >= self.end:
            return self.end  # ARCHIVED / DELETED for good
        if self.weekly_pause is None:  # the status changes only where a pause begins or ends
            edges = sorted({self.start, *(b for pause in self.pauses for b in pause if b <= day)})
            first = self.start
            for edge in reversed(edges):
                if edge == self.start or self.status(edge - 1) != current:
                    first = edge
                    break
            return first
        first = day  # a weekly pause: the run is at most a few weeks long
        while first > self.start and self.status(first - 1) == current and day - first < 400:
            first -= 1
        return first


class _Lifecycle:
    """Statuses of a campaign, ad set or ad (its own schedule plus its parents', Meta's inheritance)."""

    schedule: Schedule

    def chain(self) -> tuple:  # top-down: campaign, ad set, ad
        raise NotImplementedError

    def configured_status(self, day: int) -> str | None:
        return self.schedule.status(day)

    def effective_status(self, day: int) -> str | None:
        """Meta's effective_status on ``day``: DELETED if the object or a parent is deleted, else ARCHIVED
        if one is archived (children inherit a parent's status), else CAMPAIGN_PAUSED / ADSET_PAUSED /
        PAUSED, else ACTIVE. So a listed (live or archived) object's parents are listed too."""
        chain = self.chain()
        statuses = [o.schedule.status(day) for o in chain]
        if any(s is None for s in statuses):
            return None
        for terminal in ("DELETED", "ARCHIVED"):
            if terminal in statuses:
                return terminal
        labels = (*("CAMPAIGN_PAUSED", "ADSET_PAUSED")[: len(chain) - 1], "PAUSED")
        for s, label in zip(statuses, labels, strict=True):
            if s == "PAUSED":
                return label
        return "ACTIVE"

    def stopped_day(self) -> int | None:
        """First day on which the object (or a parent) is ARCHIVED or DELETED, if any."""
        ends = [o.schedule.end for o in self.chain() if o.schedule.end is not None]
        return min(ends) if ends else None

    @functools.cached_property
    def steady(self) -> bool:
        """True for objects that are ACTIVE every day (the fast path of the daily generators)."""
        return all(o.schedule.steady for o in self.chain())


@dataclasses.dataclass(eq=False)
class Business:
    id: str
    name: str
    created_day: int


@dataclasses.dataclass(eq=False)
class Account:
    index: int
    account_id: str  # numeric, without act_
    name: str
    currency: str
    timezone_name: str
    tz: zoneinfo.ZoneInfo
    cpm: float
    lead_value: float
    created_day: int
    page: Page | None = None
    campaigns: list[Campaign] = dataclasses.field(default_factory=list)
    business: Business | None = None
    promo_offset: int = 0
    managed_by: Business | None = None  # agency world: the agency Business managing a client's account
    account_status: int = 1  # Meta's AdAccount.account_status: 1 ACTIVE, 2 DISABLED, ...
    assigned: bool = True  # False: the token's user cannot read the account (not assigned to it)
    joins_after_days: int | None = None  # agency world: managed (listed, readable) from start-up day + this
    franchise_pages: list[Page] = dataclasses.field(default_factory=list)  # promoted too, running no ads

    @property
    def id(self) -> str:
        return "act_" + self.account_id

    @property
    def promote_pages(self) -> list[Page]:
        """The Pages its ``promote_pages`` edge lists: its own, then its franchise Pages."""
        return ([self.page] if self.page is not None else []) + self.franchise_pages

    def ads(self) -> list[Ad]:
        """The permanent ads (promo generations: ``World.promo_campaigns``)."""
        return [ad for c in self.campaigns for s in c.adsets for ad in s.ads]


@dataclasses.dataclass(eq=False)
class Campaign(_Lifecycle):
    index: int
    id: str
    name: str
    account: Account
    kind: str  # "leads" | "messaging"
    objective: str
    adsets: list[AdSet] = dataclasses.field(default_factory=list)
    schedule: Schedule = Schedule()
    created_day: int = 0
    generation: int | None = None  # promo campaigns: their generation

    def chain(self) -> tuple:
        return (self,)


@dataclasses.dataclass(eq=False)
class AdSet(_Lifecycle):
    index: int
    id: str
    name: str
    campaign: Campaign
    optimization_goal: str
    destination_type: str
    daily_budget_cents: int
    ads: list[Ad] = dataclasses.field(default_factory=list)
    schedule: Schedule = Schedule()

    @property
    def account(self) -> Account:
        return self.campaign.account

    def chain(self) -> tuple:
        return (self.campaign, self)


@dataclasses.dataclass(eq=False)
class Ad(_Lifecycle):
    gindex: int  # global index, used in lead ids
    id: str
    name: str
    adset: AdSet
    key: int  # per-ad hash key for the daily generators
    base_impressions: float
    ctr: float
    form: LeadForm | None  # lead ads
    platform: str | None  # messaging ads: "messenger" | "instagram"
    creative_id: str = ""
    schedule: Schedule = Schedule()

    @property
    def campaign(self) -> Campaign:
        return self.adset.campaign

    @property
    def account(self) -> Account:
        return self.adset.campaign.account

    def chain(self) -> tuple:
        return (self.adset.campaign, self.adset, self)


@dataclasses.dataclass(eq=False)
class Page:
    index: int
    id: str
    name: str
    username: str
    account: Account | None  # the ad account whose ads promote the Page (None: it runs no ads)
    ig_id: str
    ig_username: str
    tz: zoneinfo.ZoneInfo  # local dates of the Page: the promoting account's timezone, else UTC
    collects_leads: bool = True  # False: its forms exist but nobody ever submitted one
    forms: list[LeadForm] = dataclasses.field(default_factory=list)
    lead_ads: list[Ad] = dataclasses.field(default_factory=list)
    messaging_ads: list[Ad] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(eq=False)
class LeadForm:
    index: int
    id: str
    name: str
    page: Page
    locale: str
    questions: list[dict]
    created_day: int


@dataclasses.dataclass(frozen=True)
class WorldConfig:
    """Scale knobs. Defaults are the modest world ``make run`` uses."""

    seed: int = 42
    accounts: int = 3
    campaigns_per_account: int = 2
    adsets_per_campaign: int = 2
    ads_per_adset: int = 2
    history_days: int = 90
    leads_per_day: float = 6.0  # paid lead-form records per Page per day (mean)
    organic_leads_per_day: float = 1.0  # per Page per day (mean)
    conversations_per_day: float = 5.0  # new conversations per Page per day (mean, ads + organic)
    forms_per_page: int = 2
    promo_campaigns: bool = True  # the rotating promo campaigns (paused / archived / deleted objects)
    agency: bool = False  # two Businesses, disabled / unreadable / late-joining accounts (see the module doc)
    extra_promoted_pages: int = (
        0  # more Pages the first account promotes, running no ads (see the module doc)
    )


AGENCY_DISABLED_EVERY = 23
AGENCY_UNREADABLE_EVERY = 37
AGENCY_LATE_EVERY = 29
AGENCY_LATE_JOINS_AFTER_DAYS = 1


CUSTOM_QUESTIONS = [
    {
        "key": "preferred_contact_time",
        "label": "When should we call you?",
        "type": "CUSTOM",
        "options": ["Morning", "Afternoon", "Evening"],
    },
    {
        "key": "budget_range",
        "label": "What is your budget?",
        "type": "CUSTOM",
        "options": ["< 1k", "1k-5k", "5k-20k", "> 20k"],
    },
    {"key": "city", "label": "City", "type": "CITY", "options": []},
]


class World:
    """All static objects of one world, with id lookups."""

    def __init__(self, config: WorldConfig):
        self.config = config
        seed = config.seed
        self.user_id = rng.numeric_id(seed, "user")
        self.user_name = "Sandbox User"
        self.accounts: list[Account] = []
        self.pages: list[Page] = []
        self.by_id: dict[str, object] = {}
        self.ig_pages: dict[str, Page] = {}
        self.business = Business(rng.numeric_id(seed, "business", digits=16), "Sandbox Media Agency", 16900)
        self.by_id[self.business.id] = self.business
        self.businesses = [self.business]
        client_business = None
        if config.agency:
            client_business = Business(
                rng.numeric_id(seed, "client-business", digits=16), "Northwind Retail Group", 17200
            )
            self.by_id[client_business.id] = client_business
            self.businesses.append(client_business)
        gindex = 0
        for a in range(config.accounts):
            currency, tzname, cpm, lead_value = ACCOUNT_PROFILES[a % len(ACCOUNT_PROFILES)]
            brand = BRANDS[a % len(BRANDS)] + ("" if a < len(BRANDS) else f" {a // len(BRANDS) + 1}")
            acct = Account(
                index=a,
                account_id=rng.numeric_id(seed, "account", a, digits=16),
                name=f"{brand} ({currency})",
                currency=currency,
                timezone_name=tzname,
                tz=zoneinfo.ZoneInfo(tzname),
                cpm=cpm * (0.8 + 0.4 * rng.unit(rng.key(seed, "cpm", a))),
                lead_value=lead_value,
                created_day=17000 + a,
                business=self.business,
                promo_offset=(a * 5) % PROMO_DAYS,
            )
            if client_business is not None:
                if a >= config.accounts // 2:
                    acct.business, acct.managed_by = client_business, self.business
                if a % AGENCY_DISABLED_EVERY == AGENCY_DISABLED_EVERY - 1:
                    acct.account_status = 2
                if a % AGENCY_UNREADABLE_EVERY == AGENCY_UNREADABLE_EVERY - 2:
                    acct.assigned = False
                elif a % AGENCY_LATE_EVERY == 3:
                    acct.joins_after_days = AGENCY_LATE_JOINS_AFTER_DAYS
            self.accounts.append(acct)
            self.by_id[acct.id] = acct
            slug = brand.lower().replace(" ", "")
            page = Page(
                index=a,
                id=rng.numeric_id(seed, "page", a),
                name=brand,
                username=slug,
                account=acct,
                ig_id=rng.numeric_id(seed, "ig", a, digits=17),
                ig_username=slug + ".official",
                tz=acct.tz,
            )
            acct.page = page
            self.pages.append(page)
            self.by_id[page.id] = page
            self.ig_pages[page.ig_id] = page
            for f in range(config.forms_per_page):
                form = LeadForm(
                    index=f,
                    id=rng.numeric_id(seed, "form", a, f),
                    name=f"{brand} lead form {f + 1}",
                    page=page,
                    locale=["EN_US", "EN_GB", "DE_DE", "ES_LA"][(a + f) % 4],
                    questions=[CUSTOM_QUESTIONS[(a + f) % 3], CUSTOM_QUESTIONS[(a + f + 1) % 3]],
                    created_day=acct.created_day + 10 + f,
                )
                page.forms.append(form)
                self.by_id[form.id] = form
            for c in range(config.campaigns_per_account):
                kind = "leads" if c % 2 == 0 else "messaging"
                camp = Campaign(
                    index=c,
                    id=rng.numeric_id(seed, "campaign", a, c, digits=18),
                    name=f"{brand} | {'Lead gen' if kind == 'leads' else 'Messaging'} {c // 2 + 1}",
                    account=acct,
                    kind=kind,
                    objective="OUTCOME_LEADS" if kind == "leads" else "OUTCOME_ENGAGEMENT",
                    created_day=acct.created_day + 30 + c,
                )
                acct.campaigns.append(camp)
                self.by_id[camp.id] = camp
                for s in range(config.adsets_per_campaign):
                    if kind == "leads":
                        goal, dest = "LEAD_GENERATION", "ON_AD"
                    else:
                        goal = "CONVERSATIONS"
                        dest = "MESSENGER" if s % 2 == 0 else "INSTAGRAM_DIRECT"
                    adset = AdSet(
                        index=s,
                        id=rng.numeric_id(seed, "adset", a, c, s, digits=18),
                        name=f"{camp.name} | Audience {s + 1}",
                        campaign=camp,
                        optimization_goal=goal,
                        destination_type=dest,
                        daily_budget_cents=round(cpm * 100 * 5) * 100,
                        # the last ad set of the first messaging campaign pauses one week in four
                        schedule=(
                            Schedule(weekly_pause=(4, (a + 1) % 4))
                            if c == 1 and s == config.adsets_per_campaign - 1 and s > 0
                            else Schedule()
                        ),
                    )
                    camp.adsets.append(adset)
                    self.by_id[adset.id] = adset
                    for d in range(config.ads_per_adset):
                        k = rng.key(seed, "ad", a, c, s, d)
                        u = rng.stream(k, 3)
                        ad = Ad(
                            gindex=gindex,
                            id=rng.numeric_id(seed, "ad", a, c, s, d, digits=18),
                            name=f"{adset.name} | Creative {d + 1}",
                            adset=adset,
                            key=k,
                            base_impressions=800 + 4000 * u[0],
                            ctr=0.006 + 0.02 * u[1],
                            form=page.forms[(s + d) % len(page.forms)] if kind == "leads" else None,
                            platform=(
                                None
                                if kind == "leads"
                                else "messenger"
                                if dest == "MESSENGER"
                                else "instagram"
                            ),
                            creative_id=rng.numeric_id(seed, "creative", a, c, s, d, digits=18),
                        )
                        gindex += 1
                        adset.ads.append(ad)
                        self.by_id[ad.id] = ad
                        (page.lead_ads if kind == "leads" else page.messaging_ads).append(ad)
        for i, (name, has_forms) in enumerate(UNPROMOTED_PAGES):
            page = self._organic_page(seed, "unpromoted", i, name, name.lower().replace(" ", ""))
            for f in range(config.forms_per_page if has_forms else 0):
                form = LeadForm(
                    index=f,
                    id=rng.numeric_id(seed, "unpromoted-form", i, f),
                    name=f"{name} lead form {f + 1}",
                    page=page,
                    locale="EN_US",
                    questions=[CUSTOM_QUESTIONS[f % 3], CUSTOM_QUESTIONS[(f + 1) % 3]],
                    created_day=17000 + 10 + f,
                )
                page.forms.append(form)
                self.by_id[form.id] = form
        for i in range(config.extra_promoted_pages if self.accounts else 0):
            slug = f"{BRANDS[0].lower().replace(' ', '')}franchise{i + 1}"
            page = self._organic_page(seed, "franchise", i, f"{BRANDS[0]} Franchise {i + 1}", slug)
            self.accounts[0].franchise_pages.append(page)
        self.ads: list[Ad] = [ad for acct in self.accounts for ad in acct.ads()]
        self.ads_by_gindex = {ad.gindex: ad for ad in self.ads}
        # Promo generations are made on demand (``promo``); their ids encode the generation.
        self._promo: dict[tuple[int, int], Campaign] = {}
        self._promo_prefixes: dict[str, tuple[int, str, int]] = {}
        self.promo_slot_base = gindex  # promo ad slot gindex = base + 3 * account + slot
        if config.promo_campaigns:
            for acct in self.accounts:
                a = acct.index
                self._promo_prefixes[rng.numeric_id(seed, "promo-campaign", a, digits=12)] = (
                    a,
                    "campaign",
                    0,
                )
                for s in range(2):
                    self._promo_prefixes[rng.numeric_id(seed, "promo-adset", a, s, digits=12)] = (
                        a,
                        "adset",
                        s,
                    )
                for slot in range(3):
                    self._promo_prefixes[rng.numeric_id(seed, "promo-ad", a, slot, digits=12)] = (
                        a,
                        "ad",
                        slot,
                    )

    def _organic_page(self, seed: int, kind: str, i: int, name: str, slug: str) -> Page:
        """A Page no ad account's ads run for (its conversations are organic, its dates UTC), registered;
        ``kind`` keys its ids (``<kind>-page``, ``<kind>-ig``)."""
        page = Page(
            index=len(self.pages),
            id=rng.numeric_id(seed, f"{kind}-page", i),
            name=name,
            username=slug,
            account=None,
            ig_id=rng.numeric_id(seed, f"{kind}-ig", i, digits=17),
            ig_username=slug + ".shop",
            tz=zoneinfo.ZoneInfo("UTC"),
            collects_leads=False,
        )
        self.pages.append(page)
        self.by_id[page.id] = page
        self.ig_pages[page.ig_id] = page
        return page

    def account(self, ident: str) -> Account | None:
        ident = ident if ident.startswith("act_") else "act_" + ident
        obj = self.by_id.get(ident)
        return obj if isinstance(obj, Account) else None

    # ---- promo generations (rotating campaigns: paused, archived, deleted objects) ---------------

    def promo(self, account: Account, g: int) -> Campaign:
        """Promo campaign generation ``g`` of ``account``: days ``[start, start + PROMO_DAYS)``."""
        key = (account.index, g)
        camp = self._promo.get(key)
        if camp is not None:
            return camp
        seed, a = self.config.seed, account.index
        start = g * PROMO_DAYS + account.promo_offset
        kind = "leads" if (g // 2) % 2 == 0 else "messaging"
        brand = account.name.split(" (")[0]
        label = f"{brand} | Promo {g}"
        camp = Campaign(
            index=len(account.campaigns),
            id=rng.numeric_id(seed, "promo-campaign", a, digits=12) + f"{g:06d}",
            name=label,
            account=account,
            kind=kind,
            objective="OUTCOME_LEADS" if kind == "leads" else "OUTCOME_ENGAGEMENT",
            schedule=Schedule(
                start, end=start + PROMO_DAYS, end_status="DELETED" if g % 2 == 0 else "ARCHIVED"
            ),
            created_day=start,
            generation=g,
        )
        page = account.page
        schedules = (
            Schedule(start, pauses=((start + 3, start + 5),)),
            Schedule(start, end=start + 10, end_status="ARCHIVED" if g % 2 == 0 else "DELETED"),
        )
        slot = 0
        for s, adset_schedule in enumerate(schedules):
            if kind == "leads":
                goal, dest = "LEAD_GENERATION", "ON_AD"
            else:
                goal, dest = "CONVERSATIONS", ("MESSENGER" if s == 0 else "INSTAGRAM_DIRECT")
            adset = AdSet(
                index=s,
                id=rng.numeric_id(seed, "promo-adset", a, s, digits=12) + f"{g:06d}",
                name=f"{label} | Audience {s + 1}",
                campaign=camp,
                optimization_goal=goal,
                destination_type=dest,
                daily_budget_cents=round(account.cpm * 100 * 5) * 100,
                schedule=adset_schedule,
            )
            camp.adsets.append(adset)
            for d in range(2 if s == 0 else 1):
                k = rng.key(seed, "promo-ad", a, slot, g)
                u = rng.stream(k, 3)
                ad = Ad(
                    gindex=self.promo_slot_base + 3 * a + slot,
                    id=rng.numeric_id(seed, "promo-ad", a, slot, digits=12) + f"{g:06d}",
                    name=f"{adset.name} | Creative {d + 1}",
                    adset=adset,
                    key=k,
                    base_impressions=800 + 4000 * u[0],
                    ctr=0.006 + 0.02 * u[1],
                    form=page.forms[(g + d) % len(page.forms)] if kind == "leads" and page.forms else None,
                    platform=None if kind == "leads" else ("messenger" if s == 0 else "instagram"),
                    creative_id=rng.numeric_id(seed, "promo-creative", a, slot, g, digits=18),
                    # the second creative of the first ad set is deleted after a week
                    schedule=Schedule(start, end=start + 7, end_status="DELETED")
                    if (s, d) == (0, 1)
                    else Schedule(start),
                )
                adset.ads.append(ad)
                slot += 1
        self._promo[key] = camp
        return camp

    def promo_campaigns(self, account: Account, lo: int, hi: int) -> list[Campaign]:
        """Promo generations that exist on some day of ``[lo, hi]`` or report then (tail included)."""
        if not self.config.promo_campaigns:
            return []
        first = (lo - account.promo_offset - PROMO_DAYS - TAIL_DAYS) // PROMO_DAYS
        last = (hi - account.promo_offset) // PROMO_DAYS
        return [self.promo(account, g) for g in range(max(first, 0), last + 1)]

    def promo_ad_for(self, gindex: int, day: int) -> Ad | None:
        """The ad of a promo slot (``gindex``) that delivers around ``day`` (lead ids name the slot)."""
        rel = gindex - self.promo_slot_base
        if not self.config.promo_campaigns or rel < 0 or rel >= 3 * len(self.accounts):
            return None
        account, slot = self.accounts[rel // 3], rel % 3
        g = (day - account.promo_offset) // PROMO_DAYS
        ads = [ad for s in self.promo(account, g).adsets for ad in s.ads]
        return ads[slot]

    def ad_for_gindex(self, gindex: int, day: int) -> Ad | None:
        """A permanent ad by ``gindex``, or the promo slot's ad around ``day`` (lead ids carry both)."""
        return self.ads_by_gindex.get(gindex) or self.promo_ad_for(gindex, day)

    def find(self, ident: str):
        """Any object by id: permanent ones, and promo generations (their ids encode the generation)."""
        obj = self.by_id.get(ident)
        if obj is not None or len(ident) != 18 or not ident.isdigit():
            return obj
        hit = self._promo_prefixes.get(ident[:12])
        if hit is None:
            return None
        a, level, index = hit
        camp = self.promo(self.accounts[a], int(ident[12:]))
        if level == "campaign":
            return camp
        if level == "adset":
            return camp.adsets[index]
        return [ad for s in camp.adsets for ad in s.ads][index]

    def campaigns_of(self, account: Account, lo: int, hi: int) -> list[Campaign]:
        """Permanent campaigns plus the promo generations around ``[lo, hi]``, in serving order."""
        return list(account.campaigns) + self.promo_campaigns(account, lo, hi)

    def summary(self) -> dict:
        """The ``/_sandbox/world`` document: every id a test or config needs."""
        return {
            "seed": self.config.seed,
            "config": dataclasses.asdict(self.config),
            "user_id": self.user_id,
            "business": {"id": self.business.id, "name": self.business.name},
            "businesses": [{"id": b.id, "name": b.name} for b in self.businesses],
            "accounts": [
                {
                    "id": a.id,
                    "account_id": a.account_id,
                    "name": a.name,
                    "currency": a.currency,
                    "timezone_name": a.timezone_name,
                    "page_id": a.page.id if a.page else None,
                    "promote_page_ids": [p.id for p in a.promote_pages],
                    "business_id": a.business.id if a.business else None,
                    "managed_by_business_id": a.managed_by.id if a.managed_by else None,
                    "account_status": a.account_status,
                    "assigned_to_user": a.assigned,
                    "joins_after_days": a.joins_after_days,
                    "campaigns": [
                        {
                            "id": c.id,
                            "name": c.name,
                            "objective": c.objective,
                            "kind": c.kind,
                            "adsets": [
                                {
                                    "id": s.id,
                                    "name": s.name,
                                    "optimization_goal": s.optimization_goal,
                                    "ads": [ad.id for ad in s.ads],
                                }
                                for s in c.adsets
                            ],
                        }
                        for c in a.campaigns
                    ],
                }
                for a in self.accounts
            ],
            "pages": [
                {
                    "id": p.id,
                    "name": p.name,
                    "instagram_id": p.ig_id,
                    "instagram_username": p.ig_username,
                    "account_id": p.account.account_id if p.account else None,
                    "timezone_name": str(p.tz),
                    "forms": [f.id for f in p.forms],
                }
                for p in self.pages
            ],
            "forms": [
                {"id": f.id, "name": f.name, "page_id": f.page.id} for p in self.pages for f in p.forms
            ],
            "counts": {
                "accounts": len(self.accounts),
                "campaigns": sum(len(a.campaigns) for a in self.accounts),
                "adsets": sum(len(c.adsets) for a in self.accounts for c in a.campaigns),
                "ads": len(self.ads),
                "pages": len(self.pages),
                "forms": sum(len(p.forms) for p in self.pages),
            },
        }
