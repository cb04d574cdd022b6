"""In-memory, thread-safe state shared by the sandbox's provider emulators and its SMTP sink."""

from __future__ import annotations

import itertools
import random
import secrets
import threading
import time
import zlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from fastapi import Request

# Channel kinds, then video platforms.
KINDS = ("twilio", "whatsapp", "telegram", "facebook", "email", "bigbluebutton", "jitsi")

# The setting that tells two accounts of one kind apart, as in the hub's channel account config.
IDENTITY_KEY = {
    "twilio": "phone_number",
    "whatsapp": "phone_number",
    "telegram": "bot_token",
    "facebook": "page_id",
    "email": "address",
    # One BigBlueButton server answers at /bigbluebutton/api; each secret registered is one more it accepts.
    "bigbluebutton": "secret",
    "jitsi": "app_id",
}

# (config keys, secret keys) a registration must carry; the rest is optional.
REQUIRED_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "twilio": (("account_sid", "phone_number"), ("auth_token",)),
    "whatsapp": (("account_sid", "phone_number"), ("auth_token",)),
    "telegram": ((), ("bot_token",)),
    "facebook": (("page_id",), ("app_secret", "verify_token", "page_access_token")),
    "email": (("address",), ()),
    "bigbluebutton": ((), ("secret",)),
    "jitsi": (("app_id",), ("app_secret",)),
}

FaultOutcome = Literal["rate_limit", "server_error", "permanent"]


def utcnow() -> datetime:
    return datetime.now(UTC)


def _mask(value: Any) -> str:
    text = str(value)
    return "…" + text[-4:] if len(text) > 8 else "****"


@dataclass(frozen=True)
class Account:
    """A provider account as "configured in the provider console"; replaced, never mutated."""

    id: int
    kind: str
    webhook_url: str | None
    config: dict[str, Any]
    secrets: dict[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        if key in self.config:
            return self.config[key]
        return self.secrets.get(key, default)

    @property
    def identity(self) -> str:
        return str(self.get(IDENTITY_KEY[self.kind], ""))

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "webhook_url": self.webhook_url,
            "config": dict(self.config),
            "secrets": {key: _mask(value) for key, value in self.secrets.items()},
        }


@dataclass(frozen=True)
class OutboxItem:
    """One message a citizen received from the hub through an emulated provider."""

    id: int
    kind: str
    to: str
    from_: str
    text: str
    received_at: datetime
    subject: str | None = None
    reply_to_ref: str | None = None
    provider_id: str | None = None
    headers: dict[str, str] | None = None
    messaging_type: str | None = None
    tag: str | None = None
    reply_markup: Any = None
    # Facebook only: the message's quick replies as {"title", "payload"}.
    quick_replies: tuple[dict[str, str], ...] = ()
    media_urls: tuple[str, ...] = ()
    attachments: tuple[dict[str, Any], ...] = ()
    # WhatsApp only: the Content API item sent (a template or buttons) and its variables.
    content_sid: str | None = None
    content_variables: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "to": self.to,
            "from": self.from_,
            "text": self.text,
            "subject": self.subject,
            "reply_to_ref": self.reply_to_ref,
            "provider_id": self.provider_id,
            "headers": self.headers,
            "messaging_type": self.messaging_type,
            "tag": self.tag,
            "reply_markup": self.reply_markup,
            "quick_replies": list(self.quick_replies),
            "media_urls": list(self.media_urls),
            "attachments": list(self.attachments),
            "content_sid": self.content_sid,
            "content_variables": self.content_variables,
            "received_at": self.received_at.isoformat(timespec="microseconds"),
        }


@dataclass(frozen=True)
class FaultConfig:
    """Injected misbehaviour for one channel kind (or, under the key "*", for all of them)."""

    rate_429: float = 0.0
    rate_5xx: float = 0.0
    latency_ms: int = 0
    permanent_to: frozenset[str] = frozenset()
    # Twilio only: accepted with 201, then reported `undelivered` (30005) by status callback.
    undelivered_to: frozenset[str] = frozenset()
    # Twilio only: the 201 leaves this long after the message was taken and its status callbacks
    # started, so the callbacks overtake the answer, as they may when the answer's way is slow.
    answer_latency_ms: int = 0
    # Facebook only: lift the 24-hour / 7-day messaging window check.
    ignore_window: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "rate_429": self.rate_429,
            "rate_5xx": self.rate_5xx,
            "latency_ms": self.latency_ms,
            "permanent_to": sorted(self.permanent_to),
            "undelivered_to": sorted(self.undelivered_to),
            "answer_latency_ms": self.answer_latency_ms,
            "ignore_window": self.ignore_window,
        }


