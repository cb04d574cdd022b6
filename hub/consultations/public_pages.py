"""The citizens' consultation pages (/sprechstunden/{slug}): series, free slots, booking, and the booking's page.

Booking asks for a name, a phone (proven by a code by SMS) or an email address (proven by a
link), and a concern where the series takes questions. Between the steps the number, and after
a proof the proven contact, travel in a short-lived signed cookie, as on the sign-up pages, so
that a slot taken meanwhile can be swapped for a free one without a new code.
"""

from __future__ import annotations

from typing import Annotated, Any

from babel.dates import format_date
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from hub.consultations import web_booking
from hub.consultations.recurrence import zone
from hub.consultations.web_booking import Outcome
from hub.db import get_session
from hub.errors import DomainError
from hub.i18n import language_of, translate
from hub.settings import get_settings
from hub.subscribers import signed_links, verification
from hub.tenancy.models import Municipality
from hub.tenancy.service import get_municipality
from hub.web.rendering import render
from hub.web.security import client_address, verify_csrf

router = APIRouter(
    prefix="/sprechstunden/{slug}", tags=["public"], include_in_schema=False, dependencies=[Depends(verify_csrf)]
)

# The booking form's steps (slot, name, how to reach them, the code) between requests.
BOOKING_FORM = signed_links.FormState(cookie="rathaus_termin", purpose="web-consultation-booking", seconds=30 * 60)


def _municipality(slug: str, session: Session = Depends(get_session)) -> Municipality:
    return get_municipality(session, slug=slug)


def _day(request: Request, day: web_booking.Day) -> str:
    return format_date(day.day.date(), format="full", locale=language_of(request))


@router.get("", response_class=HTMLResponse)
def list_series(
    request: Request, municipality: Municipality = Depends(_municipality), session: Session = Depends(get_session)
) -> HTMLResponse:
    assert municipality.id is not None
    return render(
        request, "citizen/consultation_list.html", title=translate(request, "Sprechstunden"),
        municipality=municipality.name, slug=municipality.slug,
        series=web_booking.open_series(session, municipality_id=municipality.id),
    )  # fmt: skip


