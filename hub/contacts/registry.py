"""What higher domains hold about a contact, registered here so that export, erasure, merge and pages reach it.

Contacts sit low in the layers: the inbox, subscribers, broadcasts and consultations import
them, never the other way. So each of those registers its part once at start (hub/composition.py):
what it adds to the DSGVO export (Art. 15), how it erases (Art. 17), what moves when two
contacts are merged, and what it shows about the contact on another domain's staff page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, SQLModel

# What erased texts read as; the rows stay, so that counts do not change.
ERASED = "[gelöscht]"


@dataclass(frozen=True)
class Erasure:
    """Whose data an eraser removes."""

    municipality_id: int
    contact_id: int
    # The contact and those merged into it, who are the same person.
    contact_ids: list[int]
    # Their (identity kind, address) pairs, read before the identities were deleted.
    addresses: list[tuple[str, str]]
    actor_id: int | None
    # The contact was erased before: erasing again finds nothing more to do.
    repeated: bool


# (session, municipality id, contact id) -> the sections this domain adds to the export document.
Exporter = Callable[[Session, int, int], dict[str, Any]]
# -> what was kept, as counts for the caller to show.
Eraser = Callable[[Session, Erasure], dict[str, int]]
# (session, municipality id, kept contact id, merged contact id): moves the merged contact's rows.
Merger = Callable[[Session, int, int, int], None]
# (session, municipality id, contact id) -> values for the page's template.
RecordSource = Callable[[Session, int, int], dict[str, Any]]


@dataclass(frozen=True)
class PersonalData:
    """One domain's part of a citizen's data."""

    name: str
    export: Exporter
    erase: Eraser
    merge: Merger | None = None


_PARTS: dict[str, PersonalData] = {}
# The staff pages that show a contact, each with what other domains add to it, by name.
CONVERSATION_PANEL = "conversation"
SUBSCRIBER_PAGE = "subscriber"
# Not a page: the API's contact context (GET /api/v1/contacts/{id}/context), whose sources give JSON-ready values.
CONTACT_CONTEXT = "context"
_RECORDS: dict[str, dict[str, RecordSource]] = {CONVERSATION_PANEL: {}, SUBSCRIBER_PAGE: {}, CONTACT_CONTEXT: {}}


def register_personal_data(part: PersonalData) -> None:
    """Adds a domain's part, in the order the export shows it; the same name again replaces it."""
    _PARTS[part.name] = part


def personal_data() -> list[PersonalData]:
    return list(_PARTS.values())


def register_record(page: str, name: str, source: RecordSource) -> None:
    """Adds what a domain shows about a contact on `page`; the same name again replaces it."""
    _RECORDS[page][name] = source


def contact_record(session: Session, *, page: str, municipality_id: int, contact_id: int) -> dict[str, Any]:
    """The template values every registered domain adds to `page` for this contact."""
    values: dict[str, Any] = {}
    for source in _RECORDS[page].values():
        values.update(source(session, municipality_id, contact_id))
    return values


def plain(row: SQLModel, *, exclude: set[str] | None = None) -> dict[str, Any]:
    """A row as JSON-ready values, times in ISO 8601."""
    return {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in row.model_dump(exclude=exclude).items()
    }
