"""The clerk's tools around a conversation: labels, canned replies, presence, naming and finding a contact to merge.

Like hub.inbox.service, every function scopes by the municipality id it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from hub.contacts.models import Contact, ContactIdentity
from hub.contacts.service import get_contact, rename_contact
from hub.errors import Conflict, InvalidInput, NotFound, Term, template_error
from hub.i18n import N_
from hub.inbox.models import CannedReply, Conversation, ConversationLabel, ConversationViewer, Label
from hub.inbox.service import get_conversation
from hub.templating import close_name_gaps, greeting
from hub.tenancy.models import Municipality, StaffUser, Team
from hub.tenancy.roles import PERMISSIONS

# A viewer whose page has not reported for this long has left.
PRESENCE_WINDOW = timedelta(seconds=30)
# A reply box that has not been written in for this long is no longer being written in (its page reports every
# few seconds while someone types).
TYPING_WINDOW = timedelta(seconds=8)
# What a canned reply may use, with the example values a snippet is checked against when saved.
SNIPPET_EXAMPLE = {
    "salutation": "Guten Tag Erika Mustermann",
    "name": "Erika Mustermann",
    "reference": "A-2026-00042",
    "subject": "Sperrmüll",
    "municipality": "Stadt Musterstadt",
    "staff_name": "Stefan Sachbearbeiter",
}

# --- labels ---------------------------------------------------------------------------------


def list_labels(session: Session, *, municipality_id: int) -> list[Label]:
    return list(
        session.exec(select(Label).where(Label.municipality_id == municipality_id).order_by(col(Label.name))).all()
    )


def _label_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise InvalidInput(N_("Das Label braucht einen Namen."))
    if len(cleaned) > 60:
        raise InvalidInput(N_("Ein Label hat höchstens 60 Zeichen."))
    return cleaned


def find_label(session: Session, *, municipality_id: int, name: str) -> Label | None:
    return session.exec(
        select(Label).where(Label.municipality_id == municipality_id, Label.name == _label_name(name))
    ).first()


def create_label(session: Session, *, municipality_id: int, name: str) -> Label:
    cleaned = _label_name(name)
    if find_label(session, municipality_id=municipality_id, name=cleaned) is not None:
        raise Conflict(N_("Das Label „{cleaned}“ gibt es schon."), cleaned=cleaned)
    label = Label(municipality_id=municipality_id, name=cleaned)
    session.add(label)
    session.flush()
    return label


def get_label(session: Session, *, municipality_id: int, label_id: int) -> Label:
    label = session.get(Label, label_id)
    if label is None or label.municipality_id != municipality_id:
        raise NotFound(N_("Label {label_id} nicht gefunden."), label_id=label_id)
    return label


def rename_label(session: Session, *, municipality_id: int, label_id: int, name: str) -> Label:
    label = get_label(session, municipality_id=municipality_id, label_id=label_id)
    cleaned = _label_name(name)
    other = find_label(session, municipality_id=municipality_id, name=cleaned)
    if other is not None and other.id != label.id:
        raise Conflict(N_("Das Label „{cleaned}“ gibt es schon."), cleaned=cleaned)
    label.name = cleaned
    session.flush()
    return label


def delete_label(session: Session, *, municipality_id: int, label_id: int) -> None:
    """Deletes the label and takes it off every conversation."""
    label = get_label(session, municipality_id=municipality_id, label_id=label_id)
    session.execute(delete(ConversationLabel).where(col(ConversationLabel.label_id) == label.id))
    session.delete(label)
    session.flush()


def labels_of(session: Session, *, conversation_ids: list[int]) -> dict[int, list[Label]]:
    found: dict[int, list[Label]] = {}
    if conversation_ids:
        rows = session.exec(
            select(ConversationLabel.conversation_id, Label)
            .join(Label, col(Label.id) == ConversationLabel.label_id)
            .where(col(ConversationLabel.conversation_id).in_(conversation_ids))
            .order_by(col(Label.name))
        )
        for conversation_id, label in rows:
            found.setdefault(conversation_id, []).append(label)
    return found


def add_label(
    session: Session, *, municipality_id: int, conversation_id: int, label_id: int | None = None, name: str = ""
) -> Label:
    """Puts a label on the conversation: an existing one by id, or by name (created if new)."""
    conversation = get_conversation(session, municipality_id=municipality_id, conversation_id=conversation_id)
    if label_id is not None:
        label = get_label(session, municipality_id=municipality_id, label_id=label_id)
    else:
        label = find_label(session, municipality_id=municipality_id, name=name) or create_label(
            session, municipality_id=municipality_id, name=name
        )
    assert label.id is not None and conversation.id is not None
    if session.get(ConversationLabel, (conversation.id, label.id)) is None:
        session.add(ConversationLabel(conversation_id=conversation.id, label_id=label.id))
        session.flush()
    return label


def remove_label(session: Session, *, municipality_id: int, conversation_id: int, label_id: int) -> None:
    get_conversation(session, municipality_id=municipality_id, conversation_id=conversation_id)
    get_label(session, municipality_id=municipality_id, label_id=label_id)
    link = session.get(ConversationLabel, (conversation_id, label_id))
    if link is not None:
        session.delete(link)
        session.flush()


# --- canned replies -------------------------------------------------------------------------

# Staff write the snippets: the sandbox keeps them from reaching Python internals, and
# StrictUndefined turns a misspelt variable into an error instead of a silent gap.
_snippets = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


def _render_snippet(body: str, variables: dict[str, Any]) -> str:
    try:
        return close_name_gaps(_snippets.from_string(body).render(**variables))
    except TemplateError as error:
        raise template_error(error, what=Term(N_("Textbaustein")), known=SNIPPET_EXAMPLE) from error


def list_canned(session: Session, *, municipality_id: int) -> list[CannedReply]:
    return list(
        session.exec(
            select(CannedReply).where(CannedReply.municipality_id == municipality_id).order_by(col(CannedReply.title))
        ).all()
    )


def get_canned(session: Session, *, municipality_id: int, canned_id: int) -> CannedReply:
    canned = session.get(CannedReply, canned_id)
    if canned is None or canned.municipality_id != municipality_id:
        raise NotFound(N_("Textbaustein {canned_id} nicht gefunden."), canned_id=canned_id)
    return canned


def save_canned(
    session: Session, *, municipality_id: int, title: str, body: str, canned_id: int | None = None
) -> CannedReply:
    """Creates or changes a canned reply, after checking it fills with the known variables."""
    title, body = " ".join(title.split()), body.strip()
    if not title or len(title) > 120:
        raise InvalidInput(N_("Der Titel muss 1 bis 120 Zeichen lang sein."))
    if not body:
        raise InvalidInput(N_("Der Text des Bausteins ist leer."))
    _render_snippet(body, SNIPPET_EXAMPLE)
    if canned_id is None:
        canned = CannedReply(municipality_id=municipality_id, title=title, body=body)
        session.add(canned)
    else:
        canned = get_canned(session, municipality_id=municipality_id, canned_id=canned_id)
        canned.title, canned.body = title, body
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as error:
        raise Conflict(N_("Einen Textbaustein „{title}“ gibt es schon."), title=title) from error
    return canned


def delete_canned(session: Session, *, municipality_id: int, canned_id: int) -> None:
    session.delete(get_canned(session, municipality_id=municipality_id, canned_id=canned_id))
    session.flush()


def fill_canned(
    session: Session, *, municipality_id: int, canned_id: int, conversation_id: int, author: StaffUser
) -> str:
    """The canned reply's text for this conversation, filled with the contact's variables."""
    canned = get_canned(session, municipality_id=municipality_id, canned_id=canned_id)
    conversation = get_conversation(session, municipality_id=municipality_id, conversation_id=conversation_id)
    contact = get_contact(session, municipality_id=municipality_id, contact_id=conversation.contact_id)
    municipality = session.get(Municipality, municipality_id)
    assert municipality is not None
    return _render_snippet(
        canned.body,
        {
            **greeting(contact.language, contact.display_name),
            "reference": conversation.reference,
            "subject": conversation.subject or "",
            "municipality": municipality.name,
            "staff_name": author.name,
        },
    )


# --- presence -------------------------------------------------------------------------------


def mark_viewing(session: Session, *, conversation: Conversation, user_id: int, now: datetime) -> None:
    """Records that `user_id` has the conversation open now (one row per person, refreshed)."""
    _mark(session, conversation=conversation, user_id=user_id, values={"seen_at": now})


def mark_typing(session: Session, *, municipality_id: int, conversation_id: int, user_id: int, now: datetime) -> None:
    """Records that `user_id` is writing a reply in the town's conversation now (and so has it open)."""
    conversation = get_conversation(session, municipality_id=municipality_id, conversation_id=conversation_id)
    _mark(session, conversation=conversation, user_id=user_id, values={"seen_at": now, "typing_at": now})


