"""Fault profiles: injected latency, transient errors, throttle bursts, failing/skipped/stalled jobs,
"too much data", dropped connections and null batch items.

Schema (YAML or JSON; every key optional; rates are probabilities per request in [0, 1])::

    name: chaos
    latency_ms: 0                 # added to every Graph request
    latency_jitter_ms: 0          # plus a deterministic 0..jitter
    transient_error_rate: 0.10    # codes 1/2, HTTP 500, is_transient: true
    throttle:
      burst_rate: 0.02            # chance that a request starts a burst
      burst_length: 5             # requests answered with a throttle error per burst
      codes: [17, 80000, 613]     # cycled per burst
      regain_minutes: 1           # estimated_time_to_regain_access in the BUC header
    jobs:
      failed_rate: 0.20           # async jobs ending "Job Failed" (error_code 2, subcode 1504043)
      skipped_rate: 0.0           # ending "Job Skipped"
      stalled_rate: 0.0           # stuck at stall_percent in "Job Running" forever
      stall_percent: 42
      queued_minutes: 0           # every job waits this long in "Job Not Started" at 0 % first (Meta's queue)
      running_at_100_seconds: 0   # then says "Job Running" at 100 % this long; its results answer 2601/1815107
      unreadable_reads: 0         # the first N result reads of a completed job still answer 2601/1815107
    too_much_data:
      max_rows: null              # rows above which sync -> 100/1487534, async -> Job Failed
      max_page_rows: null         # rows of a page (results, or any edge) above which -> code 1, HTTP 500
                                  # "reduce the amount of data" (nested expansions are not faulted)
    dropped_connection_rate: 0.0  # close the socket without a response
    null_batch_item_rate: 0.0     # batch items answered with null
    endpoints: []                 # if set, only these endpoints (stats names, e.g. "GET /{report_run_id}") get
                                  # latency/transient/throttle/drop faults
    conversations_order: newest_first  # pairs_swapped: /<page>/conversations lists each adjacent pair the
                                  # other way round (Meta documents newest-first for a conversation's
                                  # messages, not for this list: meta_api_facts.md section 6)
    arrivals_between_pages: false # true: every page after the first of a list edge (conversations, messages,
                                  # campaigns, ad sets, ads, forms, leads, accounts, Pages; not a report's
                                  # results) is served as if one item had arrived at the list's head since the
                                  # page before: paged by position, it starts with the last item of the page
                                  # before again (pages of one item are served as they are)
    updates_between_pages: 0      # N: before each of the next N pages after a first of /<page>/conversations,
                                  # the first conversation from that page on with a message to come receives it
                                  # (the clock moves on to it): it goes to the list's head, behind the cursor
    lost_access:                  # the token lost access to these ad accounts / Pages (not a rate: every request)
      accounts: []                # ad account ids (with or without act_): every request about the account, its
                                  # objects and report runs answers `account_error`
      account_error: missing      # missing: 100/33 "Unsupported get request. Object with ID ... cannot be loaded
                                  # due to missing permissions" (HTTP 400); permissions: "(#200) Permissions
                                  # error" (HTTP 403)
      pages: []                   # Page ids: every request about the Page (its token, forms, leads,
                                  # conversations) answers 100/33

Decisions are deterministic under the seed: the n-th Graph request (a counter under a lock) gets
the same decision in every run with the same seed and profile.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import threading

import yaml

from meta_sandbox import rng
from meta_sandbox.errors import GraphError

PROFILES: dict[str, dict] = {
    "none": {},
    "chaos": {
        "transient_error_rate": 0.10,
        "throttle": {"burst_rate": 0.02, "burst_length": 3, "codes": [17, 80000, 613], "regain_minutes": 1},
        "jobs": {"failed_rate": 0.20},
        "dropped_connection_rate": 0.02,
        "null_batch_item_rate": 0.05,
    },
    "flaky": {"transient_error_rate": 0.2},
    "throttled": {"throttle": {"burst_rate": 0.1, "burst_length": 5, "codes": [17, 80000, 613, 4]}},
    "slow": {"latency_ms": 200, "latency_jitter_ms": 100},
    "jobs_fail": {"jobs": {"failed_rate": 1.0}},
    "jobs_skip": {"jobs": {"skipped_rate": 1.0}},
    "jobs_stall": {"jobs": {"stalled_rate": 1.0, "stall_percent": 42}},
    "jobs_queued": {"jobs": {"queued_minutes": 5}},
    "jobs_slow_to_finish": {"jobs": {"running_at_100_seconds": 5, "unreadable_reads": 2}},
    "too_much_data": {"too_much_data": {"max_rows": 1000, "max_page_rows": 1000}},
    "drops": {"dropped_connection_rate": 0.2},
    "null_batch": {"null_batch_item_rate": 0.5},
    "jobs_half_fail": {"jobs": {"failed_rate": 0.5}},
}

CONVERSATIONS_ORDERS = ("newest_first", "pairs_swapped")

_THROTTLE_MESSAGES = {
    4: ("(#4) Application request limit reached", None),
    17: ("(#17) User request limit reached", 2446079),
    32: ("(#32) Page request limit reached", None),
    613: ("(#613) Calls to this api have exceeded the rate limit.", None),
    80000: (
        "(#80000) There have been too many calls from this ad-account. Wait a bit and try again. For more "
        "info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting.",
        2446079,
    ),
    80004: (
        "(#80004) There have been too many calls to this ad-account. Wait a bit and try again. For more "
        "info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting.",
        2446079,
    ),
}


@dataclasses.dataclass
class Profile:
    name: str = "none"
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    transient_error_rate: float = 0.0
    burst_rate: float = 0.0
    burst_length: int = 5
    throttle_codes: tuple = (17, 80000, 613)
    regain_minutes: int = 1
    failed_rate: float = 0.0
    skipped_rate: float = 0.0
    stalled_rate: float = 0.0
    stall_percent: int = 42
    queued_minutes: float = 0.0
    running_at_100_seconds: float = 0.0
    unreadable_reads: int = 0
    max_rows: int | None = None
    max_page_rows: int | None = None
    dropped_connection_rate: float = 0.0
    null_batch_item_rate: float = 0.0
    endpoints: tuple = ()
    lost_accounts: frozenset = frozenset()
    account_error: str = "missing"
    lost_pages: frozenset = frozenset()
    conversations_order: str = "newest_first"
    arrivals_between_pages: bool = False
    updates_between_pages: int = 0
    source: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict | None, name: str | None = None) -> Profile:
        data = dict(data or {})
        known = {
            "name",
            "latency_ms",
            "latency_jitter_ms",
            "transient_error_rate",
            "throttle",
            "jobs",
            "too_much_data",
            "dropped_connection_rate",
            "null_batch_item_rate",
            "endpoints",
            "profile",
            "lost_access",
            "conversations_order",
            "arrivals_between_pages",
            "updates_between_pages",
        }
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault profile keys: {sorted(unknown)}; known: {sorted(known)}")
        if "profile" in data:  # {"profile": "chaos", ...overrides}
            base_name = data.pop("profile")
            base = PROFILES.get(base_name)
            data.setdefault("name", base_name)
            if base is None:
                raise ValueError(f"unknown fault profile; known: {sorted(PROFILES)}")
            merged = json.loads(json.dumps(base))
            for k, v in data.items():
                if isinstance(v, dict) and isinstance(merged.get(k), dict):
                    merged[k].update(v)
                else:
                    merged[k] = v
            data = merged
        throttle = data.get("throttle") or {}
        jobs = data.get("jobs") or {}
        tmd = data.get("too_much_data") or {}
        lost = data.get("lost_access") or {}
        unknown_lost = set(lost) - {"accounts", "account_error", "pages"}
        if unknown_lost:
            raise ValueError(
                f"unknown lost_access keys: {sorted(unknown_lost)}; known: accounts, account_error, pages"
            )
        if lost.get("account_error", "missing") not in ("missing", "permissions"):
            raise ValueError(
                f"lost_access.account_error must be 'missing' or 'permissions', got {lost['account_error']!r}"
            )
        order = str(data.get("conversations_order") or "newest_first")
        if order not in CONVERSATIONS_ORDERS:
            raise ValueError(f"conversations_order must be one of {CONVERSATIONS_ORDERS}, got {order!r}")
        p = cls(
            name=str(data.get("name") or name or "custom"),
            latency_ms=float(data.get("latency_ms") or 0),
            latency_jitter_ms=float(data.get("latency_jitter_ms") or 0),
            transient_error_rate=float(data.get("transient_error_rate") or 0),
            burst_rate=float(throttle.get("burst_rate") or 0),
            burst_length=int(throttle.get("burst_length") or 5),
            throttle_codes=tuple(int(c) for c in (throttle.get("codes") or (17, 80000, 613))),
            regain_minutes=int(throttle.get("regain_minutes") or 1),
            failed_rate=float(jobs.get("failed_rate") or 0),
            skipped_rate=float(jobs.get("skipped_rate") or 0),
            stalled_rate=float(jobs.get("stalled_rate") or 0),
            stall_percent=int(jobs.get("stall_percent") or 42),
            queued_minutes=float(jobs.get("queued_minutes") or 0),
            running_at_100_seconds=float(jobs.get("running_at_100_seconds") or 0),
            unreadable_reads=int(jobs.get("unreadable_reads") or 0),
            max_rows=int(tmd["max_rows"]) if tmd.get("max_rows") is not None else None,
            max_page_rows=int(tmd["max_page_rows"]) if tmd.get("max_page_rows") is not None else None,
            dropped_connection_rate=float(data.get("dropped_connection_rate") or 0),
            null_batch_item_rate=float(data.get("null_batch_item_rate") or 0),
            endpoints=tuple(data.get("endpoints") or ()),
            lost_accounts=frozenset(str(a).removeprefix("act_") for a in lost.get("accounts") or ()),
            account_error=str(lost.get("account_error") or "missing"),
            lost_pages=frozenset(str(p) for p in lost.get("pages") or ()),
            conversations_order=order,
            arrivals_between_pages=_flag(data, "arrivals_between_pages"),
            updates_between_pages=_count(data, "updates_between_pages"),
            source=data,
        )
        for code in p.throttle_codes:
            if code not in _THROTTLE_MESSAGES:
                raise ValueError(f"throttle code {code} not one of {sorted(_THROTTLE_MESSAGES)}")
        return p


def _flag(data: dict, key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false, got {value!r}")
    return value


def _count(data: dict, key: str) -> int:
    value = data.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key} must be a whole number >= 0, got {value!r}")
    return value


def load(spec: str | dict | None) -> Profile:
    """A profile from a name, a YAML/JSON file path, inline JSON/YAML text or a dict."""
    if not spec:
        return Profile()
    if isinstance(spec, dict):
        return Profile.from_dict(spec)
    text = str(spec).strip()
    if text in PROFILES:
        return Profile.from_dict(PROFILES[text], name=text)
    path = pathlib.Path(text)
    if not text.startswith("{") and path.suffix in (".yaml", ".yml", ".json") and path.exists():
        return Profile.from_dict(yaml.safe_load(path.read_text()) or {}, name=path.stem)
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(
            f"--faults must be one of {sorted(PROFILES)}, a YAML path or a mapping; got {text!r}"
        )
    return Profile.from_dict(data)


@dataclasses.dataclass
class Decision:
    drop: bool = False
    latency_s: float = 0.0
    error: GraphError | None = None
    null_item: bool = False


class Faults:
    """The active profile plus the seeded request counter that makes its decisions."""

    def __init__(self, seed: int, profile: Profile | None = None):
        self.seed = seed
        self._lock = threading.Lock()
        self.profile = profile or Profile()
        self._n = 0
        self._burst_left = 0
        self._burst_code = 0
        self._bursts = 0
        self._jobs = 0
        self._updates_left = self.profile.updates_between_pages

    def set(self, profile: Profile) -> None:
        with self._lock:
            self.profile = profile
            self._n = 0
            self._burst_left = 0
            self._bursts = 0
            self._jobs = 0
            self._updates_left = profile.updates_between_pages

    def take_update(self) -> bool:
        """Whether one more conversation is to be updated before a page (``updates_between_pages``)."""
        with self._lock:
            if self._updates_left <= 0:
                return False
            self._updates_left -= 1
            return True

    def max_rows(self) -> int | None:
        return self.profile.max_rows

    def max_page_rows(self) -> int | None:
        return self.profile.max_page_rows

    def _u(self, n: int, salt: int) -> float:
        return rng.unit(rng.mix64((self.seed * 0x100000001B3) ^ (n * 0x9E3779B97F4A7C15) ^ salt))

    def decide(self, endpoint: str, batch_item: bool = False) -> Decision:
        """The fault (if any) for the next request; ``batch_item`` ones can also be nulled."""
        p = self.profile
        d = Decision()
        if p.name == "none" and not p.source:
            return d
        with self._lock:
            self._n += 1
            n = self._n
            targeted = not p.endpoints or endpoint in p.endpoints
            if batch_item and p.null_batch_item_rate and self._u(n, 0x4E) < p.null_batch_item_rate:
                d.null_item = True
                return d
            if not targeted:
                return d
            if p.latency_ms or p.latency_jitter_ms:
                d.latency_s = (p.latency_ms + p.latency_jitter_ms * self._u(n, 0x1A)) / 1000.0
            if not batch_item and p.dropped_connection_rate and self._u(n, 0xD7) < p.dropped_connection_rate:
                d.drop = True
                return d
            if self._burst_left <= 0 and p.burst_rate and self._u(n, 0xB5) < p.burst_rate:
                self._burst_left = p.burst_length
                self._burst_code = p.throttle_codes[self._bursts % len(p.throttle_codes)]
                self._bursts += 1
            if self._burst_left > 0:
                self._burst_left -= 1
                msg, sub = _THROTTLE_MESSAGES[self._burst_code]
                err = GraphError(
                    msg,
                    self._burst_code,
                    subcode=sub,
                    transient=True if self._burst_code in (4, 17) else None,
                )
                err.throttle = (None, p.regain_minutes)
                d.error = err
                return d
            if p.transient_error_rate and self._u(n, 0x7E) < p.transient_error_rate:
                code = 1 if self._u(n, 0x7F) < 0.5 else 2
                from meta_sandbox.errors import transient

                d.error = transient(code)
        return d

    def job_fate(self) -> tuple[str, int]:
        """("ok" | "failed" | "skipped" | "stalled", stall percent) for the next async job."""
        p = self.profile
        with self._lock:
            self._jobs += 1
            u = self._u(self._jobs, 0x10B)
        if u < p.failed_rate:
            return "failed", 0
        u -= p.failed_rate
        if u < p.skipped_rate:
            return "skipped", 0
        u -= p.skipped_rate
        if u < p.stalled_rate:
            return "stalled", p.stall_percent
        return "ok", 0

    def lost_access(self, account_id: str | None, page_id: str | None, ident: str) -> GraphError | None:
        """The error for a request about an ad account or Page the token lost access to (else None)."""
        p = self.profile
        if account_id and str(account_id) in p.lost_accounts:
            if p.account_error == "permissions":
                return GraphError("(#200) Permissions error", 200, status=403)
            from meta_sandbox.errors import missing_object

            return missing_object(ident)
        if page_id and str(page_id) in p.lost_pages:
            from meta_sandbox.errors import missing_object

            return missing_object(ident)
        return None

    def describe(self) -> dict:
        return {"name": self.profile.name, **self.profile.source}
