"""Changing many conversations in one step (assign, move to a team, label, set the status, set aside until a day,
merge into one), and undoing that step.

Each change is one set-based UPDATE (or INSERT) over the ids, scoped by the municipality, and is
written to the audit trail with every conversation's previous value: that record is what an undo
restores, once, by the person who made the change, within `UNDO_WINDOW`.

A merge is the exception: it cannot be undone (see `merge_many`), so it runs only once confirmed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, update
from sqlmodel import Session, col, select

from hub.audit.models import AuditEvent
from hub.db import utcnow
from hub.errors import Conflict, InvalidInput, NotFound
from hub.i18n import N_, gettext_for
from hub.inbox.models import Conversation, ConversationLabel, Message
from hub.inbox.service import matching_ids, require_assignee, require_status, require_team
from hub.inbox.snooze import ReturnDay, town
from hub.inbox.tools import get_label
from hub.tenancy.administration import audit

# How long a change can still be taken back; the page offers it for a part of this.
UNDO_WINDOW = timedelta(seconds=60)
# More than this many at once is a mistake in the selection rather than a day's work.
MAX_CONVERSATIONS = 5000
ACTIONS = ("assign", "team", "label", "status", "snooze", "merge")
# Moments kept in an audit record's previous values, as ISO text.
_MOMENTS = ("resolved_at", "snoozed_until")
_CHANGED = "conversations.bulk_changed"
_UNDONE = "conversations.bulk_undone"
# The internal notes a merge leaves, in German like every note staff write.
_MERGED_INTO_NOTE = N_("Zusammengeführt in Vorgang {reference}; die Nachrichten stehen jetzt dort.")
_GATHERED_NOTE = N_("Hierher zusammengeführt: {references}.")

# Given conversation ids, those that a domain above the inbox ties to a record of its own (a problem
# report, a booking), so that they must stay as they are.
MergeHold = Callable[[Session, Collection[int]], Collection[int]]
# Each with its German reason, naming {references}.
_HOLDS: list[tuple[MergeHold, str]] = []


def register_merge_hold(held: MergeHold, *, reason: str) -> None:
    """Refuses to merge the conversations `held` names, saying `reason`; registering it again changes nothing."""
    if all(registered != held for registered, _ in _HOLDS):
        _HOLDS.append((held, reason))


@dataclass(frozen=True)
class BulkChange:
    """One step over many conversations: its audit record's id (to undo it) and how many it changed."""

    id: int
    action: str
    changed: int
    undone: bool = False
    # The reference of the conversation a merge kept.
    into: str | None = None

    @property
    def undoable(self) -> bool:
        return self.action != "merge"


@dataclass(frozen=True)
class MergePlan:
    """What a merge will do, shown before it runs: the oldest conversation stays, the others join it."""

    kept_id: int
    kept_reference: str
    merged_ids: tuple[int, ...]
    merged_references: tuple[str, ...]


def _scoped_ids(session: Session, municipality_id: int, conversation_ids: Collection[int]) -> list[int]:
    """The given ids that are the town's conversations; another town's id is refused, not skipped."""
    wanted = set(conversation_ids)
    if not wanted:
        raise InvalidInput(N_("Keine Unterhaltung ausgewählt."))
    if len(wanted) > MAX_CONVERSATIONS:
        raise InvalidInput(
            N_("Höchstens {limit} Unterhaltungen auf einmal; bitte die Auswahl eingrenzen."), limit=MAX_CONVERSATIONS
        )
    found = {
        i
        for i in (
            session.exec(
                select(col(Conversation.id)).where(
                    col(Conversation.id).in_(wanted), Conversation.municipality_id == municipality_id
                )
            ).all()
        )
        if i is not None
    }
    missing = sorted(wanted - found)
    if missing:
        raise NotFound(N_("Vorgang {conversation_id} nicht gefunden."), conversation_id=missing[0])
    return sorted(found)


def _previous(session: Session, ids: list[int], *columns: str) -> dict[int, dict[str, Any]]:
    rows = session.execute(
        select(col(Conversation.id), *(getattr(Conversation, name) for name in columns)).where(
            col(Conversation.id).in_(ids)
        )
    ).all()
    return {row[0]: dict(zip(columns, row[1:], strict=True)) for row in rows}


