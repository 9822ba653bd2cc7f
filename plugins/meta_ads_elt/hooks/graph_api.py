"""MetaGraphApiHook: the only code that speaks HTTP to the Graph API.

Guarantees
----------
* One HTTP path for sync (``call``, ``batch``, ``paginate``: operators) and async (``acall``,
  ``abatch``: triggers) calls. Only the transport differs (``requests`` through the SDK's session, or
  ``aiohttp``); both send what :func:`graph_request` builds (URL, the SDK's parameter encoding, the
  token with its ``appsecret_proof`` whenever an app secret is set), read the reply in one place
  (:meth:`MetaGraphApiHook._read`: usage headers, JSON, the error class) and retry under one tenacity
  policy (:meth:`MetaGraphApiHook._retry_policy`, from :func:`meta_ads_elt.errors.is_retryable`).
* Every session is the hook's own, with the Connection's timeout and base URL (never the SDK's
  process-wide default API nor the class attribute ``FacebookSession.GRAPH``, no crash reporter, no SDK
  debug printing); triggers take theirs from :meth:`MetaGraphApiHook.async_session`.
* Every call goes through the process-wide :mod:`rate-limit governor <meta_ads_elt.governor>` (before the
  call, and reading usage headers after it, errors included). A wait longer than ``max_wait_seconds``
  (Meta's regain time, say) fails at once with :class:`~meta_ads_elt.errors.MetaRateLimitWaitError`
  naming the time to retry, instead of holding the worker.
* Quotas counted per second (Instagram Conversations API: 2 calls a second per Instagram account,
  research/meta_api_facts.md section 2.2), which usage headers do not announce, are kept by a
  :class:`~meta_ads_elt.pacing.CallPacer` the caller passes (``pacer=`` of :meth:`call`,
  :meth:`paginate`, :meth:`batch`): the hook waits in it right before each HTTP send, after the
  governor, and counts the call from its answer (:meth:`~meta_ads_elt.pacing.CallPacer.sending`), for
  every attempt (retries, pages asked again smaller, batch rounds re-asking items, the repeat after a
  Page token renewal), a batch call counting one call per item (section 8). A batch paced so is sent in
  calls of at most ``pacer.calls`` items (:func:`batch_call_size`).
* Retries: transient errors (codes 1, 2, ``is_transient``, HTTP 5xx, timeouts, dropped connections) with
  exponential backoff and jitter; throttles (4, 17, 32, 341, 613, 80000-80014) after the wait Meta
  announces. Fatal errors (190 token, 10/200-299 permission, 100 parameter, other 4xx) are raised at
  once as :class:`~meta_ads_elt.errors.MetaFatalError` subclasses with a message telling the user what
  to do; Airflow does not retry them either. One exception: a call of a Page hook (:meth:`for_page`) that
  Meta refuses with a token error (190: a Page token from a short-lived user token lives one hour) gets a
  new Page token with the Connection's user token and is made once more (plain calls, every page of a
  :meth:`paginate`, :meth:`batch` calls and their items); if the user token is refused, that error stays
  fatal.
* Tokens and proofs never appear in a log line, exception message or returned URL (``redaction.scrub``),
  and they are registered with Airflow's secrets masker.
* The hook holds no job state; it is safe to share between threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import random
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any
from urllib.parse import urlencode

from airflow.sdk import BaseHook
from tenacity import (
    AsyncRetrying,
    AttemptManager,
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
)

from meta_ads_elt.errors import (
    MetaApiError,
    MetaConfigError,
    MetaDataTooLargeError,
    MetaFatalError,
    MetaRetryableError,
    MetaThrottledError,
    MetaTokenError,
    classify,
    classify_transport,
    is_retryable,
    rate_limit_wait_error,
)
from meta_ads_elt.get_provider_info import (
    CONN_TYPE,
    DEFAULT_API_VERSION,
    DEFAULT_BASE_URL,
    DEFAULT_INSTAGRAM_CALLS_PER_SECOND,
    DEFAULT_TIMEOUT_SECONDS,
)
from meta_ads_elt.governor import RateLimitGovernor, get_governor
from meta_ads_elt.pacing import CallPacer
from meta_ads_elt.redaction import install_log_filter, register_secret, scrub

DEFAULT_TIMEOUT = float(DEFAULT_TIMEOUT_SECONDS)
DEFAULT_MAX_WAIT_SECONDS = 30 * 60.0
"""Longest rate-limit wait a call accepts before failing with the time to retry (config:
``max_rate_limit_wait_minutes``)."""
BATCH_MAX = 50
"""Most operations Meta takes in one batch call."""
BATCH_ITEMS = "batch items"
"""How retry warnings name a round of batch items asked again."""
_API_VERSION_RE = re.compile(r"^v\d+\.\d+$")
GraphPath = str | Sequence[Any]
"""A Graph path: ``"act_1/insights"`` or ``("act_1", "insights")`` (never a URL)."""
Params = dict[str, Any] | None


@dataclass(frozen=True)
class GraphSettings:
    """What a hook needs from its Connection, validated."""

    access_token: str
    app_id: str | None
    app_secret: str | None
    api_version: str
    base_url: str
    timeout: float
    instagram_calls_per_second: int = DEFAULT_INSTAGRAM_CALLS_PER_SECOND

    @property
    def appsecret_proof(self) -> str | None:
        if not self.app_secret:
            return None
        import hashlib
        import hmac

        return hmac.new(self.app_secret.encode(), self.access_token.encode(), hashlib.sha256).hexdigest()

    def auth_params(self) -> dict[str, str]:
        params = {"access_token": self.access_token}
        if proof := self.appsecret_proof:
            params["appsecret_proof"] = proof
        return params


CONNECTION_EXTRAS = (
    "app_id",
    "app_secret",
    "api_version",
    "base_url",
    "timeout",
    "access_token",
    "instagram_calls_per_second",
)
"""The keys a ``meta_graph_api`` Connection's extras may hold (anything else is a typo we refuse)."""
MAX_TIMEOUT = 3600.0
_UI_PREFIX = "extra__meta_graph_api__"  # how Airflow 2-style connection forms store custom fields
_EXTRA_EXAMPLE = '{"app_id": "1234567890", "app_secret": "...", "base_url": "https://graph.facebook.com"}'