def _mark(session: Session, *, conversation: Conversation, user_id: int, values: dict[str, datetime]) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(ConversationViewer).values(conversation_id=conversation.id, user_id=user_id, **values)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["conversation_id", "user_id"],
            set_={name: statement.excluded[name] for name in values},
        )
    )


@dataclass(frozen=True)
class Colleague:
    """A colleague with the conversation open, and whether they are writing a reply in it."""

    name: str
    typing: bool


def others_present(session: Session, *, conversation: Conversation, user_id: int, now: datetime) -> list[Colleague]:
    """Colleagues whose page showed this conversation within the last half minute, by name."""
    found = session.exec(
        select(StaffUser.name, ConversationViewer.typing_at)
        .join(ConversationViewer, col(ConversationViewer.user_id) == StaffUser.id)
        .where(
            ConversationViewer.conversation_id == conversation.id,
            ConversationViewer.user_id != user_id,
            col(ConversationViewer.seen_at) >= now - PRESENCE_WINDOW,
            StaffUser.municipality_id == conversation.municipality_id,
        )
        .order_by(col(StaffUser.name))
    ).all()
    return [
        Colleague(name=name, typing=typing_at is not None and typing_at >= now - TYPING_WINDOW)
        for name, typing_at in found
    ]


# --- merging --------------------------------------------------------------------------------


