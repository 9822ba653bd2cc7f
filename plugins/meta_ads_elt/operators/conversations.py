"""Messenger and Instagram conversations of a Page, with their reachable messages, in few calls.

Why it is cheap: ``/<page_id>/conversations`` with field expansion
(``messages.limit(N){id,created_time,from,to,message}``) returns each conversation *and* its recent
messages in one request, and the edge lists conversations newest-updated first, so paging stops at the
first conversation not updated since the window start (the order is checked as pages are read:
:class:`ListingPage`). Per-id reads that remain (a conversation's messages beyond the first nested page,
when ``messages_per_conversation`` < 20) go through Graph batch requests, at most 50 per call. Instagram
calls are paced to Meta's quota of 2 calls per second per Instagram account, batch items counted one by
one: each Instagram walk has its :class:`~meta_ads_elt.pacing.CallPacer`, handed to the hook's
``paginate`` and ``batch``, which wait in it right before each send, retries included (the operator never
waits itself). The naive path of seed 004 (list, then each conversation, then each message) costs one
call per message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from meta_ads_elt import fields
from meta_ads_elt.config import check_operator_arguments, operator_default
from meta_ads_elt.errors import (
    MetaArgumentError,
    MetaDataTooLargeError,
    MetaPermissionError,
    MetaRetryableError,
    MetaTokenError,
    in_context,
    is_missing_object,
)
from meta_ads_elt.operators._pages import (
    MetaPageOperator,
    page_hook_or_raise,
    parse_meta_time,
    raise_for_page,
)
from meta_ads_elt.pacing import CallPacer

if TYPE_CHECKING:
    import pyarrow as pa
    from airflow.sdk import Context

    from meta_ads_elt.hooks.graph_api import MetaGraphApiHook

PLATFORM_PERMISSIONS = {"messenger": "pages_messaging", "instagram": "instagram_manage_messages"}
"""The permission named in errors (the full list each platform needs: ``access.REQUIRED_PERMISSIONS``)."""


@dataclass(frozen=True)
class ListingPage:
    """One page of ``/<page_id>/conversations``, read against the window.

    The walk stops at the first page that reaches a conversation older than the window start, because the
    edge lists conversations newest-updated first (the order the Inbox shows, and the one Meta documents
    for a conversation's messages; the Conversations API page does not state it for the list). That
    order is checked, not trusted: a conversation updated later than the one listed before it is counted
    (``out_of_order``, in the run's manifest and a warning), every conversation of a page read is kept
    when it is in the window (even after an older one), and once the order was seen broken the walk
    reads on to the end of the edge instead of stopping early."""

    in_window: list[tuple[dict, datetime]]
    reached_older: bool
    out_of_order: int
    last_listed: datetime | None

    @classmethod
    def of(cls, records: Iterable[dict], start: datetime, *, after: datetime | None) -> ListingPage:
        in_window: list[tuple[dict, datetime]] = []
        reached_older, out_of_order, previous = False, 0, after
        for record in records:
            updated = parse_meta_time(record["updated_time"])
            if previous is not None and updated > previous:
                out_of_order += 1
            previous = updated
            if updated < start:
                reached_older = True
            else:
                in_window.append((record, updated))
        return cls(in_window, reached_older, out_of_order, previous)


@dataclass
class ConversationPull:
    """What one (Page, platform) pull produced: rows plus the counts the manifest reports."""

    conversations: list[dict] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    pages_read: int = 0
    batch_requests: int = 0
    listing_errors: int = 0
    watermark: datetime | None = None
    out_of_order: int = 0
    """Conversations listed after one updated later than themselves: Meta's newest-first order broken."""
    relisted: int = 0
    """Messages a later page of the same conversation's walk listed again (kept once; the listing's own
    repeats are dropped, and logged, by the hook's ``paginate``)."""
    carried_conversations: int = 0
    """Conversations an earlier pull of the same date held that Meta no longer lists (kept)."""
    carried_messages: int = 0
    """Messages an earlier pull of the same date held that Meta no longer lists (kept)."""
    updated_during_walk: int = 0
    """Conversations updated while the listing was walked, taken from a second read of its head."""
    senders_kept: int = 0
    """Messages listed without details (beyond the 20 most recent now) whose sender an earlier pull of the
    same date saw: the sender is kept."""
    last_listed: datetime | None = None

    @property
    def messages_out_of_reach(self) -> int:
        return sum(c["messages_out_of_reach"] or 0 for c in self.conversations)

    @property
    def messages_without_sender(self) -> int:
        return sum(1 for m in self.messages if m["is_from_page"] is None)

    def keep_what_an_earlier_pull_saw(
        self, conversations: Iterable[dict], messages: Iterable[dict], start: datetime, *, keep_text: bool
    ) -> None:
        """A rerun of a date replaces the date's snapshot. What the earlier pull of that date held and Meta
        no longer lists still happened: a conversation deleted, hidden from an app that lost Advanced
        Access or a Message Request inactive for 30 days (seed 004), a deleted message. It is kept with the
        ``_extracted_at`` of the pull that saw it, and counted; the numbers never shrink because Meta
        forgets. Kept: the earlier pull's conversations in the window that this pull did not list, with
        their messages, and its messages from the window start on of the conversations it did list (a
        walk that could not read them, or a message deleted since). A message Meta now lists without
        details (newer messages pushed it beyond the 20 most recent, seed 004) keeps the sender the earlier
        pull saw: a sender does not change, and an unknown one would turn an observed start into an
        inferred one (or a message from the Page into an inferred start)."""
        listed = {c["conversation_id"] for c in self.conversations}
        carried = [
            c for c in conversations if c["conversation_id"] not in listed and c["updated_time"] >= start
        ]
        carried_ids = {c["conversation_id"] for c in carried}
        have = {m["message_id"] for m in self.messages}
        kept = [
            {**m, "message": m["message"] if keep_text else None}
            for m in messages
            if m["message_id"] not in have
            and (
                m["conversation_id"] in carried_ids
                or (m["conversation_id"] in listed and m["created_time"] >= start)
            )
        ]
        with_sender = {m["message_id"]: m for m in messages if m["is_from_page"] is not None}
        for index, message in enumerate(self.messages):
            seen = with_sender.get(message["message_id"])
            if message["is_from_page"] is None and seen is not None:
                self.messages[index] = {**seen, "message": seen["message"] if keep_text else None}
                self.senders_kept += 1
        self.conversations.extend(carried)
        self.messages.extend(kept)
        self.carried_conversations, self.carried_messages = len(carried), len(kept)

    def tables(self) -> tuple[pa.Table, pa.Table]:
        """``conversations`` and ``messages`` tables, sorted so reruns write the same rows."""
        import pyarrow as pa  # imported here, not when the DAG file is parsed

        from meta_ads_elt import schemas
        from meta_ads_elt.lake.rows import skip_pandas_probe

        skip_pandas_probe()
        conversations = sorted(self.conversations, key=lambda r: r["conversation_id"])
        messages = sorted(
            self.messages, key=lambda r: (r["conversation_id"], r["created_time"], r["message_id"])
        )
        return (
            pa.Table.from_pylist(conversations, schema=schemas.CONVERSATIONS),
            pa.Table.from_pylist(messages, schema=schemas.MESSAGES),
        )


def _edge(value: Any) -> tuple[list[dict], Mapping[str, Any]]:
    """``(data, paging)`` of a nested edge (``{"data": [...], "paging": {...}}``) or a bare list."""
    if isinstance(value, Mapping):
        return list(value.get("data") or []), value.get("paging") or {}
    return list(value or []), {}


def next_cursor(paging: Mapping[str, Any]) -> str | None:
    """The ``after`` cursor of a nested edge, only when Meta says there is a next page."""
    after = (paging.get("cursors") or {}).get("after")
    return str(after) if after and paging.get("next") else None


def has_details(message: Mapping[str, Any]) -> bool:
    """Meta serves the sender (and text) only for the 20 most recent messages; older ones come with
    ``id`` and ``created_time`` only (or, read one by one, as an error saying they were deleted)."""
    return (
        bool(message.get("id"))
        and bool(message.get("created_time"))
        and bool(message.get("from"))
        and "error" not in message
    )


def message_row(
    message: Mapping[str, Any],
    conversation_id: str,
    page_actor_id: str | None,
    keep_text: bool,
    extracted_at: datetime,
) -> dict:
    """A lake row. A message without details keeps its id and time; its sender is unknown
    (``from_id`` and ``is_from_page`` null), never guessed."""
    detailed = has_details(message)
    sender = message.get("from") or {}
    recipients, _ = _edge(message.get("to"))
    from_id = str(sender["id"]) if detailed and sender.get("id") else None
    return {
        "message_id": str(message["id"]),
        "conversation_id": conversation_id,
        "created_time": parse_meta_time(message["created_time"]),
        "from_id": from_id,
        "to_ids": [str(r["id"]) for r in recipients if r.get("id")] if detailed else None,
        "is_from_page": (from_id is not None and from_id == page_actor_id) if detailed else None,
        "message": message.get("message") if keep_text and detailed else None,
        "_extracted_at": extracted_at,
    }


class ConversationState:
    """One conversation being assembled, walking its ``messages`` edge newest first.

    * The 20 most recent messages are read with their details (``messages_per_conversation`` per
      request); ``messages`` holds those that came with a sender.
    * Beyond them Meta gives only ``id`` and ``created_time`` (seed 004). The walk goes on with those
      two fields until it passes a message older than ``window_start`` (kept as the anchor that dates
      the silence before the window's first message) or reaches the conversation's first message,
      whose id is then recorded (``first_message_id``): what decides whether the oldest message
      starts the conversation when its sender is beyond reach (DESIGN.md, "Conversation starts").
    * A missing ``message_count`` stays unknown (None), never 0.
    """

    def __init__(self, record: Mapping[str, Any], window_start: datetime | None = None) -> None:
        self.record = record
        self.id = str(record["id"])
        self.window_start = window_start
        count = record.get("message_count")
        self.message_count: int | None = None if count is None else int(count)
        self.messages: dict[str, Mapping[str, Any]] = {}  # with details (sender known)
        self.listed: list[Mapping[str, Any]] = []  # every message listed so far, newest first
        self.cursor: str | None = None
        self.max_limit: int | None = None  # a smaller page size, once Meta asked for less data
        self.complete = False  # the walk reached the conversation's first message
        self.errors = 0
        self.relisted = 0  # messages a later page listed again (kept once)
        self._listed_ids: set[str] = set()
        messages, paging = _edge(record.get("messages"))
        self.add_page(messages, paging)

    @property
    def position(self) -> int:
        """How many messages the walk has listed (the newest is position 0)."""
        return len(self.listed)

    def add_page(self, messages: Iterable[Mapping[str, Any]], paging: Mapping[str, Any]) -> None:
        """Adds a page of the walk. A message already listed is skipped and counted (``relisted``): the
        edge changes while it is read (a message arriving at its head shifts a list paged by position,
        and Meta's cursor "will always point to the item", which may itself move), so a page can start
        with messages the page before ended with."""
        for message in messages:
            if not message.get("id") or not message.get("created_time"):
                continue
            if str(message["id"]) in self._listed_ids:
                self.relisted += 1
                continue
            self._listed_ids.add(str(message["id"]))
            if has_details(message) and self.position < fields.MESSAGES_WITH_DETAILS:
                self.messages.setdefault(str(message["id"]), message)
            self.listed.append(message)
        self.cursor = next_cursor(paging)
        self.complete = self.cursor is None

    def stop(self) -> None:
        """An unreadable page (an error item): the rest of the walk is unknown, so is the first message."""
        self.errors += 1
        self.cursor = None
        self.complete = False

    def _oldest_time(self) -> datetime | None:
        return parse_meta_time(self.listed[-1]["created_time"]) if self.listed else None

    def wants_more(self) -> bool:
        if self.cursor is None:
            return False
        if self.position < fields.MESSAGES_WITH_DETAILS:
            return True  # the rest of the 20 most recent, with details
        oldest = self._oldest_time()
        return self.window_start is not None and oldest is not None and oldest >= self.window_start

    def _next_page(self) -> tuple[tuple[str, ...], int]:
        """The fields and page size of this conversation's next page of messages."""
        page_fields: tuple[str, ...] = fields.MESSAGE_FIELDS
        limit = fields.MESSAGES_WITH_DETAILS - self.position
        if self.position >= fields.MESSAGES_WITH_DETAILS:
            page_fields, limit = fields.MESSAGE_LISTING_FIELDS, fields.MESSAGES_LISTING_PAGE_LIMIT
        return page_fields, min(limit, self.max_limit or limit)

    def more_request(self) -> dict:
        """The batch operation reading this conversation's next page of messages."""
        page_fields, limit = self._next_page()
        params = {"fields": ",".join(page_fields), "limit": limit, "after": self.cursor}
        return {"method": "GET", "relative_url": f"{self.id}/messages?{urlencode(params)}"}

    def smaller_pages(self) -> bool:
        """Meta asked for less data ("reduce the amount of data"): halve the page size, as the hook's
        ``paginate`` does, and ask the same page again; ``False`` when it is 1 already."""
        _, limit = self._next_page()
        if limit <= 1:
            return False
        self.max_limit = limit // 2
        return True

    def rows_to_keep(self) -> list[Mapping[str, Any]]:
        """Messages with details, and those without from the window start on plus one older anchor."""
        kept: list[Mapping[str, Any]] = []
        for message in self.listed:
            if str(message["id"]) in self.messages:
                kept.append(self.messages[str(message["id"])])
                continue
            kept.append(message)
            if self.window_start is not None and parse_meta_time(message["created_time"]) < self.window_start:
                break  # the anchor: anything older cannot decide a start inside the window
        ids = {str(m["id"]) for m in kept}
        kept.extend(m for mid, m in self.messages.items() if mid not in ids)
        return kept

    def first_message_id(self) -> str | None:
        return str(self.listed[-1]["id"]) if self.complete and self.listed else None

    def out_of_reach(self) -> int | None:
        """Messages Meta gives no details for; None when the total is unknown."""
        total = self.message_count
        if total is None and self.complete:
            total = self.position
        if total is None:
            return None
        return max(0, total - len(self.messages))

    def row(self, extracted_at: datetime) -> dict:
        participants, _ = _edge(self.record.get("participants"))
        return {
            "conversation_id": self.id,
            "updated_time": parse_meta_time(self.record["updated_time"]),
            "message_count": self.message_count,
            # names and emails of participants are PII and never stored: ids only
            "participant_ids": sorted(str(p["id"]) for p in participants if p.get("id")),
            "messages_out_of_reach": self.out_of_reach(),
            "first_message_id": self.first_message_id(),
            "_extracted_at": extracted_at,
        }


class MetaConversationsOperator(MetaPageOperator):
    """Snapshot one Page's Messenger / Instagram conversations updated in the window, with messages.

    Guarantees:

    * For each platform, every conversation with ``updated_time >= D - lookback_days + 1`` (UTC
      midnight) and its reachable messages go to one partition per (page, platform, D):
      ``conversations/page_id=/platform=/date=D`` and ``messages/...``. A rerun of D replaces them
      atomically (lake writer swap), with identical rows ``_extracted_at`` aside; what the earlier pull
      of D held and Meta no longer lists is kept (``ConversationPull.keep_what_an_earlier_pull_saw``).
    * Calls: conversations arrive with up to ``messages_per_conversation`` (<= 20) recent messages
      per request, paging stops at the first conversation older than the window (newest first),
      and the remaining per-conversation reads are Graph batches of at most 50. Instagram calls
      (listing pages and batch items) keep to Meta's 2 calls per second per Instagram account.
    * Meta serves details only for a conversation's 20 most recent messages (seed 004). Older ones
      are listed with ``id`` and ``created_time`` back to the window start (plus one older message),
      stored with an unknown sender; ``conversations.messages_out_of_reach`` counts the messages
      without details (null when ``message_count`` is missing) and ``first_message_id`` names the
      conversation's first message when the walk reached it. The marts decide starts from these
      (DESIGN.md, "Conversation starts").
    * ``is_from_page``: the sender is the Page (Messenger) or the Page's Instagram account.
    * Message text is PII: the ``message`` column is null unless ``keep_message_text=True``.
      Participant names and emails are never stored.
    * Errors: a bad Page id, a token that cannot act for the Page, a missing ``pages_messaging``
      (Messenger) or ``instagram_manage_messages`` (Instagram) fail the task before anything is
      written, with a message naming the Page and the permission.
    """

    extractor = "conversations"
    datasets = ("conversations", "messages")
    default_page_limit = fields.CONVERSATIONS_PAGE_LIMIT
    template_fields: Sequence[str] = (*MetaPageOperator.template_fields, "platforms")

    def __init__(
        self,
        *,
        platforms: Sequence[str] = operator_default("platforms"),
        keep_message_text: bool = operator_default("keep_message_text"),
        messages_per_conversation: int = fields.MESSAGES_WITH_DETAILS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_operator_arguments(
            type(self).__name__, platforms=platforms, keep_message_text=keep_message_text
        )
        self.platforms = platforms
        self.keep_message_text = keep_message_text
        self.messages_per_conversation = messages_per_conversation

    def execute(self, context: Context) -> dict[str, Any]:
        page_id = str(self.page_id)
        platforms = list(self.platforms)
        unknown = sorted(set(platforms) - set(PLATFORM_PERMISSIONS))
        if unknown:
            raise MetaArgumentError(
                f"platforms = {platforms}: {unknown} not supported; use {sorted(PLATFORM_PERMISSIONS)}"
            )
        if not 1 <= int(self.messages_per_conversation) <= fields.MESSAGES_WITH_DETAILS:
            raise MetaArgumentError(
                f"messages_per_conversation = {self.messages_per_conversation!r}: must be 1..20 (Meta serves "
                "details of the 20 most recent messages only)"
            )
        day, start, _ = self.window(context)
        extracted_at = datetime.now(UTC).replace(microsecond=0)

        page_hook = page_hook_or_raise(
            self.hook, page_id, PLATFORM_PERMISSIONS[platforms[0] if platforms else "messenger"]
        )
        pulls = {
            platform: self._pull(page_hook, page_id, platform, start, extracted_at) for platform in platforms
        }
        for platform, pull in pulls.items():
            self._keep_earlier_pull(pull, day, platform, start)
        return self._write(day, start, pulls, context, extracted_at)

    def _keep_earlier_pull(self, pull: ConversationPull, day: date, platform: str, start: datetime) -> None:
        """Keeps what an earlier pull of ``day`` saw and Meta no longer lists
        (:meth:`ConversationPull.keep_what_an_earlier_pull_saw`)."""
        from meta_ads_elt import schemas
        from meta_ads_elt.lake.partitions import read_rows

        partition = {"page_id": str(self.page_id), "platform": platform, "date": day.isoformat()}
        earlier = {
            name: read_rows(self.lake_root, name, partition, schema.names)
            for name, schema in (("conversations", schemas.CONVERSATIONS), ("messages", schemas.MESSAGES))
        }
        if not earlier["conversations"] and not earlier["messages"]:
            return  # the date's first pull
        pull.keep_what_an_earlier_pull_saw(
            earlier["conversations"], earlier["messages"], start, keep_text=bool(self.keep_message_text)
        )
        if pull.carried_conversations or pull.carried_messages:
            self.log.warning(
                "Page %s %s: %d conversations and %d messages the earlier pull of %s held are no longer listed by "
                "Meta (deleted, hidden from an app without Advanced Access, or Message Requests inactive for 30 "
                "days); they are kept, with the time they were seen", self.page_id, platform,
                pull.carried_conversations, pull.carried_messages, day.isoformat(),
            )  # fmt: skip
        if pull.senders_kept:
            self.log.info(
                "Page %s %s: %d messages Meta now lists without details keep the sender the earlier pull of %s "
                "saw", self.page_id, platform, pull.senders_kept, day.isoformat(),
            )  # fmt: skip

    # -- API ------------------------------------------------------------------------------------

    def _actor_id(self, page_hook: MetaGraphApiHook, page_id: str, platform: str) -> str | None:
        """The id messages from the Page carry: the Page (Messenger) or its Instagram account."""
        if platform == "messenger":
            return page_id
        try:
            node = page_hook.call("GET", page_id, {"fields": fields.PAGE_INSTAGRAM_FIELD}, scope=page_id)
        except Exception as exc:
            raise_for_page(exc, page_id, PLATFORM_PERMISSIONS[platform])
        account = node.get(fields.PAGE_INSTAGRAM_FIELD) or {}
        if isinstance(account, Mapping) and account.get("id"):
            return str(account["id"])
        self.log.warning("Page %s has no Instagram professional account: no message is_from_page", page_id)
        return None

    def _pull(
        self,
        page_hook: MetaGraphApiHook,
        page_id: str,
        platform: str,
        start: datetime,
        extracted_at: datetime,
    ) -> ConversationPull:
        permission = PLATFORM_PERMISSIONS[platform]
        actor_id = self._actor_id(page_hook, page_id, platform)
        pull = ConversationPull()
        states: list[ConversationState] = []
        params = {
            "platform": platform,
            "fields": fields.conversation_fields(int(self.messages_per_conversation)),
            "limit": self.page_limit,
        }
        pacer = CallPacer(page_hook.settings.instagram_calls_per_second) if platform == "instagram" else None
        head: datetime | None = None  # the newest updated_time the walk's first page showed
        try:
            for batch in page_hook.paginate(f"{page_id}/conversations", params, scope=page_id, pacer=pacer):
                pull.pages_read += 1
                page = ListingPage.of(batch, start, after=pull.last_listed)
                for record, updated in page.in_window:
                    pull.watermark = max(pull.watermark or updated, updated)
                    states.append(ConversationState(record, start))
                head = head or pull.watermark
                pull.last_listed = page.last_listed or pull.last_listed
                pull.out_of_order += page.out_of_order
                if page.reached_older and not pull.out_of_order:
                    break  # newest-updated first: every later page is older still
            if pull.pages_read > 1 and head is not None:
                self._catch_up(page_hook, page_id, params, start, head, states, pull, pacer)
            pull.batch_requests = self._read_more_messages(page_hook, page_id, states, pacer)
        except Exception as exc:
            raise_for_page(exc, page_id, permission)

        for state in states:
            pull.conversations.append(state.row(extracted_at))
            pull.messages.extend(
                message_row(m, state.id, actor_id, bool(self.keep_message_text), extracted_at)
                for m in state.rows_to_keep()
            )
            pull.listing_errors += state.errors
            pull.relisted += state.relisted
        self.log.info(
            "Page %s %s: %d conversations, %d messages (%d without details, %d out of reach) in %d list pages"
            " + %d batch calls",
            page_id, platform, len(pull.conversations), len(pull.messages), pull.messages_without_sender,
            pull.messages_out_of_reach, pull.pages_read, pull.batch_requests,
        )  # fmt: skip
        if pull.out_of_order:
            self.log.warning(
                "Page %s %s: %d conversations were listed after one updated later (Meta's newest-first order "
                "broken): the walk read the whole edge instead of stopping at the window start",
                page_id, platform, pull.out_of_order,
            )  # fmt: skip
        if pull.relisted:
            self.log.info(
                "Page %s %s: %d messages were listed again by a later page (the conversation changed while it "
                "was read); each is kept once", page_id, platform, pull.relisted,
            )  # fmt: skip
        if pull.listing_errors:
            self.log.warning(
                "Page %s %s: %d message pages could not be read; those conversations keep no first message, "
                "so a start hidden there is not counted", page_id, platform, pull.listing_errors,
            )  # fmt: skip
        return pull

    def _catch_up(
        self,
        page_hook: MetaGraphApiHook,
        page_id: str,
        params: dict[str, Any],
        start: datetime,
        head: datetime,
        states: list[ConversationState],
        pull: ConversationPull,
        pacer: CallPacer | None,
    ) -> None:
        """A conversation that got a message while the walk was under way moved to the head of the list,
        behind the cursor: a walk of several pages can miss it (Meta's cursor points to an item, the item
        moved), or hold it as it was before. The list's head is read again, down to ``head`` (the newest
        conversation the walk's first page showed): what was updated since is taken as it is now
        (``updated_during_walk``), usually one call."""
        index = {state.id: i for i, state in enumerate(states)}
        for batch in page_hook.paginate(f"{page_id}/conversations", params, scope=page_id, pacer=pacer):
            pull.pages_read += 1
            for record in batch:
                updated = parse_meta_time(record["updated_time"])
                if updated <= head:
                    return
                state = ConversationState(record, start)
                if state.id in index:
                    states[index[state.id]] = state
                else:
                    index[state.id] = len(states)
                    states.append(state)
                pull.updated_during_walk += 1
                pull.watermark = max(pull.watermark or updated, updated)

    def _read_more_messages(
        self,
        page_hook: MetaGraphApiHook,
        page_id: str,
        states: list[ConversationState],
        pacer: CallPacer | None = None,
    ) -> int:
        """Walk the conversations' ``messages`` edges beyond the first nested page, 50 operations per
        batch call (``pacer.calls`` with a pacer, which the hook waits in before each send): the rest of the
        20 most recent with details, then ids and times back to the window."""
        from meta_ads_elt.hooks.graph_api import batch_call_size  # imported with the hook, not at DAG parse

        batch_calls = 0
        size = batch_call_size(pacer)  # one batch call each: the manifest's batch_calls
        pending = [s for s in states if s.wants_more()]
        while pending:
            for chunk_start in range(0, len(pending), size):
                chunk = pending[chunk_start : chunk_start + size]
                results = page_hook.batch([s.more_request() for s in chunk], scope=page_id, pacer=pacer)
                batch_calls += 1
                for state, item in zip(chunk, results, strict=True):
                    body, error = item.get("body"), item.get("error")  # classified once, by the hook
                    if error is None and isinstance(body, Mapping):
                        state.add_page(*_edge(body))
                    elif error is not None and is_missing_object(error):
                        # Meta says the conversation is gone for this token (100/33): its walk ends; its
                        # first message stays unknown (first_message_id null), which the marts never count
                        # as a start, and the run's manifest counts it (listing_errors).
                        state.stop()
                    elif isinstance(error, MetaDataTooLargeError) and state.smaller_pages():
                        continue  # the same page again, smaller (the state stays pending)
                    elif isinstance(error, MetaPermissionError | MetaTokenError):
                        raise error  # worded by raise_for_page, naming the Page and the permission
                    else:
                        # Anything else can succeed on a retry (a transient error that outlived the hook's
                        # retries) or needs a fix (a token, a permission, a refused parameter): the task
                        # fails rather than losing the conversation's start; Airflow retries the transient.
                        raise in_context(
                            error or MetaRetryableError(f"GET /{state.id}/messages answered no page"),
                            f"Page {page_id}: conversation {state.id}: a page of its messages could not "
                            "be read; the task fails (a transient error: its Airflow retry reads it again)",
                        )
            pending = [s for s in pending if s.wants_more()]
        return batch_calls

    # -- lake -----------------------------------------------------------------------------------

    def _write(
        self,
        day: date,
        start: datetime,
        pulls: Mapping[str, ConversationPull],
        context: Mapping[str, Any],
        extracted_at: datetime,
    ) -> dict[str, Any]:
        partitions = [{"page_id": str(self.page_id), "platform": p, "date": day.isoformat()} for p in pulls]
        manifest = {
            "window_start": start.isoformat(),
            "platforms": {
                p: {
                    "conversations": len(pull.conversations),
                    "messages": len(pull.messages),
                    "messages_out_of_reach": pull.messages_out_of_reach,
                    "messages_without_sender": pull.messages_without_sender,
                    "listing_errors": pull.listing_errors,
                    "out_of_order": pull.out_of_order,
                    "relisted": pull.relisted,
                    "updated_during_walk": pull.updated_during_walk,
                    "carried_conversations": pull.carried_conversations,
                    "carried_messages": pull.carried_messages,
                    "senders_kept": pull.senders_kept,
                    "list_pages": pull.pages_read,
                    "batch_calls": pull.batch_requests,
                    # newest updated_time seen: where the next run's newest-first walk begins
                    "watermark": pull.watermark.isoformat() if pull.watermark else None,
                }
                for p, pull in pulls.items()
            },
            "keep_message_text": bool(self.keep_message_text),
            "partitions": [f"{p['platform']}/{p['date']}" for p in partitions],
        }
        tables = [pulls[p["platform"]].tables() for p in partitions]
        return self.land(context, day, extracted_at, partitions, tables, manifest)