def _extras(conn: Any, where: str) -> dict[str, Any]:
    """The Extra field as a dict, parsed here so that bad JSON is an error (Airflow's ``extra_dejson``
    logs it and returns ``{}``, which would silently send everything to graph.facebook.com)."""
    raw = conn.extra
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise MetaConfigError(
                f"{where}: its Extra field is not valid JSON ({exc.args[0].split(':')[0]}); write it as a JSON "
                f"object such as {_EXTRA_EXAMPLE}"
            ) from None
    if not isinstance(raw, dict):
        raise MetaConfigError(
            f"{where}: its Extra field is a JSON {type(raw).__name__}, not an object; write it as {_EXTRA_EXAMPLE}"
        )
    extra = {str(k).removeprefix(_UI_PREFIX): v for k, v in raw.items()}
    for key in extra:
        if key not in CONNECTION_EXTRAS:
            raise MetaConfigError(
                f"{where}: extra {key!r} is not a setting of this hook; allowed extras are "
                f"{', '.join(CONNECTION_EXTRAS)} (check the spelling)"
            )
    return {k: v for k, v in extra.items() if v not in (None, "")}


def _check_secret(value: Any, field: str, where: str) -> str:
    """A token or app secret: a non-empty string without spaces or line breaks (never echoed)."""
    if not isinstance(value, str):
        raise MetaConfigError(
            f"{where}: {field} must be a string, got a {type(value).__name__} (value not shown)"
        )
    if value != value.strip() or any(ch.isspace() for ch in value):
        raise MetaConfigError(
            f"{where}: {field} contains spaces or a line break (value not shown: it is a secret); paste it "
            "again without them"
        )
    return value


def _check_base_url(value: Any, where: str) -> str:
    from urllib.parse import urlsplit

    allowed = f"an http(s) URL with only a host (and port), such as {DEFAULT_BASE_URL} or http://127.0.0.1:8765 for the sandbox"
    if not isinstance(value, str):
        raise MetaConfigError(f"{where}: extra base_url = {value!r}: must be {allowed}")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MetaConfigError(f"{where}: extra base_url = {value!r}: must be {allowed}")
    try:
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        raise MetaConfigError(
            f"{where}: extra base_url = {value!r} has an invalid port; must be {allowed}"
        ) from None
    if parts.username or parts.password:
        raise MetaConfigError(
            f"{where}: extra base_url must not carry credentials; the token goes in Password"
        )
    if parts.path.strip("/"):
        version = (
            " (the Graph API version goes in extra api_version)"
            if parts.path.strip("/").startswith("v")
            else ""
        )
        raise MetaConfigError(
            f"{where}: extra base_url = {value!r} has a path {parts.path!r}{version}; must be {allowed}"
        )
    if parts.query or parts.fragment:
        raise MetaConfigError(
            f"{where}: extra base_url = {value!r} has a query or fragment; must be {allowed}"
        )
    return f"{parts.scheme}://{parts.netloc}"


