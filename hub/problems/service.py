"""Keyword-only services of the Mängelmelder: categories, reports on their conversations, place, photos, duplicates,
merging and the public status that every reporter of a report hears about.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session, col, select

from channels.base import ChannelError, FileTooLarge
from channels.registry import build_adapter
from hub.contacts.models import Contact, ContactIdentity
from hub.errors import Conflict, DomainError, InvalidInput, NotFound
from hub.i18n import N_
from hub.inbox.models import Attachment, Conversation
from hub.inbox.service import get_conversation, queue_outbound, update_conversation
from hub.inbox.tools import add_label
from hub.problems.models import ProblemCategory, ProblemPhoto, ProblemReport
from hub.problems.places import address_at, district_at, metres_between
from hub.settings import Settings
from hub.subscribers.catalogue import _clean_key
from hub.templating import render_message
from hub.tenancy.models import ChannelAccount, Municipality, StaffUser, Team
from hub.tenancy.preferences import preference
from hub.webcases.photos import CheckedPhoto, check_photo, too_large
from workers.app import enqueue_send

log = logging.getLogger(__name__)

METRES_PER_DEGREE_LATITUDE = 111_320.0


# --- categories -----------------------------------------------------------------------------


def create_category(
    session: Session,
    *,
    municipality_id: int,
    key: str,
    name_de: str,
    name_en: str | None = None,
    team_id: int | None = None,
    labels: tuple[str, ...] = (),
    response_hours: int | None = None,
) -> ProblemCategory:
    key = _clean_key(key)
    if not name_de.strip():
        raise InvalidInput(N_("Der Name der Kategorie fehlt."))
    if find_category(session, municipality_id=municipality_id, word=key) is not None:
        raise Conflict(N_("Die Kategorie {key!r} gibt es schon."), key=key)
    if team_id is not None:
        team = session.get(Team, team_id)
        if team is None or team.municipality_id != municipality_id:
            raise InvalidInput(N_("Team {team_id} gibt es nicht."), team_id=team_id)
    if response_hours is not None and response_hours <= 0:
        raise InvalidInput(N_("Die Antwortfrist muss mindestens eine Stunde sein."))
    category = ProblemCategory(
        municipality_id=municipality_id,
        key=key,
        name_de=name_de.strip(),
        name_en=(name_en or name_de).strip(),
        team_id=team_id,
        labels=[label.strip() for label in labels if label.strip()],
        response_hours=response_hours,
    )
    session.add(category)
    session.flush()
    return category


def list_categories(session: Session, *, municipality_id: int) -> list[ProblemCategory]:
    return list(
        session.exec(
            select(ProblemCategory)
            .where(ProblemCategory.municipality_id == municipality_id)
            .order_by(col(ProblemCategory.name_de))
        )
    )


def find_category(session: Session, *, municipality_id: int, word: str) -> ProblemCategory | None:
    """The category whose key is `word` (any case), or None."""
    return session.exec(
        select(ProblemCategory).where(
            ProblemCategory.municipality_id == municipality_id, ProblemCategory.key == word.strip().lower()
        )
    ).first()


def category_by_key(session: Session, *, municipality_id: int, word: str) -> ProblemCategory:
    found = find_category(session, municipality_id=municipality_id, word=word)
    if found is None:
        known = ", ".join(category.key for category in list_categories(session, municipality_id=municipality_id))
        raise InvalidInput(N_("Die Kategorie {key!r} gibt es nicht; bekannt: {known}."), key=word, known=known)
    return found


def category_name(category: ProblemCategory, language: str) -> str:
    return category.name_en if language == "en" else category.name_de


def response_targets(session: Session, conversation_ids: Collection[int]) -> dict[int, timedelta]:
    """The first-response target of each report conversation whose category has one (for hub.inbox.sla)."""
    rows = session.exec(
        select(ProblemReport.conversation_id, ProblemCategory.response_hours)
        .join(ProblemCategory, col(ProblemCategory.id) == ProblemReport.category_id)
        .where(
            col(ProblemReport.conversation_id).in_(conversation_ids), col(ProblemCategory.response_hours).is_not(None)
        )
    )
    return {conversation_id: timedelta(hours=hours) for conversation_id, hours in rows if hours}


# --- reports --------------------------------------------------------------------------------


def report_of(session: Session, *, conversation_id: int) -> ProblemReport | None:
    return session.exec(select(ProblemReport).where(ProblemReport.conversation_id == conversation_id)).first()


def conversations_with_reports(session: Session, conversation_ids: Collection[int]) -> list[int]:
    """Which of the conversations carry a report: the inbox does not merge those, reports merge as reports
    (merge_reports), which keeps each reporter's own case and status page."""
    return list(
        session.exec(
            select(ProblemReport.conversation_id).where(col(ProblemReport.conversation_id).in_(conversation_ids))
        ).all()
    )


