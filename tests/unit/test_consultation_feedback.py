"""Feedback after consultations and resolved cases, on both backends: the request, the digit, the form, the reports.

The citizen's messages go through the hub's webhooks and the pipeline as the worker runs them;
requests and answers leave through the delivery engine and the real SDKs to the sandbox, where
the test reads what the citizen's phone got.
"""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from sqlmodel import Session, col, select

from hub.consultations import feedback, service, waiting
from hub.consultations.models import (
    Booking,
    ConsultationSeries,
    ConsultationSession,
    ConsultationSlot,
    Feedback,
    FeedbackRequest,
)
from hub.consultations.recurrence import zone
from hub.consultations.sessions import mark_booking
from hub.contacts import gdpr
from hub.contacts.registry import ERASED
from hub.db import utcnow
from hub.demo import seed_demo
from hub.errors import InvalidInput
from hub.inbox import service as inbox
from hub.inbox.models import Conversation, Message
from hub.inbox.outbound import send_message
from hub.settings import Settings
from hub.web.security import CSRF_COOKIE
from tests.unit import test_consultation_commands as commands
from tests.unit.test_consultation_commands import CHAT, PHONE, Hall, known_citizen, series
from tests.unit.web import clerk
from workers.tasks import stop_everywhere

# The consultation commands' town hall: webhooks, the pipeline as the worker runs it, the sandbox; both backends.
any_backend, sandbox, settings, hall = commands.any_backend, commands.sandbox, commands.settings, commands.hall
LINK = re.compile(r"http://127\.0\.0\.1:8000(/rueckmeldung/testdorf/\S+)")
OTHERS = ("+4915112340088", "+4915112340099")


def held_consultation(
    hall: Hall, addresses: tuple[str, ...] = (PHONE,), kind: str = "phone"
) -> list[tuple[Booking, ConsultationSlot]]:
    """Bookings of one citizen each (by phone, or another kind of address) in office hours of a day or two ago."""
    office_hours = series(hall, first_day=utcnow().date() - timedelta(days=3))
    past = utcnow() - timedelta(days=2)
    service.ensure_sessions(hall.session, series=office_hours, municipality=hall.town.municipality, now=past)
    free = service.free_slots(hall.session, series=office_hours, now=past)
    booked = []
    for number, (address, slot) in enumerate(zip(addresses, free, strict=False)):
        name = "Erika" if number == 0 else f"Bürger {number}"
        contact_id = known_citizen(hall, kind, address, name)
        booking = service.book(hall.session, municipality=hall.town.municipality, slot_id=slot.slot_id,
                               contact_id=contact_id, name=name, now=past)  # fmt: skip
        hall.session.commit()
        found = hall.session.get(ConsultationSlot, slot.slot_id)
        assert found is not None and found.ends_at < utcnow()
        booked.append((booking, found))
    return booked


def ask(hall: Hall, **when: object) -> int:
    """What the beat task does: queue the due requests, then send each through the delivery engine."""
    queued = feedback.queue_feedback_requests(hall.session, settings=hall.settings, **when)  # type: ignore[arg-type]
    for message_id in queued:
        assert send_message(hall.settings, message_id, on_opted_out=stop_everywhere).outcome.startswith("sent")
    hall.session.expire_all()
    return len(queued)


def answers(hall: Hall) -> list[tuple[int, bool | None, str | None, str]]:
    rows = hall.session.exec(select(Feedback).order_by(col(Feedback.id))).all()
    return [(row.rating, row.resolved, row.comment, row.channel) for row in rows]


def office_hours_of(hall: Hall, booking: Booking) -> ConsultationSeries:
    held = hall.session.get(ConsultationSession, booking.session_id)
    found = hall.session.get(ConsultationSeries, held.series_id) if held else None
    assert found is not None
    return found


def form_path(hall: Hall, phone: str = PHONE) -> str:
    found = LINK.search(hall.got("twilio", phone)[-1])
    assert found, hall.got("twilio", phone)[-1]
    return found.group(1)


def post(hall: Hall, path: str, data: dict[str, str]) -> httpx.Response:
    if CSRF_COOKIE not in hall.client.cookies:
        hall.client.get(path)
    return hall.client.post(path, data={"csrf_token": hall.client.cookies[CSRF_COOKIE], **data})