def settings_from_connection(conn: Any, conn_id: str, access_token: str | None = None) -> GraphSettings:
    """Validate every field of a Connection into :class:`GraphSettings`.

    Raises :class:`MetaConfigError` (not retried) whose first line names the Connection, the field,
    its value (never a secret's) and what is allowed.
    """
    where = f"Connection '{conn_id}'"
    conn_type = getattr(conn, "conn_type", None)
    if conn_type not in (None, "", MetaGraphApiHook.conn_type):
        raise MetaConfigError(
            f"{where}: conn_type = {conn_type!r}: must be '{MetaGraphApiHook.conn_type}' (Meta Graph API)"
        )
    for field, use in (
        ("host", "put the API URL in extra base_url"),
        ("login", "put the token in Password"),
        ("schema", "leave it empty"),
        ("port", "put it in extra base_url"),
    ):
        value = getattr(conn, field, None)
        if value not in (None, ""):
            raise MetaConfigError(f"{where}: field {field} = {value!r} is not used by this hook; {use}")
    extra = _extras(conn, where)
    stored = conn.password or None
    if stored is not None and extra.get("access_token") and extra["access_token"] != stored:
        raise MetaConfigError(
            f"{where}: both Password and extra access_token hold a token, and they differ; keep only Password"
        )
    token = access_token or stored or extra.get("access_token")
    if not token:
        raise MetaConfigError(
            f"{where} has no access token: put the Meta access token (a long-lived user or system-user token) "
            f"in its Password field (conn_type {MetaGraphApiHook.conn_type})."
        )
    token = _check_secret(token, "the access token (Password)", where)
    raw_version = extra.get("api_version", DEFAULT_API_VERSION)
    api_version = str(raw_version).strip()
    if api_version and not api_version.startswith("v"):
        api_version = "v" + api_version
    if not _API_VERSION_RE.match(api_version):
        raise MetaConfigError(
            f"{where}: extra api_version = {raw_version!r}: must be a Graph API version such as "
            f"{DEFAULT_API_VERSION!r}"
        )
    base_url = _check_base_url(extra.get("base_url", DEFAULT_BASE_URL), where)
    raw_timeout = extra.get("timeout", DEFAULT_TIMEOUT)
    try:
        timeout = float(raw_timeout)
        if isinstance(raw_timeout, bool) or not 0 < timeout <= MAX_TIMEOUT:
            raise ValueError
    except (TypeError, ValueError):
        raise MetaConfigError(
            f"{where}: extra timeout = {raw_timeout!r}: must be a number of seconds above 0 and at most "
            f"{MAX_TIMEOUT:.0f}, e.g. {DEFAULT_TIMEOUT:.0f}"
        ) from None
    raw_pace = extra.get("instagram_calls_per_second", DEFAULT_INSTAGRAM_CALLS_PER_SECOND)
    try:
        pace = int(raw_pace)
        if isinstance(raw_pace, bool) or pace != float(raw_pace) or pace < 1:
            raise ValueError
    except (TypeError, ValueError):
        raise MetaConfigError(
            f"{where}: extra instagram_calls_per_second = {raw_pace!r}: must be a whole number of calls of at "
            f"least 1; Meta allows {DEFAULT_INSTAGRAM_CALLS_PER_SECOND} (leave it unset for Meta)"
        ) from None
    app_secret = extra.get("app_secret")
    if app_secret is not None:
        app_secret = _check_secret(app_secret, "extra app_secret", where)
    app_id = extra.get("app_id")
    if app_id is not None:
        if (
            isinstance(app_id, bool)
            or not isinstance(app_id, str | int)
            or not str(app_id).strip()
            or any(ch.isspace() for ch in str(app_id))
        ):
            raise MetaConfigError(
                f"{where}: extra app_id = {app_id!r}: must be the app's id, e.g. '1234567890'"
            )
        app_id = str(app_id)
    for secret in (token, app_secret):
        register_secret(secret)
    settings = GraphSettings(token, app_id, app_secret, api_version, base_url, timeout, pace)
    register_secret(settings.appsecret_proof)
    return settings


def _listed_before(item: Any, listed_ids: set[str]) -> bool:
    """Whether ``item`` (a row of a paged edge) carries an ``id`` this walk yielded already; records it."""
    item_id = item.get("id") if isinstance(item, dict) else None
    if item_id is None:
        return False  # rows without ids (Insights rows, permissions) are never taken for one another
    if str(item_id) in listed_ids:
        return True
    listed_ids.add(str(item_id))
    return False


def _path_tuple(path: str | Sequence[Any]) -> tuple[str, ...]:
    if isinstance(path, str):
        if "://" in path:
            # Never follow server-supplied URLs (paging.next carries the token and could point anywhere).
            raise ValueError("MetaGraphApiHook takes Graph paths such as 'act_1/insights', not URLs")
        return tuple(path.strip("/").split("/")) if path.strip("/") else ()
    return tuple(str(p) for p in path)


def _encode_params(params: dict[str, Any]) -> dict[str, str]:
    """The SDK's wire encoding: dicts, lists and bools as compact sorted JSON, the rest as str (``None``
    values are left out, as the SDK's requests session leaves them out)."""
    out = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, dict | list | tuple | bool):
            out[key] = json.dumps(value, sort_keys=True, separators=(",", ":"))
        else:
            out[key] = str(value)
    return out


def field_expansion(edge: str, params: dict[str, Any], fields: Sequence[str]) -> str:
    """``edge`` read inside a node's ``fields`` (Graph API field expansion, seed 002:
    ``<edge>.<param>(<value>)...{<fields>}``), e.g. ``insights.level(account).limit(500){spend}``: one
    call reads the node's fields and the first page of that edge. Values are encoded as on the wire
    (:func:`_encode_params`); a value holding ``(`` or ``)`` cannot be expressed and is refused."""
    modifiers = []
    for key, value in _encode_params(params).items():
        if "(" in value or ")" in value:
            raise ValueError(f"parameter {key}={value!r} cannot be sent inside a field expansion")
        modifiers.append(f".{key}({value})")
    return f"{edge}{''.join(modifiers)}{{{','.join(fields)}}}"


def _scope_of(path: tuple[str, ...]) -> str | None:
    if path and path[0].startswith("act_"):
        return path[0].removeprefix("act_")
    return None


@dataclass(frozen=True)
class GraphRequest:
    """One Graph call as it goes on the wire, the same for the sync and the async transport."""

    method: str
    url: str
    query: dict[str, str]
    data: dict[str, str] | None
    scope: str | None
    """The ad account / Page id whose rate-limit budget the call spends (the governor's scope)."""
    what: str
    """``GET /act_1/insights``: how messages name the call (no token, no parameters)."""
    calls: int = 1
    """How many calls Meta counts this request as: one per item for a batch call (meta_api_facts.md
    section 8), what a :class:`~meta_ads_elt.pacing.CallPacer` waits for."""


