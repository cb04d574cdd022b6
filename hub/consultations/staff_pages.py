"""Staff pages for consultation hours: the series list, defining a series, and a series' sessions with their bookings.

Every change on the series page posts to its own route and comes back to the page with what
happened (`?done=`); a refusal shows the page again with the reason in the reader's language.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session
from starlette.datastructures import FormData

from hub.consultations import calendar, recording, reminders, service, sessions
from hub.consultations.models import BOOKING_LABELS, LOCATION_LABELS, LOCATIONS, ConsultationSeries
from hub.db import get_session, utcnow
from hub.errors import DomainError, InvalidInput, Term
from hub.i18n import N_, language_of, translate
from hub.subscribers.catalogue import list_topics
from hub.tenancy.administration import list_staff, list_teams
from hub.tenancy.models import StaffUser, Team
from hub.web.auth import Staff, require
from hub.web.downloads import download
from hub.web.forms import form_text, posted_form
from hub.web.rendering import render
from hub.web.security import verify_csrf
from workers.app import enqueue_send

router = APIRouter(prefix="/app/consultations", include_in_schema=False, dependencies=[Depends(verify_csrf)])

# German msgids for what staff read; the templates translate them.
WEEKDAYS = (
    ("MO", N_("Montag")), ("TU", N_("Dienstag")), ("WE", N_("Mittwoch")), ("TH", N_("Donnerstag")),
    ("FR", N_("Freitag")), ("SA", N_("Samstag")), ("SU", N_("Sonntag")),
)  # fmt: skip
# How often, as the form offers it, and the RRULE each stands for ({day} is the weekday's code).
EVERY = (
    ("weekly", N_("jede Woche"), "FREQ=WEEKLY;BYDAY={day}"),
    ("biweekly", N_("jede zweite Woche"), "FREQ=WEEKLY;INTERVAL=2;BYDAY={day}"),
    ("1", N_("am ersten im Monat"), "FREQ=MONTHLY;BYDAY=1{day}"),
    ("2", N_("am zweiten im Monat"), "FREQ=MONTHLY;BYDAY=2{day}"),
    ("3", N_("am dritten im Monat"), "FREQ=MONTHLY;BYDAY=3{day}"),
    ("4", N_("am vierten im Monat"), "FREQ=MONTHLY;BYDAY=4{day}"),
    ("-1", N_("am letzten im Monat"), "FREQ=MONTHLY;BYDAY=-1{day}"),
)
# What the series page says after a change (?done=<key>).
NOTICES = {
    "defined": N_("Die Sprechstunde ist angelegt."), "booked": N_("Der Termin ist gebucht."),
    "marked": N_("Vermerkt."), "noted": N_("Die Notiz ist gespeichert."),
    "cancelled": N_("Die Buchung ist abgesagt."), "session_cancelled": N_("Der Termin ist abgesagt."),
    "session_moved": N_("Der Termin ist verschoben."), "feed": N_("Der Kalender-Link ist erneuert."),
}  # fmt: skip
LABELS: dict[str, Any] = {
    "location_labels": LOCATION_LABELS, "booking_labels": BOOKING_LABELS, "weekdays": WEEKDAYS,
    "every": [(key, label) for key, label, _rule in EVERY], "locations": LOCATIONS,
}  # fmt: skip


def _number(form: FormData, name: str, what: str) -> int:
    value = form_text(form, name)
    if not re.fullmatch(r"-?\d{1,6}", value):
        raise InvalidInput(N_("{what}: bitte eine ganze Zahl angeben."), what=Term(what))
    return int(value)


def _day(value: str, what: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(N_("{what}: bitte ein Datum wie 2026-01-31 angeben."), what=Term(what)) from None


def _rule(form: FormData) -> str:
    """The raw RRULE if one is given (the advanced field), else the one the weekday and rhythm stand for."""
    if form_text(form, "rrule"):
        return form_text(form, "rrule")
    day, every = form_text(form, "weekday"), form_text(form, "every")
    rules = {key: rule for key, _label, rule in EVERY}
    if day not in dict(WEEKDAYS) or every not in rules:
        raise InvalidInput(N_("Bitte einen Wochentag und einen Rhythmus wählen (oder eine RRULE angeben)."))
    return rules[every].format(day=day)


def _draft(form: FormData) -> service.SeriesDraft:
    """The form as the service's draft; the service checks what it means."""
    host = form_text(form, "host")
    kind, _, host_id = host.partition(":")
    if kind not in ("user", "team") or not host_id.isdigit():
        raise InvalidInput(N_("Bitte geben Sie genau eine Person oder ein Team an, das die Sprechstunde hält."))
    topic = form_text(form, "topic_id")
    if topic and not topic.isdigit():
        raise InvalidInput(N_("Das angegebene Thema gibt es in dieser Gemeinde nicht."))
    return service.SeriesDraft(
        title=form_text(form, "title"), description=form_text(form, "description"), rrule=_rule(form),
        first_day=_day(form_text(form, "first_day"), N_("Erster Tag")), start_time=form_text(form, "start_time"),
        end_time=form_text(form, "end_time"), host_user_id=int(host_id) if kind == "user" else None,
        host_team_id=int(host_id) if kind == "team" else None, location=form_text(form, "location"),
        address=form_text(form, "address") or None,
        slot_minutes=_number(form, "slot_minutes", N_("Länge eines Termins")),
        capacity=_number(form, "capacity", N_("Plätze je Termin")),
        opens_days_before=_number(form, "opens_days_before", N_("Buchbar ab (Tage vorher)")),
        closes_hours_before=_number(form, "closes_hours_before", N_("Buchbar bis (Stunden vorher)")),
        questions_allowed=bool(form.get("questions_allowed")),
        exdates=re.split(r"[\s,;]+", form_text(form, "exdates")) if form_text(form, "exdates") else [],
        rdates=re.split(r"[\s,;]+", form_text(form, "rdates")) if form_text(form, "rdates") else [],
        topic_id=int(topic) if topic else None,
    )  # fmt: skip


