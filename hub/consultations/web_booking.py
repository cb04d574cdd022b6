"""Booking on the citizens' web pages: proving a phone by code or an email by link, then the booking and its links.

Nothing is booked until the address is proven. The phone's code is asked for through the
subscribers' verification with this module's own purpose (registered below); the email's link
through the subscribers' signed mail. Once proven, the proof is committed before the place is
claimed, so that a slot that filled meanwhile (SlotTaken) leaves the citizen proven and offered
the next free slots without a new code. The booking's page, its calendar file and its cancel
and move links carry one signed token (purpose `LINK_PURPOSE`) with the booking's id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from icalendar import Calendar, Event
from sqlmodel import Session, select

from channels.base import Attachment
from hub.consultations import service
from hub.consultations.models import Booking, ConsultationSeries, ConsultationSession, ConsultationSlot
from hub.consultations.recurrence import zone
from hub.contacts.models import Contact
from hub.contacts.service import resolve_contact
from hub.db import utcnow
from hub.errors import Conflict, DomainError, NotFound
from hub.i18n import N_
from hub.inbox.service import queue_outbound
from hub.settings import Settings
from hub.subscribers import email_opt_in, signed_links, verification
from hub.subscribers.models import PhoneVerification
from hub.templating import greeting, render_message
from hub.tenancy.models import Municipality
from hub.tenancy.preferences import preference
from hub.tenancy.service import channel_reaching
from workers.app import enqueue_send

BOOKING_PURPOSE = "consultation-booking"
EMAIL_PURPOSE = "consultation-booking-email"
LINK_PURPOSE = "consultation-booking-link"
# A booking's link works as long as anyone could still want to open it: the booking window is
# at most about a year, and the link is kept a while after the appointment.
LINK_VALID_SECONDS = 500 * 24 * 3600
_UNKNOWN_LINK = N_(
    "Diesen Buchungslink kennen wir nicht. Bitte nutzen Sie den Link aus Ihrer Bestätigung "
    "oder buchen Sie einen neuen Termin."
)


@dataclass(frozen=True)
class Request:
    """What the citizen asked for on the form, checked before a code or a mail is sent."""

    slot_id: int
    name: str
    concern: str | None


def check_request(
    session: Session, *, municipality: Municipality, slot_id: int, name: str, concern: str | None
) -> tuple[Request, ConsultationSeries]:
    """Refuses what booking would refuse anyway before the citizen is sent anything, a full slot too."""
    slot, _held, series = service.check_booking(
        session, municipality=municipality, slot_id=slot_id, name=name, concern=concern
    )
    if slot.booked >= slot.capacity:
        raise service.SlotTaken(
            service.free_slots(session, series=series, limit=service.ALTERNATIVES), municipality.timezone
        )
    return Request(slot_id=slot_id, name=name.strip()[:200], concern=(concern or "").strip()[:5000] or None), series


@dataclass(frozen=True)
class Outcome:
    """A proven citizen's booking, or why the slot could not be had and which are free instead."""

    contact_id: int
    reached_on: str  # the kind of address proven: "phone" or "email"
    request: Request
    booking: Booking | None = None
    refusal: DomainError | None = None
    alternatives: tuple[service.FreeSlot, ...] = ()


def book_proven(
    session: Session,
    *,
    settings: Settings,
    municipality: Municipality,
    contact_id: int,
    reached_on: str,
    request: Request,
    language: str,
) -> Outcome:
    """Books for a citizen whose address is proven and sends the confirmation on that channel; commits.

    Asking again for a slot already booked (a link followed twice) answers with that booking.
    """
    held = session.exec(
        select(Booking).where(
            Booking.slot_id == request.slot_id, Booking.contact_id == contact_id, Booking.status == "booked"
        )
    ).first()
    if held is not None:
        return Outcome(contact_id=contact_id, reached_on=reached_on, request=request, booking=held)
    try:
        booking = service.book(
            session, municipality=municipality, slot_id=request.slot_id, contact_id=contact_id, name=request.name,
            concern=request.concern, reached_on=reached_on,
        )  # fmt: skip
    except Conflict as refusal:
        # A slot taken names the next free ones; closed or cancelled meanwhile, the same are offered.
        offered = refusal.alternatives if isinstance(refusal, service.SlotTaken) else _next_free(session, request)
        return Outcome(
            contact_id=contact_id, reached_on=reached_on, request=request, refusal=refusal, alternatives=tuple(offered)
        )
    contact = session.get(Contact, contact_id)
    if contact is not None:
        contact.language = language  # the confirmation and the reminders speak the language of the page they booked on
    message_id = queue_confirmation(session, settings=settings, municipality=municipality, booking=booking,
                                    reached_on=reached_on)  # fmt: skip
    session.commit()
    if message_id is not None:
        enqueue_send(message_id)
    return Outcome(contact_id=contact_id, reached_on=reached_on, request=request, booking=booking)