def graph_request(
    settings: GraphSettings,
    method: str,
    path: str | Sequence[Any],
    params: dict | None = None,
    scope: str | None = None,
) -> GraphRequest:
    """The one way a call is put on the wire: URL, Meta's parameter encoding, and the token with its
    ``appsecret_proof`` (:meth:`GraphSettings.auth_params`) in the query string, for every method."""
    method = method.upper()
    tpath = _path_tuple(path)
    where = "/".join(tpath)
    encoded = _encode_params(params or {})
    in_query = method in ("GET", "DELETE")
    batch = (params or {}).get("batch") if not tpath else None
    return GraphRequest(
        method=method,
        url=f"{settings.base_url}/{settings.api_version}/{where}",
        query={**settings.auth_params(), **(encoded if in_query else {})},
        data=None if in_query else encoded,
        scope=scope or _scope_of(tpath),
        what=f"{method} /{where}",
        calls=len(batch) if isinstance(batch, list | tuple) and batch else 1,
    )


def batch_call_size(pacer: CallPacer | None) -> int:
    """Most operations in one batch call: ``BATCH_MAX``, or fewer under ``pacer`` (each item is a call to
    Meta, so a batch call may hold no more than the quota lets out at once)."""
    return min(pacer.calls, BATCH_MAX) if pacer is not None else BATCH_MAX


@functools.cache
def _sdk_headers() -> dict[str, str]:
    """The SDK's request headers (its User-Agent), sent by both transports."""
    from facebook_business.api import FacebookAdsApi

    return dict(FacebookAdsApi.HTTP_DEFAULT_HEADERS)


def _json_body(raw: Any) -> Any:
    """A reply's body as JSON (``None`` when it is empty or not JSON); a batch item may be parsed already."""
    if not isinstance(raw, str | bytes | bytearray):
        return raw
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _op_what(op: dict) -> str:
    """How messages name a batch operation: its method and path, without the query."""
    return f"{op.get('method', 'GET')} /{op['relative_url'].split('?')[0]}"


class _ItemsPending(MetaRetryableError):
    """Some items of a batch are still unanswered (null) or failing with a retryable error."""


_RETRY_IF_RETRYABLE = retry_if_exception(is_retryable)
_RETRY_IF_ITEMS_PENDING = retry_if_exception_type(_ItemsPending)


def _failed_attempt_error(state: RetryCallState) -> BaseException | None:
    """The error of the attempt tenacity is about to retry (``wait`` and ``before_sleep`` run only after an
    attempt, so it has an outcome)."""
    assert state.outcome is not None
    return state.outcome.exception()


class _BatchRun:
    """One :meth:`~MetaGraphApiHook.batch` / :meth:`~MetaGraphApiHook.abatch`: the operations, the
    answers so far and what is still pending. Each round asks the pending items again, in calls of up to
    ``call_size`` (:func:`batch_call_size`); Meta's ``null`` items and retryable item errors stay pending
    until the last round, where a retryable error is returned as the item's answer (``error``)."""

    def __init__(
        self, hook: MetaGraphApiHook, requests: list[dict], scope: str | None, call_size: int = BATCH_MAX
    ) -> None:
        self.hook, self.scope, self.call_size = hook, scope, call_size
        self.ops = [hook.batch_op(r) for r in requests]
        self.results: list[dict | None] = [None] * len(requests)
        self.pending = list(range(len(requests)))
        self.chunks: list[list[int]] = []

    def payloads(self) -> list[dict[str, Any]]:
        """The parameters of this round's batch calls."""
        size = self.call_size
        self.chunks = [self.pending[i : i + size] for i in range(0, len(self.pending), size)]
        return [{"batch": [self.ops[i] for i in chunk], "include_headers": "true"} for chunk in self.chunks]

    def accept(self, attempt: AttemptManager, replies: list[Any]) -> None:
        """Keep the answered items of this round's replies; raise :class:`_ItemsPending` if some are not."""
        round_no = attempt.retry_state.attempt_number
        last = round_no >= self.hook.max_attempts
        for chunk, reply in zip(self.chunks, replies, strict=True):
            if not isinstance(reply, list):
                raise MetaRetryableError("Graph batch reply was not a list")
            for i, item in zip(chunk, reply, strict=False):
                if not isinstance(item, dict):  # null: Meta timed the item out
                    continue
                answer = self.hook._read_item(self.ops[i], item, self.scope)
                error = answer["error"]
                if isinstance(error, MetaRetryableError) and not last:
                    if isinstance(error, MetaThrottledError):
                        self.hook.governor.block(
                            self.scope, max(error.retry_after, self.hook._backoff(round_no))
                        )
                    continue
                self.results[i] = answer
        self.pending = [i for i in self.pending if self.results[i] is None]
        if self.pending:
            named = ", ".join(_op_what(self.ops[i]) for i in self.pending[:10])
            more = f" and {len(self.pending) - 10} more" if len(self.pending) > 10 else ""
            raise _ItemsPending(
                f"{len(self.pending)} batch item(s) still unanswered or failing after {round_no} attempts: "
                f"{named}{more}"
            )


_PINNED_CONNECTIONS: dict[str, Any] = {}
"""Connections fetched once per process (:meth:`MetaGraphApiHook.pin_connection`), by conn id."""


