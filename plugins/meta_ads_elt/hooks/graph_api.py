"""MetaGraphApiHook: the only code that speaks HTTP to the Graph API.

Guarantees
----------
* Its own ``FacebookSession`` / ``FacebookAdsApi`` per hook (never the SDK's process-wide default, never
  the class attribute ``FacebookSession.GRAPH``), with a timeout, the connection's base URL, no crash
  reporter, no SDK debug printing, and ``appsecret_proof`` whenever an app secret is set.
* Every call goes through the process-wide :mod:`rate-limit governor <meta_ads_elt.governor>` (before the
  call, and reading usage headers after it, errors included). A wait longer than ``max_wait_seconds``
  (Meta's regain time, say) fails at once with :class:`~meta_ads_elt.errors.MetaRateLimitWaitError`
  naming the time to retry, instead of holding the worker.
* Retries: transient errors (codes 1, 2, ``is_transient``, HTTP 5xx, timeouts, dropped connections) with
  exponential backoff and jitter; throttles (4, 17, 32, 341, 613, 80000-80014) after the wait Meta
  announces. Fatal errors (190 token, 10/200-299 permission, 100 parameter, other 4xx) are raised at
  once as :class:`~meta_ads_elt.errors.MetaFatalError` subclasses with a message telling the user what
  to do; Airflow does not retry them either.
* Tokens and proofs never appear in a log line, exception message or returned URL (``redaction.scrub``),
  and they are registered with Airflow's secrets masker.
* The hook holds no job state; it is safe to share between threads.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import urlencode

from airflow.sdk import BaseHook

from meta_ads_elt.errors import (
    MetaApiError,
    MetaConfigError,
    MetaDataTooLargeError,
    MetaFatalError,
    MetaRetryableError,
    MetaThrottledError,
    classify,
    classify_transport,
    rate_limit_wait_error,
)
from meta_ads_elt.get_provider_info import (
    CONN_TYPE,
    DEFAULT_API_VERSION,
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT_SECONDS,
)
from meta_ads_elt.governor import RateLimitGovernor, WaitTooLong, get_governor
from meta_ads_elt.redaction import install_log_filter, register_secret, scrub

DEFAULT_TIMEOUT = float(DEFAULT_TIMEOUT_SECONDS)
DEFAULT_MAX_WAIT_SECONDS = 30 * 60.0
"""Longest rate-limit wait a call accepts before failing with the time to retry (config:
``max_rate_limit_wait_minutes``)."""
BATCH_MAX = 50
_API_VERSION_RE = re.compile(r"^v\d+\.\d+$")


@dataclass(frozen=True)
class GraphSettings:
    """What a hook needs from its Connection, validated."""

    access_token: str
    app_id: str | None
    app_secret: str | None
    api_version: str
    base_url: str
    timeout: float

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


CONNECTION_EXTRAS = ("app_id", "app_secret", "api_version", "base_url", "timeout", "access_token")
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
    settings = GraphSettings(token, app_id, app_secret, api_version, base_url, timeout)
    register_secret(settings.appsecret_proof)
    return settings


def _path_tuple(path: str | Sequence[Any]) -> tuple[str, ...]:
    if isinstance(path, str):
        if "://" in path:
            # Never follow server-supplied URLs (paging.next carries the token and could point anywhere).
            raise ValueError("MetaGraphApiHook takes Graph paths such as 'act_1/insights', not URLs")
        return tuple(path.strip("/").split("/")) if path.strip("/") else ()
    return tuple(str(p) for p in path)


def _encode_params(params: dict[str, Any]) -> dict[str, str]:
    """The SDK's wire encoding: dicts, lists and bools as compact sorted JSON, the rest as str."""
    out = {}
    for key, value in params.items():
        if isinstance(value, dict | list | tuple | bool):
            out[key] = json.dumps(value, sort_keys=True, separators=(",", ":"))
        else:
            out[key] = str(value)
    return out


