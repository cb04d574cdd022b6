"""Changing many conversations in one step (assign, move to a team, label, set the status, set aside until a day),
and undoing that step.

Each change is one set-based UPDATE (or INSERT) over the ids, scoped by the municipality, and is
written to the audit trail with every conversation's previous value: that record is what an undo
restores, once, by the person who made the change, within `UNDO_WINDOW`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, update
from sqlmodel import Session, col, select

from hub.audit.models import AuditEvent
from hub.db import utcnow
from hub.errors import Conflict, InvalidInput, NotFound
from hub.i18n import N_, gettext_for
from hub.inbox.models import Conversation, ConversationLabel
from hub.inbox.service import matching_ids, require_assignee, require_status, require_team
from hub.inbox.snooze import ReturnDay, town
from hub.inbox.tools import get_label
from hub.tenancy.administration import audit

# How long a change can still be taken back; the page offers it for a part of this.
UNDO_WINDOW = timedelta(seconds=60)
# More than this many at once is a mistake in the selection rather than a day's work.
MAX_CONVERSATIONS = 5000
ACTIONS = ("assign", "team", "label", "status", "snooze")
# Moments kept in an audit record's previous values, as ISO text.
_MOMENTS = ("resolved_at", "snoozed_until")
_CHANGED = "conversations.bulk_changed"
_UNDONE = "conversations.bulk_undone"


@dataclass(frozen=True)
class BulkChange:
    """One step over many conversations: its audit record's id (to undo it) and how many it changed."""

    id: int
    action: str
    changed: int
    undone: bool = False


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
    previous: dict[int, dict[str, Any]],
) -> BulkChange:  # fmt: skip
    """Writes the step to the audit trail with the values it replaced (datetimes as ISO text, JSON has none)."""
    kept = {
        str(conversation_id): {name: v.isoformat() if isinstance(v, datetime) else v for name, v in values.items()}
        for conversation_id, values in previous.items()
    }
    event = audit(
        session, actor_id=actor_id, municipality_id=municipality_id, action=_CHANGED, object_type="conversation",
        object_id=None, change=action, value=value, previous=kept,
    )  # fmt: skip
    session.flush()
    assert event.id is not None
    return BulkChange(id=event.id, action=action, changed=len(previous))


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


def apply(
    session: Session, *, municipality_id: int, actor_id: int, action: str, value: int | str | None,
    conversation_ids: Collection[int] | None = None, matching: dict[str, Any] | None = None,
) -> BulkChange:  # fmt: skip
    """One of the actions by name, as the API and the list's form send it, on the given conversations or on
    every one `matching` filters match (the keywords of hub.inbox.service.conversation_query, without the town).

    For "snooze" the value is the day (2026-12-10), optionally with the time (2026-12-10T09:30), in the town's time.
    """
    if (conversation_ids is None) == (matching is None):
        raise InvalidInput(N_("Entweder Unterhaltungen auswählen oder alle Treffer eines Filters, nicht beides."))
    if matching is not None:
        conversation_ids = matching_ids(session, municipality_id=municipality_id, **matching)
    assert conversation_ids is not None
    common: dict[str, Any] = {
        "municipality_id": municipality_id, "actor_id": actor_id, "conversation_ids": conversation_ids
    }  # fmt: skip
    if action == "status":
        return set_status_many(session, status=str(value or ""), **common)
    if action == "snooze":
        day, _, at = str(value or "").partition("T")
        return snooze_many(session, when=ReturnDay.from_text(day, at), **common)
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
        undone=_undone(session, event),
    )  # fmt: skip


def undo(session: Session, *, municipality_id: int, actor_id: int, change_id: int) -> BulkChange:
    """Puts back what the change replaced: by its author, once, within UNDO_WINDOW."""
    event = _event(session, municipality_id=municipality_id, change_id=change_id)
    assert event.id is not None
    if event.actor_id != actor_id:
        raise Conflict(N_("Nur wer die Änderung gemacht hat, kann sie zurücknehmen."))
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
    if change.undone:
        text = (
            N_("{count} Unterhaltung zurückgesetzt.")
            if change.changed == 1
            else N_("{count} Unterhaltungen zurückgesetzt.")
        )
    else:
        text = N_("{count} Unterhaltung geändert.") if change.changed == 1 else N_("{count} Unterhaltungen geändert.")
    return gettext_for(language).gettext(text).format(count=change.changed)
