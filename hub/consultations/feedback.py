"""Feedback after a consultation (and, where the town wants it, after a resolved case): one request, one answer.

The request goes out once per booking whose slot has ended (not cancelled, not a no-show) and,
with the preference `feedback_after_conversations`, once per resolved conversation that no
booking stands behind (the booking's request covers its concern). Like a reminder it is a row,
unique per booking or conversation, written in the transaction that queues its message, on the
first channel the town has that reaches the citizen; a hub that was down longer than
REQUEST_WINDOW does not ask about old ones.

The citizen answers on the form behind the signed link (a rating from 1 to 5 as radio buttons,
"Wurde Ihr Anliegen gelöst?" ja/nein, a free text) or, on SMS, Telegram, Messenger and
WhatsApp, with a digit 1–5 in reply. The digit is taken by a pipeline step that runs after the
subscriber commands (STOP still stops) and before the consultation commands: it counts only on
the channel the request went to, within REPLY_WINDOW, and yields to a consultation offer made
there after the request (the citizen's "2" then books the second slot offered). It is thanked
with the form's link for the rest. One answer per request (a unique key): the form may complete
what a digit began, once; a second form is refused, a second digit ignored. Neither the answer
nor the hub's thanks ever open or reopen a case; they stay on the contact, outside any case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from channels.registry import adapter_class
from hub.consultations.models import (
    Booking,
    ConsultationOffer,
    ConsultationSeries,
    ConsultationSession,
    ConsultationSlot,
    Feedback,
    FeedbackRequest,
)
from hub.consultations.recurrence import zone
from hub.consultations.reminders import not_sent, reach_for
from hub.contacts.models import Contact
from hub.contacts.registry import ERASED, Erasure, PersonalData, plain
from hub.db import utcnow
from hub.errors import Conflict, DomainError, InvalidInput, NotFound
from hub.i18n import DEFAULT_LANGUAGE, LANGUAGES, N_
from hub.inbox.context import InboundContext
from hub.inbox.models import Conversation
from hub.inbox.service import queue_outbound
from hub.settings import Settings
from hub.subscribers import signed_links
from hub.templating import greeting, render_message
from hub.tenancy.models import ChannelAccount, Municipality
from hub.tenancy.preferences import preference

LINK_PURPOSE = "consultation-feedback"
# The form's link works for a season: feedback weeks later is still welcome.
LINK_VALID_SECONDS = 90 * 24 * 3600
# Slots that ended, and cases resolved, longer ago than this are not asked about.
REQUEST_WINDOW = timedelta(days=3)
# A case reopened soon after it was resolved is not asked about: the request waits this long.
AFTER_RESOLVED = timedelta(minutes=30)
# A digit counts as the rating this long after the request; later it is an ordinary message.
REPLY_WINDOW = timedelta(days=3)
RATINGS = range(1, 6)
MAX_COMMENT_CHARS = 2000
OUTCOME_PREFIX = "feedback: "
_DIGIT = re.compile(r"([1-5])[.!]?")
_UNKNOWN_LINK = N_("Diesen Link zur Rückmeldung kennen wir nicht. Bitte nutzen Sie den Link aus unserer Nachricht.")
_ANSWERED = N_("Sie haben uns dazu schon eine Rückmeldung gegeben. Vielen Dank!")


@dataclass(frozen=True)
class About:
    """What a request asks about, as its message and the form name it."""

    booking: Booking | None
    conversation: Conversation | None
    title: str | None
    when: str | None

    @property
    def reference(self) -> str:
        if self.booking is not None:
            return self.booking.reference
        assert self.conversation is not None
        return self.conversation.reference


def link_token(request: FeedbackRequest) -> str:
    return signed_links.sign_token({"m": request.municipality_id, "f": request.id}, purpose=LINK_PURPOSE)


def form_path(municipality: Municipality, token: str) -> str:
    return f"/rueckmeldung/{municipality.slug}/{token}"


def form_link(settings: Settings, municipality: Municipality, request: FeedbackRequest) -> str:
    return settings.public_url.rstrip("/") + form_path(municipality, link_token(request))


# --- the requests ----------------------------------------------------------------------------


def due_after_consultations(
    session: Session, *, now: datetime
) -> list[tuple[Booking, ConsultationSlot, ConsultationSeries]]:
    """Bookings whose slot ended within the window, held (not cancelled, not a no-show) and not yet asked."""
    asked = select(FeedbackRequest.booking_id).where(col(FeedbackRequest.booking_id).is_not(None))
    rows = session.exec(
        select(Booking, ConsultationSlot, ConsultationSeries)
        .join(ConsultationSlot, col(ConsultationSlot.id) == Booking.slot_id)
        .join(ConsultationSession, col(ConsultationSession.id) == Booking.session_id)
        .join(ConsultationSeries, col(ConsultationSeries.id) == ConsultationSession.series_id)
        .where(
            col(Booking.status).in_(("booked", "attended")),
            ConsultationSession.status == "scheduled",
            col(ConsultationSlot.ends_at) <= now,
            col(ConsultationSlot.ends_at) > now - REQUEST_WINDOW,
            col(Booking.id).not_in(asked),
        )
        .order_by(col(ConsultationSlot.ends_at), col(Booking.id))
    ).all()
    return [(booking, slot, series) for booking, slot, series in rows]


def due_after_conversations(session: Session, *, municipality: Municipality, now: datetime) -> list[Conversation]:
    """The town's cases resolved a while ago, still resolved, not yet asked about, with no booking behind them."""
    if not preference(municipality, "feedback_after_conversations"):
        return []
    asked = select(FeedbackRequest.conversation_id).where(col(FeedbackRequest.conversation_id).is_not(None))
    concerns = select(Booking.conversation_id).where(col(Booking.conversation_id).is_not(None))
    return list(
        session.exec(
            select(Conversation)
            .where(
                Conversation.municipality_id == municipality.id,
                Conversation.status == "resolved",
                col(Conversation.resolved_at) <= now - AFTER_RESOLVED,
                col(Conversation.resolved_at) > now - REQUEST_WINDOW,
                col(Conversation.id).not_in(asked),
                col(Conversation.id).not_in(concerns),
            )
            .order_by(col(Conversation.resolved_at), col(Conversation.id))
        ).all()
    )


