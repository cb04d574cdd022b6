"""Staff pages of the waiting rooms (call next, forward, done, no-show, the host's way in) and the video platform.

Each change posts to its own route and comes back to the page with what happened (`?done=`);
a refusal shows the page again with the reason in the reader's language.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlmodel import Session
from starlette.datastructures import FormData

from hub.consultations import rooms, waiting
from hub.consultations.models import Booking
from hub.db import get_session
from hub.errors import DomainError, InvalidInput, NotFound
from hub.i18n import N_, language_of, translate
from hub.settings import get_settings
from hub.tenancy.administration import list_teams
from hub.web.auth import Staff, require
from hub.web.forms import form_text, posted_form
from hub.web.rendering import render
from hub.web.security import verify_csrf
from workers.app import enqueue_send

router = APIRouter(include_in_schema=False, dependencies=[Depends(verify_csrf)])

NOTICES = {
    "called": N_("Aufgerufen: Die Person sieht jetzt „Jetzt eintreten“ und hat den Link bekommen."),
    "nobody": N_("In diesem Warteraum wartet niemand."), "forwarded": N_("Weitergeleitet."),
    "done": N_("Als erledigt vermerkt."), "no_show": N_("Als nicht erschienen vermerkt."),
    "no_room": N_(
        "Für dieses Gespräch gibt es noch keinen Videoraum (keine Videoplattform eingerichtet, oder sie ist "
        "nicht erreichbar)."
    ),
    "saved": N_("Die Videoplattform ist gespeichert."), "removed": N_("Die Videoplattform ist entfernt."),
}  # fmt: skip


def _queues_page(request: Request, session: Session, staff: Staff, error: str | None = None,
                 status_code: int = 200) -> HTMLResponse:  # fmt: skip
    views = waiting.queues(session, municipality_id=staff.municipality_id)
    done = NOTICES.get(request.query_params.get("done", ""))
    return render(
        request, "staff/consultations/waiting.html", status_code=status_code, title=translate(request, "Warteräume"),
        views=views, version=waiting.staff_version(views), error=error, done=translate(request, done) if done else None,
        teams=list_teams(session, municipality_id=staff.municipality_id), mine=staff.user_id,
    )  # fmt: skip


def _act(request: Request, session: Session, staff: Staff, change: Callable[[], tuple[str, int | None]]) -> Response:
    """Runs the change (what happened, and a message to send); commits it and returns to the page, or shows why not."""
    try:
        done, message_id = change()
    except DomainError as problem:
        session.rollback()
        return _queues_page(request, session, staff, error=problem.text(language_of(request)),
                            status_code=problem.status_code)  # fmt: skip
    session.commit()
    if message_id is not None:
        enqueue_send(message_id)
    return RedirectResponse(f"/app/waiting-rooms?{urlencode({'done': done})}", status_code=303)


@router.get("/app/waiting-rooms", response_class=HTMLResponse)
def waiting_rooms(
    request: Request, staff: Staff = Depends(require("consultations.read")), session: Session = Depends(get_session)
) -> HTMLResponse:
    return _queues_page(request, session, staff)


@router.get("/app/waiting-rooms/stand")
def waiting_rooms_state(
    staff: Staff = Depends(require("consultations.read")), session: Session = Depends(get_session)
) -> JSONResponse:
    """The page's version, for its poll: it reloads when someone checked in, was called or moved."""
    version = waiting.staff_version(waiting.queues(session, municipality_id=staff.municipality_id))
    return JSONResponse({"version": version}, headers={"Cache-Control": "no-store"})


@router.post("/app/waiting-rooms/call")
def call_next(
    request: Request, form: FormData = Depends(posted_form), staff: Staff = Depends(require("consultations.write")),
    session: Session = Depends(get_session),
) -> Response:  # fmt: skip
    def change() -> tuple[str, int | None]:
        queue = waiting.QueueKey.parse(form_text(form, "queue"))
        called = waiting.call_next(session, settings=get_settings(), municipality_id=staff.municipality_id,
                                   queue=queue, staff_id=staff.user_id)  # fmt: skip
        return ("called", called.message_id) if called else ("nobody", None)

    return _act(request, session, staff, change)


def _team_id(form: FormData) -> int:
    value = form_text(form, "team_id")
    if not value.isdigit():
        raise InvalidInput(N_("Bitte einen Warteraum wählen."))
    return int(value)