def find_contact(session: Session, *, municipality_id: int, address_or_reference: str) -> Contact:
    """The contact behind an address (phone, email, chat id) or a conversation reference."""
    wanted = address_or_reference.strip()
    if not wanted:
        raise InvalidInput(N_("Geben Sie eine Telefonnummer, E-Mail-Adresse, Chat-ID oder Vorgangsnummer an."))
    compact = wanted.replace(" ", "")
    identity = session.exec(
        select(ContactIdentity).where(
            ContactIdentity.municipality_id == municipality_id,
            col(ContactIdentity.address).in_({wanted, compact, wanted.lower()}),
        )
    ).first()
    if identity is not None:
        contact_id = identity.contact_id
    else:
        conversation = session.exec(
            select(Conversation).where(
                Conversation.municipality_id == municipality_id, Conversation.reference == wanted.upper()
            )
        ).first()
        if conversation is None:
            raise InvalidInput(N_("Zu „{wanted}“ gibt es keinen Kontakt."), wanted=wanted)
        contact_id = conversation.contact_id
    return get_contact(session, municipality_id=municipality_id, contact_id=contact_id)


# --- assignment -----------------------------------------------------------------------------


def assignable(session: Session, *, municipality_id: int) -> tuple[list[StaffUser], list[Team]]:
    """The active colleagues who may answer (viewers only read) and the teams, by name."""
    users = session.exec(
        select(StaffUser)
        .where(
            StaffUser.municipality_id == municipality_id,
            col(StaffUser.active).is_(True),
            col(StaffUser.role).in_(PERMISSIONS["inbox.write"]),
        )
        .order_by(col(StaffUser.name))
    ).all()
    teams = session.exec(select(Team).where(Team.municipality_id == municipality_id).order_by(col(Team.name))).all()
    return list(users), list(teams)


def name_contact(
    session: Session, *, municipality_id: int, conversation_id: int, name: str, actor_id: int | None
) -> Contact:
    """Gives the conversation's contact the name a clerk typed (hub.contacts.service.rename_contact)."""
    conversation = get_conversation(session, municipality_id=municipality_id, conversation_id=conversation_id)
    return rename_contact(
        session, municipality_id=municipality_id, contact_id=conversation.contact_id, name=name, actor_id=actor_id
    )