def _record(
    session: Session, *, municipality_id: int, actor_id: int, action: str, value: Any,
    previous: dict[int, dict[str, Any]], **details: Any,
) -> BulkChange:  # fmt: skip
    """Writes the step to the audit trail with the values it replaced (datetimes as ISO text, JSON has none)."""
    kept = {
        str(conversation_id): {name: v.isoformat() if isinstance(v, datetime) else v for name, v in values.items()}
        for conversation_id, values in previous.items()
    }
    event = audit(
        session, actor_id=actor_id, municipality_id=municipality_id, action=_CHANGED, object_type="conversation",
        object_id=None, change=action, value=value, previous=kept, **details,
    )  # fmt: skip
    session.flush()
    assert event.id is not None
    return BulkChange(id=event.id, action=action, changed=len(previous), into=details.get("into"))


def assign_many(
    session: Session, *, municipality_id: int, actor_id: int, conversation_ids: Collection[int],
    assignee_id: int | None,
) -> BulkChange:  # fmt: skip
    """Assigns the conversations to a person of the town, or to nobody (None)."""
    require_assignee(session, municipality_id=municipality_id, assignee_id=assignee_id)
    return _set_column(session, municipality_id, actor_id, conversation_ids, "assign", "assignee_id", assignee_id)


def move_many(
    session: Session, *, municipality_id: int, actor_id: int, conversation_ids: Collection[int], team_id: int | None
) -> BulkChange:
    """Moves the conversations to a team of the town, or out of every team (None)."""
    require_team(session, municipality_id=municipality_id, team_id=team_id)
    return _set_column(session, municipality_id, actor_id, conversation_ids, "team", "team_id", team_id)


def _set_column(
    session: Session, municipality_id: int, actor_id: int, conversation_ids: Collection[int], action: str,
    column: str, value: int | None,
) -> BulkChange:  # fmt: skip
    ids = _scoped_ids(session, municipality_id, conversation_ids)
    previous = {i: v for i, v in _previous(session, ids, column).items() if v[column] != value}
    if previous:
        session.execute(
            update(Conversation)
            .where(col(Conversation.id).in_(list(previous)))
            .values({column: value, "changed_at": utcnow()}),
            execution_options={"synchronize_session": "fetch"},
        )
    return _record(
        session, municipality_id=municipality_id, actor_id=actor_id, action=action, value=value, previous=previous
    )


def set_status_many(
    session: Session, *, municipality_id: int, actor_id: int, conversation_ids: Collection[int], status: str
) -> BulkChange:
    """Sets the status; as for one conversation, resolving stamps the time, anything else clears it, and either
    ends a Wiedervorlage."""
    require_status(status)
    ids = _scoped_ids(session, municipality_id, conversation_ids)
    now = utcnow()
    previous = {
        i: v
        for i, v in _previous(session, ids, "status", "resolved_at", "snoozed_until").items()
        if v["status"] != status or (v["snoozed_until"] is not None and v["snoozed_until"] > now)
    }
    if previous:
        session.execute(
            update(Conversation)
            .where(col(Conversation.id).in_(list(previous)))
            .values(
                status=status, resolved_at=now if status == "resolved" else None, snoozed_until=None, changed_at=now
            ),
            execution_options={"synchronize_session": "fetch"},
        )
    return _record(
        session, municipality_id=municipality_id, actor_id=actor_id, action="status", value=status, previous=previous
    )


def snooze_many(
    session: Session, *, municipality_id: int, actor_id: int, conversation_ids: Collection[int], when: ReturnDay
) -> BulkChange:
    """Sets the conversations aside until `when` (hub.inbox.snooze); they come back open."""
    ids = _scoped_ids(session, municipality_id, conversation_ids)
    until = when.moment(town(session, municipality_id), now=utcnow())
    previous = {
        i: v
        for i, v in _previous(session, ids, "status", "resolved_at", "snoozed_until").items()
        if v["snoozed_until"] != until or v["status"] != "open"
    }
    if previous:
        session.execute(
            update(Conversation)
            .where(col(Conversation.id).in_(list(previous)))
            .values(status="open", resolved_at=None, snoozed_until=until, changed_at=utcnow()),
            execution_options={"synchronize_session": "fetch"},
        )
    return _record(
        session, municipality_id=municipality_id, actor_id=actor_id, action="snooze", value=until.isoformat(),
        previous=previous,
    )  # fmt: skip