# Why the inbox's bulk merge leaves a report's conversation alone (hub.inbox.bulk.register_merge_hold).
KEPT_BY_REPORT = N_(
    "{references} gehört zu einer Mängelmeldung und wird nicht im Posteingang zusammengeführt; doppelte Meldungen "
    "bitte in der Meldung selbst zusammenführen."
)


def get_report(session: Session, *, municipality_id: int, report_id: int) -> ProblemReport:
    report = session.get(ProblemReport, report_id)
    if report is None or report.municipality_id != municipality_id:
        raise NotFound(N_("Die Meldung {report_id} gibt es nicht."), report_id=report_id)
    return report


def open_report(session: Session, *, conversation: Conversation) -> ProblemReport:
    """The report of a conversation, made the first time the conversation turns out to be one."""
    assert conversation.id is not None
    report = report_of(session, conversation_id=conversation.id)
    if report is None:
        report = ProblemReport(municipality_id=conversation.municipality_id, conversation_id=conversation.id)
        session.add(report)
        session.flush()
    return report


def set_category(session: Session, *, report: ProblemReport, category: ProblemCategory) -> None:
    """Files the report under `category`: its conversation goes to the category's team, with its labels."""
    if category.municipality_id != report.municipality_id:
        raise InvalidInput(N_("Die Kategorie {key!r} gibt es nicht; bekannt: {known}."), key=category.key, known="")
    report.category_id = category.id
    if category.team_id is not None:
        update_conversation(
            session,
            municipality_id=report.municipality_id,
            conversation_id=report.conversation_id,
            team_id=category.team_id,
        )
    for label in category.labels:
        add_label(session, municipality_id=report.municipality_id, conversation_id=report.conversation_id, name=label)
    session.add(report)
    session.flush()


def set_place(
    session: Session,
    *,
    settings: Settings,
    municipality: Municipality,
    report: ProblemReport,
    lat: float,
    lon: float,
    address: str | None = None,
) -> None:
    """Puts the report at a point in the town (refused outside it), in its district, with an address for people."""
    report.district_id = district_at(session, municipality=municipality, lat=lat, lon=lon)
    report.lat, report.lon = lat, lon
    report.address = (address or address_at(settings, lat=lat, lon=lon) or "")[:300] or None
    session.add(report)
    session.flush()


def add_photo(
    session: Session, *, report: ProblemReport, attachment: Attachment, checked: CheckedPhoto
) -> ProblemPhoto:
    """Makes a stored attachment a photo of the report: its bytes become the checked copy, without EXIF."""
    assert report.id is not None and attachment.id is not None
    attachment.data, attachment.content_type, attachment.size = checked.data, checked.content_type, len(checked.data)
    photo = ProblemPhoto(
        municipality_id=report.municipality_id,
        report_id=report.id,
        attachment_id=attachment.id,
        width=checked.width,
        height=checked.height,
        display=checked.display,
    )
    session.add_all([attachment, photo])
    session.flush()
    return photo