class MetaGraphApiHook(BaseHook):
    """Talks to the Meta Graph / Marketing API through one Airflow Connection (see module docstring).

    :param meta_conn_id: Connection of type ``meta_graph_api``: password = access token; extras
        ``app_id``, ``app_secret``, ``api_version`` (default v26.0), ``base_url``, ``timeout`` (s).
    :param access_token: use this token instead of the connection's (Page tokens, see :meth:`for_page`).
    :param governor: rate-limit governor (default: the process-wide one).
    :param max_attempts: attempts per call for retryable errors (throttles included).
    :param max_wait_seconds: longest rate-limit wait before a call fails with the time to retry.
    """

    conn_name_attr = "meta_conn_id"
    default_conn_name = "meta_default"
    conn_type = CONN_TYPE
    hook_name = "Meta Graph API"
    # The Connection form (labels, hidden fields, the app secret as a password) is declared once, in
    # meta_ads_elt.get_provider_info (Airflow 3's conn-fields / ui-field-behaviour).

    def __init__(
        self,
        meta_conn_id: str = default_conn_name,
        *,
        access_token: str | None = None,
        governor: RateLimitGovernor | None = None,
        max_attempts: int = 8,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        max_wait_seconds: float = DEFAULT_MAX_WAIT_SECONDS,
    ) -> None:
        super().__init__()
        self.meta_conn_id = meta_conn_id
        self.max_wait_seconds = max_wait_seconds
        self._access_token = access_token
        self.governor = governor or get_governor()
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._counter_lock = threading.Lock()
        self.calls = 0
        self.retries = 0
        self._page_hooks: dict[str, MetaGraphApiHook] = {}
        self._settings_override: GraphSettings | None = None
        self.page_name: str | None = None  # the Page's name, on a hook made by for_page
        self._page_of: tuple[MetaGraphApiHook, str] | None = None  # (user hook, Page id), by for_page
        self._token_lock = threading.Lock()
        self.token_renewals = 0
        """How many times a Page hook fetched its Page token again after Meta refused it (190)."""
        register_secret(access_token)
        # The HTTP libraries' loggers; the hook's own log is a structlog logger, masked by Airflow's
        # secrets masker (install_log_filter only filters logging.Logger objects).
        install_log_filter()

    # -- connection and SDK objects ---------------------------------------------------------------
    @classmethod
    def pin_connection(cls, meta_conn_id: str) -> None:
        """Fetch the Connection once, in the calling thread, for every hook of this process.

        For tasks that run several extractions in threads (``meta_ads_elt.batches``): the Task SDK's
        channel to its supervisor shares one ``asyncio.Lock`` between the event loops of all threads, so
        concurrent connection look-ups from threads (the non-deferrable Insights poll runs an event loop
        per thread) can wait on each other forever."""
        if meta_conn_id not in _PINNED_CONNECTIONS:
            _PINNED_CONNECTIONS[meta_conn_id] = cls(meta_conn_id).connection

    @cached_property
    def connection(self):
        """The Airflow Connection (fetched once)."""
        if self.meta_conn_id in _PINNED_CONNECTIONS:
            return _PINNED_CONNECTIONS[self.meta_conn_id]
        try:
            return self.get_connection(self.meta_conn_id)
        except Exception as exc:
            state = (
                "is not defined"
                if "NotFound" in type(exc).__name__
                else f"could not be read ({type(exc).__name__})"
            )
            raise MetaConfigError(
                f"Airflow connection '{self.meta_conn_id}' {state}. "
                "Create it with conn_type meta_graph_api, the access token as password and extras "
                "app_id/app_secret/api_version/base_url/timeout."
            ) from None

    @cached_property
    def settings(self) -> GraphSettings:
        """Validated token, proof, version, base URL and timeout; fails early with a precise message."""
        if self._settings_override is not None:
            return self._settings_override
        return settings_from_connection(self.connection, self.meta_conn_id, self._access_token)

    async def asettings(self) -> GraphSettings:
        """Same as :attr:`settings`, for async callers (triggers): never blocks the event loop."""
        if "settings" in self.__dict__:
            return self.settings
        if self._settings_override is None:
            pinned = _PINNED_CONNECTIONS.get(self.meta_conn_id)
            conn = pinned if pinned is not None else await self.aget_connection(self.meta_conn_id)
            self.__dict__["connection"] = conn
        return self.settings

    def url_for(self, path: str | Sequence[Any]) -> str:
        """The URL a call of ``path`` goes to (no token in it)."""
        return graph_request(self.settings, "GET", path).url

    # -- transports: the only code that differs between sync and async ---------------------------
    @cached_property
    def _http(self):
        """The sync transport: the SDK's ``requests`` session (its CA bundle for graph.facebook.com),
        pooled for the operators' threads, without default parameters: token and proof come with each
        request from :func:`graph_request`, as on the async transport."""
        from facebook_business.session import FacebookSession
        from requests.adapters import HTTPAdapter

        s = self.settings
        session = FacebookSession(timeout=s.timeout).requests
        session.params.clear()
        if not s.base_url.startswith("https://graph.facebook.com"):
            session.verify = True  # the SDK's pinned CA bundle only fits graph.facebook.com
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=64, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        return session

    @contextlib.asynccontextmanager
    async def async_session(self) -> AsyncIterator[Any]:
        """The async transport: an ``aiohttp`` session with the Connection's timeout, for a series of
        :meth:`acall` / :meth:`abatch` (``async with hook.async_session() as session``). The hook owns
        every session: triggers take theirs from here."""
        import aiohttp

        s = await self.asettings()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=s.timeout)) as session:
            yield session

    @contextlib.asynccontextmanager
    async def _using(self, session: Any) -> AsyncIterator[Any]:
        """``session``, or a session of this hook's own for the duration when it is None."""
        if session is not None:
            yield session
            return
        async with self.async_session() as own:
            yield own

    def _send(self, request: GraphRequest, pacer: CallPacer | None = None) -> tuple[int, Any, bytes]:
        """Send ``request``; with ``pacer``, once it lets ``request.calls`` more calls out, counted until
        the answer is back (:meth:`CallPacer.sending`)."""
        from requests import RequestException

        http, headers, timeout = self._http, _sdk_headers(), self.settings.timeout
        try:
            with pacer.sending(request.calls) if pacer is not None else contextlib.nullcontext():
                response = http.request(
                    request.method,
                    request.url,
                    params=request.query,
                    data=request.data,
                    headers=headers,
                    timeout=timeout,
                )
        except RequestException as exc:
            raise classify_transport(exc, what=request.what) from None
        return response.status_code, response.headers, response.content

    async def _asend(self, request: GraphRequest, session: Any) -> tuple[int, Any, bytes]:
        import aiohttp

        try:
            async with session.request(
                request.method, request.url, params=request.query, data=request.data, headers=_sdk_headers()
            ) as response:
                return response.status, response.headers, await response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise classify_transport(exc, what=request.what) from None

    # -- what both transports share -------------------------------------------------------------
    def _count(self, retry: bool = False) -> None:
        with self._counter_lock:
            self.calls += 1
            if retry:
                self.retries += 1

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1)) * (0.5 + random.random())

    def _retry_policy(self, what: str, scope: str | None, retry: Any = _RETRY_IF_RETRYABLE) -> dict[str, Any]:
        """The one retry policy, as arguments of tenacity's ``Retrying`` (sync) and ``AsyncRetrying``
        (async): ``max_attempts`` attempts while :func:`~meta_ads_elt.errors.is_retryable`; exponential
        backoff with jitter; a throttle blocks the scope in the governor for the time Meta announces
        (every thread of the process then waits, before its next call, in the governor)."""
        return {
            "stop": stop_after_attempt(self.max_attempts),
            "wait": self._retry_wait,
            "retry": retry,
            "before_sleep": functools.partial(self._before_retry, what, scope),
            "reraise": True,
        }

    def _retry_wait(self, state: RetryCallState) -> float:
        if isinstance(_failed_attempt_error(state), MetaThrottledError):
            return 0.0  # the governor does the waiting, before the next attempt
        return self._backoff(state.attempt_number)

    def _before_retry(self, what: str, scope: str | None, state: RetryCallState) -> None:
        err = _failed_attempt_error(state)
        assert isinstance(err, MetaApiError), err  # every retry predicate of the hook retries MetaApiErrors
        if isinstance(err, MetaThrottledError):
            self.governor.block(scope, max(err.retry_after, self._backoff(state.attempt_number)))
        self.log.warning(
            "Graph call %s failed (%s, attempt %d/%d); retrying",
            scrub(what),
            err.kind,
            state.attempt_number,
            self.max_attempts,
        )

    def _admit(self, request: GraphRequest, attempt: AttemptManager) -> float:
        """Count the attempt and reserve its slot in the governor; return the seconds to wait before it
        goes out. A wait beyond ``max_wait_seconds`` fails at once with the time to retry."""
        delay = self.governor.reserve(request.scope)
        if delay > self.max_wait_seconds:
            raise rate_limit_wait_error(request.scope or "__app__", delay, self.max_wait_seconds)
        self._count(retry=attempt.retry_state.attempt_number > 1)
        return max(delay, 0.0)

    def _read(
        self, what: str, status: int, headers: Any, raw: Any, scope: str | None
    ) -> tuple[Any, MetaApiError | None]:
        """The one reading of a Graph reply, a whole response or a batch item: usage headers to the
        governor, the JSON body, and the error it means (classified here, once)."""
        self.governor.observe(headers, scope)
        body = _json_body(raw)
        if status >= 400 or (isinstance(body, dict) and "error" in body):
            return body, classify(status, body, headers, conn_id=self.meta_conn_id, what=what)
        if not isinstance(body, dict | list):
            return body, MetaRetryableError(f"Non-JSON Graph API response on {what} (HTTP {status})")
        return body, None

    def _read_item(self, op: dict, item: dict, scope: str | None) -> dict[str, Any]:
        """A batch item as ``{code, headers, body, error}`` (``error``: the classified error, or None)."""
        code, headers = int(item.get("code") or 0), item.get("headers") or []
        body, error = self._read(_op_what(op), code, headers, item.get("body"), scope)
        return {"code": item.get("code"), "headers": headers, "body": body, "error": error}

    def _answer(self, request: GraphRequest, reply: tuple[int, Any, bytes]) -> tuple[Any, Any]:
        """``(body, headers)`` of a whole response, or its error raised."""
        status, headers, raw = reply
        body, error = self._read(request.what, status, headers, raw, request.scope)
        if error is not None:
            raise error
        return body, headers

    # -- calls ------------------------------------------------------------------------------------
    def call(
        self,
        method: str,
        path: GraphPath,
        params: Params = None,
        *,
        scope: str | None = None,
        with_headers: bool = False,
        retry_if: Callable[[BaseException], bool] | None = None,
        pacer: CallPacer | None = None,
    ) -> Any:
        """One Graph call with governor, retries and error classification; returns the parsed JSON.

        :param scope: the ad account / Page id whose budget the call spends (derived from an ``act_``
            path when omitted).
        :param with_headers: return ``(body, response headers)`` (e.g. Meta's ``Date``: its clock).
        :param retry_if: which errors to retry, when not every retryable one (default
            :func:`~meta_ads_elt.errors.is_retryable`); e.g. a probe that must see "not ready" at once.
        :param pacer: a per-second quota the call spends (see the module docstring), waited in before each
            attempt is sent; a pacer is one sequential reader's (not thread-safe), never shared by threads.
        :raises MetaFatalError: token, permission, parameter or other non-retryable errors (at once).
        :raises MetaDataTooLargeError: Meta asks for less data (caller reads smaller pages / splits).
        :raises MetaRetryableError: still failing after ``max_attempts``.
        """
        retry = _RETRY_IF_RETRYABLE if retry_if is None else retry_if_exception(retry_if)
        settings = self.settings
        try:
            body, headers = self._call(graph_request(settings, method, path, params, scope), retry, pacer)
        except MetaTokenError as exc:
            if self._page_of is None:
                raise
            self._renew_page_token(settings.access_token, exc)
            request = graph_request(self.settings, method, path, params, scope)
            body, headers = self._call(request, retry, pacer)
        return (body, headers) if with_headers else body

    def _call(self, request: GraphRequest, retry: Any, pacer: CallPacer | None) -> tuple[Any, Any]:
        """One request under the retry policy, every attempt paced: ``(body, headers)`` or its error."""
        for attempt in Retrying(**self._retry_policy(request.what, request.scope, retry)):
            with attempt:
                self.governor.sleep(self._admit(request, attempt))
                body, headers = self._answer(request, self._send(request, pacer))
        return body, headers

    async def acall(
        self, method: str, path: GraphPath, params: Params = None, *, scope: str | None = None, session=None
    ) -> Any:
        """:meth:`call` for async callers (triggers), over ``session`` (from :meth:`async_session`; one
        is opened for this call when omitted): the same request, policy, governor and reading."""
        request = graph_request(await self.asettings(), method, path, params, scope)
        async with self._using(session) as http:
            async for attempt in AsyncRetrying(**self._retry_policy(request.what, request.scope)):
                with attempt:
                    await asyncio.sleep(self._admit(request, attempt))
                    body, _ = self._answer(request, await self._asend(request, http))
        return body

    def paginate(
        self,
        path: str | Sequence[Any],
        params: dict | None = None,
        *,
        scope: str | None = None,
        first: dict | None = None,
        pacer: CallPacer | None = None,
    ) -> Iterator[list[dict]]:
        """Yield each page's ``data``, following ``paging.cursors.after`` while ``paging.next`` is present.

        Never follows the server's ``next`` URL itself (it carries the token). A cursor seen twice raises
        :class:`MetaRetryableError` (a loop would never end). When Meta asks to "reduce the amount of
        data", the page size (``limit``) is halved and the same page is asked again. ``first``: the first
        page's body when the caller has already read it with ``params``. ``pacer``: as for :meth:`call`,
        every page's call (and each asked again) paced.

        An item with an ``id`` is yielded once per walk: a list that changes while it is paged (an ad
        edited, a lead or a conversation arriving) can list an item again on a later page (Meta's cursor
        "will always point to the item", which may itself move; a list paged by position shifts). The
        repeats are logged, never written twice.
        """
        params = dict(params or {})
        seen: set[str] = set()
        listed_ids: set[str] = set()
        relisted = 0
        while True:
            try:
                body = (
                    first if first is not None else self.call("GET", path, params, scope=scope, pacer=pacer)
                )
                first = None
            except MetaDataTooLargeError:
                limit = int(params.get("limit") or 25)
                if limit <= 1:
                    raise
                params["limit"] = max(1, limit // 2)
                self.log.warning("Meta asked for less data; page size halved to %d", params["limit"])
                continue
            if not isinstance(body, dict):
                raise MetaFatalError(f"Expected a paged object from /{'/'.join(_path_tuple(path))}")
            data = body.get("data") or []
            fresh = [item for item in data if not _listed_before(item, listed_ids)]
            relisted += len(data) - len(fresh)
            if fresh:
                yield fresh
            paging = body.get("paging") or {}
            after = (paging.get("cursors") or {}).get("after")
            if not paging.get("next") or not after:
                if relisted:
                    self.log.info(
                        "/%s: %d items were listed again by a later page (the list changed while it was read); "
                        "each is kept once", "/".join(_path_tuple(path)), relisted,
                    )  # fmt: skip
                return
            if after in seen:
                raise MetaRetryableError(
                    f"Cursor loop on /{'/'.join(_path_tuple(path))}: cursor returned twice; stopping the read"
                )
            seen.add(after)
            params["after"] = after

    # -- batch ------------------------------------------------------------------------------------
    @staticmethod
    def batch_op(request: dict) -> dict:
        """A batch operation from ``{method, relative_url}`` or ``{method, path, params}``."""
        if "relative_url" in request:
            return {k: v for k, v in request.items() if k in ("method", "relative_url", "body", "name")}
        method = request.get("method", "GET").upper()
        rel = "/".join(_path_tuple(request["path"]))
        params = _encode_params(request.get("params") or {})
        op: dict[str, Any] = {"method": method, "relative_url": rel}
        if params:
            if method in ("GET", "DELETE"):
                op["relative_url"] = f"{rel}?{urlencode(params)}"
            else:
                op["body"] = urlencode(params)
        return op

    def batch(
        self, requests: list[dict], *, scope: str | None = None, pacer: CallPacer | None = None
    ) -> list[dict]:
        """Run Graph batch requests (chunks of <= 50); return per item ``{code, headers, body, error}`` in
        order, ``error`` being the item's classified error (a :class:`MetaApiError`) or ``None``.

        ``pacer``: as for :meth:`call`; each batch call (every round's, every attempt) waits for as many
        calls as it holds items, and holds at most ``pacer.calls`` (:func:`batch_call_size`). The calls
        of a batch go one after the other, so one reader's pacer is never used by two threads.

        ``null`` items (Meta timed them out) and items with retryable errors are asked again (only
        those), in rounds under the hook's retry policy; items with other errors are returned as they
        are, for the caller to act on ``item["error"]``. On a Page hook, items refused with a token error
        are asked once more with a new Page token (see :meth:`call`).
        """
        token = self.settings.access_token
        results = self._batch_rounds(requests, scope, pacer)
        refused = [i for i, r in enumerate(results) if isinstance(r["error"], MetaTokenError)]
        if refused and self._page_of is not None:
            self._renew_page_token(token, results[refused[0]]["error"])
            for i, answer in zip(
                refused, self._batch_rounds([requests[i] for i in refused], scope, pacer), strict=True
            ):
                results[i] = answer
        return results

    def _batch_rounds(self, requests: list[dict], scope: str | None, pacer: CallPacer | None) -> list[dict]:
        run = _BatchRun(self, requests, scope, batch_call_size(pacer))
        for attempt in Retrying(**self._retry_policy(BATCH_ITEMS, scope, _RETRY_IF_ITEMS_PENDING)):
            with attempt:
                replies = [self.call("POST", (), p, scope=scope, pacer=pacer) for p in run.payloads()]
                run.accept(attempt, replies)
        return run.results  # type: ignore[return-value]

    async def abatch(
        self, requests: list[dict], *, scope: str | None = None, session: Any = None
    ) -> list[dict]:
        """:meth:`batch` for async callers, over ``session`` (see :meth:`acall`)."""
        run = _BatchRun(self, requests, scope)
        async with self._using(session) as http:
            async for attempt in AsyncRetrying(
                **self._retry_policy(BATCH_ITEMS, scope, _RETRY_IF_ITEMS_PENDING)
            ):
                with attempt:
                    replies = [
                        await self.acall("POST", (), p, scope=scope, session=http) for p in run.payloads()
                    ]
                    run.accept(attempt, replies)
        return run.results  # type: ignore[return-value]

    # -- Page tokens ------------------------------------------------------------------------------
    def for_page(self, page_id: str) -> MetaGraphApiHook:
        """A hook on the same connection that uses the Page's access token.

        The Page token comes from ``GET /<page_id>?fields=access_token,name`` with the user token; it is kept
        in memory only (never stored, logged or returned), and ``appsecret_proof`` is recomputed for it.
        The same call gives the Page's name, kept as the returned hook's ``page_name`` (the marts show it).
        """
        page_id = str(page_id)
        if page_id in self._page_hooks:
            return self._page_hooks[page_id]
        token, body = self._page_token(page_id, "access_token,name")
        hook = MetaGraphApiHook(
            self.meta_conn_id,
            access_token=token,
            governor=self.governor,
            max_attempts=self.max_attempts,
            backoff_base=self.backoff_base,
            backoff_max=self.backoff_max,
            max_wait_seconds=self.max_wait_seconds,
        )
        hook._settings_override = replace(self.settings, access_token=token)
        register_secret(hook._settings_override.appsecret_proof)
        hook.page_name = body.get("name")
        hook._page_of = (self, page_id)
        self._page_hooks[page_id] = hook
        return hook

    def _page_token(self, page_id: str, fields: str) -> tuple[str, dict]:
        """The Page's access token (registered as a secret) and the body it came in, read with this hook's
        (user) token: ``GET /<page_id>?fields=<fields>``."""
        body = self.call("GET", (page_id,), {"fields": fields}, scope=page_id)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise MetaFatalError(
                f"No Page access token for Page {page_id}: the connection's user must manage the Page "
                "(pages_show_list / pages_read_engagement and a task on the Page)."
            )
        register_secret(token)
        return token, body

    def _renew_page_token(self, refused: str, exc: MetaTokenError) -> None:
        """A Page hook's token ``refused`` was refused (``exc``): fetch the Page token again with the user
        token, unless another thread already has. A refusal of the user token raises, fatal as ever."""
        assert self._page_of is not None
        user_hook, page_id = self._page_of
        with self._token_lock:
            if self.settings.access_token != refused:
                return  # renewed meanwhile by another call of this hook
            token, _ = user_hook._page_token(page_id, "access_token")
            settings = replace(self.settings, access_token=token)
            register_secret(settings.appsecret_proof)
            self._settings_override = settings
            self.__dict__["settings"] = settings  # the cached_property's value
            self.token_renewals += 1
        sub = f"/{exc.subcode}" if exc.subcode else ""
        self.log.warning(
            "Page %s: Meta refused its Page access token (code %s%s, e.g. expired: a Page token from a "
            "short-lived user token lives 1 hour); fetched a new one with the connection's token and "
            "repeating the call (%d renewal(s) so far)",
            page_id,
            exc.code,
            sub,
            self.token_renewals,
        )

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's "Test" button (and ``airflow connections test``): ``GET /me`` with the form's token.

        Returns ``(False, <what to fix>)`` for a missing or malformed field, an invalid or expired token
        or an unreachable base URL; never raises and never shows the token.
        """
        attempts, self.max_attempts = self.max_attempts, min(self.max_attempts, 2)  # answer the button fast
        try:
            settings = self.settings
            me = self.call("GET", ("me",), {"fields": "id,name"})
        except MetaApiError as err:
            return False, str(err)
        finally:
            self.max_attempts = attempts
        who = me.get("name") or me.get("id") if isinstance(me, dict) else None
        proof = " with appsecret_proof" if settings.app_secret else ""
        return True, f"Connected to {settings.base_url} ({settings.api_version}){proof} as {who}"