def label_many(
    session: Session, *, municipality_id: int, actor_id: int, conversation_ids: Collection[int], label_id: int
) -> BulkChange:
    """Puts the label on every conversation that does not have it yet."""
    label = get_label(session, municipality_id=municipality_id, label_id=label_id)
    ids = _scoped_ids(session, municipality_id, conversation_ids)
    having = set(
        session.exec(
            select(col(ConversationLabel.conversation_id)).where(
                ConversationLabel.label_id == label.id, col(ConversationLabel.conversation_id).in_(ids)
            )
        ).all()
    )
    previous: dict[int, dict[str, Any]] = {i: {"label": False} for i in ids if i not in having}
    if previous:
        session.execute(insert(ConversationLabel), [{"conversation_id": i, "label_id": label.id} for i in previous])
    return _record(
        session, municipality_id=municipality_id, actor_id=actor_id, action="label", value=label.id, previous=previous
    )


def merge_plan(session: Session, *, municipality_id: int, conversation_ids: Collection[int]) -> MergePlan:
    """Checks that the conversations can become one and names the one that stays (the oldest).

    Only one person's conversations merge: joining two people's messages in one case would show each
    the other's words on the status page. When they are one person, the contacts are merged first
    (hub.contacts.merge), which brings their conversations to one contact. A conversation already merged away,
    or one that a domain above ties to a record of its own (register_merge_hold), is refused, by reference.
    """
    ids = _scoped_ids(session, municipality_id, conversation_ids)
    if len(ids) < 2:
        raise InvalidInput(N_("Zum Zusammenführen mindestens zwei Unterhaltungen auswählen."))
    conversations = session.exec(
        select(Conversation)
        .where(col(Conversation.id).in_(ids))
        .order_by(col(Conversation.created_at), col(Conversation.id))
    ).all()
    if len({c.contact_id for c in conversations}) > 1:
        raise InvalidInput(
            N_(
                "Nur Unterhaltungen derselben Person lassen sich zusammenführen. Ist es dieselbe Person, bitte zuerst "
                "die Kontakte zusammenführen."
            )
        )
    gone = [c for c in conversations if c.merged_into_id is not None]
    if gone:
        raise InvalidInput(
            N_("{references} ist schon in ein anderes Anliegen zusammengeführt; bitte jenes auswählen."),
            references=", ".join(c.reference for c in gone),
        )
    for held, reason in _HOLDS:
        kept_back = set(held(session, ids))
        if kept_back:
            raise InvalidInput(reason, references=", ".join(c.reference for c in conversations if c.id in kept_back))
    kept, *others = conversations
    assert kept.id is not None
    return MergePlan(
        kept_id=kept.id, kept_reference=kept.reference, merged_ids=tuple(c.id or 0 for c in others),
        merged_references=tuple(c.reference for c in others),
    )  # fmt: skip