def _next_free(session: Session, request: Request) -> list[service.FreeSlot]:
    slot = session.get(ConsultationSlot, request.slot_id)
    held = session.get(ConsultationSession, slot.session_id) if slot else None
    series = session.get(ConsultationSeries, held.series_id) if held else None
    return service.free_slots(session, series=series, limit=service.ALTERNATIVES) if series else []


def start(
    session: Session,
    *,
    settings: Settings,
    municipality: Municipality,
    slot_id: int,
    name: str,
    concern: str | None,
    way: str,
    phone: str,
    email: str,
    language: str,
    client_ip: str | None,
) -> tuple[Request, verification.Started | None]:
    """Checks the request and sends the proof: a code by SMS (the Started answered), or by `way` "email" a link."""
    request, series = check_request(session, municipality=municipality, slot_id=slot_id, name=name, concern=concern)
    if way == "email":
        mail_link(session, settings=settings, municipality=municipality, request=request, series=series, email=email,
                  language=language, client_ip=client_ip)  # fmt: skip
        return request, None
    return request, ask_for_code(
        session, municipality=municipality, request=request, phone=phone, language=language, client_ip=client_ip
    )


# By phone: a code with this module's purpose


def ask_for_code(
    session: Session, *, municipality: Municipality, request: Request, phone: str, language: str, client_ip: str | None
) -> verification.Started:
    """Sends the code; the request rides in the verification and is booked once the code is right."""
    return verification.start_verification(
        session, municipality=municipality, phone=phone, language=language, client_ip=client_ip,
        purpose=BOOKING_PURPOSE, details={"slot_id": request.slot_id, "name": request.name, "concern": request.concern},
    )  # fmt: skip


def _phone_proven(
    session: Session, municipality: Municipality, proof: PhoneVerification, evidence: dict[str, Any]
) -> verification.Verified:
    """The number is proven: the contact is found or added and the proof committed; booking is the page's next step."""
    assert municipality.id is not None
    asked = proof.request
    contact = resolve_contact(
        session, municipality_id=municipality.id, kind="phone", address=proof.phone, display_name=asked.get("name"),
        language=asked.get("language"),
    )  # fmt: skip
    assert contact.id is not None
    session.commit()
    request = Request(slot_id=int(asked["slot_id"]), name=str(asked["name"]), concern=asked.get("concern"))
    return verification.Verified(contact_id=contact.id, change=None, result=request)


verification.register_purpose(
    verification.Purpose(name=BOOKING_PURPOSE, code_template="consultation_code.txt.j2", apply=_phone_proven)
)


def check_code(
    session: Session,
    *,
    settings: Settings,
    municipality: Municipality,
    phone: str,
    code: str,
    language: str,
    client_ip: str | None,
    user_agent: str | None,
) -> Outcome:
    """Checks the code (its tries and limits are the verification's) and books what it was asked for."""
    proven = verification.verify_code(
        session, municipality=municipality, phone=phone, code=code, client_ip=client_ip, user_agent=user_agent,
        language=language, purpose=BOOKING_PURPOSE,
    )  # fmt: skip
    assert isinstance(proven.result, Request)
    return book_proven(
        session, settings=settings, municipality=municipality, contact_id=proven.contact_id, reached_on="phone",
        request=proven.result, language=language,
    )  # fmt: skip


# By email: a signed link


def _when(moment: datetime, municipality: Municipality) -> str:
    return moment.astimezone(zone(municipality.timezone)).strftime("%d.%m.%Y %H:%M")


def mail_link(
    session: Session,
    *,
    settings: Settings,
    municipality: Municipality,
    request: Request,
    series: ConsultationSeries,
    email: str,
    language: str,
    client_ip: str | None,
) -> str:
    """Mails the link that confirms the address and books; the sign-up's limits on mailing apply."""
    slot = session.get(ConsultationSlot, request.slot_id)
    assert slot is not None
    return email_opt_in.mail_signed_link(
        session, settings=settings, municipality=municipality, email=email, language=language, client_ip=client_ip,
        purpose=EMAIL_PURPOSE, payload={"s": request.slot_id, "n": request.name, "c": request.concern},
        path=f"/sprechstunden/{municipality.slug}/bestaetigen", template="consultation_confirm.txt.j2",
        context={"name": request.name, "title": series.title, "when": _when(slot.starts_at, municipality)},
    )  # fmt: skip