def _scope_of(path: tuple[str, ...]) -> str | None:
    if path and path[0].startswith("act_"):
        return path[0].removeprefix("act_")
    return None


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
        register_secret(access_token)
        install_log_filter(self.log)

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

    @cached_property
    def api(self):
        """This hook's own ``FacebookAdsApi`` (never installed as the SDK's default API)."""
        from facebook_business.api import FacebookAdsApi
        from facebook_business.session import FacebookSession
        from requests.adapters import HTTPAdapter

        s = self.settings
        session = FacebookSession(
            app_id=s.app_id, app_secret=s.app_secret, access_token=s.access_token, timeout=s.timeout
        )
        # Instance attribute: FacebookAdsApi.call reads self._session.GRAPH, so other hooks in this
        # process (pointing elsewhere) are unaffected.
        session.GRAPH = s.base_url
        if not s.base_url.startswith("https://graph.facebook.com"):
            session.requests.verify = True  # the SDK's pinned CA bundle only fits graph.facebook.com
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=64, max_retries=0)
        session.requests.mount("http://", adapter)
        session.requests.mount("https://", adapter)
        # No FacebookAdsApi.init(): it would replace the process default and install the crash reporter.
        return FacebookAdsApi(session, api_version=s.api_version, enable_debug_logger=False)

    def url_for(self, path: str | Sequence[Any]) -> str:
        """The URL the SDK builds for ``path`` (no token in it)."""
        return "/".join((self.api._session.GRAPH, self.settings.api_version, "/".join(_path_tuple(path))))

    # -- calls ------------------------------------------------------------------------------------
    def _count(self, retry: bool = False) -> None:
        with self._counter_lock:
            self.calls += 1
            if retry:
                self.retries += 1

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1)) * (0.5 + random.random())

    def _once(self, method: str, path: tuple[str, ...], params: dict | None, scope: str | None) -> Any:
        # HTTP goes through the SDK session's requests.Session (token and proof as its default params,
        # its timeout), to the URL FacebookAdsApi.call would build, with the SDK's parameter encoding.
        # Not through FacebookAdsApi.call itself: it parses every body twice (costly on 500-row
        # pages) and takes e.g. an HTML 502 for a success.
        from facebook_business.api import FacebookAdsApi, _top_level_param_json_encode
        from requests import RequestException

        session = self.api._session
        what = f"{method} /{'/'.join(path)}"
        url = "/".join((session.GRAPH, self.api._api_version, "/".join(path)))
        encoded = _top_level_param_json_encode(params) if params else {}
        key = "params" if method in ("GET", "DELETE") else "data"
        try:
            response = session.requests.request(
                method,
                url,
                headers=FacebookAdsApi.HTTP_DEFAULT_HEADERS,
                timeout=session.timeout,
                **{key: encoded},
            )
        except RequestException as exc:
            raise classify_transport(exc, what=what) from None
        headers = response.headers
        self.governor.observe(headers, scope)
        try:
            body = json.loads(response.content) if response.content else None
        except ValueError:
            body = None
        status = response.status_code
        if status >= 400 or (isinstance(body, dict) and "error" in body):
            raise classify(status, body, headers, conn_id=self.meta_conn_id, what=what)
        if not isinstance(body, dict | list):
            raise MetaRetryableError(f"Non-JSON Graph API response on {what} (HTTP {status})")
        return body, headers

    def call(
        self,
        method: str,
        path: str | Sequence[Any],
        params: dict | None = None,
        *,
        scope: str | None = None,
        with_headers: bool = False,
    ) -> Any:
        """One Graph call with governor, retries and error classification; returns the parsed JSON.

        :param scope: the ad account / Page id whose budget the call spends (derived from an ``act_``
            path when omitted).
        :param with_headers: return ``(body, response headers)`` (e.g. Meta's ``Date``: its clock).
        :raises MetaFatalError: token, permission, parameter or other non-retryable errors (at once).
        :raises MetaDataTooLargeError: Meta asks for less data (caller reads smaller pages / splits).
        :raises MetaRetryableError: still failing after ``max_attempts``.
        """
        method = method.upper()
        tpath = _path_tuple(path)
        scope = scope or _scope_of(tpath)
        attempt = 0
        while True:
            attempt += 1
            try:
                self.governor.wait(scope, max_wait=self.max_wait_seconds)
            except WaitTooLong as wait:
                raise rate_limit_wait_error(wait.scope, wait.seconds, self.max_wait_seconds) from None
            self._count(retry=attempt > 1)
            try:
                body, headers = self._once(method, tpath, params, scope)
                return (body, headers) if with_headers else body
            except MetaRetryableError as err:
                if attempt >= self.max_attempts:
                    raise
                delay = self._backoff(attempt)
                if isinstance(err, MetaThrottledError):
                    # Block the whole scope: other threads must not keep hitting a throttled account.
                    self.governor.block(scope, max(err.retry_after, delay))
                    delay = 0.0  # governor.wait() at the top of the loop does the waiting
                self.log.warning(
                    "Graph call %s failed (%s, attempt %d/%d); retrying",
                    scrub("/".join(tpath)),
                    err.kind,
                    attempt,
                    self.max_attempts,
                )
                if delay:
                    time.sleep(delay)

    def paginate(
        self, path: str | Sequence[Any], params: dict | None = None, *, scope: str | None = None
    ) -> Iterator[list[dict]]:
        """Yield each page's ``data``, following ``paging.cursors.after`` while ``paging.next`` is present.

        Never follows the server's ``next`` URL itself (it carries the token). A cursor seen twice raises
        :class:`MetaRetryableError` (a loop would never end). When Meta asks to "reduce the amount of
        data", the page size (``limit``) is halved and the same page is asked again.
        """
        params = dict(params or {})
        seen: set[str] = set()
        while True:
            try:
                body = self.call("GET", path, params, scope=scope)
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
            if data:
                yield data
            paging = body.get("paging") or {}
            after = (paging.get("cursors") or {}).get("after")
            if not paging.get("next") or not after:
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

    def _parse_item(self, item: dict, scope: str | None) -> dict:
        raw = item.get("body")
        try:
            body = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            body = raw
        headers = item.get("headers") or []
        self.governor.observe(headers, scope)
        return {"code": item.get("code"), "headers": headers, "body": body}

    def _accept_batch_reply(
        self, chunk: list[int], reply: Any, results: list, attempt: int, scope: Any
    ) -> None:
        """Store the answered items of one batch call; leave null and retryable items for another attempt."""
        if not isinstance(reply, list):
            raise MetaRetryableError("Graph batch reply was not a list")
        for i, item in zip(chunk, reply, strict=False):
            if not isinstance(item, dict):  # null: Meta timed the item out
                continue
            parsed = self._parse_item(item, scope)
            code = parsed["code"] or 0
            if code >= 400:
                err = classify(code, parsed["body"], parsed["headers"], conn_id=self.meta_conn_id)
                if isinstance(err, MetaRetryableError) and attempt < self.max_attempts:
                    if isinstance(err, MetaThrottledError):
                        self.governor.block(scope, max(err.retry_after, self._backoff(attempt)))
                    continue
            results[i] = parsed

    def batch(self, requests: list[dict], *, scope: str | None = None) -> list[dict]:
        """Run Graph batch requests (chunks of <= 50); return per item ``{code, headers, body}`` in order.

        ``null`` items (Meta timed them out) and items with retryable errors are retried (only those);
        items with fatal errors are returned as they are, for the caller to classify
        (``errors.classify(item["code"], item["body"], item["headers"])``).
        """
        results: list[dict | None] = [None] * len(requests)
        ops = [self.batch_op(r) for r in requests]
        pending = list(range(len(requests)))
        attempt = 0
        while pending:
            attempt += 1
            for start in range(0, len(pending), BATCH_MAX):
                chunk = pending[start : start + BATCH_MAX]
                reply = self.call(
                    "POST", (), {"batch": [ops[i] for i in chunk], "include_headers": "true"}, scope=scope
                )
                self._accept_batch_reply(chunk, reply, results, attempt, scope)
            pending = [i for i in pending if results[i] is None]
            if pending:
                if attempt >= self.max_attempts:
                    raise MetaRetryableError(
                        f"{len(pending)} batch item(s) still failing after {attempt} attempts"
                    )
                time.sleep(self._backoff(attempt))
        return results  # type: ignore[return-value]

    # -- async twins (for triggers) ---------------------------------------------------------------
    async def _aonce(
        self, session, method: str, tpath: tuple[str, ...], params: dict | None, scope: str | None
    ):
        import aiohttp

        s = await self.asettings()
        url = f"{s.base_url}/{s.api_version}/{'/'.join(tpath)}"
        what = f"{method} /{'/'.join(tpath)}"
        query: dict[str, str] = dict(s.auth_params())
        data = None
        encoded = _encode_params(params or {})
        if method in ("GET", "DELETE"):
            query.update(encoded)
        else:
            data = encoded
        try:
            async with session.request(method, url, params=query, data=data) as resp:
                text = await resp.text()
                status, headers = resp.status, dict(resp.headers)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise classify_transport(exc, what=what) from None
        self.governor.observe(headers, scope)
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if status >= 400 or (isinstance(body, dict) and "error" in body):
            raise classify(status, body, headers, conn_id=self.meta_conn_id, what=what)
        if not isinstance(body, dict | list):
            raise MetaRetryableError(f"Non-JSON Graph API response on {what} (HTTP {status})")
        return body

    async def acall(
        self,
        method: str,
        path: str | Sequence[Any],
        params: dict | None = None,
        *,
        scope: str | None = None,
        session=None,
    ) -> Any:
        """Async twin of :meth:`call` (aiohttp): same governor, retries, classification and redaction."""
        import aiohttp

        method = method.upper()
        tpath = _path_tuple(path)
        scope = scope or _scope_of(tpath)
        s = await self.asettings()
        own = session is None
        session = session or aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=s.timeout))
        try:
            attempt = 0
            while True:
                attempt += 1
                delay = self.governor.reserve(scope)
                if delay > self.max_wait_seconds:
                    raise rate_limit_wait_error(scope or "__app__", delay, self.max_wait_seconds)
                if delay > 0:
                    await asyncio.sleep(delay)
                self._count(retry=attempt > 1)
                try:
                    return await self._aonce(session, method, tpath, params, scope)
                except MetaRetryableError as err:
                    if attempt >= self.max_attempts:
                        raise
                    wait = self._backoff(attempt)
                    if isinstance(err, MetaThrottledError):
                        self.governor.block(scope, max(err.retry_after, wait))
                        wait = 0.0
                    self.log.warning(
                        "Graph call %s failed (%s, attempt %d/%d); retrying",
                        scrub("/".join(tpath)),
                        err.kind,
                        attempt,
                        self.max_attempts,
                    )
                    if wait:
                        await asyncio.sleep(wait)
        finally:
            if own:
                await session.close()

    async def abatch(self, requests: list[dict], *, scope: str | None = None, session=None) -> list[dict]:
        """Async twin of :meth:`batch`: same chunking, per-item retries, governor and redaction."""
        ops = [self.batch_op(r) for r in requests]
        results: list[dict | None] = [None] * len(requests)
        pending = list(range(len(requests)))
        attempt = 0
        while pending:
            attempt += 1
            for start in range(0, len(pending), BATCH_MAX):
                chunk = pending[start : start + BATCH_MAX]
                reply = await self.acall(
                    "POST",
                    (),
                    {"batch": [ops[i] for i in chunk], "include_headers": "true"},
                    scope=scope,
                    session=session,
                )
                self._accept_batch_reply(chunk, reply, results, attempt, scope)
            pending = [i for i in pending if results[i] is None]
            if pending:
                if attempt >= self.max_attempts:
                    raise MetaRetryableError(
                        f"{len(pending)} batch item(s) still failing after {attempt} attempts"
                    )
                await asyncio.sleep(self._backoff(attempt))
        return results  # type: ignore[return-value]

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
        body = self.call("GET", (page_id,), {"fields": "access_token,name"}, scope=page_id)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise MetaFatalError(
                f"No Page access token for Page {page_id}: the connection's user must manage the Page "
                "(pages_show_list / pages_read_engagement and a task on the Page)."
            )
        register_secret(token)
        hook = MetaGraphApiHook(
            self.meta_conn_id,
            access_token=token,
            governor=self.governor,
            max_wait_seconds=self.max_wait_seconds,
        )
        base = self.settings
        hook._settings_override = GraphSettings(
            token, base.app_id, base.app_secret, base.api_version, base.base_url, base.timeout
        )
        register_secret(hook._settings_override.appsecret_proof)
        hook.page_name = body.get("name")
        self._page_hooks[page_id] = hook
        return hook

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