def resolved_case(hall: Hall) -> Conversation:
    hall.sms("Die Laterne vor Nr. 12 ist dunkel.")
    [case] = hall.cases()
    assert case.id is not None
    inbox.update_conversation(hall.session, municipality_id=hall.town.id, conversation_id=case.id, status="resolved")
    hall.session.commit()
    return case


def test_after_the_slot_the_citizen_is_asked_once_never_after_a_cancelled_or_missed_one(hall: Hall) -> None:
    [(erika, slot), (cancelled, _), (missed, _)] = held_consultation(hall, (PHONE, *OTHERS))
    assert cancelled.id is not None and missed.id is not None
    service.cancel(hall.session, municipality_id=hall.town.id, booking_id=cancelled.id, now=slot.starts_at)
    mark_booking(hall.session, municipality_id=hall.town.id, booking_id=missed.id, status="no_show")
    hall.session.commit()

    assert ask(hall, now=slot.ends_at - timedelta(minutes=1)) == 0, "not before the slot has ended"
    assert ask(hall) == 1
    assert ask(hall) == 0, "asked once"
    when = slot.starts_at.astimezone(zone(hall.town.municipality.timezone)).strftime("%d.%m.%Y")
    [request_sms] = hall.got("twilio", PHONE)
    assert request_sms.startswith(
        f"Wie war Ihr Termin Bürgermeistersprechstunde am {when}? Antworten Sie mit 1 (gar nicht) bis "
        "5 (sehr zufrieden) oder hier: http://127.0.0.1:8000/rueckmeldung/testdorf/"
    ), request_sms
    assert [hall.got("twilio", phone) for phone in OTHERS] == [[], []]
    [request] = hall.session.exec(select(FeedbackRequest)).all()
    assert request.booking_id == erika.id
    assert hall.cases() == [], "a request opens no case"


def test_4_by_sms_records_the_rating_opens_no_case_and_a_second_digit_is_ignored(hall: Hall) -> None:
    held_consultation(hall)
    ask(hall)

    rated = hall.sms("4")
    assert rated.outcome.startswith("feedback: rating 4 for request"), rated.outcome
    assert answers(hall) == [(4, None, None, "twilio")]
    assert hall.got("twilio", PHONE)[-1].startswith(
        "Danke für Ihre Bewertung (4 von 5)! Mehr sagen: http://127.0.0.1:8000/rueckmeldung/testdorf/"
    )
    again = hall.sms("5")
    assert again.outcome.endswith("is already answered"), again.outcome
    assert answers(hall) == [(4, None, None, "twilio")]
    assert len(hall.got("twilio", PHONE)) == 2, "the second digit is not answered"
    assert hall.cases() == []
    # Neither digit is on a case: they stay on the contact, like commands.
    assert hall.session.exec(select(Message).where(col(Message.conversation_id).is_not(None))).all() == []


def test_a_digit_on_telegram_is_the_rating_too(hall: Hall) -> None:
    held_consultation(hall, (str(CHAT),), kind="telegram")
    ask(hall)
    [request] = hall.got("telegram", str(CHAT))
    assert request.startswith(
        "Guten Tag Erika,\n\ndanke für Ihren Besuch in der Sprechstunde Bürgermeistersprechstunde"
    )
    assert "Antworten Sie einfach mit einer Zahl von 1 (gar nicht zufrieden) bis 5 (sehr zufrieden)" in request
    assert hall.telegram("5").outcome.startswith("feedback: rating 5")
    assert answers(hall) == [(5, None, None, "telegram")]
    assert hall.got("telegram", str(CHAT))[-1].startswith(
        "Danke für Ihre Bewertung (5 von 5)! Möchten Sie uns mehr sagen"
    )
    assert hall.cases() == []


def test_a_resolved_case_is_asked_about_only_when_the_town_wants_it_and_a_digit_does_not_reopen_it(
    hall: Hall,
) -> None:
    case = resolved_case(hall)
    later = utcnow() + timedelta(hours=1)
    assert ask(hall, now=later) == 0, "off by default"
    admin = clerk(hall.session, hall.town, "admin")
    assert 'name="feedback_after_conversations" value="1">' in admin.get("/app/admin/settings").text
    saved = admin.post("/app/admin/settings", {"feedback_after_conversations": "1"})
    assert "Die Einstellungen wurden gespeichert." in saved.text
    assert 'name="feedback_after_conversations" value="1" checked>' in saved.text
    hall.session.expire_all()
    assert ask(hall, now=utcnow()) == 0, "not at once: a case reopened soon after is not asked about"
    assert ask(hall, now=later) == 1
    assert hall.got("twilio", PHONE)[-1].startswith(
        f"Ihr Anliegen {case.reference} ist erledigt. Wie zufrieden sind Sie? Antworten Sie mit 1"
    )
    messages = len(hall.session.exec(select(Message).where(Message.conversation_id == case.id)).all())

    assert hall.sms("2").outcome.startswith("feedback: rating 2")
    hall.session.refresh(case)
    assert case.status == "resolved" and hall.cases() == [case]
    assert len(hall.session.exec(select(Message).where(Message.conversation_id == case.id)).all()) == messages
    assert answers(hall) == [(2, None, None, "twilio")]
    assert ask(hall, now=later + timedelta(hours=1)) == 0


