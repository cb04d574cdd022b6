"""Conversations and messages: threading, public references, listing, replies, notes, assignment, status.

Every function takes the municipality id and scopes its queries by it: this module is where
tenancy is enforced for the inbox, so routes never filter by tenant themselves.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from channels.base import Attachment as FileAttachment
from channels.base import ChannelAdapter, Choice, window_open
from channels.registry import adapter_class
from hub.contacts.models import Contact
from hub.contacts.service import identity_address
from hub.db import utcnow
from hub.errors import Conflict, InvalidInput, NotFound, require_channel_kind
from hub.i18n import LANGUAGES, N_
from hub.inbox.models import Attachment, Conversation, ConversationLabel, Message, ReferenceCounter
from hub.inbox.reach import over_limit
from hub.inbox.search import conversation_matches
from hub.settings import Settings
from hub.templating import render_message
from hub.tenancy.models import ChannelAccount, Municipality, StaffUser, Team

# How many merges in a row a message follows to the case that stays (see continued_case).
MERGE_HOPS = 5

STATUSES = ("open", "pending", "resolved")


def next_reference(session: Session, *, municipality: Municipality) -> str:
    """The next public reference, e.g. A-2026-00042, counted per municipality and year."""
    assert municipality.id is not None
    year = utcnow().year
    for _ in range(3):
        bumped = session.execute(
            update(ReferenceCounter)
            .where(
                col(ReferenceCounter.municipality_id) == municipality.id,
                col(ReferenceCounter.year) == year,
            )
            .values(last=ReferenceCounter.last + 1)
            .returning(col(ReferenceCounter.last))
        ).scalar_one_or_none()
        if bumped is not None:
            return f"{municipality.reference_prefix}-{year}-{bumped:05d}"
        try:
            with session.begin_nested():
                session.add(ReferenceCounter(municipality_id=municipality.id, year=year, last=0))
                session.flush()
        except IntegrityError:
            pass  # another worker created this year's counter first; bump it on the next pass
    raise RuntimeError("could not allocate a reference number")


def answered_conversation(
    session: Session, *, account: ChannelAccount, contact: Contact, email_parents: tuple[str, ...]
) -> Conversation | None:
    """The contact's own conversation holding a mail that `email_parents` (In-Reply-To, References) names,
    or the one it was merged into."""
    if not email_parents:
        return None
    answered = session.exec(
        select(Conversation)
        .join(Message, col(Message.conversation_id) == Conversation.id)
        .where(
            col(Message.email_message_id).in_(email_parents),
            Conversation.contact_id == contact.id,
            Conversation.municipality_id == account.municipality_id,
        )
        .order_by(col(Conversation.last_activity_at).desc())
    ).first()
    return continued_case(session, answered) if answered is not None else None


def continued_case(session: Session, conversation: Conversation) -> Conversation:
    """The case `conversation` continues in: itself, or the one it was merged into, followed to the end.

    The kept case of a merge may itself be merged later, so this follows up to `MERGE_HOPS` steps;
    the limit only guards against a loop that a hand-edited row could make.
    """
    for _ in range(MERGE_HOPS):
        kept = session.get(Conversation, conversation.merged_into_id) if conversation.merged_into_id else None
        if kept is None:
            break
        conversation = kept
    return conversation


def thread_conversation(
    session: Session,
    *,
    settings: Settings,
    account: ChannelAccount,
    contact: Contact,
    thread_key: str | None,
    email_parents: tuple[str, ...] = (),
    subject: str | None = None,
) -> tuple[Conversation, bool]:
    """The conversation an inbound message belongs to, and whether it was opened just now.

    Email first follows In-Reply-To/References, but only within the sender's own
    conversations, so that many citizens answering one mail do not merge into one case.
    """
    assert contact.id is not None and account.id is not None
    current = current_conversation(
        session, account=account, contact=contact, thread_key=thread_key, email_parents=email_parents
    )
    if current is not None:
        return reopen_if_resolved(current, settings, force=True), False
    if settings.reopen_resolved:
        same_thread = _same_thread(account=account, contact=contact, thread_key=thread_key)
        recent = session.exec(
            same_thread.where(
                Conversation.status == "resolved",
                col(Conversation.resolved_at) >= utcnow() - timedelta(days=settings.reopen_window_days),
            )
        ).first()
        if recent is not None:
            return reopen_if_resolved(continued_case(session, recent), settings, force=True), False

    return open_conversation(
        session, account=account, contact_id=contact.id, thread_key=thread_key, subject=subject
    ), True


def current_conversation(
    session: Session,
    *,
    account: ChannelAccount,
    contact: Contact,
    thread_key: str | None,
    email_parents: tuple[str, ...],
) -> Conversation | None:
    """The case an inbound message continues without opening or reopening one by age.

    The conversation a mail answers (it may be resolved: an answer reopens it), else the
    contact's open one on this account and thread. Where the thread's last case was merged into
    another, the thread goes on in that one while it is open, whichever channel it came by.
    """
    parent = answered_conversation(session, account=account, contact=contact, email_parents=email_parents)
    if parent is not None:
        return parent
    thread = _same_thread(account=account, contact=contact, thread_key=thread_key)
    open_here = session.exec(thread.where(Conversation.status != "resolved")).first()
    if open_here is not None:
        return continued_case(session, open_here)
    latest = session.exec(thread).first()
    if latest is None or latest.merged_into_id is None:
        return None
    kept = continued_case(session, latest)
    return kept if kept.status != "resolved" else None


def _same_thread(*, account: ChannelAccount, contact: Contact, thread_key: str | None) -> SelectOfScalar[Conversation]:
    return (
        select(Conversation)
        .where(
            Conversation.contact_id == contact.id,
            Conversation.channel_account_id == account.id,
            Conversation.thread_key == thread_key if thread_key is not None else col(Conversation.thread_key).is_(None),
        )
        .order_by(col(Conversation.last_activity_at).desc())
    )


def open_conversation(
    session: Session, *, account: ChannelAccount, contact_id: int, subject: str | None, thread_key: str | None = None
) -> Conversation:
    """A new case of the contact on the account, with its public reference; the caller adds the first message."""
    municipality = session.get(Municipality, account.municipality_id)
    assert municipality is not None and account.id is not None
    conversation = Conversation(
        municipality_id=account.municipality_id,
        contact_id=contact_id,
        channel_account_id=account.id,
        thread_key=thread_key,
        reference=next_reference(session, municipality=municipality),
        public_token=secrets.token_urlsafe(16),
        subject=(subject or None) and subject[:300],
    )
    session.add(conversation)
    session.flush()
    return conversation


def reopen_if_resolved(conversation: Conversation, settings: Settings, *, force: bool) -> Conversation:
    if conversation.status == "resolved" and (force or settings.reopen_resolved):
        conversation.status = "open"
        conversation.resolved_at = None
        conversation.changed_at = utcnow()
    return conversation


@dataclass(frozen=True)
class ConversationPage:
    items: list[Conversation]
    total: int
    page: int
    per_page: int


def conversation_query(
    session: Session,
    *,
    municipality_id: int,
    status: str | None = None,
    channel_kind: str | None = None,
    assignee_id: int | None = None,
    unassigned: bool = False,
    team_id: int | None = None,
    label_id: int | None = None,
    search: str | None = None,
    only_ids: Collection[int] | None = None,
    snoozed: bool | None = False,
) -> SelectOfScalar[Conversation]:
    """The town's conversations matching the filters, unordered: for a page of the list or for all of them at once.

    `search` is full text over the messages (hub.inbox.search); `only_ids` narrows to a known
    set, such as the conversations past their response target. `snoozed`: False leaves out those
    set aside for later (hub.inbox.snooze), True lists only those, None both.
    """
    if status is not None:
        require_status(status)
    query = select(Conversation).where(Conversation.municipality_id == municipality_id)
    if status:
        query = query.where(Conversation.status == status)
    if channel_kind:
        require_channel_kind(channel_kind)  # an unknown kind is an error, not an empty list
        query = query.join(ChannelAccount, col(ChannelAccount.id) == Conversation.channel_account_id).where(
            ChannelAccount.kind == channel_kind
        )
    if assignee_id is not None:
        query = query.where(Conversation.assignee_id == assignee_id)
    if unassigned:
        query = query.where(col(Conversation.assignee_id).is_(None))
    if team_id is not None:
        query = query.where(Conversation.team_id == team_id)
    if label_id is not None:
        query = query.where(
            col(Conversation.id).in_(
                select(col(ConversationLabel.conversation_id)).where(ConversationLabel.label_id == label_id)
            )
        )
    if search and search.strip():
        query = query.where(conversation_matches(session, municipality_id=municipality_id, words=search))
    if only_ids is not None:
        query = query.where(col(Conversation.id).in_(list(only_ids)))
    if snoozed is not None:
        query = query.where(snoozed_now(utcnow()) if snoozed else not_snoozed_now(utcnow()))
    return query


def snoozed_now(now: datetime) -> ColumnElement[bool]:
    """Set aside until a moment still ahead (the Wiedervorlage), so not in the open lists."""
    return col(Conversation.snoozed_until) > now


def not_snoozed_now(now: datetime) -> ColumnElement[bool]:
    return or_(col(Conversation.snoozed_until).is_(None), col(Conversation.snoozed_until) <= now)


def list_conversations(session: Session, *, page: int = 1, per_page: int = 25, **filters: Any) -> ConversationPage:
    """A page of the conversations matching `filters` (those of `conversation_query`), newest activity first."""
    query = conversation_query(session, **filters)
    total = _count(session, query)
    items = session.exec(
        query.order_by(col(Conversation.last_activity_at).desc(), col(Conversation.id).desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    return ConversationPage(items=list(items), total=total, page=page, per_page=per_page)


def count_conversations(session: Session, **filters: Any) -> int:
    """How many conversations match `filters` (those of `conversation_query`), as a saved view shows it."""
    return _count(session, conversation_query(session, **filters))


def _count(session: Session, query: SelectOfScalar[Conversation]) -> int:
    return session.exec(select(func.count()).select_from(query.subquery())).one()


def matching_ids(session: Session, **filters: Any) -> list[int]:
    """Every conversation matching `filters` (those of `conversation_query`), not just a page: "alle Treffer"."""
    matching = conversation_query(session, **filters).subquery()
    return list(session.exec(select(matching.c.id).order_by(matching.c.id)).all())


def get_conversation(session: Session, *, municipality_id: int, conversation_id: int) -> Conversation:
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or conversation.municipality_id != municipality_id:
        raise NotFound(N_("Vorgang {conversation_id} nicht gefunden."), conversation_id=conversation_id)
    return conversation


def list_messages(session: Session, *, municipality_id: int, conversation_id: int) -> list[Message]:
    get_conversation(session, municipality_id=municipality_id, conversation_id=conversation_id)
    return list(
        session.exec(
            select(Message)
            .where(
                Message.conversation_id == conversation_id,
                Message.municipality_id == municipality_id,
            )
            .order_by(col(Message.created_at), col(Message.id))
        ).all()
    )


def attachments_of(session: Session, *, message_ids: list[int]) -> dict[int, list[Attachment]]:
    found: dict[int, list[Attachment]] = {}
    if message_ids:
        for attachment in session.exec(select(Attachment).where(col(Attachment.message_id).in_(message_ids))):
            found.setdefault(attachment.message_id, []).append(attachment)
    return found


@dataclass(frozen=True)
class StoredFile:
    """An attachment's bytes with the name and type to download it under."""

    name: str
    content_type: str
    data: bytes