class FaultDecision(NamedTuple):
    """What to do with one send: wait `latency_s`, then fail with `outcome` or accept it (and answer
    `answer_latency_s` later)."""

    latency_s: float
    outcome: FaultOutcome | None
    undelivered: bool
    ignore_window: bool
    answer_latency_s: float = 0.0


@dataclass(frozen=True)
class Comment:
    """A Page feed comment the sandbox has seen, so replies can find their author and post."""

    comment_id: str
    page_id: str
    post_id: str
    from_id: str
    from_name: str
    created_time: int


@dataclass(frozen=True)
class CallbackQuery:
    """A button press the sandbox sent to a bot, and the bot's answerCallbackQuery, if any.

    `token` tells the bots apart and never leaves the sandbox (see to_json).
    """

    id: str
    token: str
    chat_id: int
    message_id: int
    data: str
    answered_at: datetime | None = None
    answer_text: str | None = None
    show_alert: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "callback_query_id": self.id,
            "chat_id": self.chat_id,
            "message_id": self.message_id,
            "data": self.data,
            "text": self.answer_text,
            "show_alert": self.show_alert,
            "answered_at": self.answered_at.isoformat(timespec="microseconds") if self.answered_at else None,
        }


@dataclass(frozen=True)
class Attendee:
    """A person who followed a join link into an emulated video room."""

    user_id: str
    name: str
    moderator: bool
    joined_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "name": self.name,
            "moderator": self.moderator,
            "joined_at": self.joined_at.isoformat(timespec="microseconds"),
        }


@dataclass(frozen=True)
class Meeting:
    """A room on an emulated video platform: a BigBlueButton meeting, or a Jitsi room someone entered.

    `account_id` is the BigBlueButton secret or Jitsi app it belongs to; `create_time` is
    BigBlueButton's createTime (epoch ms). `ended`: ended by the API, everyone put out.
    """

    kind: str
    account_id: int
    meeting_id: str
    name: str
    create_time: int
    max_participants: int = 0
    duration: int = 0
    guest_policy: str | None = None
    ended: bool = False
    attendees: tuple[Attendee, ...] = ()

    @property
    def running(self) -> bool:
        return not self.ended and bool(self.attendees)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "meeting_id": self.meeting_id,
            "name": self.name,
            "create_time": self.create_time,
            "max_participants": self.max_participants,
            "duration": self.duration,
            "guest_policy": self.guest_policy,
            "running": self.running,
            "ended": self.ended,
            "attendees": [attendee.to_json() for attendee in self.attendees],
        }


MeetingKey = tuple[str, int, str]


@dataclass(frozen=True)
class Content:
    """An item of Twilio's Content API: `types` as created ("twilio/text", "twilio/quick-reply", …).

    `approved`: WhatsApp approved it as a template, so it may go out outside the 24-hour window.
    """

    sid: str
    account_sid: str
    friendly_name: str
    language: str
    types: dict[str, Any]
    variables: dict[str, str]
    approved: bool = False

    def body(self, variables: dict[str, str] | None = None) -> str:
        """The text the citizen reads, with {{n}} filled from `variables` (else the defaults)."""
        text = next((str(spec.get("body") or "") for spec in self.types.values() if isinstance(spec, dict)), "")
        for name, value in {**self.variables, **(variables or {})}.items():
            text = text.replace("{{" + str(name) + "}}", str(value))
        return text

    def buttons(self) -> tuple[dict[str, str], ...]:
        """Its reply buttons or list rows as {"title", "payload"}, like Messenger's quick replies."""
        quick = self.types.get("twilio/quick-reply") or {}
        listed = self.types.get("twilio/list-picker") or {}
        found = [{"title": a.get("title", ""), "payload": a.get("id", "")} for a in quick.get("actions") or []]
        found += [{"title": i.get("item", ""), "payload": i.get("id", "")} for i in listed.get("items") or []]
        return tuple(found)


@dataclass(frozen=True)
class StoredFile:
    """A file a citizen sent in a chat, as the provider keeps it: Telegram's file server, Meta's CDN.

    `file_id` is what Telegram's updates carry (and getFile takes); `path` is where it is served.
    """

    file_id: str
    unique_id: str
    path: str
    data: bytes
    content_type: str