def _values(form: FormData) -> dict[str, Any]:
    """What the form shows again: the person's input as it was, or the defaults of a new series."""
    defaults = {
        "title": "", "description": "", "host": "", "location": "in_person", "address": "", "weekday": "TU",
        "every": "weekly", "rrule": "", "first_day": date.today().isoformat(), "start_time": "17:00",
        "end_time": "19:00", "exdates": "", "rdates": "", "slot_minutes": "15", "capacity": "1",
        "opens_days_before": "30", "closes_hours_before": "2", "topic_id": "",
    }  # fmt: skip
    if not form:
        return {**defaults, "questions_allowed": True}
    return {
        **{name: form_text(form, name) for name in defaults},
        "questions_allowed": bool(form.get("questions_allowed")),
    }


def _define_page(request: Request, session: Session, staff: Staff, values: dict[str, Any], error: str | None = None,
                 status_code: int = 200) -> HTMLResponse:  # fmt: skip
    return render(
        request, "staff/consultations/define.html", status_code=status_code,
        title=translate(request, "Neue Sprechstunde"), values=values, error=error,
        users=[user for user in list_staff(session, municipality_id=staff.municipality_id) if user.active],
        teams=list_teams(session, municipality_id=staff.municipality_id),
        topics=list_topics(session, municipality_id=staff.municipality_id), **LABELS,
    )  # fmt: skip


def _series_page(request: Request, session: Session, staff: Staff, series: ConsultationSeries,
                 error: str | None = None, status_code: int = 200) -> HTMLResponse:  # fmt: skip
    assert series.id is not None
    query = request.query_params
    done = NOTICES.get(query.get("done", ""))
    views = sessions.overview(session, series=series, municipality=staff.municipality)
    booking_ids = [booking.id or 0 for view in views for slot in view.slots for booking in slot.bookings]
    return render(
        request, "staff/consultations/series.html", status_code=status_code, title=series.title, series=series,
        views=views, not_sent=reminders.not_sent_of(session, booking_ids=booking_ids),
        withdrawn=recording.withdrawn_sessions(session, held=[view.session for view in views]),
        free=service.free_slots(session, series=series), error=error,
        done=translate(request, done) if done else None, told=query.get("told"),
        unreached=[part for part in query.get("unreached", "").split(",") if part],
        feed_url=request.url_for(
            "calendar_feed",
            token=calendar.feed_token(session, municipality_id=staff.municipality_id, series_id=series.id),
        ),
        host=_host_name(session, series), now=utcnow(), **LABELS,
    )  # fmt: skip


