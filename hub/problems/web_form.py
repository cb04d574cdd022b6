"""Problem reports from the citizens' web form: checked whole, then filed as a case; nearby reports and "ich auch".

A web report is a conversation like any other: its reference, its status link, its team. Until
the citizen proves a phone (code by SMS) or an email address (signed link), its contact is one
with no address, whom nobody can write to; the proof moves the case to the proven contact and
the channel that reaches them, and from then on they hear of progress. "Ich auch" on a nearby
report files a report merged into it at once: it counts as one more reporter and, once proven,
its reporter is told of progress like every reporter of the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from hub.contacts.models import Contact, ContactIdentity
from hub.contacts.service import resolve_contact
from hub.db import utcnow
from hub.errors import ChannelUnavailable, Conflict, InvalidInput, NotFound
from hub.i18n import N_, gettext_for
from hub.inbox.models import Attachment, Conversation, Message
from hub.inbox.service import open_conversation, update_conversation
from hub.problems import service
from hub.problems.models import ProblemCategory, ProblemReport
from hub.problems.photos import CheckedPhoto, check_photo
from hub.problems.places import check_coordinates, district_at, geocode
from hub.settings import Settings
from hub.subscribers import email_opt_in, verification
from hub.subscribers.models import PhoneVerification
from hub.tenancy.models import ChannelAccount, Municipality
from hub.tenancy.service import channel_reaching

MAX_PHOTOS = 3
MAX_DESCRIPTION = 5000
NEARBY_SHOWN = 5
FOLLOW_PURPOSE = "problem-report-follow"
FOLLOW_EMAIL_PURPOSE = "problem-report-follow-email"
FOLLOW_WAYS = ("none", "phone", "email")
# The inbound message of an "ich auch", in German like every case text staff read.
SUPPORT_TEXT = N_("Ich auch: Ich habe denselben Mangel bemerkt (Meldung {reference}).")
# The internal note that points the report's case to an "ich auch"'s photos.
SUPPORT_PHOTOS_TEXT = N_("Fotos aus einem „Ich auch“ im Vorgang {reference}, noch nicht freigegeben.")


@dataclass(frozen=True)
class Upload:
    """A file as the browser sent it."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Place:
    lat: float
    lon: float
    address: str | None


@dataclass(frozen=True)
class Follow:
    """How the citizen wants to hear of progress: "none", or a phone or email address to prove."""

    way: str = "none"
    phone: str = ""
    email: str = ""


def check_follow(municipality: Municipality, follow: Follow, language: str) -> Follow:
    """The way checked before anything is stored, so that a mistyped number leaves no report behind."""
    if follow.way not in FOLLOW_WAYS:
        raise InvalidInput(N_("Bitte wählen Sie, ob und wie wir Sie informieren sollen."))
    if follow.way == "phone":
        return Follow(way="phone", phone=verification.normalise_phone(municipality, follow.phone, language))
    if follow.way == "email":
        return Follow(way="email", email=email_opt_in.check_address(follow.email, language))
    return Follow()


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


def check_photos(settings: Settings, uploads: Sequence[Upload]) -> list[tuple[Upload, CheckedPhoto]]:
    """Every photo checked before any is kept (the photo checks' own refusals)."""
    chosen = [upload for upload in uploads if upload.data or upload.filename]
    if len(chosen) > MAX_PHOTOS:
        raise InvalidInput(N_("Bitte senden Sie höchstens {count} Fotos."), count=MAX_PHOTOS)
    return [(upload, check_photo(upload.data, settings=settings)) for upload in chosen]


def _web_account(session: Session, municipality_id: int) -> ChannelAccount:
    """The account a web report's case belongs to until its reporter proves an address: the town's mail, else SMS."""
    for identity in ("email", "phone"):
        account = channel_reaching(session, municipality_id=municipality_id, identity=identity)
        if account is not None:
            return account
    raise ChannelUnavailable(N_("Meldungen über dieses Formular nimmt die Gemeinde derzeit nicht an."))


def _open_case(
    session: Session, *, municipality: Municipality, text: str, language: str, subject: str
) -> tuple[Conversation, Message]:
    """A new case of a reporter without an address yet, with their words as its first inbound message."""
    assert municipality.id is not None
    account = _web_account(session, municipality.id)
    assert account.id is not None
    contact = Contact(municipality_id=municipality.id, language=language)
    session.add(contact)
    session.flush()
    assert contact.id is not None
    conversation = open_conversation(session, account=account, contact_id=contact.id, subject=subject)
    assert conversation.id is not None
    now = utcnow()
    message = Message(
        municipality_id=municipality.id, conversation_id=conversation.id, channel_account_id=account.id,
        direction="inbound", body=text, created_at=now,
    )  # fmt: skip
    session.add(message)
    # The response clock runs from the report, as it would from a message.
    conversation.last_inbound_at = conversation.last_activity_at = now
    session.flush()
    return conversation, message


