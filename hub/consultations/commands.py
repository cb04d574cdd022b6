"""Inbound pipeline step: TERMIN books and ABSAGEN cancels consultation hours on every channel, by number or button.

TERMIN (or APPOINTMENT; the town's `consultation_keywords`) is a whole message, as the
subscriber keywords are: the citizen is offered the next free slots, first the series to pick
from if several are open, as buttons where the channel has them and numbered in the text where
it has none. The offer is kept in `consultation_offer` for OFFER_VALIDITY, one per contact and
channel account; a digit in range (or a press of one of its buttons, "termin:<offer id>:<n>")
answers it. A slot is booked under the contact's name, asked for first if the hub has none;
a slot taken meanwhile is answered with the next free ones. ABSAGEN (or CANCEL APPOINTMENT)
cancels the next live booking, asking which if there are several. A message to the town's
`consultation_address` (a mailbox) that is none of these asks for a slot with its text as the
concern, which the booking keeps, unless it answers a mail about a booking: that is a question
for the host's case (hub.consultations.concerns).

The step runs after the subscriber commands, so STOP (and CANCEL, a STOP keyword) still stops,
and before survey answers: a digit answering an open offer is no vote, and a digit without an
open offer passes on unchanged, to a survey or to staff. Like the subscriber commands, what it
handles and its answers stay on the contact and never open or reopen a case; the outcome starts
with "consultation:".
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from babel.dates import format_datetime
from sqlalchemy import delete
from sqlmodel import Session, col, select

from channels.base import Choice
from channels.registry import adapter_class
from hub.consultations import service
from hub.consultations.concerns import answers_a_booking
from hub.consultations.models import (
    Booking,
    ConsultationOffer,
    ConsultationSeries,
    ConsultationSession,
    ConsultationSlot,
)
from hub.consultations.recurrence import zone
from hub.consultations.web_booking import booking_links, link_token
from hub.contacts.models import NAME_FROM_CITIZEN, Contact
from hub.contacts.registry import Erasure, PersonalData, plain
from hub.contacts.service import offer_name
from hub.db import utcnow
from hub.errors import DomainError
from hub.i18n import DEFAULT_LANGUAGE, LANGUAGES
from hub.inbox.context import InboundContext
from hub.inbox.service import queue_outbound
from hub.templating import greeting, render_message
from hub.tenancy.models import Municipality
from hub.tenancy.preferences import preference

OUTCOME_PREFIX = "consultation: "
PAYLOAD_PREFIX = "termin:"
# Long enough to answer from the bus or after work, short enough that a "2" days later (perhaps to
# a survey sent since) is not taken for it.
OFFER_VALIDITY = timedelta(hours=4)
# Slots offered at once; fewer where each part of a text is paid for (SMS).
OFFERED = 5
OFFERED_SHORT = 3
MAX_NAME_CHARS = 80


def _normalise(text: str) -> str:
    normalised = " ".join(text.split()).strip(".!?").strip().casefold()
    # A bot command may name the bot: /termin@MusterstadtBot.
    return normalised[1:].split("@", 1)[0] if normalised.startswith("/") else normalised


def _is_keyword(text: str, words: Sequence[str]) -> bool:
    return _normalise(text) in {word.casefold() for word in words}


def _number(text: str) -> int | None:
    normalised = _normalise(text)
    return int(normalised) if re.fullmatch(r"\d{1,2}", normalised) else None


def _looks_like_name(text: str) -> bool:
    """A name, not a question for staff: a few words of letters, no digits, no question mark."""
    words = text.split()
    return (
        0 < len(words) <= 5
        and len(text.strip()) <= MAX_NAME_CHARS
        and not any(character.isdigit() or character == "?" for character in text)
        and any(character.isalpha() for character in text)
    )


@contextmanager
def _savepoint(session: Session) -> Iterator[Session]:
    """A session inside a savepoint of the pipeline's transaction, for the service calls that commit or roll back.

    service.book rolls back when the place is gone, and ensure_sessions commits what it wrote; on
    the pipeline's own session either would end the transaction that claimed the event and stored
    the message. Joined this way, their commit releases the savepoint and their rollback undoes
    only their own part.
    """
    with Session(bind=session.connection(), join_transaction_mode="create_savepoint", expire_on_commit=False) as own:
        yield own


def apply_consultation_commands(ctx: InboundContext) -> str | None:
    """Pipeline step (after subscriber commands, before survey answers): books, cancels, or lets the message pass."""
    assert ctx.contact is not None and ctx.contact.id is not None and ctx.message is not None
    inbound = ctx.inbound
    # A public comment or a group chat is no place for a name and an appointment.
    if inbound.kind in ("comment", "edit") or inbound.shared_chat:
        return None
    municipality = ctx.session.get(Municipality, ctx.account.municipality_id)
    assert municipality is not None
    # A mail with an empty body may carry its keyword in the subject.
    has_subject = adapter_class(ctx.account.kind).supports_subject
    text = inbound.text if inbound.text.strip() or not has_subject else inbound.subject or ""
    handled = _Exchange(ctx, municipality, ctx.contact).run(text)
    return None if handled is None else OUTCOME_PREFIX + handled


class _Exchange:
    """Answers one message of one citizen about consultation hours and queues the answer."""

    def __init__(self, ctx: InboundContext, municipality: Municipality, contact: Contact) -> None:
        assert municipality.id is not None and contact.id is not None and ctx.account.id is not None
        self.ctx = ctx
        self.session = ctx.session
        self.municipality = municipality
        self.municipality_id: int = municipality.id
        self.contact = contact
        self.contact_id: int = contact.id
        self.account_id: int = ctx.account.id
        adapter = adapter_class(ctx.account.kind)
        self.buttons = adapter.supports_choices
        self.short = adapter.max_segments is not None
        self.subject_line = adapter.supports_subject
        self.language = contact.language if contact.language in LANGUAGES else DEFAULT_LANGUAGE
        self.zone = zone(municipality.timezone)
        self.now = utcnow()

    def run(self, text: str) -> str | None:
        if self.ctx.inbound.kind == "postback":
            payload = text.strip()
            return self.press(payload) if payload.startswith(PAYLOAD_PREFIX) else None
        if _is_keyword(text, preference(self.municipality, "consultation_keywords")):
            return self.offer_slots()
        if _is_keyword(text, preference(self.municipality, "consultation_cancel_keywords")):
            return self.cancel_next()
        offer = self.open_offer()
        # A reply by mail may go on below its answer (a greeting, a signature): its first line counts.
        answer = next((line for line in text.splitlines() if line.strip()), "") if self.subject_line else text
        number = _number(answer)
        if offer is not None and offer.purpose != "name" and number is not None and 1 <= number <= len(offer.choices):
            return self.choose(offer, number)
        if offer is not None and offer.purpose == "name" and _looks_like_name(answer):
            return self.book(offer.choices[0], concern=offer.concern, name=" ".join(answer.split()))
        # A mail answering a booking's confirmation or reminder is a question for the host (see concerns).
        if self.at_consultation_address() and not answers_a_booking(self.ctx):
            return self.offer_slots(concern=text.strip() if number is None and text.strip() else None)
        return None

    # --- what the citizen asked for -------------------------------------------------------

    def press(self, payload: str) -> str:
        offer_id, _, number = payload.removeprefix(PAYLOAD_PREFIX).partition(":")
        offer = self.open_offer()
        answered = offer is not None and str(offer.id) == offer_id and number.isdigit()
        if offer is None or not answered or not 1 <= int(number) <= len(offer.choices):
            # A button of an offer that was answered, replaced or has run out.
            self.answer("consultation_expired.txt.j2")
            return "button of an old offer"
        return self.choose(offer, int(number))

    def choose(self, offer: ConsultationOffer, number: int) -> str:
        chosen = offer.choices[number - 1]
        if offer.purpose == "series":
            series = self.session.get(ConsultationSeries, chosen)
            assert series is not None
            return self.offer_slots(concern=offer.concern, series=series)
        if offer.purpose == "cancel":
            return self.cancel(chosen)
        return self.book(chosen, concern=offer.concern)

    def offer_slots(
        self, *, concern: str | None = None, series: ConsultationSeries | None = None, taken: bool = False
    ) -> str:
        """The next free slots of `series`, or of the one open series, or the open series to pick from."""
        count = OFFERED_SHORT if self.short else OFFERED
        open_series = [(series, self.free_slots(series, count))] if series else self.bookable_series(count)
        open_series = [(found, free) for found, free in open_series if free]
        if not open_series:
            self.forget_offer()
            self.answer("consultation_none_free.txt.j2", taken=taken)
            return "nothing free"
        if len(open_series) > 1:
            titles = [found.title for found, _ in open_series]
            self.offer("series", [found.id for found, _ in open_series], titles, "consultation_series.txt.j2", concern)
            return "series offered"
        [(found, free)] = open_series
        labels = [self.label(slot.starts_at) for slot in free]
        self.offer(
            "slots", [slot.slot_id for slot in free], labels, "consultation_slots.txt.j2", concern,
            title=found.title, taken=taken,
        )  # fmt: skip
        return f"slots of series {found.id} offered" + (", the chosen one was taken" if taken else "")

    def book(self, slot_id: int, *, concern: str | None, name: str | None = None) -> str:
        found = self.slot_and_series(slot_id)
        if found is None:
            self.answer("consultation_expired.txt.j2")
            return "slot gone"
        slot, series = found
        name = name or self.contact.display_name
        if not name:
            self.offer("name", [slot_id], [], "consultation_name.txt.j2", concern, when=self.when(slot.starts_at))
            return "name asked"
        try:
            with _savepoint(self.session) as own:
                booking = service.book(
                    own, municipality=self.municipality, slot_id=slot_id, contact_id=self.contact_id, name=name,
                    concern=concern if series.questions_allowed else None,
                )  # fmt: skip
                own.commit()
        except service.SlotTaken:
            return self.offer_slots(concern=concern, series=series, taken=True)
        except DomainError as error:
            self.forget_offer()
            self.answer("consultation_problem.txt.j2", problem=error.text(self.language))
            return f"refused: {error}"
        self.forget_offer()
        offer_name(self.contact, name, origin=NAME_FROM_CITIZEN)
        # The same confirmation as a booking made on the web: its page has the calendar file and, for video, the way in.
        token = link_token(booking, adapter_class(self.ctx.account.kind).identity.kind)
        details = {
            **self.details(booking, slot, series), **booking_links(self.ctx.settings, self.municipality, token),
            "moved": False,
        }  # fmt: skip
        subject = render_message("consultation_booked_subject.txt.j2", self.language, **details)
        self.answer("consultation_booked.txt.j2", subject=subject if self.subject_line else None, **details)
        return f"booked {booking.reference}"

    def cancel_next(self) -> str:
        live = self.live_bookings()
        if not live:
            self.forget_offer()
            self.answer("consultation_nothing_to_cancel.txt.j2")
            return "nothing to cancel"
        if len(live) == 1:
            [(booking, _slot, _series)] = live
            assert booking.id is not None
            return self.cancel(booking.id)
        live = live[: OFFERED_SHORT if self.short else OFFERED]
        labels = [self.label(slot.starts_at) for _booking, slot, _series in live]
        self.offer(
            "cancel", [booking.id for booking, _slot, _series in live], labels, "consultation_cancel_choice.txt.j2",
            None, titles=[series.title for _booking, _slot, series in live],
        )  # fmt: skip
        return "cancel choice offered"

    def cancel(self, booking_id: int) -> str:
        found = next((row for row in self.live_bookings() if row[0].id == booking_id), None)
        if found is None:
            self.answer("consultation_expired.txt.j2")
            return "booking no longer live"
        booking, slot, series = found
        service.cancel(self.session, municipality_id=self.municipality_id, booking_id=booking_id, now=self.now)
        self.forget_offer()
        self.answer("consultation_cancel_done.txt.j2", **self.details(booking, slot, series))
        return f"cancelled {booking.reference}"

    # --- what there is --------------------------------------------------------------------

    def bookable_series(self, count: int) -> list[tuple[ConsultationSeries, list[service.FreeSlot]]]:
        return [
            (series, self.free_slots(series, count))
            for series in service.list_series(self.session, municipality_id=self.municipality_id)
            if series.active
        ]

    def free_slots(self, series: ConsultationSeries, count: int) -> list[service.FreeSlot]:
        # The booking window may have reached sessions that are not written yet.
        with _savepoint(self.session) as own:
            service.ensure_sessions(own, series=series, municipality=self.municipality, now=self.now)
        return service.free_slots(self.session, series=series, now=self.now, limit=count)

    def slot_and_series(self, slot_id: int) -> tuple[ConsultationSlot, ConsultationSeries] | None:
        row = self.session.exec(
            select(ConsultationSlot, ConsultationSeries)
            .join(ConsultationSession, col(ConsultationSession.id) == ConsultationSlot.session_id)
            .join(ConsultationSeries, col(ConsultationSeries.id) == ConsultationSession.series_id)
            .where(ConsultationSlot.id == slot_id, ConsultationSeries.municipality_id == self.municipality_id)
        ).first()
        return (row[0], row[1]) if row is not None else None

    def live_bookings(self) -> list[tuple[Booking, ConsultationSlot, ConsultationSeries]]:
        """The citizen's bookings still to come, soonest first."""
        rows = self.session.exec(
            select(Booking, ConsultationSlot, ConsultationSeries)
            .join(ConsultationSlot, col(ConsultationSlot.id) == Booking.slot_id)
            .join(ConsultationSession, col(ConsultationSession.id) == Booking.session_id)
            .join(ConsultationSeries, col(ConsultationSeries.id) == ConsultationSession.series_id)
            .where(
                Booking.municipality_id == self.municipality_id,
                Booking.contact_id == self.contact_id,
                Booking.status == "booked",
                col(ConsultationSlot.starts_at) > self.now,
            )
            .order_by(col(ConsultationSlot.starts_at), col(Booking.id))
        ).all()
        return [(booking, slot, series) for booking, slot, series in rows]

    def at_consultation_address(self) -> bool:
        address = preference(self.municipality, "consultation_address")
        return bool(address) and self.ctx.account.address.casefold() == str(address).strip().casefold()

    # --- the offer ------------------------------------------------------------------------

    def open_offer(self) -> ConsultationOffer | None:
        return self.session.exec(
            select(ConsultationOffer).where(
                ConsultationOffer.contact_id == self.contact_id,
                ConsultationOffer.channel_account_id == self.account_id,
                col(ConsultationOffer.expires_at) > self.now,
            )
        ).first()

    def forget_offer(self) -> None:
        self.session.execute(
            delete(ConsultationOffer).where(
                col(ConsultationOffer.contact_id) == self.contact_id,
                col(ConsultationOffer.channel_account_id) == self.account_id,
            )
        )

    def offer(
        self, purpose: str, ids: Sequence[int | None], labels: list[str], template: str, concern: str | None,
        **context: Any,
    ) -> None:  # fmt: skip
        """Keeps what the numbers stand for (replacing the last offer) and sends them, as buttons where there are any.

        Two messages of one citizen handled at the same moment may both write an offer: the
        second then fails on the unique key, and its event is run again by the sweeper.
        """
        chosen = [found for found in ids if found is not None]
        assert len(chosen) == len(ids), "offered rows are stored ones"
        self.forget_offer()
        kept = ConsultationOffer(
            municipality_id=self.municipality_id, contact_id=self.contact_id, channel_account_id=self.account_id,
            purpose=purpose, choices=chosen, concern=concern,
            expires_at=self.now + OFFER_VALIDITY, created_at=self.now,
        )  # fmt: skip
        self.session.add(kept)
        self.session.flush()
        choices = [Choice(label=label, payload=f"{PAYLOAD_PREFIX}{kept.id}:{n}") for n, label in enumerate(labels, 1)]
        self.answer(template, choices=choices, options=labels, **context)

    # --- the answer -----------------------------------------------------------------------

    def label(self, starts_at: datetime) -> str:
        """A slot as a button or a numbered choice shows it: "Di 03.11. 17:00"."""
        return format_datetime(starts_at.astimezone(self.zone), "ccc dd.MM. HH:mm", locale=self.language)

    def when(self, starts_at: datetime) -> str:
        return starts_at.astimezone(self.zone).strftime("%d.%m.%Y %H:%M")

    def details(self, booking: Booking, slot: ConsultationSlot, series: ConsultationSeries) -> dict[str, Any]:
        return {
            **greeting(self.language, booking.name),
            "title": series.title,
            "when": self.when(slot.starts_at),
            "reference": booking.reference,
            "location": series.location,
            "address": series.address,
        }

    def answer(self, template: str, *, choices: list[Choice] | None = None, subject: str | None = None,
               **context: Any) -> None:  # fmt: skip
        text = render_message(
            template,
            self.language,
            overrides=preference(self.municipality, "texts"),
            municipality=self.municipality.name,
            short=self.short,
            # With buttons to press, the text does not number the choices.
            numbered=not self.buttons,
            keyword=preference(self.municipality, "consultation_keywords")[0],
            cancel_keyword=preference(self.municipality, "consultation_cancel_keywords")[0],
            **context,
        )
        message = queue_outbound(
            self.session, answering=self.ctx.message, text=text, author=None, automated=True, subject=subject,
            choices=choices if choices and self.buttons else (),
        )  # fmt: skip
        assert message.id is not None
        self.ctx.to_send.append(message.id)