def merge_many(
    session: Session, *, municipality_id: int, actor_id: int, conversation_ids: Collection[int]
) -> BulkChange:
    """Makes the conversations one: the oldest stays and takes the others' messages, notes (and with them their
    attachments) and labels; the others are resolved, each with a note naming the one that stays, and point to it
    (`merged_into_id`): the citizen's next message on their thread, and their status link, go on there.

    Messages keep their own time, so the kept conversation shows them all in order. The audit record names
    the messages that moved. This is not undone: a reply sent from the joined case cannot be taken back,
    and the kept case's labels and times are now those of all of them, so the page and the API ask for a
    confirmation instead.
    """
    plan = merge_plan(session, municipality_id=municipality_id, conversation_ids=conversation_ids)
    merged = list(plan.merged_ids)
    everyone = [plan.kept_id, *merged]
    previous = _previous(session, merged, "status", "resolved_at", "snoozed_until")
    moved = list(session.exec(select(col(Message.id)).where(col(Message.conversation_id).in_(merged))).all())
    session.execute(
        update(Message).where(col(Message.conversation_id).in_(merged)).values(conversation_id=plan.kept_id),
        execution_options={"synchronize_session": "fetch"},
    )
    having = set(
        session.exec(
            select(col(ConversationLabel.label_id)).where(ConversationLabel.conversation_id == plan.kept_id)
        ).all()
    )
    joining = (
        set(
            session.exec(
                select(col(ConversationLabel.label_id)).where(col(ConversationLabel.conversation_id).in_(merged))
            ).all()
        )
        - having
    )
    if joining:
        session.execute(
            insert(ConversationLabel), [{"conversation_id": plan.kept_id, "label_id": i} for i in sorted(joining)]
        )
    conversations = session.exec(select(Conversation).where(col(Conversation.id).in_(everyone))).all()
    kept = next(c for c in conversations if c.id == plan.kept_id)
    now = utcnow()
    kept.last_activity_at = max(c.last_activity_at for c in conversations)
    kept.last_inbound_at = max((c.last_inbound_at for c in conversations if c.last_inbound_at), default=None)
    kept.first_response_at = min((c.first_response_at for c in conversations if c.first_response_at), default=None)
    if kept.status == "resolved" and any(c.status != "resolved" for c in conversations):
        # Open work that joins a finished case opens it again rather than disappearing into it.
        kept.status, kept.resolved_at = "open", None
    kept.changed_at = now
    note = gettext_for("de").gettext
    for conversation in conversations:
        if conversation.id == plan.kept_id:
            continue
        conversation.status, conversation.resolved_at, conversation.snoozed_until = "resolved", now, None
        conversation.changed_at, conversation.merged_into_id = now, plan.kept_id
        session.add(_note(conversation, actor_id, note(_MERGED_INTO_NOTE).format(reference=plan.kept_reference)))
    session.add(_note(kept, actor_id, note(_GATHERED_NOTE).format(references=", ".join(plan.merged_references))))
    session.add_all(conversations)
    session.flush()
    return _record(
        session, municipality_id=municipality_id, actor_id=actor_id, action="merge", value=plan.kept_id,
        previous=previous, into=plan.kept_reference, messages=moved,
    )  # fmt: skip


def _note(conversation: Conversation, author_id: int, text: str) -> Message:
    return Message(
        municipality_id=conversation.municipality_id, conversation_id=conversation.id,
        channel_account_id=conversation.channel_account_id, direction="note", body=text, author_id=author_id,
    )  # fmt: skip


def chosen_ids(
    session: Session, *, municipality_id: int, conversation_ids: Collection[int] | None,
    matching: dict[str, Any] | None,
) -> Collection[int]:  # fmt: skip
    """The given conversations, or every one `matching` filters match; exactly one of the two."""
    if (conversation_ids is None) == (matching is None):
        raise InvalidInput(N_("Entweder Unterhaltungen auswählen oder alle Treffer eines Filters, nicht beides."))
    if matching is not None:
        return matching_ids(session, municipality_id=municipality_id, **matching)
    assert conversation_ids is not None
    return conversation_ids


def apply(
    session: Session, *, municipality_id: int, actor_id: int, action: str, value: int | str | None,
    conversation_ids: Collection[int] | None = None, matching: dict[str, Any] | None = None,
    confirmed: bool = False,
) -> BulkChange:  # fmt: skip
    """One of the actions by name, as the API and the list's form send it, on the given conversations or on
    every one `matching` filters match (the keywords of hub.inbox.service.conversation_query, without the town).

    For "snooze" the value is the day (2026-12-10), optionally with the time (2026-12-10T09:30), in the town's time.
    "merge" takes no value and runs only `confirmed`, since it cannot be undone.
    """
    chosen = chosen_ids(session, municipality_id=municipality_id, conversation_ids=conversation_ids, matching=matching)
    common: dict[str, Any] = {"municipality_id": municipality_id, "actor_id": actor_id, "conversation_ids": chosen}
    if action == "status":
        return set_status_many(session, status=str(value or ""), **common)
    if action == "snooze":
        day, _, at = str(value or "").partition("T")
        return snooze_many(session, when=ReturnDay.from_text(day, at), **common)
    if action == "merge":
        if not confirmed:
            raise InvalidInput(N_("Zusammenführen lässt sich nicht rückgängig machen; bitte ausdrücklich bestätigen."))
        return merge_many(session, **common)
    if action not in ACTIONS:
        raise InvalidInput(N_("Unbekannte Aktion {action!r}."), action=action)
    if value is not None and not (isinstance(value, int) or value.isdigit()):
        raise InvalidInput(N_("{value!r} ist keine Nummer."), value=value)
    number = None if value is None else int(value)
    if action == "assign":
        return assign_many(session, assignee_id=number, **common)
    if action == "team":
        return move_many(session, team_id=number, **common)
    if number is None:
        raise InvalidInput(N_("Bitte ein Label wählen."))
    return label_many(session, label_id=number, **common)