def _language(contact: Contact | None) -> str:
    language = contact.language if contact else DEFAULT_LANGUAGE
    return language if language in LANGUAGES else DEFAULT_LANGUAGE


def _ask(
    session: Session, *, settings: Settings, municipality: Municipality, request: FeedbackRequest, about: About
) -> int | None:
    """Writes the request and queues its message in one transaction; None if another sweep wrote it first."""
    account = session.get(ChannelAccount, request.channel_account_id)
    assert account is not None and account.id is not None
    session.add(request)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()  # another sweep asked a moment ago
        return None
    if request.not_sent:
        session.commit()  # asked once, and recorded as not sent for staff to see
        return None
    contact = session.get(Contact, request.contact_id)
    language = _language(contact)
    adapter = adapter_class(account.kind)
    context: dict[str, Any] = {
        **greeting(language, about.booking.name if about.booking else contact.display_name if contact else None),
        "booking": about.booking is not None,
        "title": about.title,
        "when": about.when,
        "reference": about.reference,
        "link": form_link(settings, municipality, request),
        "short": adapter.max_segments is not None,
        # Where a reply is a plain line (not mail with its quotes), a digit answers.
        "digits": not adapter.supports_subject,
    }
    overrides = preference(municipality, "texts")
    message = queue_outbound(
        session, starting=(account.id, request.contact_id), author=None, automated=True,
        text=render_message("feedback_request.txt.j2", language, overrides=overrides, **context),
        subject=render_message("feedback_request_subject.txt.j2", language, overrides=overrides, **context),
        purpose="feedback",
    )  # fmt: skip
    request.message_id = message.id
    session.commit()
    return message.id