def read_mail_link(*, municipality: Municipality, token: str) -> tuple[Request, str, str]:
    """The request, address and language a booking mail's link carries, if it is genuine and for this town."""
    payload = email_opt_in.check_email_confirmation(municipality=municipality, token=token, purpose=EMAIL_PURPOSE)
    request = Request(slot_id=int(payload["s"]), name=str(payload["n"]), concern=payload.get("c"))
    return request, str(payload["e"]), str(payload.get("l", "de"))


def confirm_mail_link(session: Session, *, settings: Settings, municipality: Municipality, token: str) -> Outcome:
    """Follows the link: the address is proven (the contact found or added, committed), then the slot is booked."""
    assert municipality.id is not None
    request, address, language = read_mail_link(municipality=municipality, token=token)
    contact = resolve_contact(
        session, municipality_id=municipality.id, kind="email", address=address, display_name=request.name,
        language=language,
    )  # fmt: skip
    assert contact.id is not None
    session.commit()
    return book_proven(
        session, settings=settings, municipality=municipality, contact_id=contact.id, reached_on="email",
        request=request, language=language,
    )  # fmt: skip


# The booking's own page, its calendar file, cancelling and moving


def link_token(booking: Booking, reached_on: str) -> str:
    return signed_links.sign_token({"m": booking.municipality_id, "b": booking.id, "r": reached_on},
                                   purpose=LINK_PURPOSE)  # fmt: skip


def booking_path(municipality: Municipality, token: str) -> str:
    return f"/sprechstunden/{municipality.slug}/buchung/{token}"


def booking_links(settings: Settings, municipality: Municipality, token: str) -> dict[str, str]:
    """The booking page's address and its cancel and move pages, as a confirmation names them."""
    link = settings.public_url.rstrip("/") + booking_path(municipality, token)
    return {"link": link, "cancel_link": f"{link}/absagen", "move_link": f"{link}/verschieben"}


@dataclass(frozen=True)
class BookingView:
    """A booking as its page and messages show it: times in the town's zone, where and how to join."""

    booking: Booking
    series: ConsultationSeries
    slot: ConsultationSlot
    token: str
    reached_on: str
    when: str
    until: str

    @property
    def live(self) -> bool:
        return self.booking.status == "booked"


def view_of(
    session: Session, *, municipality: Municipality, booking: Booking, token: str, reached_on: str
) -> BookingView:
    slot = session.get(ConsultationSlot, booking.slot_id)
    held = session.get(ConsultationSession, booking.session_id)
    series = session.get(ConsultationSeries, held.series_id) if held else None
    assert slot is not None and series is not None
    return BookingView(
        booking=booking, series=series, slot=slot, token=token, reached_on=reached_on,
        when=_when(slot.starts_at, municipality), until=_when(slot.ends_at, municipality)[-5:],
    )  # fmt: skip


def read_link(session: Session, *, municipality: Municipality, token: str) -> BookingView:
    """The booking a link names; an unknown, tampered or another town's link is a 404 that says so."""
    try:
        payload = signed_links.read_token(token, purpose=LINK_PURPOSE, max_age_seconds=LINK_VALID_SECONDS)
    except DomainError:
        raise NotFound(_UNKNOWN_LINK) from None
    booking = session.get(Booking, payload.get("b"))
    if booking is None or payload.get("m") != municipality.id or booking.municipality_id != municipality.id:
        raise NotFound(_UNKNOWN_LINK)
    return view_of(session, municipality=municipality, booking=booking, token=token,
                   reached_on=str(payload.get("r", "phone")))  # fmt: skip


def calendar_file(settings: Settings, municipality: Municipality, view: BookingView) -> bytes:
    """The appointment as an iCalendar file (RFC 5545), its times in UTC."""
    calendar = Calendar()
    calendar.add("prodid", "-//Rathaus Hub//Sprechstunden//DE")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    event.add("uid", f"{view.booking.reference}@{municipality.slug}.rathaus-hub")
    event.add("dtstamp", utcnow())
    event.add("dtstart", view.slot.starts_at)
    event.add("dtend", view.slot.ends_at)
    event.add("summary", f"{view.series.title} ({view.booking.reference})")
    link = settings.public_url.rstrip("/") + booking_path(municipality, view.token)
    event.add("url", link)
    event.add("description", link)
    if view.series.location == "in_person" and view.series.address:
        event.add("location", view.series.address)
    event.add("status", "CONFIRMED" if view.live else "CANCELLED")
    calendar.add_component(event)
    return calendar.to_ical()


