"""Messenger and Instagram conversations of each Page, generated from the daily facts.

Guarantees:
- Conversations are born on a Page-local day D (the promoting account's timezone, UTC for a Page no
  account promotes): one per conversation start of each messaging ad that day
  (``delivery(ad, D).conv_final``, so the ``onsite_conversion.messaging_conversation_started_7d`` of a
  mature day matches them exactly), plus organic ones. Each conversation's first message of that
  day is user-sent (a start).
- Some conversations get a follow-up (< 7 days later, not a start) and/or a re-engagement
  (>= 7 days later, user-sent, a start that is organic, i.e. not attributed to an ad).
- Long conversations, as real inboxes have them (seed 004: details only for the 20 most recent
  messages), so starts inside the history window fall beyond the API's reach:
  about 5% carry an older history of 22-35 messages that began 8 to ~150 days before D (its first
  message is a start, often inside the window, never within reach); about 8% open with a burst of
  21-40 messages (support threads, bots, quick replies: beyond reach from the first pull on);
  about 8% open short and grow past 20 messages with a session on the next local day (an earlier
  daily pull saw the start with its details, the next one no longer does); a quarter of the
  re-engagements are such bursts too.
- Messaging policy the world follows (the basis of the pipeline's inference rule, DESIGN.md): a
  Page never sends a conversation's first message, nor a message after >= 7 days of silence;
  those are always the person's.
- About 5% of the people have a role on the app (testers, the Page's staff): the only
  conversations a Standard Access token sees (seed 004).
- Only messages sent before the clock are visible (today's so far included).
- Ids: conversations ``t_<token>``, messages ``m_<token>``; both decode to (page, day, seq[, idx]).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt

from meta_sandbox import rng
from meta_sandbox.clock import from_day_number

START_GAP_SECONDS = 7 * 86400
DETAIL_LIMIT = 20
APP_ROLE_SHARE = 0.05
"""Share of conversations with people who have a role on the app (what Standard Access sees)."""
USER_LINES = [
    "Hola, ¿siguen disponibles?",
    "Hi! What are your prices?",
    "Can I book for Saturday?",
    "Is there a discount this week?",
    "Do you deliver to my area?",
    "Thanks, sounds good",
    "Could you call me back?",
    "What are the opening hours?",
    "Me interesa, ¿cómo sigo?",
    "Ok, I'll think about it",
]
PAGE_LINES = [
    "Hi! Thanks for reaching out, how can we help?",
    "Yes, it is available.",
    "Our prices start at 49.",
    "Sure, what time works for you?",
    "We'll call you shortly.",
    "¡Claro! Te enviamos los detalles.",
    "Have a great day!",
    "You're welcome!",
]


@dataclasses.dataclass(eq=False)
class Message:
    idx: int  # chronological index within the conversation (0 = oldest)
    ts: int
    from_user: bool
    text: str


@dataclasses.dataclass(eq=False)
class Conversation:
    id: str
    page: object
    day: int
    seq: int
    platform: str  # "messenger" | "instagram"
    ad: object | None
    user_id: str
    user_name: str
    messages: list[Message]  # all generated messages, chronological (visibility applied by callers)
    user_has_app_role: bool = False  # visible to a Standard Access token (seed 004)

    def visible(self, cutoff_ts: int) -> list[Message]:
        return [m for m in self.messages if m.ts < cutoff_ts]


def visible_to(conv: Conversation, principal) -> bool:
    """Seed 004: without Advanced Access, conversations with people who have no role on the app are hidden."""
    return conv.user_has_app_role or getattr(principal, "advanced_access", True)


def _enc(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _dec(token: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def conversation_id(page_index: int, day: int, seq: int) -> str:
    return "t_" + _enc(f"{page_index}:{day}:{seq}")


def message_id(conv: Conversation, idx: int) -> str:
    return "m_" + _enc(f"{conv.page.index}:{conv.day}:{conv.seq}:{idx}")


def parse_id(ident: str) -> tuple[int, ...] | None:
    if not ident.startswith(("t_", "m_")):
        return None
    text = _dec(ident[2:])
    if not text:
        return None
    try:
        parts = tuple(int(p) for p in text.split(":"))
    except ValueError:
        return None
    return parts if len(parts) == (3 if ident[0] == "t" else 4) else None


def _local_midnight(tz, day: int) -> int:
    d = from_day_number(day)
    return int(dt.datetime(d.year, d.month, d.day, tzinfo=tz).timestamp())


def _session(msgs: list[tuple[int, bool]], start: int, n: int, first_user: bool, h: int) -> int:
    ts = start
    from_user = first_user
    for i in range(n):
        if i:
            h = rng.mix64(h)
            ts += 30 + h % 1200
            from_user = not from_user if (h >> 20) % 5 else from_user
        msgs.append((ts, from_user))
    return ts


def _build(sandbox, page, day: int, seq: int, ad, h: int) -> Conversation:
    cfg = sandbox.world.config
    tz = page.tz
    u = rng.stream(h, 8)
    platform = ad.platform if ad is not None else ("messenger" if u[0] < 0.55 else "instagram")
    born = _local_midnight(tz, day) + int(u[1] * 0.85 * 86400)
    msgs: list[tuple[int, bool]] = []
    shape = u[2]
    if shape < 0.05:  # a long-standing conversation: an older history of 22-35 messages, out of reach
        legacy_start = born - (8 + int(u[3] * (cfg.history_days + 60))) * 86400
        _session(msgs, legacy_start, 22 + int(u[4] * 14), True, rng.mix64(h ^ 0x1E6))
    if 0.05 <= shape < 0.13:  # opens with a burst past 20 messages: the start is beyond reach at once
        last = _session(msgs, born, 21 + int(u[5] * 20), True, rng.mix64(h ^ 0xB0))
    else:
        last = _session(msgs, born, 2 + int(u[5] * 6), True, rng.mix64(h ^ 0xB0))
    if 0.13 <= shape < 0.21:  # grows past 20 messages on the next local day (not a new start)
        next_day = _local_midnight(tz, day + 1) + 3600 + int(u[4] * 20 * 3600)
        last = _session(msgs, max(next_day, last + 600), 20 + int(u[3] * 12), u[3] < 0.5, rng.mix64(h ^ 0x96))
    if u[6] < 0.3:  # follow-up within a week: not a new start
        last = _session(
            msgs, last + 7200 + int(u[7] * 60 * 3600), 2 + int(u[6] * 10) % 4, u[7] < 0.7, rng.mix64(h ^ 0xF0)
        )
    u2 = rng.stream(rng.mix64(h ^ 0x7E), 5)
    if u2[0] < 0.2:  # re-engagement after >= 7 days: a new, organic start (a quarter are bursts)
        n = 21 + int(u2[3] * 15) if u2[3] < 0.25 else 2 + int(u2[2] * 4)
        _session(msgs, last + START_GAP_SECONDS + 3600 + int(u2[1] * 7 * 86400), n, True, rng.mix64(h ^ 0x3E))
    user_h = rng.mix64(h ^ 0xAB)
    if platform == "instagram":
        user_id = str(10**16 + user_h % (9 * 10**16))
        user_name = f"{rng.pick(['sun', 'blue', 'maya', 'raj', 'lena', 'kai'], user_h >> 7)}_{user_h % 9973}"
    else:
        user_id = str(10**15 + user_h % (9 * 10**15))
        from meta_sandbox.leads import FIRST_NAMES, LAST_NAMES

        user_name = f"{rng.pick(FIRST_NAMES, user_h >> 9)} {rng.pick(LAST_NAMES, user_h >> 21)}"
    messages = []
    for idx, (ts, from_user) in enumerate(msgs):
        mh = rng.mix64(h ^ (idx * 0x9E37))
        text = rng.pick(USER_LINES if from_user else PAGE_LINES, mh)
        messages.append(Message(idx, ts, from_user, text))
    return Conversation(
        conversation_id(page.index, day, seq),
        page,
        day,
        seq,
        platform,
        ad,
        user_id,
        user_name,
        messages,
        user_has_app_role=u2[4] < APP_ROLE_SHARE,
    )


def day_conversations(sandbox, page, day: int) -> list[Conversation]:
    """All conversations born on Page-local ``day`` (ad-attributed first, then organic)."""
    cfg = sandbox.world.config
    out: list[Conversation] = []
    seq = 0
    for ad in sandbox.page_ads(page, "messaging", day):
        dl = sandbox.delivery(ad, day)
        for _ in range(dl.conv_final if dl else 0):
            out.append(_build(sandbox, page, day, seq, ad, rng.mix64(ad.key ^ (day << 24) ^ seq)))
            seq += 1
    org_h = rng.mix64(rng.key(cfg.seed, "organic-conv", page.index) ^ day)
    for _ in range(rng.poisson(sandbox.organic_conv_mean(page), rng.unit(org_h))):
        out.append(_build(sandbox, page, day, seq, None, rng.mix64(org_h ^ (seq + 1) * 0x51)))
        seq += 1
    return out


def page_conversations(sandbox, page) -> list[Conversation]:
    """Visible conversations of a Page, newest ``updated_time`` first."""
    start, today = sandbox.window(page)
    cutoff = sandbox.cutoff_ts(page)
    out: list[Conversation] = []
    for day in range(start, today + 1):
        out.extend(c for c in day_conversations(sandbox, page, day) if c.visible(cutoff))
    out.sort(key=lambda c: (c.visible(cutoff)[-1].ts, c.id), reverse=True)
    return out


def find_conversation(sandbox, page_index: int, day: int, seq: int) -> Conversation | None:
    if page_index >= len(sandbox.world.pages):
        return None
    page = sandbox.world.pages[page_index]
    start, today = sandbox.window(page)
    if not start <= day <= today:
        return None
    convs = day_conversations(sandbox, page, day)
    conv = convs[seq] if seq < len(convs) else None
    return conv if conv is not None and conv.visible(sandbox.cutoff_ts(page)) else None


def starts(conv: Conversation, cutoff_ts: int) -> list[Message]:
    """Conversation starts: user-sent messages that are first or come >= 168 h after the previous one."""
    out = []
    prev = None
    for m in conv.messages:
        if m.ts >= cutoff_ts:
            break
        if m.from_user and (prev is None or m.ts - prev.ts >= START_GAP_SECONDS):
            out.append(m)
        prev = m
    return out


def beyond_reach(conv: Conversation, m: Message, cutoff_ts: int) -> bool:
    """True if ``m`` is older than the 20 most recent visible messages: the API gives only its id and time."""
    return sum(1 for other in conv.messages if m.ts < other.ts < cutoff_ts) >= DETAIL_LIMIT


def participant(conv: Conversation, user: bool) -> dict:
    page = conv.page
    if conv.platform == "instagram":
        if user:
            return {"username": conv.user_name, "id": conv.user_id}
        return {"username": page.ig_username, "id": page.ig_id}
    if user:
        return {"name": conv.user_name, "email": f"{conv.user_id}@facebook.com", "id": conv.user_id}
    return {"name": page.name, "email": f"{page.id}@facebook.com", "id": page.id}


CONVERSATION_FIELDS = {
    "id",
    "updated_time",
    "message_count",
    "unread_count",
    "participants",
    "senders",
    "snippet",
    "can_reply",
    "is_subscribed",
    "link",
    "name",
    "former_participants",
    "messages",
    "folder",
    "is_owner",
    "scoped_thread_key",
    "wallpaper",
}
CONVERSATION_DEFAULT_FIELDS = ["id", "updated_time"]
MESSAGE_FIELDS = {
    "id",
    "created_time",
    "from",
    "to",
    "message",
    "attachments",
    "sticker",
    "tags",
    "shares",
    "reactions",
    "reply_to",
    "is_unsupported",
    "story",
}
MESSAGE_DEFAULT_FIELDS = ["id", "created_time"]
MESSAGE_DETAIL_FIELDS = {
    "from",
    "to",
    "message",
    "attachments",
    "sticker",
    "tags",
    "shares",
    "reactions",
    "reply_to",
    "is_unsupported",
    "story",
}


def render_message(conv: Conversation, m: Message, fields: list[str], graph_time, detailed: bool) -> dict:
    """One message; without ``detailed`` (older than the 20 most recent) only id/created_time."""
    out: dict = {}
    for f in fields:
        if f == "id":
            out["id"] = message_id(conv, m.idx)
        elif f == "created_time":
            out["created_time"] = graph_time(m.ts)
        elif not detailed:
            continue
        elif f == "from":
            out["from"] = participant(conv, m.from_user)
        elif f == "to":
            out["to"] = {"data": [participant(conv, not m.from_user)]}
        elif f == "message":
            out["message"] = m.text
        elif f == "tags":
            out["tags"] = {"data": [{"name": "inbox"}, {"name": "read"}]}
    out.setdefault("id", message_id(conv, m.idx))
    return out
