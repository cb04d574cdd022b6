"""A held session's recording link: stored on the session and announced to the series' topic for approval.

Consultations may not import broadcasts (they are siblings), so the announcement is made by a
function hub.composition registers here (`register_announcer`); it creates the broadcast and
submits it for a leader's approval like any clerk's draft, in the caller's transaction.
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlsplit

from sqlalchemy import update
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


_announcers: list[Announcer] = []


def register_announcer(announcer: Announcer) -> None:
    """Installs the one function that announces a recording; installing it again changes nothing."""
    _announcers[:] = [announcer]


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
    cancelled, a series without a topic; and a second link while the first announcement exists.
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
    # Claimed in one UPDATE, so that two clerks publishing at once end in one announcement.
    claimed = session.execute(
        update(ConsultationSession)
        .where(col(ConsultationSession.id) == held.id, col(ConsultationSession.recording_url).is_(None))
        .values(recording_url=link)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(N_("Für diesen Termin ist die Aufzeichnung schon angekündigt."))
    if not _announcers:
        raise RuntimeError("no announcer registered; hub.composition.install() was not called")
    day = held.starts_at.astimezone(zone(municipality.timezone)).strftime("%d.%m.%Y")
    texts = {
        language: gettext_for(language).gettext(ANNOUNCEMENT_TEXT).format(title=series.title, date=day, url=link)
        for language in ("de", "en")
    }
    announced = _announcers[0](
        session, author=actor, topic_id=series.topic_id, title=ANNOUNCEMENT_TITLE.format(title=series.title),
        texts=texts,
    )  # fmt: skip
    session.refresh(held)
    held.recording_broadcast_id = announced.id
    session.flush()
    return announced
