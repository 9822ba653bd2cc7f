"""Access tokens, permissions and ``appsecret_proof``.

Tokens (see DESIGN.md):
- ``sandbox-token``: the user token, every permission.
- ``sandbox-expired-token``: rejected with code 190, subcode 463.
- ``sandbox-token-without-<permission>``: a user token lacking that one permission; several are
  joined with ``+``, and upper-case names are Page tasks the user cannot perform on any Page
  (``sandbox-token-without-MESSAGING+MODERATE``).
- ``sandbox-token-standard-access``: every permission, but the app has only Standard Access: seed
  004, "Advanced Access is needed to see conversations with people who have no role on the app".
- ``sandbox-token-not-advertiser-on-<account_id>``: every permission, but the user has no advertiser
  privileges on that ad account: seed 003, its leads come without ad, ad set and campaign ids.
- Page tokens: ``EAAP<base64 of page_id|user token>.<mac>``, served only by ``GET /me/accounts`` and
  ``GET /<page_id>?fields=access_token``; they carry the permissions of the user token they came from.
  With ``--page-token-seconds N`` (off by default: Page tokens never expire) each one also carries the
  wall time it was issued (``page_id|user token|issued ms``) and, older than N seconds, is answered as
  ``sandbox-expired-token`` is (190/463): Meta, for Page tokens from a short-lived user token, "These Page
  access tokens are valid for 1 hour" (research/meta_api_facts.md section 7, [DOC]
  https://developers.facebook.com/documentation/business-sdk/common-scenarios/token-switch). Wall time,
  not the sandbox's clock (which ``--now`` stops); a new read of the Page token issues a fresh one.
- Anything else: code 190 "Invalid OAuth access token".
The token is read from ``access_token`` (query or form body) or ``Authorization: Bearer|OAuth <token>``.
``appsecret_proof`` = HMAC-SHA256(key=app secret, msg=the token actually sent), checked when sent and
required with ``--require-proof``, on every request and batch item (a Business or ad account read as much
as ``/me``). Refused as Meta does, HTTP 400, code 100 without subcode, ``GraphMethodException`` (so a
client must not read every 100 as "no such object"; that is 100/33): "Invalid appsecret_proof provided in
the API argument" (facebook/facebook-python-business-sdk#528) and, when the app requires a proof, "API
calls from the server require an appsecret_proof argument" (sromku/android-simple-facebook#160); the
proof itself: https://developers.facebook.com/docs/graph-api/securing-requests#appsecret_proof.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import time

from meta_sandbox.errors import GraphError

ALL_PERMISSIONS = frozenset(
    {
        "ads_read",
        "ads_management",
        "business_management",
        "leads_retrieval",
        "pages_show_list",
        "pages_read_engagement",
        "pages_manage_metadata",
        "pages_manage_ads",
        "pages_messaging",
        "instagram_basic",
        "instagram_manage_messages",
        "read_insights",
        "public_profile",
    }
)
ALL_TASKS = ("ANALYZE", "ADVERTISE", "MESSAGING", "MODERATE", "CREATE_CONTENT", "MANAGE")
"""Page tasks (``/me/accounts`` ``tasks``); the Conversations API needs MESSAGING or MODERATE (seed 004)."""
USER_PREFIX = "sandbox-token"
EXPIRED = "sandbox-expired-token"
WITHOUT = "sandbox-token-without-"
STANDARD_ACCESS = "sandbox-token-standard-access"
NOT_ADVERTISER = "sandbox-token-not-advertiser-on-"


@dataclasses.dataclass(frozen=True)
class Principal:
    token: str
    kind: str  # "user" | "page"
    permissions: frozenset
    page_id: str | None = None
    user_token: str | None = None  # for page tokens: the user token they derive from
    tasks: frozenset = frozenset(ALL_TASKS)  # what the user can do on every Page
    advanced_access: bool = True  # False: conversations with people without an app role are hidden
    not_advertiser_on: frozenset = frozenset()  # ad account ids (numeric) without advertiser privileges
    issued_at: float | None = None  # page tokens of --page-token-seconds: when issued (wall time, s)

    @property
    def rate_key(self) -> str:
        return self.user_token or self.token


def _mac(secret: str, text: str) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()[:16]


def proof(app_secret: str, token: str) -> str:
    return hmac.new(app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def page_token(app_secret: str, page_id: str, user_token: str, issued_at: float | None = None) -> str:
    """A Page token of ``page_id`` derived from ``user_token``; with ``issued_at`` (wall time, s: only
    under ``--page-token-seconds``) it expires, and each issue is a different token."""
    text = f"{page_id}|{user_token}" + ("" if issued_at is None else f"|{int(issued_at * 1000)}")
    payload = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
    return f"EAAP{payload}.{_mac(app_secret, payload)}"


def session_expired() -> GraphError:
    """Meta's answer to an expired access token (``sandbox-expired-token``, an expired Page token)."""
    return GraphError(
        "Error validating access token: Session has expired on Friday, 01-Jan-21 00:00:00 PST. "
        "The current time is later.",
        190,
        subcode=463,
    )


def token_from(params: dict, headers) -> str | None:
    token = params.get("access_token")
    if token:
        return str(token)
    auth = headers.get("Authorization") or headers.get("authorization") or ""
    scheme, _, value = auth.partition(" ")
    if scheme.lower() in ("bearer", "oauth") and value.strip():
        return value.strip()
    return None


