"""Graph API error classification and our own exception types.

Every failure the hook sees becomes one of three kinds, each an exception class:

* :class:`MetaRetryableError` - transient (codes 1, 2, HTTP 5xx, timeouts, dropped connections,
  ``is_transient``); retried with backoff.
* :class:`MetaThrottledError` - a rate limit (codes 4, 17, 32, 341, 613, 80000-80014); retried after
  the wait Meta announces (``estimated_time_to_regain_access``) or a backoff.
* :class:`MetaFatalError` - retrying cannot help; the message says what the user must do. These are
  ``AirflowFailException``s, so Airflow does not retry the task either.

One special case is neither: :class:`MetaDataTooLargeError` ("reduce the amount of data", code 100
subcode 1487534) asks the caller to read smaller pages or split the job.
Messages are always scrubbed of tokens and proofs, and never carry a raw SDK or requests traceback.

The kind of an error is decided once, where it is raised (:func:`classify` for a Graph reply,
:func:`classify_transport` for the network); everything downstream reads the class:

* :func:`is_retryable` is the one predicate of the hook's retry policy (sync and async);
* :func:`is_invalid_request` tells callers that word their own fix (a Page or ad object id) that Meta
  refused the request itself (code 100); :func:`is_missing_object` narrows it to "no such object for this
  token" (100/33), the only 100 that a caller may word as "does not exist" (a wrong ``appsecret_proof``
  or parameter is code 100 too, with another fix);
* :func:`is_token_refusal` tells a caller reading many objects with one token (discovery's promoted
  Pages) that the token itself was refused, so no other object can succeed either;
* :func:`in_context` re-raises an error the hook classified with the caller's context in its message
  (same class, same fields);
* :func:`is_report_not_ready` is Meta's answer to a results read of a report run not yet completed;
* :func:`to_event` / :func:`from_event` carry an error from a trigger to its operator as plain JSON
  and give back the same class with the same fields, so the operator raises what the hook raised.

Errors that retrying cannot fix are ``AirflowFailException`` subclasses with the fix in the message:
:class:`MetaFatalError` (and :class:`MetaArgumentError` for operator arguments) and
:class:`DataContractError` (data that breaks the lake's declared schema).
"""

from __future__ import annotations

import re
from typing import Any, TypedDict

from airflow.sdk.exceptions import AirflowFailException

from meta_ads_elt.governor import regain_seconds
from meta_ads_elt.redaction import scrub

RETRYABLE_CODES = frozenset({1, 2})
THROTTLE_CODES = frozenset({4, 17, 32, 341, 613, *range(80000, 80015)})
PERMISSION_CODES = frozenset({10, *range(200, 300)})
TOKEN_CODES = frozenset({190, 102})
INVALID_REQUEST_CODE = 100
"""Meta's "Invalid parameter": the request itself is refused (an id that does not exist or that this token
cannot load, subcode 33; a field or edge the node does not have; a bad value or proof; too much data)."""
DATA_TOO_LARGE_SUBCODES = frozenset({1487534})
MISSING_OBJECT_SUBCODES = frozenset({33})
"""100/33 "Unsupported get request. Object with ID ... does not exist, cannot be loaded due to missing
permissions": also what an ad account answers once the token lost access to it (Meta, in
facebook/facebook-java-business-sdk#31: "you don't have access to the corresponding ad account")."""
REPORT_NOT_READY = (2601, 1815107)
"""(code, subcode) of Meta's answer to a results read of a report run that is not ``Job Completed``
("Error accessing adreport job.", ``is_transient``; facebook/facebook-python-business-sdk#293)."""

_KNOWN_PERMISSIONS = re.compile(
    r"\b(ads_read|ads_management|leads_retrieval|read_insights|business_management|"
    r"pages_[a-z_]+|instagram_[a-z_]+|email|public_profile)\b"
)
_REDUCE_DATA = re.compile(r"reduce the amount of data", re.IGNORECASE)


class ReplyFields(TypedDict, total=False):
    """What an error keeps of the Graph reply that caused it, as keyword arguments of every
    :class:`MetaApiError` class (``**fields``: mypy checks them against its ``__init__``)."""

    code: int | None
    subcode: int | None
    http_status: int | None
    fbtrace_id: str | None
    is_transient: bool


class MetaApiError(Exception):
    """A Graph API call failed. ``kind`` is ``retryable``, ``throttled``, ``too_much_data`` or ``fatal``."""

    kind = "fatal"

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        subcode: int | None = None,
        http_status: int | None = None,
        fbtrace_id: str | None = None,
        is_transient: bool = False,
        retry_after: float = 0.0,
        body: Any = None,
    ) -> None:
        self.message = scrub(message)
        super().__init__(self.message)
        self.code = code
        self.subcode = subcode
        self.http_status = http_status
        self.fbtrace_id = fbtrace_id
        self.is_transient = is_transient
        self.retry_after = retry_after
        self.body = body

    def __reduce__(self):  # picklable / XCom-safe without re-scrubbing surprises
        return (_rebuild, (type(self), self.message, self.__dict__))