def _event(session: Session, *, municipality_id: int, change_id: int) -> AuditEvent:
    event = session.get(AuditEvent, change_id)
    if event is None or event.municipality_id != municipality_id or event.action != _CHANGED:
        raise NotFound(N_("Änderung {change_id} nicht gefunden."), change_id=change_id)
    return event


def _undone(session: Session, event: AuditEvent) -> bool:
    return (
        session.exec(
            select(AuditEvent.id).where(
                AuditEvent.municipality_id == event.municipality_id,
                AuditEvent.action == _UNDONE,
                AuditEvent.object_id == event.id,
            )
        ).first()
        is not None
    )


def get_change(session: Session, *, municipality_id: int, change_id: int) -> BulkChange:
    event = _event(session, municipality_id=municipality_id, change_id=change_id)
    assert event.id is not None
    return BulkChange(
        id=event.id, action=event.details["change"], changed=len(event.details["previous"]),
        undone=_undone(session, event), into=event.details.get("into"),
    )  # fmt: skip


def undo(session: Session, *, municipality_id: int, actor_id: int, change_id: int) -> BulkChange:
    """Puts back what the change replaced: by its author, once, within UNDO_WINDOW."""
    event = _event(session, municipality_id=municipality_id, change_id=change_id)
    assert event.id is not None
    if event.actor_id != actor_id:
        raise Conflict(N_("Nur wer die Änderung gemacht hat, kann sie zurücknehmen."))
    if event.details["change"] == "merge":
        raise Conflict(N_("Ein Zusammenführen lässt sich nicht zurücknehmen."))
    if _undone(session, event):
        raise Conflict(N_("Diese Änderung ist schon zurückgenommen."))
    if utcnow() - event.created_at > UNDO_WINDOW:
        raise Conflict(N_("Die Änderung ist zu lange her, um sie zurückzunehmen."))
    previous: dict[str, dict[str, Any]] = event.details["previous"]
    ids = [int(i) for i in previous]
    if event.details["change"] == "label":
        session.execute(
            delete(ConversationLabel).where(
                col(ConversationLabel.label_id) == event.details["value"],
                col(ConversationLabel.conversation_id).in_(ids),
            )
        )
    elif ids:
        now = utcnow()
        rows = [
            {
                "id": int(i), "changed_at": now,
                **{k: datetime.fromisoformat(v) if k in _MOMENTS and v else v for k, v in old.items()},
            }
            for i, old in previous.items()
        ]  # fmt: skip
        # Each row gets its own value back: an UPDATE by primary key, executed for all rows at once.
        session.execute(update(Conversation), rows)
    session.expire_all()
    audit(
        session, actor_id=actor_id, municipality_id=municipality_id, action=_UNDONE, object_type="audit_event",
        object_id=event.id, change=event.details["change"], conversations=len(ids),
    )  # fmt: skip
    session.flush()
    return BulkChange(id=event.id, action=event.details["change"], changed=len(ids), undone=True)


def summary(change: BulkChange, language: str) -> str:
    """ "12 Unterhaltungen geändert." in the reader's language."""
    if change.action == "merge":
        text = (
            N_("{count} Unterhaltung in {into} zusammengeführt.")
            if change.changed == 1
            else N_("{count} Unterhaltungen in {into} zusammengeführt.")
        )
        return gettext_for(language).gettext(text).format(count=change.changed, into=change.into)
    if change.undone:
        text = (
            N_("{count} Unterhaltung zurückgesetzt.")
            if change.changed == 1
            else N_("{count} Unterhaltungen zurückgesetzt.")
        )
    else:
        text = N_("{count} Unterhaltung geändert.") if change.changed == 1 else N_("{count} Unterhaltungen geändert.")
    return gettext_for(language).gettext(text).format(count=change.changed)
