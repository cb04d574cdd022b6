"""The demo town's past office hours with the citizens' feedback, so the reports show ratings over time at once."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from hub.consultations import service
from hub.consultations.models import ConsultationSeries, Feedback, FeedbackRequest
from hub.consultations.reminders import account_reaching
from hub.contacts.service import resolve_contact
from hub.db import utcnow
from hub.tenancy.models import Municipality

# (rating, resolved, comment) of one citizen after each of the last weeks' office hours; None: a no-show.
DEMO_ANSWERS = (
    ((4, True, "Freundlich und schnell, danke!"), (2, False, "Leider musste ich lange warten."), None),
    ((5, True, None), (3, None, "Die Frage zum Parken ist noch offen.")),
    ((5, True, "Sehr hilfreich, die Bürgermeisterin hat sich Zeit genommen."), (4, True, None), (4, None, None)),
)
PHONES = "+4915112341{:03d}"


def seed_feedback_demo(session: Session, municipality: Municipality) -> None:
    """Books the demo citizens into the mayor's last few Tuesdays, marks them held, and stores their answers."""
    assert municipality.id is not None
    series = session.exec(
        select(ConsultationSeries).where(
            ConsultationSeries.municipality_id == municipality.id,
            ConsultationSeries.title == "Bürgermeistersprechstunde",
        )
    ).first()
    if series is None:
        return
    now = utcnow()
    weeks = len(DEMO_ANSWERS)
    past = now - timedelta(weeks=weeks, days=1)
    series.first_day = past.date()
    service.ensure_sessions(session, series=series, municipality=municipality, now=past)
    free = [slot for slot in service.free_slots(session, series=series, now=past) if slot.ends_at < now]
    number = 0
    for week, answers in enumerate(DEMO_ANSWERS):
        sessions = sorted({slot.session_id for slot in free})
        if week >= len(sessions):
            break
        slots = [slot for slot in free if slot.session_id == sessions[week]]
        for slot, answer in zip(slots, answers, strict=False):
            number += 1
            contact = resolve_contact(
                session, municipality_id=municipality.id, kind="phone", address=PHONES.format(number),
                display_name=f"Bürgerin {number}",
            )  # fmt: skip
            assert contact.id is not None
            booking = service.book(session, municipality=municipality, slot_id=slot.slot_id, contact_id=contact.id,
                                   name=contact.display_name or "", now=slot.starts_at - timedelta(days=2))  # fmt: skip
            booking.status = "attended" if answer else "no_show"
            account = account_reaching(session, municipality_id=municipality.id, contact_id=contact.id)
            if answer is None or account is None or account.id is None:
                continue
            answered_at = slot.ends_at + timedelta(hours=3)
            request = FeedbackRequest(
                municipality_id=municipality.id, contact_id=contact.id, booking_id=booking.id,
                channel_account_id=account.id, created_at=slot.ends_at + timedelta(minutes=5),
            )  # fmt: skip
            session.add(request)
            session.flush()
            assert request.id is not None
            rating, resolved, comment = answer
            session.add(Feedback(
                municipality_id=municipality.id, request_id=request.id, contact_id=contact.id, rating=rating,
                resolved=resolved, comment=comment, channel="web", created_at=answered_at, completed_at=answered_at,
            ))  # fmt: skip
    session.commit()