def attachment_file(session: Session, *, municipality_id: int, attachment_id: int) -> StoredFile:
    """A stored attachment of the town; one kept only as a provider URL (or erased) is not found."""
    attachment = session.get(Attachment, attachment_id)
    if attachment is None or attachment.municipality_id != municipality_id or attachment.data is None:
        raise NotFound(N_("Anhang {attachment_id} nicht gefunden."), attachment_id=attachment_id)
    return StoredFile(
        name=attachment.filename or f"anhang-{attachment_id}", content_type=attachment.content_type,
        data=attachment.data,
    )  # fmt: skip


def queue_outbound(
    session: Session,
    *,
    conversation: Conversation | None = None,
    answering: Message | None = None,
    starting: tuple[int, int] | None = None,
    text: str,
    author: StaffUser | None,
    automated: bool = False,
    subject: str | None = None,
    choices: Sequence[Choice] = (),
    attachments: Sequence[FileAttachment] = (),
    template: str | None = None,
    purpose: str | None = None,
) -> Message:
    """Writes an outbound message row (status queued); the caller enqueues the send after commit.

    The message goes into `conversation`, or, answering a message kept on the contact outside
    any case (`answering`: a command, a survey answer), stays on that contact with it; a
    message the hub starts itself (a reminder) goes from the account to the contact of
    `starting` (account id, contact id), also outside any case.
    Everything the send needs to thread the answer (the comment to answer under, the mail it
    replies to, its own Message-ID) is fixed here, so a retried send is the same message.
    `attachments` are kept with it where the channel carries files (mail) and left off elsewhere.
    A message the hub starts (`starting`) is `unprompted`, and counts against the account's daily
    limit of recipients (hub.inbox.reach).
    `template`: an approved template of the account (see `reply_templates`) the text goes out as,
    which the channel's reply window does not limit.
    `purpose` is what it is for where the channel sends only approved templates (channels.base).
    """
    if conversation is not None:
        assert conversation.id is not None
        account_id, contact_id = conversation.channel_account_id, conversation.contact_id
        last_inbound = session.exec(
            select(Message)
            .where(Message.conversation_id == conversation.id, Message.direction == "inbound")
            .order_by(col(Message.created_at).desc(), col(Message.id).desc())
        ).first()
        thread_subject, reference = conversation.subject, conversation.reference
    elif answering is not None:
        assert answering.contact_id is not None
        account_id, contact_id = answering.channel_account_id, answering.contact_id
        last_inbound, thread_subject, reference = answering, answering.subject, None
    else:
        assert starting is not None
        account_id, contact_id = starting
        last_inbound, thread_subject, reference = None, subject, None
    account = session.get(ChannelAccount, account_id)
    assert account is not None
    text = text.strip()
    if not text:
        raise InvalidInput(N_("Die Antwort ist leer."))
    adapter = adapter_class(account.kind)
    limit = adapter.max_body_chars
    if len(text) > limit:
        raise InvalidInput(
            N_("Die Antwort ist {length} Zeichen lang; {kind} erlaubt höchstens {limit}."),
            length=len(text),
            kind=account.kind,
            limit=limit,
        )
    if author is not None and adapter.templates_outside_window and template is None:
        last_at = last_inbound.created_at if last_inbound else None
        _require_open_window(adapter, conversation.last_inbound_at if conversation else last_at)
    message = Message(
        municipality_id=account.municipality_id,
        conversation_id=conversation.id if conversation else None,
        contact_id=None if conversation else contact_id,
        channel_account_id=account.id,  # type: ignore[arg-type]
        direction="outbound",
        body=text,
        author_id=author.id if author else None,
        automated=automated,
        status="queued",
        choices=[{"label": choice.label, "payload": choice.payload} for choice in choices],
        template=template,
        purpose=purpose,
        unprompted=starting is not None,
    )
    if starting is not None:
        # Beyond the sender's daily limit of recipients the provider would refuse it: it is kept
        # as refused, with the reason, and never sent (the send finds nothing queued).
        refused = over_limit(session, account, contact_id)
        if refused is not None:
            message.status, message.error_message = "failed", f"{refused}; nicht gesendet"
    counted = adapter.segments(text)
    if counted is not None:
        message.segments, message.encoding = counted
    if conversation is not None and conversation.thread_key and last_inbound:
        # A public thread (comments under a post) is answered in it, under the citizen's last words.
        message.kind = "comment"
        message.reply_to_ref = last_inbound.reply_to_ref
    elif adapter.supports_subject:
        message.email_message_id = adapter.new_message_id(account.config)
        message.subject = subject or render_message(
            "reply_subject.txt.j2",
            _language(session, contact_id),
            subject=thread_subject,
            reference=reference,
        )
        if last_inbound is not None and last_inbound.email_message_id:
            message.reply_to_ref = last_inbound.email_message_id
            message.email_references = [
                *last_inbound.email_references,
                last_inbound.email_message_id,
            ]
    session.add(message)
    if attachments and adapter.supports_subject:
        session.flush()
        assert message.id is not None
        for attached in attachments:
            session.add(
                Attachment(
                    municipality_id=account.municipality_id, message_id=message.id, filename=attached.filename,
                    content_type=attached.content_type, size=len(attached.data or b""), data=attached.data,
                )
            )  # fmt: skip
    if conversation is not None:
        now = utcnow()
        conversation.last_activity_at = now
        if author is not None and conversation.first_response_at is None:
            conversation.first_response_at = now
    session.flush()
    return message