def test_a_consultation_offer_made_after_the_request_takes_the_digit(hall: Hall) -> None:
    held_consultation(hall)
    hall.sms("Termin")  # an offer made before the request: the request is newer
    ask(hall)
    assert hall.sms("3").outcome.startswith("feedback: rating 3")

    series(hall, title="Sprechstunde Bauamt")
    hall.sms("Termin")
    chosen = hall.sms("1")
    assert chosen.outcome.startswith("consultation: "), chosen.outcome
    assert answers(hall) == [(3, None, None, "twilio")]


def test_the_form_stores_the_answer_once_and_refuses_bad_input_and_tampered_links(hall: Hall) -> None:
    held_consultation(hall)
    ask(hall)
    path = form_path(hall)
    page = hall.client.get(path)
    assert page.status_code == 200
    assert 'type="radio" name="rating" value="5"' in page.text and "Wurde Ihr Anliegen gelöst?" in page.text

    for rating in ("0", "6", "", "vier"):
        refused = post(hall, path, {"rating": rating, "resolved": "ja"})
        assert (
            refused.status_code == InvalidInput.status_code
            and "Bitte wählen Sie eine Bewertung von 1 bis 5." in refused.text
        )
    refused = post(hall, path, {"rating": "4", "resolved": "vielleicht"})
    assert refused.status_code == InvalidInput.status_code and "mit Ja oder Nein" in refused.text
    refused = post(hall, path, {"rating": "4", "comment": "x" * (feedback.MAX_COMMENT_CHARS + 1)})
    assert refused.status_code == InvalidInput.status_code and "höchstens 2000 Zeichen" in refused.text
    tampered = path[:-3] + ("abc" if not path.endswith("abc") else "xyz")
    for answer in (hall.client.get(tampered), post(hall, tampered, {"rating": "4"})):
        assert answer.status_code == 404 and "Diesen Link zur Rückmeldung kennen wir nicht" in answer.text
    assert answers(hall) == [], "nothing stored"

    sent = post(hall, path, {"rating": "5", "resolved": "ja", "comment": "Sehr freundlich, danke."})
    assert sent.status_code == 200 and "Vielen Dank für Ihre Rückmeldung!" in sent.text
    second = post(hall, path, {"rating": "1", "resolved": "nein"})
    assert second.status_code == 409 and "schon eine Rückmeldung gegeben" in second.text
    assert answers(hall) == [(5, True, "Sehr freundlich, danke.", "web")]
    assert hall.sms("1").outcome.endswith("is already answered")
    assert answers(hall) == [(5, True, "Sehr freundlich, danke.", "web")]


def test_the_form_completes_a_rating_given_by_sms(hall: Hall) -> None:
    held_consultation(hall)
    ask(hall)
    hall.sms("4")
    path = form_path(hall)
    page = hall.client.get(path, params={"lang": "en"})
    assert "Your rating: 4 of 5." in page.text and 'value="4" required checked' in page.text

    assert post(hall, path, {"rating": "4", "resolved": "nein", "comment": "Parken ist noch offen."}).status_code == 200
    assert answers(hall) == [(4, False, "Parken ist noch offen.", "twilio")]
    assert post(hall, path, {"rating": "5"}).status_code == 409


