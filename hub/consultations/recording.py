"""A held session's recording link: stored on the session and announced to the series' topic for approval.

Consultations may not import broadcasts (they are siblings), so the announcement is made by a
function hub.composition registers here (`register_announcer`); it creates the broadcast and
submits it for a leader's approval like any clerk's draft, in the caller's transaction. With it
comes the question whether an announcement was withdrawn (a leader cancelled it instead of
approving it, or stopped it): then a corrected link may be published and announced anew.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, or_, update
from sqlmodel import Session, col

from hub.consultations.models import ConsultationSeries, ConsultationSession
from hub.consultations.recurrence import zone
from hub.consultations.sessions import get_session
from hub.db import utcnow
from hub.errors import Conflict, InvalidInput
from hub.i18n import N_, gettext_for
from hub.tenancy.models import Municipality, StaffUser

URL_LIMIT = 500
ANNOUNCEMENT_TITLE = N_("Aufzeichnung: {title}")
ANNOUNCEMENT_TEXT = N_("Die Aufzeichnung der {title} vom {date} ist online: {url}")


class Announced(Protocol):
    """What an announcer hands back: the broadcast it created."""

    id: int | None
    status: str


class Announcer(Protocol):
    def __call__(
        self, session: Session, *, author: StaffUser, topic_id: int, title: str, texts: dict[str, str]
    ) -> Announced: ...


class Withdrawn(Protocol):
    def __call__(self, session: Session, *, broadcast_ids: list[int]) -> set[int]: ...


@dataclass(frozen=True)
class _Announcing:
    announce: Announcer
    withdrawn: Withdrawn


_announcers: list[_Announcing] = []


def register_announcer(announcer: Announcer, *, withdrawn: Withdrawn) -> None:
    """Installs the one function that announces a recording, and the one that tells which announcements
    were withdrawn; installing them again changes nothing."""
    _announcers[:] = [_Announcing(announcer, withdrawn)]


def _announcing() -> _Announcing:
    if not _announcers:
        raise RuntimeError("no announcer registered; hub.composition.install() was not called")
    return _announcers[0]


def withdrawn_sessions(session: Session, *, held: list[ConsultationSession]) -> set[int]:
    """The sessions among `held` whose recording's announcement was withdrawn: a new link may be published."""
    announced = {row.recording_broadcast_id: row.id for row in held if row.recording_broadcast_id and row.id}
    if not announced:
        return set()
    stopped = _announcing().withdrawn(session, broadcast_ids=list(announced))
    return {announced[broadcast_id] for broadcast_id in stopped}


def _checked_url(url: str) -> str:
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme.lower() not in ("http", "https")
        or not parts.netloc
        or any(character.isspace() for character in url)
    ):
        raise InvalidInput(N_("Bitte einen Link angeben, der mit http:// oder https:// beginnt."))
    if len(url) > URL_LIMIT:
        raise InvalidInput(N_("Der Link ist zu lang (höchstens {limit} Zeichen)."), limit=URL_LIMIT)
    return url


def publish_recording(
    session: Session, *, actor: StaffUser, municipality: Municipality, session_id: int, url: str
) -> Announced:
    """Stores the link of a session that has begun and submits its announcement to the series' topic.

    Refused before anything is written: a link that is not http(s), a session not yet begun or
    cancelled, a series without a topic; and a second link while the first announcement stands.
    Once it was withdrawn, the new link replaces the old one and is announced anew.
    """
    assert municipality.id is not None
    held = get_session(session, municipality_id=municipality.id, session_id=session_id)
    link = _checked_url(url)
    if held.status == "cancelled":
        raise Conflict(N_("Dieser Termin wurde abgesagt; eine Aufzeichnung gibt es nicht."))
    if held.starts_at > utcnow():
        raise InvalidInput(N_("Eine Aufzeichnung lässt sich erst veröffentlichen, wenn der Termin begonnen hat."))
    series = session.get(ConsultationSeries, held.series_id)
    assert series is not None
    if series.topic_id is None:
        raise InvalidInput(
            N_("Die Sprechstunde „{title}“ hat kein Thema; ohne Thema erreicht die Ankündigung niemanden."),
            title=series.title,
        )
    announcing = _announcing()
    replaced = held.recording_broadcast_id if withdrawn_sessions(session, held=[held]) else None
    # Claimed in one UPDATE, so that two clerks publishing at once end in one announcement: the
    # row matches while it has no link, or still the one whose announcement was withdrawn.
    unclaimed: ColumnElement[bool] = col(ConsultationSession.recording_url).is_(None)
    if replaced is not None:
        unclaimed = or_(unclaimed, col(ConsultationSession.recording_broadcast_id) == replaced)
    claimed = session.execute(
        update(ConsultationSession)
        .where(col(ConsultationSession.id) == held.id, unclaimed)
        .values(recording_url=link, recording_broadcast_id=None)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(N_("Für diesen Termin ist die Aufzeichnung schon angekündigt."))
    day = held.starts_at.astimezone(zone(municipality.timezone)).strftime("%d.%m.%Y")
    texts = {
        language: gettext_for(language).gettext(ANNOUNCEMENT_TEXT).format(title=series.title, date=day, url=link)
        for language in ("de", "en")
    }
    announced = announcing.announce(
        session, author=actor, topic_id=series.topic_id, title=ANNOUNCEMENT_TITLE.format(title=series.title),
        texts=texts,
    )  # fmt: skip
    session.refresh(held)
    held.recording_broadcast_id = announced.id
    session.flush()
    return announced