def _user(token: str) -> Principal | None:
    if token == USER_PREFIX:
        return Principal(token, "user", ALL_PERMISSIONS)
    if token == STANDARD_ACCESS:
        return Principal(token, "user", ALL_PERMISSIONS, advanced_access=False)
    if token.startswith(NOT_ADVERTISER) and token[len(NOT_ADVERTISER) :].isdigit():
        return Principal(
            token, "user", ALL_PERMISSIONS, not_advertiser_on=frozenset({token[len(NOT_ADVERTISER) :]})
        )
    if token.startswith(WITHOUT):
        missing = set(token[len(WITHOUT) :].split("+"))
        return Principal(
            token,
            "user",
            ALL_PERMISSIONS - missing,
            tasks=frozenset(t for t in ALL_TASKS if t not in missing),
        )
    return None


def authenticate(
    token: str | None,
    app_secret: str,
    sent_proof: str | None,
    require_proof: bool,
    page_token_seconds: float | None = None,
    now: float | None = None,
) -> Principal:
    """The principal behind a request, or the GraphError Meta would answer with. ``page_token_seconds``:
    the life of a Page token that carries its issue time, judged at ``now`` (wall time; default: now)."""
    if not token:
        raise GraphError("An access token is required to request this resource.", 104, type_="OAuthException")
    if token == EXPIRED:
        raise session_expired()
    principal = _user(token)
    if principal is None and token.startswith("EAAP") and "." in token:
        payload, _, mac = token[4:].rpartition(".")
        if hmac.compare_digest(mac, _mac(app_secret, payload)):
            try:
                page_id, _, rest = (
                    base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode().partition("|")
                )
                user_token, _, issued = rest.partition("|")
                issued_at = int(issued) / 1000 if issued else None
            except (ValueError, UnicodeDecodeError):
                page_id, user_token, issued_at = "", "", None
            base = _user(user_token) if user_token else None
            if base is not None:
                principal = dataclasses.replace(
                    base,
                    token=token,
                    kind="page",
                    page_id=page_id,
                    user_token=user_token,
                    issued_at=issued_at,
                )
    if principal is None:
        raise GraphError("Invalid OAuth access token - Cannot parse access token", 190)
    age = None if principal.issued_at is None else (time.time() if now is None else now) - principal.issued_at
    if age is not None and page_token_seconds and age > page_token_seconds:
        raise session_expired()
    if sent_proof:
        if not hmac.compare_digest(str(sent_proof), proof(app_secret, token)):
            raise GraphError(
                "Invalid appsecret_proof provided in the API argument", 100, type_="GraphMethodException"
            )
    elif require_proof:
        raise GraphError(
            "API calls from the server require an appsecret_proof argument", 100, type_="GraphMethodException"
        )
    return principal


def require(principal: Principal, permission: str) -> None:
    """Code 10 for Page/leads/messaging permissions, 200 for ads permissions (Meta uses both ranges)."""
    if permission in principal.permissions:
        return
    if permission in ("ads_read", "ads_management", "read_insights"):
        raise GraphError(
            f"(#200) Requires {permission} permission to manage the object", 200, type_="OAuthException"
        )
    raise GraphError(
        f"(#10) This endpoint requires the '{permission}' permission. It has not been granted "
        "to this access token.",
        10,
        type_="OAuthException",
    )


LEAD_PERMISSIONS = (
    "leads_retrieval",
    "ads_management",
    "pages_show_list",
    "pages_read_engagement",
    "pages_manage_ads",
)
"""What reading leads needs (Retrieving Leads, research/meta_api_facts.md section 5.2: "Permissions (docs):
`leads_retrieval`, `ads_management`, `pages_show_list`, `pages_read_engagement`, `pages_manage_ads`");
``leads_retrieval`` first, so a token lacking it hears about it first."""


def require_leads(principal: Principal) -> None:
    """Every permission of ``LEAD_PERMISSIONS``: the first one missing answers as ``require`` does."""
    for permission in LEAD_PERMISSIONS:
        require(principal, permission)


CONVERSATION_PERMISSIONS = {
    "messenger": ("pages_messaging",),
    "instagram": ("instagram_basic", "instagram_manage_messages", "pages_manage_metadata"),  # seed 004
}
CONVERSATION_TASKS = {"messenger": ("MESSAGING", "MODERATE"), "instagram": ("MESSAGING",)}  # seed 004


def require_conversations(principal: Principal, page_id: str, platform: str) -> None:
    """Seed 004: a Page token of that Page, the platform's permissions, and a user who can perform the
    MESSAGING or MODERATE task on the Page (MESSAGING for Instagram)."""
    require_page_token(principal, page_id)
    for permission in CONVERSATION_PERMISSIONS[platform]:
        require(principal, permission)
    tasks = CONVERSATION_TASKS[platform]
    if not set(tasks) & principal.tasks:
        raise GraphError(
            f"(#10) To read {platform} conversations of Page {page_id} the access token must belong "
            f"to a user who can perform the {' or '.join(tasks)} task on the Page.",
            10,
            type_="OAuthException",
        )


def require_page_token(principal: Principal, page_id: str) -> None:
    """Page edges need a Page token of that very Page (code 190 otherwise, as Meta answers)."""
    if principal.kind != "page":
        raise GraphError("(#190) This method must be called with a Page Access Token", 190)
    if principal.page_id != page_id:
        raise GraphError("(#190) The Page Access Token does not belong to this Page", 190, subcode=492)