def _host_name(session: Session, series: ConsultationSeries) -> str:
    host = (
        session.get(StaffUser, series.host_user_id) if series.host_user_id else session.get(Team, series.host_team_id)
    )
    return host.name if host else ""


def _act(request: Request, session: Session, staff: Staff, series_id: int, done: str,
         change: Callable[[], sessions.Told | object],
         then: Callable[[Any], str] | None = None) -> Response:  # fmt: skip
    """Runs the change; commits it with its messages and returns to the series page, or shows why it was refused.

    With `then`, it goes on to the page `then(outcome)` names instead.
    """
    series = service.get_series(session, municipality_id=staff.municipality_id, series_id=series_id)
    try:
        outcome = change()
    except DomainError as problem:
        session.rollback()
        return _series_page(request, session, staff, series, error=problem.text(language_of(request)),
                            status_code=problem.status_code)  # fmt: skip
    session.commit()
    if then is not None:
        return RedirectResponse(then(outcome), status_code=303)
    query = {"done": done}
    if isinstance(outcome, sessions.Told):
        for message_id in outcome.message_ids:
            enqueue_send(message_id)
        query |= {"told": str(len(outcome.message_ids)), "unreached": ",".join(b.reference for b in outcome.unreached)}
    return RedirectResponse(f"/app/consultations/{series_id}?{urlencode(query)}", status_code=303)


@router.get("", response_class=HTMLResponse)
def series_list(
    request: Request, staff: Staff = Depends(require("consultations.read")), session: Session = Depends(get_session)
) -> HTMLResponse:
    listed = service.list_series(session, municipality_id=staff.municipality_id)
    return render(
        request, "staff/consultations/list.html", title=translate(request, "Sprechstunden"),
        rows=[(series, service.upcoming(session, series=series, municipality=staff.municipality)) for series in listed],
        feed_url=request.url_for("calendar_feed", token=calendar.feed_token(
            session, municipality_id=staff.municipality_id, host_user_id=staff.user_id)),
        done=request.query_params.get("done") == "feed", **LABELS,
    )  # fmt: skip


@router.post("/my-feed")
def rotate_my_feed(
    staff: Staff = Depends(require("consultations.read")), session: Session = Depends(get_session)
) -> RedirectResponse:
    """A new link for the signed-in person's own calendar of the series they hold."""
    calendar.rotate_feed(session, municipality_id=staff.municipality_id, host_user_id=staff.user_id)
    session.commit()
    return RedirectResponse("/app/consultations?done=feed", status_code=303)


@router.get("/new", response_class=HTMLResponse)
def new_series(
    request: Request, staff: Staff = Depends(require("consultations.define")), session: Session = Depends(get_session)
) -> HTMLResponse:
    return _define_page(request, session, staff, _values(FormData()))


@router.post("/new", response_class=HTMLResponse)
def define_series(
    request: Request, form: FormData = Depends(posted_form), staff: Staff = Depends(require("consultations.define")),
    session: Session = Depends(get_session),
) -> Response:  # fmt: skip
    try:
        series = service.define_series(session, municipality=staff.municipality, draft=_draft(form))
    except InvalidInput as problem:
        session.rollback()
        return _define_page(request, session, staff, _values(form), error=problem.text(language_of(request)),
                            status_code=422)  # fmt: skip
    session.commit()
    return RedirectResponse(f"/app/consultations/{series.id}?done=defined", status_code=303)


@router.get("/{series_id}", response_class=HTMLResponse)
def series_page(
    request: Request, series_id: int, staff: Staff = Depends(require("consultations.read")),
    session: Session = Depends(get_session),
) -> HTMLResponse:  # fmt: skip
    series = service.get_series(session, municipality_id=staff.municipality_id, series_id=series_id)
    return _series_page(request, session, staff, series)


@router.get("/{series_id}/bookings.csv")
def bookings_csv(
    series_id: int, staff: Staff = Depends(require("consultations.read")), session: Session = Depends(get_session)
) -> Response:
    series = service.get_series(session, municipality_id=staff.municipality_id, series_id=series_id)
    text = sessions.bookings_csv(session, series=series, municipality=staff.municipality)
    return download(text, filename=f"buchungen-{series_id}.csv", media_type="text/csv; charset=utf-8")


