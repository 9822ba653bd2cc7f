"""Meta's error envelope. Every failure the sandbox serves is a ``GraphError``.

``{"error": {"message", "type", "code", "error_subcode"?, "is_transient"?, "error_user_title"?,
"error_user_msg"?, "fbtrace_id"}}`` with the HTTP status Meta uses (400 for most client errors
and throttles, 500 for codes 1/2).
"""

from __future__ import annotations

import itertools
import threading

from meta_sandbox import rng

_counter = itertools.count(1)
_lock = threading.Lock()


def trace_id() -> str:
    """A Meta-looking fbtrace_id (11 base64-ish chars)."""
    with _lock:
        n = next(_counter)
    h = rng.mix64(n * 0x2545F4914F6CDD1D)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
    return "".join(alphabet[(h >> (6 * i)) & 63] for i in range(11))


class GraphError(Exception):
    def __init__(
        self,
        message: str,
        code: int,
        *,
        subcode: int | None = None,
        type_: str = "OAuthException",
        status: int = 400,
        transient: bool | None = None,
        user_title: str | None = None,
        user_msg: str | None = None,
        headers: dict | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.subcode = subcode
        self.type = type_
        self.status = status
        self.transient = transient
        self.user_title = user_title
        self.user_msg = user_msg
        self.headers = headers or {}

    def body(self) -> dict:
        err: dict = {"message": self.message, "type": self.type, "code": self.code}
        if self.subcode is not None:
            err["error_subcode"] = self.subcode
        if self.transient is not None:
            err["is_transient"] = self.transient
        if self.user_title:
            err["error_user_title"] = self.user_title
        if self.user_msg:
            err["error_user_msg"] = self.user_msg
        err["fbtrace_id"] = trace_id()
        return {"error": err}


def param_error(message: str, subcode: int | None = None) -> GraphError:
    return GraphError(f"(#100) {message}", 100, subcode=subcode)


def unknown_fields(names: list[str]) -> GraphError:
    return GraphError(f"(#100) Unknown fields: {', '.join(names)}.", 100)


def nonexisting_field(field: str, node_type: str) -> GraphError:
    return GraphError(f"(#100) Tried accessing nonexisting field ({field}) on node type ({node_type})", 100)


def missing_object(ident: str, method: str = "get") -> GraphError:
    return GraphError(
        f"Unsupported {method} request. Object with ID '{ident}' does not exist, cannot be loaded due to "
        "missing permissions, or does not support this operation. Please read the Graph API documentation "
        "at https://developers.facebook.com/docs/graph-api",
        100,
        subcode=33,
        type_="GraphMethodException",
    )


def transient(code: int = 2) -> GraphError:
    if code == 1:
        return GraphError("An unknown error has occurred.", 1, status=500, transient=True)
    return GraphError(
        "An unexpected error has occurred. Please retry your request later.", 2, status=500, transient=True
    )


def internal() -> GraphError:
    """What an unexpected exception becomes: never a traceback on the wire."""
    return GraphError("An unknown error has occurred.", 1, status=500, transient=True)


def reduce_data() -> GraphError:
    return GraphError(
        "Please reduce the amount of data you're asking for, then retry your request",
        1,
        status=500,
        transient=False,
    )


def too_much_data() -> GraphError:
    return GraphError(
        "(#100) The request is too large: it would return too many rows or data points. Reduce the date "
        "range, the number of objects or the breakdowns, or use an asynchronous report.",
        100,
        subcode=1487534,
        user_title="Too Much Data Requested",
        user_msg="Please reduce the amount of data you're asking for, then retry your request.",
    )


def report_not_loadable() -> GraphError:
    """Reading an async report's results before it is loadable (seen even at 100 %): Meta's body, as
    quoted in facebook/facebook-python-business-sdk#293."""
    return GraphError(
        "Error accessing adreport job.",
        2601,
        subcode=1815107,
        transient=True,
        user_title="Loading Async Ads Report Failed",
        user_msg="Sorry, the report cannot be loaded successfully. Please check if your job status is completed "
        "instead of failed or running before fetching the data.",
    )
