"""Problem reports from the citizens' web form: checked whole, then filed as a case; nearby reports and "ich auch".

A web report is a web case (hub.webcases.intake): until its reporter proves a phone or an email
address nobody can write to them; the proof moves the case to the proven contact, and from then
on they hear of progress. "Ich auch" on a nearby
report files a report merged into it at once: it counts as one more reporter and, once proven,
its reporter is told of progress like every reporter of the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from hub.db import utcnow
from hub.errors import Conflict, InvalidInput, NotFound
from hub.i18n import N_, gettext_for
from hub.inbox.models import Conversation, Message
from hub.inbox.service import update_conversation
from hub.problems import service
from hub.problems.models import ProblemCategory, ProblemReport
from hub.problems.places import check_coordinates, district_at, geocode
from hub.settings import Settings
from hub.tenancy.models import Municipality
from hub.webcases import intake
from hub.webcases.photos import CheckedPhoto

MAX_DESCRIPTION = 5000
NEARBY_SHOWN = 5
# The inbound message of an "ich auch", in German like every case text staff read.
SUPPORT_TEXT = N_("Ich auch: Ich habe denselben Mangel bemerkt (Meldung {reference}).")
# The internal note that points the report's case to an "ich auch"'s photos.
SUPPORT_PHOTOS_TEXT = N_("Fotos aus einem „Ich auch“ im Vorgang {reference}, noch nicht freigegeben.")


@dataclass(frozen=True)
class Place:
    lat: float
    lon: float
    address: str | None


def find_place(
    session: Session, *, settings: Settings, municipality: Municipality, lat: str, lon: str, address: str
) -> Place:
    """The pin (or the browser's location) if there is one, else the address geocoded; refused outside the town."""
    if lat.strip() or lon.strip():
        try:
            point = float(lat), float(lon)
        except ValueError:
            raise InvalidInput(N_("Der Punkt auf der Karte ist unlesbar. Bitte setzen Sie ihn noch einmal.")) from None
        check_coordinates(*point)
        typed = address.strip()[:300] or None
    elif address.strip():
        found = geocode(session, settings=settings, municipality=municipality, address=address)
        point, typed = (found.lat, found.lon), found.address
    else:
        raise InvalidInput(N_("Wo ist es? Bitte setzen Sie einen Punkt auf der Karte oder geben Sie eine Adresse an."))
    district_at(session, municipality=municipality, lat=point[0], lon=point[1])
    return Place(lat=point[0], lon=point[1], address=typed)


def file_report(
    session: Session,
    *,
    settings: Settings,
    municipality: Municipality,
    category_key: str,
    description: str,
    place: Place,
    photos: Sequence[tuple[intake.Upload, CheckedPhoto]],
    language: str,
) -> Conversation:
    """Files a checked report as a case with its category, place and photos; the caller commits (all or nothing)."""
    assert municipality.id is not None
    category = service.category_by_key(session, municipality_id=municipality.id, word=category_key)
    text = description.strip()
    if not text:
        raise InvalidInput(N_("Bitte beschreiben Sie kurz, was nicht in Ordnung ist."))
    if len(text) > MAX_DESCRIPTION:
        raise InvalidInput(N_("Die Beschreibung ist zu lang: höchstens {count} Zeichen."), count=MAX_DESCRIPTION)
    conversation, message = intake.open_case(
        session, municipality=municipality, text=text, language=language, subject=category.name_de
    )
    report = service.open_report(session, conversation=conversation)
    service.set_category(session, report=report, category=category)
    service.set_place(
        session, settings=settings, municipality=municipality, report=report, lat=place.lat, lon=place.lon,
        address=place.address,
    )  # fmt: skip
    _keep_photos(session, message=message, report=report, photos=photos)
    return conversation


def _keep_photos(
    session: Session, *, message: Message, report: ProblemReport, photos: Sequence[tuple[intake.Upload, CheckedPhoto]]
) -> None:
    """Checked photos as attachments of `message`, each a photo of `report` (its reporter's, unreleased)."""
    assert message.id is not None
    for upload, checked in photos:
        attachment = intake.keep_photo(message, upload, checked)
        session.add(attachment)
        session.flush()
        service.add_photo(session, report=report, attachment=attachment, checked=checked)


# --- "Ist das schon gemeldet?" ---------------------------------------------------------------------


def reporters_of(session: Session, report_ids: list[int]) -> dict[int, int]:
    """How many people reported each report: its own reporter and those of the reports merged into it."""
    rows = session.exec(
        select(ProblemReport.merged_into_id, func.count())
        .where(col(ProblemReport.merged_into_id).in_(report_ids))
        .group_by(col(ProblemReport.merged_into_id))
    )
    merged = {target: count for target, count in rows if target is not None}
    return {report_id: 1 + merged.get(report_id, 0) for report_id in report_ids}


def nearby(
    session: Session, *, settings: Settings, municipality: Municipality, category_key: str, lat: float, lon: float
) -> list[dict[str, Any]]:
    """Open public reports of the category near the pin, nearest first, as the public may see them."""
    assert municipality.id is not None
    check_coordinates(lat, lon)
    category = service.find_category(session, municipality_id=municipality.id, word=category_key)
    if category is None or category.id is None:
        return []
    found = [
        item
        for item in service.nearby_reports(
            session, settings=settings, municipality_id=municipality.id, category_id=category.id, lat=lat, lon=lon
        )
        if item.report.public
    ][:NEARBY_SHOWN]
    counts = reporters_of(session, [item.report.id for item in found if item.report.id is not None])
    return [
        {
            "id": item.report.id,
            "reference": item.reference,
            "category": category.name_de,
            "category_en": category.name_en,
            "address": item.report.address,
            "metres": round(item.metres),
            "public_status": item.report.public_status,
            "reporters": counts.get(item.report.id or 0, 1),
        }
        for item in found
    ]


def supportable(session: Session, *, municipality_id: int, report_id: int) -> tuple[ProblemReport, Conversation]:
    """A public, open report that is not merged into another: the only kind "ich auch" may join."""
    report = service.get_report(session, municipality_id=municipality_id, report_id=report_id)
    conversation = session.get(Conversation, report.conversation_id)
    assert conversation is not None
    if not report.public:
        raise NotFound(N_("Die Meldung {report_id} gibt es nicht."), report_id=report_id)
    if report.merged_into_id is not None or conversation.status == "resolved":
        raise Conflict(N_("Diese Meldung ist schon erledigt oder zusammengeführt. Bitte melden Sie es neu."))
    return report, conversation


def support(
    session: Session, *, settings: Settings, municipality: Municipality, report_id: int, language: str,
    photos: Sequence[tuple[intake.Upload, CheckedPhoto]] = (),
) -> tuple[Conversation, str]:  # fmt: skip
    """Files an "ich auch": a case of its own, merged into the report at once; the caller commits.

    Its checked photos stay in the supporter's own case, as photos of their own report, so that they
    are theirs alone (their export and erasure, never the other reporter's) and never public:
    releasing the report's photos releases its reporter's only. An internal note in the report's
    case, where staff work, points to them.
    Returns the new case and the reference of the report it joined."""
    assert municipality.id is not None
    target, target_conversation = supportable(session, municipality_id=municipality.id, report_id=report_id)
    category = session.get(ProblemCategory, target.category_id) if target.category_id else None
    text = gettext_for("de").gettext(SUPPORT_TEXT).format(reference=target_conversation.reference)
    conversation, message = intake.open_case(
        session, municipality=municipality, text=text, language=language,
        subject=category.name_de if category is not None else target_conversation.reference,
    )  # fmt: skip
    report = service.open_report(session, conversation=conversation)
    report.category_id, report.merged_into_id, report.district_id = target.category_id, target.id, target.district_id
    report.lat, report.lon, report.address = target.lat, target.lon, target.address
    session.add(report)
    assert conversation.id is not None
    update_conversation(session, municipality_id=municipality.id, conversation_id=conversation.id, status="resolved")
    if photos:
        _keep_photos(session, message=message, report=report, photos=photos)
        note = Message(
            municipality_id=municipality.id, conversation_id=target_conversation.id or 0,
            channel_account_id=target_conversation.channel_account_id, direction="note",
            body=gettext_for("de").gettext(SUPPORT_PHOTOS_TEXT).format(reference=conversation.reference),
        )  # fmt: skip
        session.add(note)
        target_conversation.last_activity_at = utcnow()
        session.add(target_conversation)
    session.flush()
    return conversation, target_conversation.reference


# How a reporter proves the way to hear of progress: the code and the mail speak of their report.
PROOF = intake.Proof(
    phone_purpose="problem-report-follow", email_purpose="problem-report-follow-email",
    code_template="problem_code.txt.j2", mail_template="problem_confirm.txt.j2", confirm_path="/meldung/bestaetigen",
)  # fmt: skip
PROOF.register()
