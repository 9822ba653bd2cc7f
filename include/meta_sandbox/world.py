"""The sandbox's world: ad accounts, campaigns, ad sets, ads, Pages, Instagram accounts, lead forms.

Guarantees:
- Everything is a pure function of ``WorldConfig`` (seed + scale knobs): two sandboxes with the
  same config have the same ids, names, currencies and timezones.
- Ids are numeric strings (accounts are addressed as ``act_<id>``).
- Campaigns alternate kinds: even index = lead generation (``OUTCOME_LEADS``), odd = messaging
  (``OUTCOME_ENGAGEMENT`` with ``CONVERSATIONS`` ad sets); each account promotes exactly one Page,
  and each Page has one Instagram professional account.
- Two more Pages no account promotes (``UNPROMOTED_PAGES``): one with lead forms that never
  collected a lead, one with no lead forms at all. Both have (organic) conversations. Their local
  dates are UTC (a Page's ``tz`` is its promoting account's timezone, else UTC).
Per-day facts (delivery, leads, conversations) are not stored here: see ``metrics.py``,
``leads.py`` and ``conversations.py``.
"""

from __future__ import annotations

import dataclasses
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

BRANDS = ["Acme Solar", "Bharat Homes", "Berlin Bikes", "Thames Tutors", "Hudson Dental", "Rio Fitness",
          "Harbour Realty", "Casa Verde", "Nordic Kitchens", "Lotus Clinic", "Atlas Movers", "Pine Insurance"]


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

    @property
    def id(self) -> str:
        return "act_" + self.account_id

    def ads(self) -> list[Ad]:
        return [ad for c in self.campaigns for s in c.adsets for ad in s.ads]


@dataclasses.dataclass(eq=False)
class Campaign:
    index: int
    id: str
    name: str
    account: Account
    kind: str  # "leads" | "messaging"
    objective: str
    adsets: list[AdSet] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(eq=False)
class AdSet:
    index: int
    id: str
    name: str
    campaign: Campaign
    optimization_goal: str
    destination_type: str
    daily_budget_cents: int
    ads: list[Ad] = dataclasses.field(default_factory=list)

    @property
    def account(self) -> Account:
        return self.campaign.account


@dataclasses.dataclass(eq=False)
class Ad:
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

    @property
    def campaign(self) -> Campaign:
        return self.adset.campaign

    @property
    def account(self) -> Account:
        return self.adset.campaign.account


@dataclasses.dataclass(eq=False)
class Page:
    index: int
    id: str
    name: str
    username: str
    account: Account | None  # the ad account promoting the Page (None: not promoted)
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