def _rebuild(cls, message, state):
    obj = cls.__new__(cls)
    Exception.__init__(obj, message)
    obj.__dict__.update(state)
    return obj


def reply_fields(exc: MetaApiError) -> ReplyFields:
    """The reply fields of ``exc`` that identify Meta's answer (code, subcode, HTTP status, fbtrace id),
    for an error that re-words it."""
    return {
        "code": exc.code,
        "subcode": exc.subcode,
        "http_status": exc.http_status,
        "fbtrace_id": exc.fbtrace_id,
    }


class MetaRetryableError(MetaApiError):
    kind = "retryable"


class MetaThrottledError(MetaRetryableError):
    kind = "throttled"


class MetaDataTooLargeError(MetaApiError):
    """Meta refuses the size of the request: read smaller pages or split the report job."""

    kind = "too_much_data"


class MetaFatalError(MetaApiError, AirflowFailException):
    """Not retried, by the hook nor by Airflow: the message says what to fix."""

    kind = "fatal"


class MetaTokenError(MetaFatalError):
    pass


class MetaPermissionError(MetaFatalError):
    """Codes 10, 200-299. ``permissions``: the permissions Meta's message names (``ads_read``, ...), i.e.
    scopes the token lacks whatever object it reads; empty for a bare "(#200) Permissions error", which
    Meta also answers for one object the token lost access to."""

    def __init__(self, message: str, *, permissions: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.permissions = list(permissions or [])


class MetaParameterError(MetaFatalError):
    pass


class MetaObjectAccessError(MetaParameterError):
    """100/33: the object does not exist or the token cannot load it (access lost, object removed)."""


class MetaConfigError(MetaFatalError):
    """The Airflow Connection or operator arguments are wrong."""


class MetaArgumentError(MetaConfigError, ValueError):
    """An operator argument has a value it cannot run with (found at execute time, e.g. from a
    template): the message names the argument, its value and what is allowed."""


class MetaBeyondRetentionError(MetaConfigError):
    """Every date asked for is older than Meta keeps Insights (37 months): no call, and no re-run, can
    serve it. ``gap_action`` says so in the run's failure record (:func:`meta_ads_elt.failures.record_failed_task`)
    instead of the usual "re-run the task"."""

    def __init__(self, message: str, *, gap_action: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.gap_action = gap_action


class MetaAppSecretProofError(MetaConfigError):
    """Meta refused the ``appsecret_proof``: the Connection's ``app_secret`` is not the secret of the app
    that issued the token, or the app requires a proof and the Connection has no ``app_secret``."""


class MetaJobFailedError(MetaFatalError):
    """An async report job failed even at its smallest split (one day, one campaign)."""


class MetaDaysFailedError(MetaJobFailedError):
    """Some days of an account could not be extracted (their smallest job kept failing); every other day
    of the window landed. ``failed_dates`` lists the days left as they were in the lake."""

    def __init__(self, message: str, *, failed_dates: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.failed_dates = list(failed_dates or [])


class MetaRateLimitWaitError(MetaFatalError):
    """Meta's rate limit would hold the task longer than ``max_rate_limit_wait_minutes``: fail now with
    the time to retry, rather than hold a worker slot silently (Airflow retries would only wait again)."""


class DataContractError(AirflowFailException):
    """Rows that break a declared contract (the lake's schema and partitions): a retry would read and
    write the same rows, so the task fails at once. The message ends with what to do."""

    fix = (
        "Retrying gives the same result, so it was not retried; the lake partitions were left as they "
        "were. Check that the dataset's schema (meta_ads_elt.schemas) matches what the extraction sends, "
        "or report it with this task's log."
    )

    def __str__(self) -> str:
        return f"{super().__str__()} -- {self.fix}"


def in_context(exc: MetaApiError, context: str) -> MetaApiError:
    """``exc`` as the same class with the same fields (code, kind, retry wait...), its message prefixed
    with ``context``: what the caller was reading (an object id, an account), which the hook's message
    cannot say. The error keeps its classification; nothing is classified again."""
    message = scrub(f"{context}: {exc.message}")
    return _rebuild(type(exc), message, {**vars(exc), "message": message})


def is_retryable(exc: BaseException) -> bool:
    """Whether another attempt of the same call can succeed: the hook's one retry predicate."""
    return isinstance(exc, MetaRetryableError)


def is_invalid_request(exc: BaseException) -> bool:
    """Whether Meta refused the request itself (:data:`INVALID_REQUEST_CODE`, any subcode, whatever class
    it was given): the id, a field or edge, a parameter value or the ``appsecret_proof``. Only
    :func:`is_missing_object` means "no such node for this token"."""
    return isinstance(exc, MetaApiError) and exc.code == INVALID_REQUEST_CODE


def is_missing_object(exc: BaseException) -> bool:
    """Whether Meta answered "object does not exist, or cannot be loaded due to missing permissions"
    (code 100, :data:`MISSING_OBJECT_SUBCODES`): the id is unknown to this token. The only code 100 a
    caller may word as "this id does not exist / this token cannot see it"; other 100s (a wrong
    ``appsecret_proof``, a bad parameter) keep their own message and fix."""
    return (
        isinstance(exc, MetaApiError)
        and exc.code == INVALID_REQUEST_CODE
        and exc.subcode in MISSING_OBJECT_SUBCODES
    )


def is_token_refusal(exc: BaseException) -> bool:
    """Whether Meta refused the token itself rather than one object: an invalid or expired token
    (:data:`TOKEN_CODES`), a wrong or missing ``appsecret_proof``, or a permission Meta names that the
    token lacks. No other object read with the same token can succeed, so a caller reading many
    objects fails at once with the error's fix instead of skipping the object."""
    return isinstance(exc, MetaTokenError | MetaAppSecretProofError) or (
        isinstance(exc, MetaPermissionError) and bool(getattr(exc, "permissions", None))
    )


def is_report_not_ready(exc: BaseException) -> bool:
    """Whether this is Meta's answer to a results read of a report run that is not ``Job Completed``
    (:data:`REPORT_NOT_READY`)."""
    return isinstance(exc, MetaApiError) and (exc.code, exc.subcode) == REPORT_NOT_READY


def rate_limit_wait_error(
    scope: str, seconds: float, max_wait: float, *, now: Any = None
) -> MetaRateLimitWaitError:
    import datetime as dt

    now = now or dt.datetime.now(dt.UTC)
    retry_at = (now + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M UTC")
    what = "the app" if scope == "__app__" else f"'{scope}'"
    return MetaRateLimitWaitError(
        f"Meta's rate limit for {what} is spent: access returns in about {seconds / 60:.0f} min (at {retry_at}), "
        f"longer than max_rate_limit_wait_minutes={max_wait / 60:g}. Not waiting: clear (re-run) the task after "
        f"{retry_at}, or raise max_rate_limit_wait_minutes in the pipeline config."
    )


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def classify(
    http_status: int | None,
    body: Any,
    headers: Any = None,
    *,
    conn_id: str | None = None,
    what: str = "Graph API call",
) -> MetaApiError:
    """Turn one failed response (status, parsed JSON body, headers) into the right exception."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {}
    code = _int(error.get("code"))
    subcode = _int(error.get("error_subcode"))
    # without its full stop: the messages below add their own ("... Unknown fields: x. Fix ...", not "x..")
    meta_msg = str(error.get("error_user_msg") or error.get("message") or "").strip().rstrip(".")
    fbtrace = error.get("fbtrace_id")
    transient = bool(error.get("is_transient"))
    common: ReplyFields = {
        "code": code,
        "subcode": subcode,
        "http_status": http_status,
        "fbtrace_id": fbtrace,
        "is_transient": transient,
    }
    where = f" (connection '{conn_id}')" if conn_id else ""
    ref = f" [code {code}{'/' + str(subcode) if subcode else ''}, HTTP {http_status}, fbtrace {fbtrace}]"

    if code in TOKEN_CODES:
        return MetaTokenError(
            f"Meta rejected the access token{where}: {meta_msg or 'invalid or expired token'}. "
            "Refresh the token (generate a new long-lived user or system-user token) and store it as the "
            f"password of the Airflow connection{where}; this is not retried.{ref}",
            **common,
        )
    if code in PERMISSION_CODES:
        perms = sorted(set(_KNOWN_PERMISSIONS.findall(meta_msg)))
        need = f"the permission(s) {', '.join(perms)}" if perms else "a permission this call needs"
        return MetaPermissionError(
            f"Permission denied for {what}{where}: {meta_msg}. The token lacks {need}: grant it to the "
            f"app / system user (and access to the ad account or Page), then issue a new token.{ref}",
            permissions=perms,
            **common,
        )
    if (code == INVALID_REQUEST_CODE and subcode in DATA_TOO_LARGE_SUBCODES) or _REDUCE_DATA.search(meta_msg):
        return MetaDataTooLargeError(
            f"Meta asks to reduce the amount of data for {what}: {meta_msg}{ref}", **common
        )
    if code in THROTTLE_CODES:
        return MetaThrottledError(
            f"Rate limited on {what}: {meta_msg}{ref}", retry_after=regain_seconds(headers), **common
        )
    if code in RETRYABLE_CODES or transient or (http_status is not None and http_status >= 500):
        return MetaRetryableError(
            f"Transient Graph API error on {what}: {meta_msg or 'no body'}{ref}", **common
        )
    if code == INVALID_REQUEST_CODE and "appsecret_proof" in meta_msg:
        if "require" in meta_msg.lower():
            fix = (
                "The app requires appsecret_proof: add the app's secret as extra app_secret of the connection"
            )
        else:
            fix = (
                "The extra app_secret of the connection is not the secret of the app that issued the token: "
                "copy the secret of that app (App Dashboard > Settings > Basic) into app_secret"
            )
        return MetaAppSecretProofError(
            f"Meta refused the appsecret_proof{where} on {what}: {meta_msg}. {fix}; this is not retried.{ref}",
            **common,
        )
    if code == INVALID_REQUEST_CODE and subcode in MISSING_OBJECT_SUBCODES:
        return MetaObjectAccessError(
            f"Meta cannot load an object for {what}{where}: {meta_msg}. Either the id does not exist, or this token "
            "lost access to it (the ad account or Page was removed from the user or system user, the account was "
            "closed, the Page deleted): restore the access in Business Settings, or remove the id from "
            f"include/pipeline.yaml; this is not retried.{ref}",
            **common,
        )
    if code == INVALID_REQUEST_CODE:
        blame = (error.get("error_data") or {}) if isinstance(error.get("error_data"), dict) else {}
        fields = blame.get("blame_field_specs")
        hint = f"Fix the parameter{' ' + str(fields) if fields else ''} named in Meta's message."
        return MetaParameterError(f"Invalid parameter in {what}: {meta_msg}. {hint}{ref}", **common)
    if http_status == 429:
        return MetaThrottledError(
            f"Rate limited on {what} (HTTP 429){ref}", retry_after=regain_seconds(headers), **common
        )
    return MetaFatalError(
        f"Graph API error on {what}: {meta_msg or 'HTTP ' + str(http_status)}. "
        f"Not retried; check the request and the object ids{ref}",
        **common,
    )


def classify_transport(exc: BaseException, *, what: str = "Graph API call") -> MetaRetryableError:
    """Timeouts and dropped connections: retryable, with the cause named but not its traceback."""
    return MetaRetryableError(f"Network error on {what}: {type(exc).__name__}: {scrub(exc)}")


# -- the error codec of trigger events ------------------------------------------------------------
_FALLBACK_BY_KIND: dict[str, type[MetaApiError]] = {
    "retryable": MetaRetryableError,
    "throttled": MetaThrottledError,
    "too_much_data": MetaDataTooLargeError,
    "fatal": MetaFatalError,
}


def _error_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _error_classes() -> dict[str, type[MetaApiError]]:
    """Every loaded :class:`MetaApiError` class by module-qualified name (never imported from an event:
    an event names a class, it does not choose code to load)."""
    found: dict[str, type[MetaApiError]] = {}
    todo: list[type[MetaApiError]] = [MetaApiError]
    while todo:
        cls = todo.pop()
        found[_error_name(cls)] = cls
        todo.extend(cls.__subclasses__())
    return found


def to_event(exc: BaseException) -> dict[str, Any]:
    """An error as plain JSON for a trigger event: its class, kind, scrubbed message and fields.

    An exception that is no :class:`MetaApiError` (a bug, an unexpected library error) travels as a
    plain :class:`MetaApiError` naming its type: not fatal, so Airflow's retries still apply.
    """
    if not isinstance(exc, MetaApiError):
        exc = MetaApiError(f"{type(exc).__name__}: {scrub(exc)}")
    fields = {k: v for k, v in vars(exc).items() if k not in ("message", "body")}
    return {"class": _error_name(type(exc)), "kind": exc.kind, "message": exc.message, "fields": fields}


def from_event(event: dict[str, Any]) -> MetaApiError:
    """The error :func:`to_event` encoded, as the same class with the same message and fields.

    A class this process has not loaded falls back to the base class of the same kind, so a fatal
    error stays fatal (an ``AirflowFailException``) and a retryable one stays retryable.
    """
    cls = _error_classes().get(str(event.get("class"))) or _FALLBACK_BY_KIND.get(
        str(event.get("kind")), MetaApiError
    )
    message = scrub(str(event.get("message") or "unknown error"))
    return _rebuild(cls, message, {"body": None, **dict(event.get("fields") or {}), "message": message})