@router.post("/app/waiting-rooms/bookings/{booking_id}/forward")
def forward(
    request: Request, booking_id: int, form: FormData = Depends(posted_form),
    staff: Staff = Depends(require("consultations.write")), session: Session = Depends(get_session),
) -> Response:  # fmt: skip
    def change() -> tuple[str, int | None]:
        waiting.forward(session, municipality_id=staff.municipality_id, booking_id=booking_id,
                        team_id=_team_id(form), note=form_text(form, "note"), staff_name=staff.user.name)  # fmt: skip
        return "forwarded", None

    return _act(request, session, staff, change)


@router.post("/app/waiting-rooms/bookings/{booking_id}/finish")
def finish(
    request: Request, booking_id: int, form: FormData = Depends(posted_form),
    staff: Staff = Depends(require("consultations.write")), session: Session = Depends(get_session),
) -> Response:  # fmt: skip
    outcome = form_text(form, "outcome")

    def change() -> tuple[str, int | None]:
        waiting.finish(session, municipality_id=staff.municipality_id, booking_id=booking_id, outcome=outcome)
        return outcome, None

    return _act(request, session, staff, change)


@router.get("/app/waiting-rooms/bookings/{booking_id}/host")
def host_room(
    booking_id: int, staff: Staff = Depends(require("consultations.write")), session: Session = Depends(get_session)
) -> RedirectResponse:
    """Into the citizen's room as host: the moderator's link is made here, for the clerk, and never stored or sent."""
    booking = session.get(Booking, booking_id)
    if booking is None or booking.municipality_id != staff.municipality_id:
        raise NotFound(N_("Diese Buchung gibt es nicht."))
    link = rooms.host_link(session, booking=booking, staff_name=staff.user.name, staff_id=staff.user_id)
    session.commit()
    return RedirectResponse(link or "/app/waiting-rooms?done=no_room", status_code=303)


# The town's video platform (administration)


def _platform_page(request: Request, session: Session, staff: Staff, kind: str | None = None,
                   error: str | None = None, status_code: int = 200) -> HTMLResponse:  # fmt: skip
    account = rooms.platform_account(session, municipality_id=staff.municipality_id)
    kinds = rooms.platform_kinds()
    chosen = kind or request.query_params.get("kind") or (account.kind if account else None)
    chosen = chosen if chosen in kinds else None
    done = NOTICES.get(request.query_params.get("done", ""))
    return render(
        request, "staff/consultations/video_platform.html", status_code=status_code,
        title=translate(request, "Videoplattform"), account=account, kinds=kinds, kind=chosen,
        fields=rooms.platform_fields(chosen) if chosen else (), masked=rooms.masked_secrets(account),
        config=account.config if account and account.kind == chosen else {}, error=error,
        done=translate(request, done) if done else None,
    )  # fmt: skip


@router.get("/app/video-platform", response_class=HTMLResponse)
def video_platform(
    request: Request, staff: Staff = Depends(require("admin")), session: Session = Depends(get_session)
) -> HTMLResponse:
    return _platform_page(request, session, staff)


@router.post("/app/video-platform", response_class=HTMLResponse)
def save_video_platform(
    request: Request, form: FormData = Depends(posted_form), staff: Staff = Depends(require("admin")),
    session: Session = Depends(get_session),
) -> Response:  # fmt: skip
    kind = form_text(form, "kind")
    try:
        values = {key: value for key, value in form.items() if isinstance(value, str)}
        rooms.configure_platform(session, municipality_id=staff.municipality_id, actor_id=staff.user_id, kind=kind,
                                 values=values)  # fmt: skip
    except DomainError as problem:
        session.rollback()
        return _platform_page(request, session, staff, kind=kind, error=problem.text(language_of(request)),
                              status_code=problem.status_code)  # fmt: skip
    session.commit()
    return RedirectResponse("/app/video-platform?done=saved", status_code=303)


@router.post("/app/video-platform/remove")
def remove_video_platform(
    staff: Staff = Depends(require("admin")), session: Session = Depends(get_session)
) -> RedirectResponse:
    rooms.remove_platform(session, municipality_id=staff.municipality_id, actor_id=staff.user_id)
    session.commit()
    return RedirectResponse("/app/video-platform?done=removed", status_code=303)