def queue_feedback_requests(session: Session, *, settings: Settings, now: datetime | None = None) -> list[int]:
    """Queues each due request in a transaction of its own; returns the messages to enqueue.

    A citizen the town cannot reach on any channel is skipped, and stays so until one exists
    or the window has passed.
    """
    now = now or utcnow()
    queued: list[int | None] = []
    for booking, slot, series in due_after_consultations(session, now=now):
        municipality = session.get(Municipality, booking.municipality_id)
        request = _request(session, municipality_id=booking.municipality_id, contact_id=booking.contact_id, now=now)
        if municipality is None or request is None:
            continue
        request.booking_id = booking.id
        when = slot.starts_at.astimezone(zone(municipality.timezone)).strftime("%d.%m.%Y")
        about = About(booking=booking, conversation=None, title=series.title, when=when)
        queued.append(_ask(session, settings=settings, municipality=municipality, request=request, about=about))
    for municipality in session.exec(select(Municipality)).all():
        for conversation in due_after_conversations(session, municipality=municipality, now=now):
            assert municipality.id is not None
            request = _request(session, municipality_id=municipality.id, contact_id=conversation.contact_id, now=now)
            if request is None:
                continue
            request.conversation_id = conversation.id
            about = About(booking=None, conversation=conversation, title=None, when=None)
            queued.append(_ask(session, settings=settings, municipality=municipality, request=request, about=about))
    return [message_id for message_id in queued if message_id is not None]


def _request(session: Session, *, municipality_id: int, contact_id: int, now: datetime) -> FeedbackRequest | None:
    """A request on the first channel that can carry it; one recorded as not sent, with why, where none can."""
    contact = session.get(Contact, contact_id)
    reach = reach_for(session, municipality_id=municipality_id, contact_id=contact_id, language=_language(contact),
                      purpose="feedback")  # fmt: skip
    account = reach.account or reach.passed_over
    if account is None or account.id is None:
        return None
    return FeedbackRequest(
        municipality_id=municipality_id, contact_id=contact_id, channel_account_id=account.id, created_at=now,
        not_sent=None if reach.account else not_sent(account, N_("Bitte um Rückmeldung")),
    )  # fmt: skip


def about_request(session: Session, request: FeedbackRequest) -> About:
    """The booking (with its series' title and day) or the case a request asks about."""
    if request.booking_id is None:
        return About(booking=None, conversation=session.get(Conversation, request.conversation_id), title=None,
                     when=None)  # fmt: skip
    row = session.exec(
        select(Booking, ConsultationSlot, ConsultationSeries, Municipality)
        .join(ConsultationSlot, col(ConsultationSlot.id) == Booking.slot_id)
        .join(ConsultationSession, col(ConsultationSession.id) == Booking.session_id)
        .join(ConsultationSeries, col(ConsultationSeries.id) == ConsultationSession.series_id)
        .join(Municipality, col(Municipality.id) == Booking.municipality_id)
        .where(Booking.id == request.booking_id)
    ).one()
    booking, slot, series, municipality = row
    when = slot.starts_at.astimezone(zone(municipality.timezone)).strftime("%d.%m.%Y")
    return About(booking=booking, conversation=None, title=series.title, when=when)


# --- the answer on the form ------------------------------------------------------------------


@dataclass(frozen=True)
class FormView:
    """A request as its form shows it, with the answer so far (a digit's rating, or the whole answer)."""

    request: FeedbackRequest
    about: About
    feedback: Feedback | None
    token: str

    @property
    def answered(self) -> bool:
        return self.feedback is not None and self.feedback.completed_at is not None


def read_link(session: Session, *, municipality: Municipality, token: str) -> FormView:
    """The request a link names; an unknown, tampered or another town's link is a 404 that says so."""
    try:
        payload = signed_links.read_token(token, purpose=LINK_PURPOSE, max_age_seconds=LINK_VALID_SECONDS)
    except DomainError:
        raise NotFound(_UNKNOWN_LINK) from None
    request = session.get(FeedbackRequest, payload.get("f"))
    if request is None or payload.get("m") != municipality.id or request.municipality_id != municipality.id:
        raise NotFound(_UNKNOWN_LINK)
    feedback = session.exec(select(Feedback).where(Feedback.request_id == request.id)).first()
    return FormView(request=request, about=about_request(session, request), feedback=feedback, token=token)