CUSTOM_QUESTIONS = [
    {"key": "preferred_contact_time", "label": "When should we call you?", "type": "CUSTOM",
     "options": ["Morning", "Afternoon", "Evening"]},
    {"key": "budget_range", "label": "What is your budget?", "type": "CUSTOM",
     "options": ["< 1k", "1k-5k", "5k-20k", "> 20k"]},
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
        gindex = 0
        for a in range(config.accounts):
            currency, tzname, cpm, lead_value = ACCOUNT_PROFILES[a % len(ACCOUNT_PROFILES)]
            brand = BRANDS[a % len(BRANDS)] + ("" if a < len(BRANDS) else f" {a // len(BRANDS) + 1}")
            acct = Account(
                index=a, account_id=rng.numeric_id(seed, "account", a, digits=16), name=f"{brand} ({currency})",
                currency=currency, timezone_name=tzname, tz=zoneinfo.ZoneInfo(tzname),
                cpm=cpm * (0.8 + 0.4 * rng.unit(rng.key(seed, "cpm", a))), lead_value=lead_value,
                created_day=17000 + a,
            )
            self.accounts.append(acct)
            self.by_id[acct.id] = acct
            slug = brand.lower().replace(" ", "")
            page = Page(
                index=a, id=rng.numeric_id(seed, "page", a), name=brand, username=slug, account=acct,
                ig_id=rng.numeric_id(seed, "ig", a, digits=17), ig_username=slug + ".official", tz=acct.tz,
            )
            acct.page = page
            self.pages.append(page)
            self.by_id[page.id] = page
            self.ig_pages[page.ig_id] = page
            for f in range(config.forms_per_page):
                form = LeadForm(
                    index=f, id=rng.numeric_id(seed, "form", a, f), name=f"{brand} lead form {f + 1}",
                    page=page, locale=["EN_US", "EN_GB", "DE_DE", "ES_LA"][(a + f) % 4],
                    questions=[CUSTOM_QUESTIONS[(a + f) % 3], CUSTOM_QUESTIONS[(a + f + 1) % 3]],
                    created_day=acct.created_day + 10 + f,
                )
                page.forms.append(form)
                self.by_id[form.id] = form
            for c in range(config.campaigns_per_account):
                kind = "leads" if c % 2 == 0 else "messaging"
                camp = Campaign(
                    index=c, id=rng.numeric_id(seed, "campaign", a, c, digits=18),
                    name=f"{brand} | {'Lead gen' if kind == 'leads' else 'Messaging'} {c // 2 + 1}",
                    account=acct, kind=kind,
                    objective="OUTCOME_LEADS" if kind == "leads" else "OUTCOME_ENGAGEMENT",
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
                        index=s, id=rng.numeric_id(seed, "adset", a, c, s, digits=18),
                        name=f"{camp.name} | Audience {s + 1}", campaign=camp, optimization_goal=goal,
                        destination_type=dest, daily_budget_cents=round(cpm * 100 * 5) * 100,
                    )
                    camp.adsets.append(adset)
                    self.by_id[adset.id] = adset
                    for d in range(config.ads_per_adset):
                        k = rng.key(seed, "ad", a, c, s, d)
                        u = rng.stream(k, 3)
                        ad = Ad(
                            gindex=gindex, id=rng.numeric_id(seed, "ad", a, c, s, d, digits=18),
                            name=f"{adset.name} | Creative {d + 1}", adset=adset, key=k,
                            base_impressions=800 + 4000 * u[0], ctr=0.006 + 0.02 * u[1],
                            form=page.forms[(s + d) % len(page.forms)] if kind == "leads" else None,
                            platform=(None if kind == "leads"
                                      else "messenger" if dest == "MESSENGER" else "instagram"),
                            creative_id=rng.numeric_id(seed, "creative", a, c, s, d, digits=18),
                        )
                        gindex += 1
                        adset.ads.append(ad)
                        self.by_id[ad.id] = ad
                        (page.lead_ads if kind == "leads" else page.messaging_ads).append(ad)
        for i, (name, has_forms) in enumerate(UNPROMOTED_PAGES):
            slug = name.lower().replace(" ", "")
            page = Page(
                index=len(self.pages), id=rng.numeric_id(seed, "unpromoted-page", i), name=name, username=slug,
                account=None, ig_id=rng.numeric_id(seed, "unpromoted-ig", i, digits=17),
                ig_username=slug + ".shop", tz=zoneinfo.ZoneInfo("UTC"), collects_leads=False,
            )
            self.pages.append(page)
            self.by_id[page.id] = page
            self.ig_pages[page.ig_id] = page
            for f in range(config.forms_per_page if has_forms else 0):
                form = LeadForm(
                    index=f, id=rng.numeric_id(seed, "unpromoted-form", i, f), name=f"{name} lead form {f + 1}",
                    page=page, locale="EN_US", questions=[CUSTOM_QUESTIONS[f % 3], CUSTOM_QUESTIONS[(f + 1) % 3]],
                    created_day=17000 + 10 + f,
                )
                page.forms.append(form)
                self.by_id[form.id] = form
        self.ads: list[Ad] = [ad for acct in self.accounts for ad in acct.ads()]
        self.ads_by_gindex = {ad.gindex: ad for ad in self.ads}

    def account(self, ident: str) -> Account | None:
        ident = ident if ident.startswith("act_") else "act_" + ident
        obj = self.by_id.get(ident)
        return obj if isinstance(obj, Account) else None

    def summary(self) -> dict:
        """The ``/_sandbox/world`` document: every id a test or config needs."""
        return {
            "seed": self.config.seed,
            "config": dataclasses.asdict(self.config),
            "user_id": self.user_id,
            "accounts": [
                {"id": a.id, "account_id": a.account_id, "name": a.name, "currency": a.currency,
                 "timezone_name": a.timezone_name, "page_id": a.page.id if a.page else None,
                 "campaigns": [
                     {"id": c.id, "name": c.name, "objective": c.objective, "kind": c.kind,
                      "adsets": [{"id": s.id, "name": s.name, "optimization_goal": s.optimization_goal,
                                  "ads": [ad.id for ad in s.ads]} for s in c.adsets]}
                     for c in a.campaigns]}
                for a in self.accounts
            ],
            "pages": [
                {"id": p.id, "name": p.name, "instagram_id": p.ig_id, "instagram_username": p.ig_username,
                 "account_id": p.account.account_id if p.account else None, "timezone_name": str(p.tz),
                 "forms": [f.id for f in p.forms]}
                for p in self.pages
            ],
            "forms": [{"id": f.id, "name": f.name, "page_id": f.page.id} for p in self.pages for f in p.forms],
            "counts": {
                "accounts": len(self.accounts),
                "campaigns": sum(len(a.campaigns) for a in self.accounts),
                "adsets": sum(len(c.adsets) for a in self.accounts for c in a.campaigns),
                "ads": len(self.ads),
                "pages": len(self.pages),
                "forms": sum(len(p.forms) for p in self.pages),
            },
        }