@router.post("/{series_id}/book")
def book_for_caller(
    request: Request, series_id: int, form: FormData = Depends(posted_form),
    staff: Staff = Depends(require("consultations.write")), session: Session = Depends(get_session),
) -> Response:  # fmt: skip
    """Books a free slot for someone who called or came in, found or added by phone or email."""
    slot = form_text(form, "slot_id")
    return _act(request, session, staff, series_id, "booked", lambda: service.book_for(
        session, municipality=staff.municipality, slot_id=int(slot) if slot.isdigit() else 0,
        name=form_text(form, "name"), phone=form_text(form, "phone"), email=form_text(form, "email"),
        concern=form_text(form, "concern") or None,
    ))  # fmt: skip


@router.post("/{series_id}/bookings/{booking_id}/mark")
def mark_booking(
    request: Request, series_id: int, booking_id: int, form: FormData = Depends(posted_form),
    staff: Staff = Depends(require("consultations.write")), session: Session = Depends(get_session),
) -> Response:  # fmt: skip
    return _act(request, session, staff, series_id, "marked", lambda: sessions.mark_booking(
        session, municipality_id=staff.municipality_id, booking_id=booking_id, status=form_text(form, "status"),
    ))  # fmt: skip


@router.post("/{series_id}/bookings/{booking_id}/note")
def note_booking(
    request: Request, series_id: int, booking_id: int, form: FormData = Depends(posted_form),
    staff: Staff = Depends(require("consultations.write")), session: Session = Depends(get_session),
) -> Response:  # fmt: skip
    return _act(request, session, staff, series_id, "noted", lambda: sessions.note_booking(
        session, municipality_id=staff.municipality_id, booking_id=booking_id, note=form_text(form, "note"),
    ))  # fmt: skip


@router.post("/{series_id}/bookings/{booking_id}/cancel")
def cancel_booking(
    request: Request, series_id: int, booking_id: int, staff: Staff = Depends(require("consultations.write")),
    session: Session = Depends(get_session),
) -> Response:  # fmt: skip
    return _act(request, session, staff, series_id, "cancelled", lambda: sessions.cancel_for_citizen(
        session, municipality=staff.municipality, booking_id=booking_id,
    ))  # fmt: skip


@router.post("/{series_id}/sessions/{session_id}/cancel")
def cancel_session(
    request: Request, series_id: int, session_id: int, staff: Staff = Depends(require("consultations.write")),
    session: Session = Depends(get_session),
) -> Response:  # fmt: skip
    return _act(request, session, staff, series_id, "session_cancelled", lambda: sessions.cancel_session(
        session, municipality=staff.municipality, session_id=session_id,
    ))  # fmt: skip


@router.post("/{series_id}/sessions/{session_id}/move")
def move_session(
    request: Request, series_id: int, session_id: int, form: FormData = Depends(posted_form),
    staff: Staff = Depends(require("consultations.write")), session: Session = Depends(get_session),
) -> Response:  # fmt: skip
    return _act(request, session, staff, series_id, "session_moved", lambda: sessions.move_session(
        session, municipality=staff.municipality, session_id=session_id,
        day=_day(form_text(form, "day"), N_("Neuer Tag")), start_time=form_text(form, "start_time"),
    ))  # fmt: skip


@router.post("/{series_id}/sessions/{session_id}/recording")
def publish_recording(
    request: Request, series_id: int, session_id: int, form: FormData = Depends(posted_form),
    staff: Staff = Depends(require("consultations.write")), session: Session = Depends(get_session),
) -> Response:  # fmt: skip
    """Stores a held session's recording link and goes on to its announcement, submitted for approval."""
    return _act(request, session, staff, series_id, "recording", lambda: recording.publish_recording(
        session, actor=staff.user, municipality=staff.municipality, session_id=session_id, url=form_text(form, "url"),
    ), then=lambda announced: f"/app/broadcasts/{announced.id}?saved=1")  # fmt: skip


@router.post("/{series_id}/feed")
def rotate_series_feed(
    series_id: int, staff: Staff = Depends(require("consultations.define")), session: Session = Depends(get_session)
) -> RedirectResponse:
    """A new link for the series' calendar; whoever had the old one sees nothing more."""
    series = service.get_series(session, municipality_id=staff.municipality_id, series_id=series_id)
    calendar.rotate_feed(session, municipality_id=staff.municipality_id, series_id=series.id)
    session.commit()
    return RedirectResponse(f"/app/consultations/{series_id}?done=feed", status_code=303)