def queue_confirmation(
    session: Session, *, settings: Settings, municipality: Municipality, booking: Booking, reached_on: str,
    moved: bool = False,
) -> int | None:  # fmt: skip
    """Writes the confirmation (with the calendar file where mail carries it) on the proven channel; returns its id.

    The caller commits, then enqueues the send. A town without such a channel sends nothing: the page says it all.
    """
    account = channel_reaching(session, municipality_id=municipality.id or 0, identity=reached_on)
    if account is None or account.id is None:
        return None
    view = view_of(session, municipality=municipality, booking=booking, token=link_token(booking, reached_on),
                   reached_on=reached_on)  # fmt: skip
    contact = session.get(Contact, booking.contact_id)
    language = contact.language if contact else "de"
    context: dict[str, Any] = {
        **greeting(language, booking.name), "title": view.series.title, "when": view.when,
        "reference": booking.reference, "location": view.series.location, "address": view.series.address,
        **booking_links(settings, municipality, view.token), "cancel_keyword": None,
        "municipality": municipality.name, "moved": moved, "short": reached_on == "phone",
    }  # fmt: skip
    texts = preference(municipality, "texts")
    message = queue_outbound(
        session, starting=(account.id, booking.contact_id), author=None, automated=True,
        text=render_message("consultation_booked.txt.j2", language, overrides=texts, **context),
        subject=render_message("consultation_booked_subject.txt.j2", language, overrides=texts, **context),
        attachments=(Attachment(filename=f"termin-{booking.reference}.ics", content_type="text/calendar",
                                data=calendar_file(settings, municipality, view)),),
    )  # fmt: skip
    return message.id


def cancel_by_link(session: Session, *, municipality: Municipality, token: str) -> BookingView:
    """Cancels the booking the link names and frees its place; cancelling twice changes nothing. Commits."""
    view = read_link(session, municipality=municipality, token=token)
    assert municipality.id is not None and view.booking.id is not None
    service.cancel(session, municipality_id=municipality.id, booking_id=view.booking.id)
    session.commit()
    return read_link(session, municipality=municipality, token=token)


def move_by_link(
    session: Session, *, settings: Settings, municipality: Municipality, token: str, slot_id: int
) -> BookingView:
    """Moves the booking the link names to another free slot of its series and confirms the new time. Commits."""
    view = read_link(session, municipality=municipality, token=token)
    assert view.booking.id is not None
    booking = service.move(session, municipality=municipality, booking_id=view.booking.id, slot_id=slot_id)
    message_id = queue_confirmation(session, settings=settings, municipality=municipality, booking=booking,
                                    reached_on=view.reached_on, moved=True)  # fmt: skip
    session.commit()
    if message_id is not None:
        enqueue_send(message_id)
    return read_link(session, municipality=municipality, token=token)


@dataclass(frozen=True)
class SlotView:
    """A slot as the booking form and the confirm page show it."""

    slot_id: int
    series: ConsultationSeries
    when: str
    until: str
    free: int


def slot_view(session: Session, *, municipality: Municipality, slot_id: int) -> SlotView:
    slot = session.get(ConsultationSlot, slot_id)
    held = session.get(ConsultationSession, slot.session_id) if slot else None
    series = session.get(ConsultationSeries, held.series_id) if held else None
    if slot is None or series is None or series.municipality_id != municipality.id:
        raise NotFound(N_("Diesen Termin gibt es nicht."))
    return SlotView(slot_id=slot_id, series=series, when=_when(slot.starts_at, municipality),
                    until=_when(slot.ends_at, municipality)[-5:], free=slot.capacity - slot.booked)  # fmt: skip


def local_slots(slots: tuple[service.FreeSlot, ...], municipality: Municipality) -> list[tuple[int, str]]:
    """(slot id, its local start) of each slot offered instead."""
    return [(free.slot_id, _when(free.starts_at, municipality)) for free in slots]


def open_series(session: Session, *, municipality_id: int) -> list[ConsultationSeries]:
    """The town's series citizens may book, by title."""
    return [series for series in service.list_series(session, municipality_id=municipality_id) if series.active]


@dataclass(frozen=True)
class Day:
    """One day of a series' open slots, as the page lists them."""

    day: datetime
    slots: list[service.FreeSlot]


def open_days(session: Session, *, municipality: Municipality, series: ConsultationSeries) -> list[Day]:
    """The series' free slots, grouped by their day in the town's time zone; writes sessions that came in reach."""
    service.ensure_sessions(session, series=series, municipality=municipality)
    tz = zone(municipality.timezone)
    days: dict[Any, Day] = {}
    for free in service.free_slots(session, series=series, limit=200):
        local = free.starts_at.astimezone(tz)
        days.setdefault(local.date(), Day(day=local, slots=[])).slots.append(free)
    return list(days.values())


def active_series(session: Session, *, municipality: Municipality, series_id: int) -> ConsultationSeries:
    assert municipality.id is not None
    series = service.get_series(session, municipality_id=municipality.id, series_id=series_id)
    if not series.active:
        raise NotFound(N_("Diese Sprechstunde gibt es nicht."))
    return series