def _require_open_window(adapter: type[ChannelAdapter], last_inbound_at: datetime | None) -> None:
    """A person's free-form answer where the channel carries only approved templates after its window: refused now,
    before it is queued, rather than failed by the provider later."""
    if window_open(adapter, last_inbound_at, utcnow()):
        return
    assert adapter.reply_window is not None
    raise Conflict(
        N_(
            "Antwort nur mit Vorlage möglich: Die letzte Nachricht liegt mehr als {hours} Stunden zurück, "
            "{channel} lässt danach nur freigegebene Vorlagen zu."
        ),
        hours=int(adapter.reply_window.total_seconds() // 3600),
        channel=adapter.label,
    )


def _language(session: Session, contact_id: int) -> str:
    contact = session.get(Contact, contact_id)
    return contact.language if contact else "de"


@dataclass(frozen=True)
class ReplyTemplate:
    """An approved template a clerk may answer with: its language and the provider's id for it."""

    language: str
    template: str


def reply_templates(session: Session, *, municipality_id: int, conversation_id: int) -> list[ReplyTemplate]:
    """The account's approved templates, per language, once the channel's window allows nothing else; else none."""
    conversation = get_conversation(session, municipality_id=municipality_id, conversation_id=conversation_id)
    account = session.get(ChannelAccount, conversation.channel_account_id)
    assert account is not None
    adapter = adapter_class(account.kind)
    if not adapter.templates_outside_window or window_open(adapter, conversation.last_inbound_at, utcnow()):
        return []
    return [
        ReplyTemplate(language, template)
        for language in LANGUAGES
        if (template := adapter.template_for(account.config, language))
    ]


# Said before a clerk writes, and as the refusal of a reply, instead of a send that can only fail.
UNREACHABLE = N_(
    "Diese Person hat keine Adresse hinterlassen, unter der wir sie erreichen können: Keine Antwort kann sie "
    "erreichen. Halten Sie Wichtiges als interne Notiz fest."
)


def reachable(session: Session, *, conversation: Conversation) -> bool:
    """Whether a reply can reach the conversation's contact: they have an address of the kind its channel writes to.

    A web or Open311 report whose reporter gave no phone or email has none, nor has an erased contact.
    """
    account = session.get(ChannelAccount, conversation.channel_account_id)
    assert account is not None
    kind = adapter_class(account.kind).identity.kind
    return identity_address(session, contact_id=conversation.contact_id, kind=kind) is not None


def reply(
    session: Session,
    *,
    municipality_id: int,
    conversation_id: int,
    author: StaffUser,
    text: str,
    template_language: str | None = None,
    seen_message_id: int | None = None,
) -> Message:
    """A clerk's answer; with `template_language`, sent as the account's approved template in that language.

    Refused (409) where nobody can receive it, before anything is queued, and, when the clerk says which
    message they saw last (`seen_message_id`), where a colleague has replied after it: sent again with
    the newest id, it goes out.
    """
    conversation = get_conversation(session, municipality_id=municipality_id, conversation_id=conversation_id)
    if not reachable(session, conversation=conversation):
        raise Conflict(UNREACHABLE)
    if seen_message_id is not None:
        _refuse_if_replied_meanwhile(session, conversation=conversation, author=author, seen_message_id=seen_message_id)
    template = None
    if template_language is not None:
        template = _template_of(session, conversation, template_language)
    message = queue_outbound(session, conversation=conversation, text=text, author=author, template=template)
    if conversation.status == "resolved":
        conversation.status = "open"
        conversation.resolved_at = None
        conversation.changed_at = utcnow()
    return message


class RepliedMeanwhile(Conflict):
    """A colleague answered the citizen after the message the clerk saw last; their reply is in the message."""


def _refuse_if_replied_meanwhile(
    session: Session, *, conversation: Conversation, author: StaffUser, seen_message_id: int
) -> None:
    newer = session.exec(
        select(Message, StaffUser.name)
        .join(StaffUser, col(StaffUser.id) == Message.author_id)
        .where(
            Message.conversation_id == conversation.id,
            Message.direction == "outbound",
            col(Message.id) > seen_message_id,
            Message.author_id != author.id,
        )
        .order_by(col(Message.id).desc())
    ).first()
    if newer is not None:
        message, name = newer
        raise RepliedMeanwhile(
            N_(
                "{name} hat inzwischen geantwortet: „{text}“ Ihre Antwort ist nicht gesendet. Senden Sie sie "
                "noch einmal, wenn sie trotzdem hinausgehen soll."
            ),
            name=name,
            text=message.body,
        )


def _template_of(session: Session, conversation: Conversation, language: str) -> str:
    account = session.get(ChannelAccount, conversation.channel_account_id)
    assert account is not None
    adapter = adapter_class(account.kind)
    template = adapter.template_for(account.config, language) if adapter.templates_outside_window else None
    if template is None:
        raise InvalidInput(
            N_("Für {channel} ist keine freigegebene Vorlage in der Sprache {language!r} eingetragen."),
            channel=adapter.label,
            language=language,
        )
    return template


def add_note(session: Session, *, municipality_id: int, conversation_id: int, author: StaffUser, text: str) -> Message:
    """An internal note: visible to staff only, never sent."""
    conversation = get_conversation(session, municipality_id=municipality_id, conversation_id=conversation_id)
    if not text.strip():
        raise InvalidInput(N_("Die Notiz ist leer."))
    note = Message(
        municipality_id=municipality_id,
        conversation_id=conversation_id,
        channel_account_id=conversation.channel_account_id,
        direction="note",
        body=text.strip(),
        author_id=author.id,
    )
    session.add(note)
    session.flush()
    return note


_UNSET = object()


def update_conversation(
    session: Session,
    *,
    municipality_id: int,
    conversation_id: int,
    status: str | None = None,
    assignee_id: int | object | None = _UNSET,
    team_id: int | object | None = _UNSET,
) -> Conversation:
    """Sets status, assignee and team; None for assignee or team clears it, leaving it out keeps it.

    Setting a status, even the same one, ends a Wiedervorlage: the clerk decided about the case now.
    """
    conversation = get_conversation(session, municipality_id=municipality_id, conversation_id=conversation_id)
    if status is not None:
        require_status(status)
        if status == "resolved" and conversation.status != "resolved":
            conversation.resolved_at = utcnow()
        elif status != "resolved":
            conversation.resolved_at = None
        conversation.status = status
        conversation.snoozed_until = None
    if assignee_id is not _UNSET:
        require_assignee(session, municipality_id=municipality_id, assignee_id=assignee_id)  # type: ignore[arg-type]
        conversation.assignee_id = assignee_id  # type: ignore[assignment]
    if team_id is not _UNSET:
        require_team(session, municipality_id=municipality_id, team_id=team_id)  # type: ignore[arg-type]
        conversation.team_id = team_id  # type: ignore[assignment]
    conversation.changed_at = utcnow()
    session.flush()
    return conversation


def require_assignee(session: Session, *, municipality_id: int, assignee_id: int | None) -> None:
    """A person of the town to assign to; None (nobody) is always allowed."""
    if assignee_id is not None:
        user = session.get(StaffUser, assignee_id)
        if user is None or user.municipality_id != municipality_id:
            raise InvalidInput(N_("Benutzer {assignee_id} gibt es nicht."), assignee_id=assignee_id)


def require_team(session: Session, *, municipality_id: int, team_id: int | None) -> None:
    """A team of the town to move to; None (no team) is always allowed."""
    if team_id is not None:
        team = session.get(Team, team_id)
        if team is None or team.municipality_id != municipality_id:
            raise InvalidInput(N_("Team {team_id} gibt es nicht."), team_id=team_id)


def require_status(status: str) -> None:
    if status not in STATUSES:
        raise InvalidInput(
            N_("Unbekannter Status {status!r}; erlaubt: {allowed}."), status=status, allowed=", ".join(STATUSES)
        )