@router.get("/{series_id:int}", response_class=HTMLResponse)
def show_series(
    request: Request,
    series_id: int,
    municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> HTMLResponse:
    """The series' free slots by day, in the town's time zone."""
    series = web_booking.active_series(session, municipality=municipality, series_id=series_id)
    days = web_booking.open_days(session, municipality=municipality, series=series)
    return render(
        request, "citizen/consultation_series.html", title=series.title, municipality=municipality.name,
        slug=municipality.slug, series=series, days=[(_day(request, day), day.slots) for day in days],
        timezone=zone(municipality.timezone),
    )  # fmt: skip


def _form(
    request: Request, session: Session, municipality: Municipality, slot_id: int, *, values: dict[str, str],
    error: DomainError | None = None,
) -> HTMLResponse:  # fmt: skip
    view = web_booking.slot_view(session, municipality=municipality, slot_id=slot_id)
    message = error.text(language_of(request)) if error else None
    return render(
        request, "citizen/consultation_book.html", status_code=error.status_code if error else 200,
        title=translate(request, "Termin buchen"), municipality=municipality.name, slug=municipality.slug,
        slot=view, values=values, error=message,
    )  # fmt: skip


@router.get("/termin/{slot_id:int}", response_class=HTMLResponse)
def booking_form(
    request: Request,
    slot_id: int,
    municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> HTMLResponse:
    return _form(request, session, municipality, slot_id, values={"way": "phone"})


@router.post("/termin/{slot_id:int}", response_class=HTMLResponse)
def send_booking_form(
    request: Request,
    slot_id: int,
    name: Annotated[str, Form(max_length=200)] = "",
    way: Annotated[str, Form()] = "phone",
    phone: Annotated[str, Form(max_length=40)] = "",
    email: Annotated[str, Form(max_length=254)] = "",
    concern: Annotated[str, Form(max_length=5000)] = "",
    municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> Response:
    """Sends the code by SMS (or the link by mail); nothing is booked before the address is proven."""
    values = {"name": name, "way": way, "phone": phone, "email": email, "concern": concern}
    try:
        asked, started = web_booking.start(
            session, settings=get_settings(), municipality=municipality, slot_id=slot_id, name=name, concern=concern,
            way=way, phone=phone, email=email, language=language_of(request), client_ip=client_address(request),
        )  # fmt: skip
    except DomainError as error:
        session.rollback()
        return _form(request, session, municipality, slot_id, values=values, error=error)
    if started is None:
        return RedirectResponse(f"/sprechstunden/{municipality.slug}/email/gesendet", status_code=303)
    response = RedirectResponse(f"/sprechstunden/{municipality.slug}/code", status_code=303)
    BOOKING_FORM.remember(
        request, response, municipality_id=municipality.id, p=started.phone, s=slot_id, n=asked.name,
        q=asked.concern, l=language_of(request),
    )  # fmt: skip
    return response


def _code_form(
    request: Request, municipality: Municipality, state: dict[str, Any], *, error: DomainError | None = None,
    sent_again: bool = False,
) -> HTMLResponse:  # fmt: skip
    return render(
        request, "citizen/consultation_code.html", status_code=error.status_code if error else 200,
        title=translate(request, "Code eingeben"), municipality=municipality.name, slug=municipality.slug,
        phone=state["p"], slot_id=state["s"], minutes=int(verification.VALID_FOR.total_seconds() // 60),
        error=error.text(language_of(request)) if error else None, sent_again=sent_again,
    )  # fmt: skip


def _start(municipality: Municipality) -> RedirectResponse:
    return RedirectResponse(f"/sprechstunden/{municipality.slug}", status_code=303)


@router.get("/code", response_class=HTMLResponse)
def code_form(request: Request, municipality: Municipality = Depends(_municipality)) -> Response:
    state = BOOKING_FORM.recall(request, municipality_id=municipality.id)
    if state is None or "p" not in state:
        return _start(municipality)
    return _code_form(request, municipality, state)


def _after(request: Request, municipality: Municipality, outcome: Outcome) -> Response:
    """To the booking's page; or, the slot gone, the next free ones, bookable at once by the proven citizen."""
    if outcome.booking is not None:
        token = web_booking.link_token(outcome.booking, outcome.reached_on)
        response: Response = RedirectResponse(web_booking.booking_path(municipality, token), status_code=303)
        BOOKING_FORM.forget(response)
        return response
    assert outcome.refusal is not None
    response = render(
        request, "citizen/consultation_taken.html", status_code=outcome.refusal.status_code,
        title=translate(request, "Dieser Termin ist vergeben"), municipality=municipality.name,
        slug=municipality.slug, error=outcome.refusal.text(language_of(request)),
        alternatives=web_booking.local_slots(outcome.alternatives, municipality),
    )  # fmt: skip
    asked = outcome.request
    BOOKING_FORM.remember(
        request, response, municipality_id=municipality.id, c=outcome.contact_id, r=outcome.reached_on,
        n=asked.name, q=asked.concern, l=language_of(request),
    )  # fmt: skip
    return response


@router.post("/code", response_class=HTMLResponse)
def check_code(
    request: Request,
    code: Annotated[str, Form()] = "",
    municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> Response:
    state = BOOKING_FORM.recall(request, municipality_id=municipality.id)
    if state is None or "p" not in state:
        return _start(municipality)
    try:
        outcome = web_booking.check_code(
            session, settings=get_settings(), municipality=municipality, phone=state["p"], code=code,
            language=state["l"], client_ip=client_address(request), user_agent=request.headers.get("user-agent"),
        )  # fmt: skip
    except DomainError as error:
        session.rollback()
        return _code_form(request, municipality, state, error=error)
    return _after(request, municipality, outcome)


@router.post("/code/neu", response_class=HTMLResponse)
def send_again(
    request: Request, municipality: Municipality = Depends(_municipality), session: Session = Depends(get_session)
) -> Response:
    state = BOOKING_FORM.recall(request, municipality_id=municipality.id)
    if state is None or "p" not in state:
        return _start(municipality)
    asked = web_booking.Request(slot_id=int(state["s"]), name=state["n"], concern=state.get("q"))
    try:
        web_booking.ask_for_code(session, municipality=municipality, request=asked, phone=state["p"],
                                 language=state["l"], client_ip=client_address(request))  # fmt: skip
    except DomainError as error:
        session.rollback()
        return _code_form(request, municipality, state, error=error)
    return _code_form(request, municipality, state, sent_again=True)


@router.post("/termin/{slot_id:int}/nehmen", response_class=HTMLResponse)
def take_instead(
    request: Request,
    slot_id: int,
    municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> Response:
    """Books another free slot for a citizen who was proven a moment ago, when theirs had filled."""
    state = BOOKING_FORM.recall(request, municipality_id=municipality.id)
    if state is None or "c" not in state:
        return _start(municipality)
    outcome = web_booking.book_proven(
        session, settings=get_settings(), municipality=municipality, contact_id=int(state["c"]),
        reached_on=state["r"], request=web_booking.Request(slot_id=slot_id, name=state["n"], concern=state.get("q")),
        language=state["l"],
    )  # fmt: skip
    return _after(request, municipality, outcome)


@router.get("/email/gesendet", response_class=HTMLResponse)
def email_sent(request: Request, municipality: Municipality = Depends(_municipality)) -> HTMLResponse:
    return render(
        request, "citizen/notice.html", title=translate(request, "Bitte bestätigen Sie Ihre E-Mail-Adresse"),
        municipality=municipality.name, slug=municipality.slug,
        text=translate(request, "Wir haben Ihnen eine E-Mail geschickt. Erst wenn Sie den Link darin öffnen "
                                "und bestätigen, ist der Termin gebucht."),
    )  # fmt: skip


@router.get("/bestaetigen", response_class=HTMLResponse)
def confirm_page(
    request: Request,
    token: str = "",
    municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> HTMLResponse:
    """Opening the link shows what would be booked; only the button books (mail scanners open links too)."""
    asked, _address, _language = web_booking.read_mail_link(municipality=municipality, token=token)
    return render(
        request, "citizen/consultation_confirm.html", title=translate(request, "Termin bestätigen"),
        municipality=municipality.name,
        slug=municipality.slug, slot=web_booking.slot_view(session, municipality=municipality,
                                                                   slot_id=asked.slot_id),
    )  # fmt: skip


@router.post("/bestaetigen", response_class=HTMLResponse)
def confirm(
    request: Request,
    token: str = "",
    municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> Response:
    outcome = web_booking.confirm_mail_link(session, settings=get_settings(), municipality=municipality, token=token)
    return _after(request, municipality, outcome)


def _link_page(
    request: Request, municipality: Municipality, token: str, view: web_booking.BookingView, template: str,
    title: str, *, status_code: int = 200, **context: Any,
) -> HTMLResponse:  # fmt: skip
    """A page behind the booking's link (`template` under citizen/), linking back to the booking's page."""
    return render(
        request, f"citizen/{template}", status_code=status_code, title=title, municipality=municipality.name,
        slug=municipality.slug, view=view, path=web_booking.booking_path(municipality, token), **context,
    )  # fmt: skip


@router.get("/buchung/{token}", response_class=HTMLResponse)
def booking_page(
    request: Request,
    token: str,
    municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> HTMLResponse:
    """The confirmation: reference, time, how to join, the calendar file, and cancelling or moving."""
    view = web_booking.read_link(session, municipality=municipality, token=token)
    title = translate(request, "Ihr Termin")
    return _link_page(request, municipality, token, view, "consultation_booking.html", title)


@router.get("/buchung/{token}/termin.ics")
def booking_calendar(
    token: str, municipality: Municipality = Depends(_municipality), session: Session = Depends(get_session)
) -> Response:
    view = web_booking.read_link(session, municipality=municipality, token=token)
    return Response(
        web_booking.calendar_file(get_settings(), municipality, view), media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="termin-{view.booking.reference}.ics"'},
    )  # fmt: skip


@router.get("/buchung/{token}/absagen", response_class=HTMLResponse)
def cancel_page(
    request: Request,
    token: str,
    municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> HTMLResponse:
    view = web_booking.read_link(session, municipality=municipality, token=token)
    title = translate(request, "Termin absagen")
    return _link_page(request, municipality, token, view, "consultation_cancel.html", title)


@router.post("/buchung/{token}/absagen", response_class=HTMLResponse)
def cancel(
    request: Request,
    token: str,
    municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> HTMLResponse:
    view = web_booking.cancel_by_link(session, municipality=municipality, token=token)
    title = translate(request, "Ihr Termin ist abgesagt")
    return _link_page(request, municipality, token, view, "consultation_booking.html", title)


def _move_page(
    request: Request, token: str, municipality: Municipality, session: Session, error: DomainError | None = None
) -> HTMLResponse:
    view = web_booking.read_link(session, municipality=municipality, token=token)
    days = web_booking.open_days(session, municipality=municipality, series=view.series)
    return _link_page(
        request, municipality, token, view, "consultation_move.html", translate(request, "Termin verschieben"),
        status_code=error.status_code if error else 200, days=[(_day(request, day), day.slots) for day in days],
        timezone=zone(municipality.timezone), error=error.text(language_of(request)) if error else None,
    )  # fmt: skip


@router.get("/buchung/{token}/verschieben", response_class=HTMLResponse)
def move_page(
    request: Request,
    token: str,
    municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> HTMLResponse:
    """The series' free slots, each a button that moves the booking there."""
    return _move_page(request, token, municipality, session)


@router.post("/buchung/{token}/verschieben", response_class=HTMLResponse)
def move(
    request: Request,
    token: str,
    slot_id: Annotated[int, Form()],
    municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> Response:
    try:
        web_booking.move_by_link(session, settings=get_settings(), municipality=municipality, token=token,
                                 slot_id=slot_id)  # fmt: skip
    except DomainError as error:
        session.rollback()
        return _move_page(request, token, municipality, session, error=error)
    return RedirectResponse(web_booking.booking_path(municipality, token), status_code=303)