def test_the_reports_count_bookings_no_shows_and_ratings_per_series_and_team_with_csv(hall: Hall) -> None:
    [_erika, _max, (missed, _slot)] = held_consultation(hall, (PHONE, *OTHERS))
    assert missed.id is not None
    mark_booking(hall.session, municipality_id=hall.town.id, booking_id=missed.id, status="no_show")
    hall.session.commit()
    ask(hall)
    post(hall, form_path(hall), {"rating": "5", "resolved": "ja", "comment": "=1+1 Sehr gut"})
    post(hall, form_path(hall, OTHERS[0]), {"rating": "2", "resolved": "nein"})

    mayor = clerk(hall.session, hall.town, "mayor")
    page = mayor.get("/app/reports")
    assert page.status_code == 200
    assert "Sprechstunden und Rückmeldungen" in page.text and "Bewertungen der Sprechstunden und Vorgänge" in page.text
    assert "=1+1 Sehr gut" in page.text
    csv = mayor.get("/app/reports/consultations.csv")
    assert csv.status_code == 200
    lines = csv.text.splitlines()
    assert lines[0].startswith(
        "Name;Art;Buchungen;Nicht erschienen;Abgesagt;Wartezeit, Median (s);Wartezeit, 95. Perzentil (s);Rückmeldungen;"
    )
    # Nobody waited in a waiting room: no waiting times.
    assert "Bürgermeistersprechstunde;Sprechstunde;3;1;0;;;2;3.5;0.5" in lines
    assert "Ohne Team;Team;3;1;0;;;2;3.5;0.5" in lines
    comments = mayor.get("/app/reports/feedback.csv").text.splitlines()
    # A citizen's text never runs as a spreadsheet formula.
    assert len(comments) == 2 and comments[1].endswith(";Bürgermeistersprechstunde;Ohne Team;5;Ja;'=1+1 Sehr gut")
    # The reports are for those who may read reports.
    assert clerk(hall.session, hall.town, "staff").get("/app/reports/feedback.csv").status_code == 403


def test_the_reports_give_the_median_and_95th_percentile_wait_from_check_in_to_call(hall: Hall) -> None:
    held = held_consultation(hall, (PHONE, *OTHERS))
    mayor = clerk(hall.session, hall.town, "mayor")
    assert mayor.user.id is not None
    for (booking, slot), minutes in zip(held, (2, 4, 10), strict=True):
        waiting.check_in(hall.session, booking=booking, now=slot.starts_at)
        called = waiting.call_next(
            hall.session, settings=hall.settings, municipality_id=hall.town.id, staff_id=mayor.user.id,
            queue=waiting.department_of(hall.session, office_hours_of(hall, booking)),
            now=slot.starts_at + timedelta(minutes=minutes),
        )  # fmt: skip
        assert called is not None and called.booking.id == booking.id
        hall.session.commit()

    lines = mayor.get("/app/reports/consultations.csv").text.splitlines()
    # Waits of 2, 4 and 10 minutes: the median 4 minutes, the 95th percentile between 4 and 10 (linear).
    assert "Bürgermeistersprechstunde;Sprechstunde;3;0;0;240.0;564.0;0;;" in lines


def test_feedback_is_in_the_export_erased_with_the_citizen_and_its_text_goes_after_the_retention_period(
    hall: Hall,
) -> None:
    [(erika, _slot)] = held_consultation(hall)
    ask(hall)
    post(hall, form_path(hall), {"rating": "4", "resolved": "ja", "comment": "Danke, Frau Bürgermeisterin!"})

    document = gdpr.export_contact(hall.session, hall.town.id, erika.contact_id)
    [request] = document["feedback_requests"]
    [answer] = document["feedback"]
    assert request["booking_id"] == erika.id
    assert (answer["rating"], answer["resolved"], answer["comment"]) == (4, True, "Danke, Frau Bürgermeisterin!")

    assert feedback.apply_feedback_retention(hall.session, now=utcnow() + timedelta(days=729)) == 0
    gdpr.erase_contact(hall.session, municipality_id=hall.town.id, contact_id=erika.contact_id, actor_id=None)
    hall.session.commit()
    assert answers(hall) == [(4, True, ERASED, "web")], "the rating stays for the numbers, the words go"
    assert feedback.apply_feedback_retention(hall.session, now=utcnow() + timedelta(days=731)) == 1
    hall.session.commit()
    assert answers(hall) == [(4, True, None, "web")]


def test_the_demo_town_has_weeks_of_feedback_for_the_chart(session: Session, settings: Settings) -> None:
    seed_demo(session, settings)
    given = session.exec(select(Feedback)).all()
    assert len({answer.created_at.date() for answer in given}) == 3, "three past weeks, so the chart shows a course"
    assert {answer.rating for answer in given} >= {2, 4, 5} and any(answer.comment for answer in given)