@dataclass(frozen=True)
class Answer:
    rating: int
    resolved: bool | None
    comment: str | None


def check_answer(*, rating: str, resolved: str, comment: str) -> Answer:
    """What the form sent, or a clear refusal: a rating 1 to 5, ja/nein or nothing, a text of bounded length."""
    rating = rating.strip()
    if not rating.isdigit() or int(rating) not in RATINGS:
        raise InvalidInput(N_("Bitte wählen Sie eine Bewertung von 1 bis 5."))
    answers = {"": None, "ja": True, "nein": False}
    if resolved.strip() not in answers:
        raise InvalidInput(N_("Bitte antworten Sie mit Ja oder Nein, ob Ihr Anliegen gelöst wurde."))
    comment = comment.strip()
    if len(comment) > MAX_COMMENT_CHARS:
        raise InvalidInput(N_("Ihr Text ist zu lang: höchstens {limit} Zeichen."), limit=MAX_COMMENT_CHARS)
    return Answer(rating=int(rating), resolved=answers[resolved.strip()], comment=comment or None)


def answer_by_form(
    session: Session, *, municipality: Municipality, token: str, rating: str, resolved: str, comment: str,
    now: datetime | None = None,
) -> FormView:  # fmt: skip
    """Stores the form's answer, or completes what a digit began; commits. A second one is a 409, storing nothing."""
    now = now or utcnow()
    view = read_link(session, municipality=municipality, token=token)
    answer = check_answer(rating=rating, resolved=resolved, comment=comment)
    values: dict[str, Any] = {
        "rating": answer.rating, "resolved": answer.resolved, "comment": answer.comment, "completed_at": now,
    }  # fmt: skip
    assert view.request.id is not None
    if view.feedback is None:
        try:
            with session.begin_nested():
                session.add(Feedback(
                    municipality_id=view.request.municipality_id, request_id=view.request.id,
                    contact_id=view.request.contact_id, channel="web", created_at=now, **values,
                ))  # fmt: skip
        except IntegrityError:
            raise Conflict(_ANSWERED) from None  # the same form sent twice at once
    else:
        # One conditional statement: of two forms sent at once, one completes the answer.
        completed = session.execute(
            update(Feedback)
            .where(col(Feedback.id) == view.feedback.id, col(Feedback.completed_at).is_(None))
            .values(**values)
        )
        if not completed.rowcount:  # type: ignore[attr-defined]
            raise Conflict(_ANSWERED)
    session.commit()
    return read_link(session, municipality=municipality, token=token)


# --- the answer by digit ---------------------------------------------------------------------


def _open_request(session: Session, *, contact_id: int, account_id: int, now: datetime) -> FeedbackRequest | None:
    return session.exec(
        select(FeedbackRequest)
        .where(
            FeedbackRequest.contact_id == contact_id,
            FeedbackRequest.channel_account_id == account_id,
            col(FeedbackRequest.created_at) > now - REPLY_WINDOW,
        )
        .order_by(col(FeedbackRequest.created_at).desc(), col(FeedbackRequest.id).desc())
    ).first()


def _newer_offer(session: Session, *, request: FeedbackRequest, now: datetime) -> bool:
    """An open offer of consultation slots made on the same channel after the request: its digits win."""
    return (
        session.exec(
            select(ConsultationOffer.id).where(
                ConsultationOffer.contact_id == request.contact_id,
                ConsultationOffer.channel_account_id == request.channel_account_id,
                col(ConsultationOffer.expires_at) > now,
                col(ConsultationOffer.created_at) > request.created_at,
            )
        ).first()
        is not None
    )