def checked_photo(*, settings: Settings, account: ChannelAccount, attachment: Attachment) -> CheckedPhoto:
    """An attachment's bytes checked as a photo (refusals are the photo checks' own).

    A chat photo (Telegram, Messenger) came as the provider's reference only: it is fetched through
    the channel first, never more than the photo limit; the attachment keeps the checked copy only.
    """
    data = attachment.data
    if data is None and attachment.url:
        adapter = build_adapter(account.kind, account.config, account.secrets)
        try:
            data = adapter.fetch_file(attachment.url, max_bytes=settings.max_photo_bytes)
        except FileTooLarge:
            raise too_large(settings) from None
        except ChannelError as error:
            log.warning("photo of attachment %s not fetched: %s", attachment.id, error)
    if data is None:
        raise InvalidInput(N_("Das Foto ist nicht mitgekommen. Bitte senden Sie es noch einmal."))
    return check_photo(data, settings=settings)


def photos_of(session: Session, *, report_id: int) -> list[ProblemPhoto]:
    return list(
        session.exec(select(ProblemPhoto).where(ProblemPhoto.report_id == report_id).order_by(col(ProblemPhoto.id)))
    )


# --- duplicates and merging -------------------------------------------------------------------


@dataclass(frozen=True)
class Nearby:
    report: ProblemReport
    reference: str
    metres: float


def nearby_reports(
    session: Session,
    *,
    settings: Settings,
    municipality_id: int,
    category_id: int,
    lat: float,
    lon: float,
    exclude_id: int | None = None,
    metres: float | None = None,
) -> list[Nearby]:
    """Open, unmerged reports of the category within the duplicate distance, nearest first.

    A bounding box on the indexed (municipality, lat, lon) columns keeps the rows few; the exact
    distance is then the haversine of each. The box is a little larger than the circle, never smaller.
    """
    radius = settings.problem_duplicate_metres if metres is None else metres
    dlat = radius / METRES_PER_DEGREE_LATITUDE
    dlon = radius / (METRES_PER_DEGREE_LATITUDE * max(math.cos(math.radians(lat)), 0.01))
    query = (
        select(ProblemReport, Conversation.reference)
        .join(Conversation, col(Conversation.id) == ProblemReport.conversation_id)
        .where(
            ProblemReport.municipality_id == municipality_id,
            ProblemReport.category_id == category_id,
            col(ProblemReport.merged_into_id).is_(None),
            col(ProblemReport.lat).between(lat - dlat, lat + dlat),
            col(ProblemReport.lon).between(lon - dlon, lon + dlon),
            Conversation.status != "resolved",
        )
    )
    if exclude_id is not None:
        query = query.where(ProblemReport.id != exclude_id)
    found = []
    for report, reference in session.exec(query):
        assert report.lat is not None and report.lon is not None
        distance = metres_between(lat, lon, report.lat, report.lon)
        if distance <= radius:
            found.append(Nearby(report=report, reference=reference, metres=round(distance, 1)))
    return sorted(found, key=lambda item: item.metres)


def duplicates_of(session: Session, *, settings: Settings, municipality_id: int, report_id: int) -> list[Nearby]:
    """What staff are shown beside a report: reports that may be the same problem."""
    report = get_report(session, municipality_id=municipality_id, report_id=report_id)
    if report.category_id is None or report.lat is None or report.lon is None:
        return []
    return nearby_reports(
        session,
        settings=settings,
        municipality_id=municipality_id,
        category_id=report.category_id,
        lat=report.lat,
        lon=report.lon,
        exclude_id=report.id,
    )


def merged_cases(session: Session, *, report_id: int) -> list[Conversation]:
    """The conversations of the reports merged into this one (duplicates and "ich auch"), oldest first."""
    return list(
        session.exec(
            select(Conversation)
            .join(ProblemReport, col(ProblemReport.conversation_id) == Conversation.id)
            .where(ProblemReport.merged_into_id == report_id)
            .order_by(col(ProblemReport.id))
        )
    )


def _followers(session: Session, report: ProblemReport) -> list[Conversation]:
    """The report's own conversation and those of the reports merged into it: everyone who reported it."""
    assert report.id is not None
    own = session.get(Conversation, report.conversation_id)
    assert own is not None
    return [own, *merged_cases(session, report_id=report.id)]