# The offers are part of a citizen's data while they last: the concern a mail gave is in them.


def _export_offers(session: Session, municipality_id: int, contact_id: int) -> dict[str, Any]:
    offers = session.exec(
        select(ConsultationOffer)
        .where(ConsultationOffer.municipality_id == municipality_id, ConsultationOffer.contact_id == contact_id)
        .order_by(col(ConsultationOffer.id))
    ).all()
    return {"consultation_offers": [plain(offer) for offer in offers]}


def _erase_offers(session: Session, erasure: Erasure) -> dict[str, int]:
    session.execute(
        delete(ConsultationOffer).where(
            col(ConsultationOffer.municipality_id) == erasure.municipality_id,
            col(ConsultationOffer.contact_id).in_(erasure.contact_ids),
        )
    )
    return {}


def _merge_offers(session: Session, municipality_id: int, target_id: int, source_id: int) -> None:
    """An offer awaits an answer on one channel: the merged contact's lapse rather than clash with the kept one's."""
    session.execute(
        delete(ConsultationOffer).where(
            col(ConsultationOffer.municipality_id) == municipality_id, col(ConsultationOffer.contact_id) == source_id
        )
    )


OFFERS_DATA = PersonalData(name="consultation_offers", export=_export_offers, erase=_erase_offers, merge=_merge_offers)