def record_feedback_reply(ctx: InboundContext) -> str | None:
    """Pipeline step (after subscriber commands, before consultation commands): a digit 1–5 answering a request."""
    assert ctx.contact is not None and ctx.contact.id is not None and ctx.message is not None
    inbound = ctx.inbound
    adapter = adapter_class(ctx.account.kind)
    if inbound.kind in ("comment", "edit", "postback") or inbound.shared_chat or adapter.supports_subject:
        return None
    digit = _DIGIT.fullmatch(inbound.text.strip())
    if digit is None:
        return None
    assert ctx.account.id is not None
    now = utcnow()
    request = _open_request(ctx.session, contact_id=ctx.contact.id, account_id=ctx.account.id, now=now)
    if request is None or _newer_offer(ctx.session, request=request, now=now):
        return None
    answered = ctx.session.exec(select(Feedback.id).where(Feedback.request_id == request.id)).first()
    if answered is not None:
        # Kept on the contact like any answer, and left unanswered: the form says it politely.
        return f"ignored: {OUTCOME_PREFIX}request {request.id} is already answered"
    rating = int(digit.group(1))
    assert request.id is not None
    try:
        with ctx.session.begin_nested():
            ctx.session.add(Feedback(
                municipality_id=request.municipality_id, request_id=request.id, contact_id=ctx.contact.id,
                rating=rating, channel=ctx.account.kind, created_at=now,
            ))  # fmt: skip
    except IntegrityError:
        return f"ignored: {OUTCOME_PREFIX}request {request.id} was answered at the same moment"
    municipality = ctx.session.get(Municipality, request.municipality_id)
    assert municipality is not None
    text = render_message(
        "feedback_thanks.txt.j2", _language(ctx.contact), overrides=preference(municipality, "texts"), rating=rating,
        link=form_link(ctx.settings, municipality, request), short=adapter.max_segments is not None,
    )  # fmt: skip
    thanks = queue_outbound(ctx.session, answering=ctx.message, text=text, author=None, automated=True)
    assert thanks.id is not None
    ctx.to_send.append(thanks.id)
    return f"{OUTCOME_PREFIX}rating {rating} for request {request.id}"


# --- the citizen's data ----------------------------------------------------------------------


def _export(session: Session, municipality_id: int, contact_id: int) -> dict[str, Any]:
    requests = session.exec(
        select(FeedbackRequest)
        .where(FeedbackRequest.municipality_id == municipality_id, FeedbackRequest.contact_id == contact_id)
        .order_by(col(FeedbackRequest.id))
    ).all()
    answers = session.exec(
        select(Feedback)
        .where(Feedback.municipality_id == municipality_id, Feedback.contact_id == contact_id)
        .order_by(col(Feedback.id))
    ).all()
    return {"feedback_requests": [plain(row) for row in requests], "feedback": [plain(row) for row in answers]}


def _erase(session: Session, erasure: Erasure) -> dict[str, int]:
    """The rating and the yes or no stay, unnamed in the reports' numbers; the words the citizen wrote go."""
    session.execute(
        update(Feedback)
        .where(
            col(Feedback.municipality_id) == erasure.municipality_id,
            col(Feedback.contact_id).in_(erasure.contact_ids),
            col(Feedback.comment).is_not(None),
        )
        .values(comment=ERASED)
    )
    return {}


def _merge(session: Session, municipality_id: int, target_id: int, source_id: int) -> None:
    """Requests and answers belong to bookings and cases, one each: they move with the person without clashing."""
    for model in (FeedbackRequest, Feedback):
        session.execute(
            update(model)
            .where(col(model.municipality_id) == municipality_id, col(model.contact_id) == source_id)
            .values(contact_id=target_id)
        )


PERSONAL_DATA = PersonalData(name="feedback", export=_export, erase=_erase, merge=_merge)


def apply_feedback_retention(session: Session, *, now: datetime | None = None) -> int:
    """Clears the texts of answers older than each town's retention period; the ratings stay for the reports."""
    now = now or utcnow()
    cleared = 0
    for municipality in session.exec(select(Municipality)).all():
        days = preference(municipality, "retention_days")
        if not days:
            continue
        result = session.execute(
            update(Feedback)
            .where(
                col(Feedback.municipality_id) == municipality.id,
                col(Feedback.comment).is_not(None),
                col(Feedback.created_at) < now - timedelta(days=int(days)),
            )
            .values(comment=None)
        )
        cleared += result.rowcount  # type: ignore[attr-defined]
    return cleared