def send_committed(session: Session, message_ids: list[int]) -> int:
    """Commits the change with its messages, then hands the messages to the workers; how many were queued."""
    session.commit()
    for message_id in message_ids:
        enqueue_send(message_id)
    return len(message_ids)


def _tell(session: Session, *, conversation: Conversation, template: str, **context: object) -> int | None:
    """Queues a text to a reporter; a channel that cannot reach them now (window closed) is logged, not fatal."""
    municipality = session.get(Municipality, conversation.municipality_id)
    contact = session.get(Contact, conversation.contact_id)
    assert municipality is not None and contact is not None
    if session.exec(select(ContactIdentity.id).where(ContactIdentity.contact_id == contact.id)).first() is None:
        # A web report whose reporter left no address: there is no one to write to.
        log.info("reporter of %s has no address (%s)", conversation.reference, template)
        return None
    text = render_message(
        template,
        contact.language,
        overrides=preference(municipality, "texts"),
        municipality=municipality.name,
        **context,
    )
    try:
        message = queue_outbound(session, conversation=conversation, text=text, author=None, automated=True)
    except DomainError as error:
        log.info("reporter of %s not told (%s): %s", conversation.reference, template, error)
        return None
    return message.id


def merge_reports(
    session: Session, *, municipality_id: int, target_id: int, source_ids: list[int], author: StaffUser
) -> list[int]:
    """Merges duplicates into one report: each is resolved and points at it, and its reporter is told.

    Reports already merged into a source follow it to the target. Returns the ids of the
    messages queued, for the caller to send after commit.
    """
    target = get_report(session, municipality_id=municipality_id, report_id=target_id)
    if target.merged_into_id is not None:
        raise Conflict(N_("Diese Meldung wurde selbst schon mit einer anderen zusammengeführt."))
    target_conversation = get_conversation(
        session, municipality_id=municipality_id, conversation_id=target.conversation_id
    )
    queued: list[int] = []
    for source_id in dict.fromkeys(source_ids):
        if source_id == target_id:
            raise InvalidInput(N_("Eine Meldung kann nicht mit sich selbst zusammengeführt werden."))
        source = get_report(session, municipality_id=municipality_id, report_id=source_id)
        for follower in session.exec(select(ProblemReport).where(ProblemReport.merged_into_id == source.id)):
            follower.merged_into_id = target.id
            session.add(follower)
        source.merged_into_id = target.id
        session.add(source)
        conversation = update_conversation(
            session, municipality_id=municipality_id, conversation_id=source.conversation_id, status="resolved"
        )
        told = _tell(
            session,
            conversation=conversation,
            template="problem_merged.txt.j2",
            reference=conversation.reference,
            target=target_conversation.reference,
        )
        queued.extend([told] if told is not None else [])
    log.info("reports %s merged into %s by staff %s", source_ids, target_id, author.id)
    session.flush()
    return queued


def set_public_status(
    session: Session, *, municipality_id: int, report_id: int, text: str, public: bool | None = None,
    photos_released: bool | None = None,
) -> list[int]:  # fmt: skip
    """Sets what the public list says of a report; a new text is sent to every one of its reporters.

    Returns the ids of the messages queued, for the caller to send after commit.
    """
    report = get_report(session, municipality_id=municipality_id, report_id=report_id)
    if report.merged_into_id is not None:
        raise Conflict(N_("Diese Meldung ist zusammengeführt; bitte ändern Sie die verbleibende."))
    cleaned = " ".join(text.split())[:300]
    changed = bool(cleaned) and cleaned != report.public_status
    report.public_status = cleaned or report.public_status
    if public is not None:
        report.public = public
    if photos_released is not None:
        report.photos_released = photos_released
    session.add(report)
    session.flush()
    if not changed:
        return []
    own = session.get(Conversation, report.conversation_id)
    assert own is not None
    queued = [
        _tell(session, conversation=conversation, template="problem_progress.txt.j2",
              reference=own.reference, status=cleaned)
        for conversation in _followers(session, report)
    ]  # fmt: skip
    return [message_id for message_id in queued if message_id is not None]