def file_report(
    session: Session,
    *,
    settings: Settings,
    municipality: Municipality,
    category_key: str,
    description: str,
    place: Place,
    photos: Sequence[tuple[Upload, CheckedPhoto]],
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
    conversation, message = _open_case(
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
    session: Session, *, message: Message, report: ProblemReport, photos: Sequence[tuple[Upload, CheckedPhoto]]
) -> None:
    """Checked photos as attachments of `message`, each a photo of `report` (its reporter's, unreleased)."""
    assert message.id is not None
    for upload, checked in photos:
        attachment = Attachment(
            municipality_id=message.municipality_id, message_id=message.id, filename=(upload.filename or "foto")[:200],
            content_type=checked.content_type, size=len(checked.data), data=checked.data,
        )  # fmt: skip
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
    photos: Sequence[tuple[Upload, CheckedPhoto]] = (),
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
    conversation, message = _open_case(
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


# --- being told of progress -------------------------------------------------------------------------


def follow_as(session: Session, *, municipality_id: int, conversation_id: int, kind: str, address: str,
              language: str) -> Contact:  # fmt: skip
    """Moves a web report's case to the contact proven at `address` and the channel reaching it.

    Only a case still waiting for its reporter's address moves; its placeholder contact goes.
    Following a second time changes nothing.
    """
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or conversation.municipality_id != municipality_id:
        raise NotFound(N_("Diese Meldung gibt es nicht."))
    contact = resolve_contact(session, municipality_id=municipality_id, kind=kind, address=address, language=language)
    account = channel_reaching(session, municipality_id=municipality_id, identity=kind)
    placeholder = session.get(Contact, conversation.contact_id)
    has_address = session.exec(
        select(ContactIdentity.id).where(ContactIdentity.contact_id == conversation.contact_id)
    ).first()
    if account is None or account.id is None or placeholder is None or has_address is not None:
        return contact
    conversation.contact_id, conversation.channel_account_id = contact.id or 0, account.id
    session.add(conversation)
    session.flush()
    session.delete(placeholder)
    session.flush()
    return contact


def ask_for_code(session: Session, *, municipality: Municipality, conversation_id: int, phone: str, language: str,
                 client_ip: str | None) -> verification.Started:  # fmt: skip
    """Sends the code by SMS; the case rides in the verification and follows the number once the code is right."""
    return verification.start_verification(
        session, municipality=municipality, phone=phone, language=language, client_ip=client_ip,
        purpose=FOLLOW_PURPOSE, details={"conversation_id": conversation_id},
    )  # fmt: skip


def _phone_proven(
    session: Session, municipality: Municipality, proof: PhoneVerification, evidence: dict[str, Any]
) -> verification.Verified:
    assert municipality.id is not None
    contact = follow_as(
        session, municipality_id=municipality.id, conversation_id=int(proof.request["conversation_id"]), kind="phone",
        address=proof.phone, language=str(proof.request.get("language", "de")),
    )  # fmt: skip
    assert contact.id is not None
    return verification.Verified(contact_id=contact.id, change=None)


verification.register_purpose(
    verification.Purpose(name=FOLLOW_PURPOSE, code_template="problem_code.txt.j2", apply=_phone_proven)
)


def check_code(session: Session, *, municipality: Municipality, phone: str, code: str, language: str,
               client_ip: str | None, user_agent: str | None) -> None:  # fmt: skip
    """Checks the code (its tries and limits are the verification's); right, the case follows the number. Commits."""
    verification.verify_code(
        session, municipality=municipality, phone=phone, code=code, client_ip=client_ip, user_agent=user_agent,
        language=language, purpose=FOLLOW_PURPOSE,
    )  # fmt: skip
    session.commit()


def mail_link(session: Session, *, settings: Settings, municipality: Municipality, conversation: Conversation,
              email: str, language: str, client_ip: str | None) -> str:  # fmt: skip
    """Mails the link that proves the address; following it, the case follows the address."""
    return email_opt_in.mail_signed_link(
        session, settings=settings, municipality=municipality, email=email, language=language, client_ip=client_ip,
        purpose=FOLLOW_EMAIL_PURPOSE, payload={"c": conversation.id, "r": conversation.reference},
        path=f"/{municipality.slug}/meldung/bestaetigen", template="problem_confirm.txt.j2",
        context={"reference": conversation.reference},
    )  # fmt: skip


def read_mail_link(*, municipality: Municipality, token: str) -> dict[str, Any]:
    """The case, address and language a follow mail's link carries, if it is genuine and for this town."""
    return email_opt_in.check_email_confirmation(municipality=municipality, token=token, purpose=FOLLOW_EMAIL_PURPOSE)


def confirm_mail_link(session: Session, *, municipality: Municipality, token: str) -> str:
    """Follows the mailed link: the case follows the address. Returns the case's reference. Commits."""
    assert municipality.id is not None
    payload = read_mail_link(municipality=municipality, token=token)
    follow_as(
        session, municipality_id=municipality.id, conversation_id=int(payload["c"]), kind="email",
        address=str(payload["e"]), language=str(payload.get("l", "de")),
    )  # fmt: skip
    session.commit()
    return str(payload["r"])