@dataclass
class _TelegramChat:
    profile: dict[str, Any] = field(default_factory=dict)
    last_message_id: int = 0
    blocked: bool = False
    # Bot messages that carried an inline keyboard, by message_id: what a callback_query embeds.
    keyboard_messages: dict[int, dict[str, Any]] = field(default_factory=dict)


def _norm(address: str) -> str:
    return address.strip().lower()


class SandboxState:
    """Everything the emulators remember. Every method takes the lock; returned objects are
    immutable snapshots or copies, so callers never hold references into the state."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._account_ids = itertools.count(1)
        self._accounts: dict[int, Account] = {}
        self._outbox: list[OutboxItem] = []
        # Per kind: (count, first received_at, last received_at); cheap to ask while a broadcast runs.
        self._tally: dict[str, tuple[int, datetime, datetime]] = {}
        self._outbox_ids = itertools.count(1)
        self._faults: dict[str, FaultConfig] = {}
        self._rng = random.Random()
        self._opt_outs: set[tuple[str, str]] = set()
        self._tg_chats: dict[tuple[str, int], _TelegramChat] = {}
        self._tg_update_ids: dict[str, int] = {}
        self._tg_callback_queries: dict[str, CallbackQuery] = {}
        self._fb_last_inbound: dict[tuple[str, str], float] = {}
        # Each Messenger citizen's name as the User Profile API tells it, per (Page, PSID).
        self._fb_profiles: dict[tuple[str, str], tuple[str, str]] = {}
        # WhatsApp: last message per (hub number, citizen), Content API items, and per hub number
        # when each citizen last got a business-initiated message (the tier counts those).
        self._wa_last_inbound: dict[tuple[str, str], datetime] = {}
        self._wa_contents: dict[str, Content] = {}
        self._wa_initiated: dict[str, dict[str, datetime]] = {}
        self._fb_comments: dict[str, Comment] = {}
        self._files: dict[str, StoredFile] = {}
        self._meetings: dict[MeetingKey, Meeting] = {}
        # BigBlueButton's session tokens, handed out by join: the meeting and attendee they stand for.
        self._video_sessions: dict[str, tuple[MeetingKey, str]] = {}
        # The hub deduplicates on comment ids, callback query ids and (chat, message id), so none
        # may come round again: not after /sandbox/reset (the counters are never reset) and not
        # after a restart of the sandbox against the same hub database, so they start at the
        # clock in microseconds, beyond what an earlier process handed out. Update ids do start
        # again from 1, as Telegram's may after a quiet week: the hub must not depend on them.
        self._first_id = time.time_ns() // 1000
        self._serial = itertools.count(self._first_id)

    # Accounts

    def register_account(
        self,
        kind: str,
        webhook_url: str | None,
        config: dict[str, Any],
        secrets: dict[str, Any],
    ) -> tuple[Account, bool]:
        """Store an account, replacing one of the same kind and identity; returns (account, replaced)."""
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
        config_keys, secret_keys = REQUIRED_KEYS[kind]
        missing = [f"config.{k}" for k in config_keys if not config.get(k)]
        missing += [f"secrets.{k}" for k in secret_keys if not secrets.get(k)]
        if missing:
            raise ValueError(f"{kind} account needs {', '.join(missing)}")
        identity_key = IDENTITY_KEY[kind]
        identity = str(config.get(identity_key, secrets.get(identity_key)))
        with self._lock:
            existing = next(
                (a for a in self._accounts.values() if a.kind == kind and _norm(a.identity) == _norm(identity)),
                None,
            )
            account_id = existing.id if existing else next(self._account_ids)
            account = Account(account_id, kind, webhook_url, dict(config), dict(secrets))
            self._accounts[account_id] = account
            return account, existing is not None

    def accounts(self) -> list[Account]:
        with self._lock:
            return sorted(self._accounts.values(), key=lambda a: a.id)

    def find_account(self, kind: str, **match: Any) -> Account | None:
        """The first account of `kind` whose config or secrets hold all of `match`."""
        with self._lock:
            for account in sorted(self._accounts.values(), key=lambda a: a.id):
                if account.kind == kind and all(str(account.get(k)) == str(v) for k, v in match.items()):
                    return account
            return None

    def find_email_account(self, address: str) -> Account | None:
        with self._lock:
            return next(
                (a for a in self._accounts.values() if a.kind == "email" and _norm(a.identity) == _norm(address)),
                None,
            )

    def set_webhook(self, account_id: int, url: str | None, secret_token: str | None) -> Account:
        """Telegram's setWebhook/deleteWebhook: the bot's webhook lives on its account."""
        with self._lock:
            account = self._accounts[account_id]
            secrets = dict(account.secrets)
            if secret_token:
                secrets["webhook_secret"] = secret_token
            else:
                secrets.pop("webhook_secret", None)
            updated = replace(account, webhook_url=url or None, secrets=secrets)
            self._accounts[account_id] = updated
            return updated

    # Outbox

    def record(self, kind: str, to: str, from_: str, text: str, **fields: Any) -> OutboxItem:
        with self._lock:
            item = OutboxItem(
                id=next(self._outbox_ids),
                kind=kind,
                to=to,
                from_=from_,
                text=text,
                received_at=utcnow(),
                **fields,
            )
            self._outbox.append(item)
            count, first, _ = self._tally.get(kind, (0, item.received_at, item.received_at))
            self._tally[kind] = (count + 1, first, item.received_at)
            return item

    def outbox_summary(self) -> dict[str, dict[str, Any]]:
        """Per kind: how many messages arrived, the first and the last arrival (for benchmarks)."""
        with self._lock:
            tally = dict(self._tally)
        return {
            kind: {"count": count, "first_at": first.isoformat(), "last_at": last.isoformat()}
            for kind, (count, first, last) in tally.items()
        }

    def outbox(self, kind: str | None = None, to: str | None = None, since: datetime | None = None) -> list[OutboxItem]:
        with self._lock:
            items = list(self._outbox)
        return [
            item
            for item in items
            if (kind is None or item.kind == kind)
            and (to is None or _norm(item.to) == _norm(to))
            and (since is None or item.received_at > since)
        ]

    def clear_outbox(self) -> None:
        with self._lock:
            self._outbox.clear()
            self._tally.clear()

    # Faults

    def set_faults(self, kind: str | None, config: FaultConfig, seed: int | None = None) -> None:
        with self._lock:
            self._faults[kind or "*"] = config
            if seed is not None:
                self._rng.seed(seed)

    def faults(self) -> dict[str, FaultConfig]:
        with self._lock:
            return dict(self._faults)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def decide(self, kind: str, to: str) -> FaultDecision:
        """Roll the dice for one send of `kind` to `to` (the kind's own settings win over "*")."""
        with self._lock:
            config = self._faults.get(kind) or self._faults.get("*") or FaultConfig()
            outcome: FaultOutcome | None = None
            # Two independent draws keep each rate meaning what it says even when both are set.
            if config.rate_429 and self._rng.random() < config.rate_429:
                outcome = "rate_limit"
            elif config.rate_5xx and self._rng.random() < config.rate_5xx:
                outcome = "server_error"
        recipient = _norm(to)
        if outcome is None and recipient in {_norm(p) for p in config.permanent_to}:
            outcome = "permanent"
        return FaultDecision(
            latency_s=config.latency_ms / 1000,
            outcome=outcome,
            undelivered=recipient in {_norm(p) for p in config.undelivered_to},
            ignore_window=config.ignore_window,
            answer_latency_s=config.answer_latency_ms / 1000,
        )

    # Twilio opt-outs, kept per (sender number, citizen number) as Twilio does.

    def set_opted_out(self, hub_number: str, citizen: str, opted_out: bool) -> None:
        with self._lock:
            if opted_out:
                self._opt_outs.add((hub_number, citizen))
            else:
                self._opt_outs.discard((hub_number, citizen))

    def is_opted_out(self, hub_number: str, citizen: str) -> bool:
        with self._lock:
            return (hub_number, citizen) in self._opt_outs

    # Telegram

    def _chat(self, token: str, chat_id: int) -> _TelegramChat:
        chat = self._tg_chats.get((token, chat_id))
        if chat is None:
            chat = self._tg_chats[(token, chat_id)] = _TelegramChat(last_message_id=self._first_id)
        return chat

    def next_update_id(self, token: str) -> int:
        with self._lock:
            self._tg_update_ids[token] = self._tg_update_ids.get(token, 0) + 1
            return self._tg_update_ids[token]

    def next_message_id(self, token: str, chat_id: int) -> int:
        """Message ids count per chat, shared by both sides, as in a private Telegram chat."""
        with self._lock:
            chat = self._chat(token, chat_id)
            chat.last_message_id += 1
            return chat.last_message_id

    def remember_chat(self, token: str, chat_id: int, profile: dict[str, Any]) -> None:
        with self._lock:
            self._chat(token, chat_id).profile = dict(profile)

    def chat_profile(self, token: str, chat_id: int) -> dict[str, Any]:
        with self._lock:
            chat = self._tg_chats.get((token, chat_id))
            return dict(chat.profile) if chat else {}

    def set_blocked(self, token: str, chat_id: int, blocked: bool) -> None:
        with self._lock:
            self._chat(token, chat_id).blocked = blocked

    def is_blocked(self, token: str, chat_id: int) -> bool:
        with self._lock:
            chat = self._tg_chats.get((token, chat_id))
            return bool(chat and chat.blocked)

    def store_keyboard_message(self, token: str, chat_id: int, message: dict[str, Any]) -> None:
        with self._lock:
            self._chat(token, chat_id).keyboard_messages[message["message_id"]] = message

    def keyboard_message(self, token: str, chat_id: int, message_id: int | None) -> dict[str, Any] | None:
        """The bot message a button press belongs to: the given one, or the latest with a keyboard."""
        with self._lock:
            chat = self._tg_chats.get((token, chat_id))
            if chat is None or not chat.keyboard_messages:
                return None
            if message_id is None:
                message_id = max(chat.keyboard_messages)
            return chat.keyboard_messages.get(message_id)

    def add_callback_query(self, query: CallbackQuery) -> None:
        with self._lock:
            self._tg_callback_queries[query.id] = query

    def answer_callback_query(self, token: str, query_id: str, text: str | None, show_alert: bool) -> bool:
        """Record the bot's answer; False if this bot was never sent a query with that id."""
        with self._lock:
            query = self._tg_callback_queries.get(query_id)
            if query is None or query.token != token:
                return False
            self._tg_callback_queries[query_id] = replace(
                query, answered_at=utcnow(), answer_text=text, show_alert=show_alert
            )
            return True

    def answered_callback_queries(self, token: str, chat_id: int | None = None) -> list[CallbackQuery]:
        """The bot's answered button presses (in one chat, given chat_id), oldest press first."""
        with self._lock:
            queries = list(self._tg_callback_queries.values())
        return [
            query
            for query in queries
            if query.token == token and query.answered_at is not None and chat_id in (None, query.chat_id)
        ]

    # Facebook

    def note_inbound(self, page_id: str, psid: str, at: float) -> None:
        """A citizen wrote to the Page at epoch seconds `at`: this opens the messaging window."""
        with self._lock:
            key = (page_id, psid)
            self._fb_last_inbound[key] = max(at, self._fb_last_inbound.get(key, 0.0))

    def last_inbound(self, page_id: str, psid: str) -> float | None:
        with self._lock:
            return self._fb_last_inbound.get((page_id, psid))

    def set_profile(self, page_id: str, psid: str, first_name: str, last_name: str) -> None:
        with self._lock:
            self._fb_profiles[(page_id, psid)] = (first_name, last_name)

    def profile(self, page_id: str, psid: str) -> tuple[str, str] | None:
        """The citizen's (first name, last name), if they gave the sandbox one."""
        with self._lock:
            return self._fb_profiles.get((page_id, psid))

    def add_comment(self, comment: Comment) -> None:
        with self._lock:
            self._fb_comments[comment.comment_id] = comment

    def comment(self, comment_id: str) -> Comment | None:
        with self._lock:
            return self._fb_comments.get(comment_id)

    # WhatsApp

    def note_whatsapp_inbound(self, hub_number: str, citizen: str, at: datetime) -> None:
        """The citizen wrote at `at`: the 24-hour customer service window runs from there."""
        with self._lock:
            key = (hub_number, citizen)
            last = self._wa_last_inbound.get(key)
            self._wa_last_inbound[key] = at if last is None else max(at, last)

    def whatsapp_last_inbound(self, hub_number: str, citizen: str) -> datetime | None:
        with self._lock:
            return self._wa_last_inbound.get((hub_number, citizen))

    def add_content(self, content: Content) -> None:
        with self._lock:
            self._wa_contents[content.sid] = content

    def content(self, sid: str) -> Content | None:
        with self._lock:
            return self._wa_contents.get(sid)

    def approve_content(self, sid: str) -> Content | None:
        with self._lock:
            content = self._wa_contents.get(sid)
            if content is not None:
                content = self._wa_contents[sid] = replace(content, approved=True)
            return content

    def take_initiated(self, hub_number: str, citizen: str, limit: int | None, now: datetime, window_s: float) -> bool:
        """Count a business-initiated message to `citizen`; False if it would be one recipient beyond `limit`."""
        with self._lock:
            sent = self._wa_initiated.get(hub_number, {})
            recent = {to: at for to, at in sent.items() if (now - at).total_seconds() < window_s}
            if citizen not in recent and limit is not None and len(recent) >= limit:
                self._wa_initiated[hub_number] = recent
                return False
            recent[citizen] = now
            self._wa_initiated[hub_number] = recent
            return True

    # Video rooms

    def create_meeting(self, meeting: Meeting) -> tuple[Meeting, bool]:
        """Store `meeting` unless one with its key is there and not ended; returns (the stored one, existed)."""
        key = (meeting.kind, meeting.account_id, meeting.meeting_id)
        with self._lock:
            existing = self._meetings.get(key)
            if existing is not None and not existing.ended:
                return existing, True
            self._meetings[key] = meeting
            return meeting, False

    def meeting(self, kind: str, account_id: int, meeting_id: str) -> Meeting | None:
        with self._lock:
            return self._meetings.get((kind, account_id, meeting_id))

    def join_meeting(self, meeting: Meeting, attendee: Attendee, session_token: str | None = None) -> Meeting:
        """Put `attendee` in the meeting (stored as given if new); one who comes back replaces their earlier self."""
        key = (meeting.kind, meeting.account_id, meeting.meeting_id)
        with self._lock:
            current = self._meetings.get(key, meeting)
            others = tuple(a for a in current.attendees if a.user_id != attendee.user_id)
            joined = replace(current, attendees=(*others, attendee))
            self._meetings[key] = joined
            if session_token:
                self._video_sessions[session_token] = (key, attendee.user_id)
            return joined

    def video_session(self, session_token: str) -> tuple[Meeting, Attendee] | None:
        """The meeting and attendee a BigBlueButton session token was handed out for."""
        with self._lock:
            found = self._video_sessions.get(session_token)
            meeting = self._meetings.get(found[0]) if found else None
        if found is None or meeting is None:
            return None
        attendee = next((a for a in meeting.attendees if a.user_id == found[1]), None)
        return (meeting, attendee) if attendee else None

    def end_meeting(self, kind: str, account_id: int, meeting_id: str) -> Meeting | None:
        """End the meeting and put everyone out; None if there is no such meeting."""
        key = (kind, account_id, meeting_id)
        with self._lock:
            meeting = self._meetings.get(key)
            if meeting is None:
                return None
            ended = self._meetings[key] = replace(meeting, ended=True, attendees=())
            return ended

    def meetings(self, kind: str | None = None) -> list[Meeting]:
        with self._lock:
            found = list(self._meetings.values())
        return sorted((m for m in found if kind in (None, m.kind)), key=lambda m: m.create_time)

    # Shared

    def add_file(self, data: bytes, content_type: str, *, folder: str, suffix: str) -> StoredFile:
        """Keeps a citizen's file under a new id, served at `folder/<name><suffix>`."""
        with self._lock:
            serial = next(self._serial)
            stored = StoredFile(
                file_id=f"AgAC{serial:x}-{secrets.token_urlsafe(24)}",
                unique_id=f"AQAD{serial:x}",
                path=f"{folder}/file_{serial}{suffix}",
                data=bytes(data),
                content_type=content_type,
            )
            self._files[stored.file_id] = stored
            return stored

    def file(self, *, file_id: str | None = None, path: str | None = None) -> StoredFile | None:
        with self._lock:
            if file_id is not None:
                return self._files.get(file_id)
            return next((item for item in self._files.values() if item.path == path), None)

    def serial(self) -> int:
        with self._lock:
            return next(self._serial)

    def reset(self) -> None:
        """Forget everything but the accounts (and the id counters, see __init__)."""
        with self._lock:
            self._outbox.clear()
            self._faults.clear()
            self._opt_outs.clear()
            for chat in self._tg_chats.values():
                chat.blocked = False
                chat.keyboard_messages.clear()
                chat.profile = {}
            self._tg_callback_queries.clear()
            self._fb_last_inbound.clear()
            self._fb_comments.clear()
            self._files.clear()
            self._wa_last_inbound.clear()
            self._wa_initiated.clear()
            self._meetings.clear()
            self._video_sessions.clear()


def bot_user_id(token: str) -> int:
    """A bot's user id: real tokens start with it ("123456:ABC…"); others get a stable stand-in."""
    head = token.split(":", 1)[0]
    return int(head) if head.isdigit() else 5_000_000_000 + zlib.crc32(token.encode())


def get_state(request: Request) -> SandboxState:
    """FastAPI dependency: the state the app was created with."""
    state: SandboxState = request.app.state.sandbox
    return state
