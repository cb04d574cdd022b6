"""The citizen's join page (/sprechstunden/{slug}/buchung/{token}/warteraum): check in, wait, and come in when called.

The page polls its JSON twin every few seconds (waiting.js) and reloads itself when what it
shows has changed; without JavaScript a link reloads it by hand.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlmodel import Session

from hub.consultations import waiting, web_booking
from hub.db import get_session
from hub.errors import DomainError
from hub.i18n import language_of, translate
from hub.tenancy.models import Municipality
from hub.tenancy.service import get_municipality
from hub.web.rendering import render
from hub.web.security import verify_csrf

router = APIRouter(
    prefix="/sprechstunden/{slug}/buchung/{token}/warteraum", tags=["public"], include_in_schema=False,
    dependencies=[Depends(verify_csrf)],
)  # fmt: skip


def _municipality(slug: str, session: Session = Depends(get_session)) -> Municipality:
    return get_municipality(session, slug=slug)


def _page(request: Request, session: Session, municipality: Municipality, token: str,
          error: DomainError | None = None) -> HTMLResponse:  # fmt: skip
    view = web_booking.read_link(session, municipality=municipality, token=token)
    state = waiting.citizen_state(session, booking=view.booking)
    session.commit()  # a room made for the link is kept
    path = web_booking.booking_path(municipality, token)
    return render(
        request, "citizen/consultation_join.html", status_code=error.status_code if error else 200,
        title=translate(request, "Warteraum"), municipality=municipality.name,
        slug=municipality.slug, view=view, state=state,
        path=path, error=error.text(language_of(request)) if error else None,
    )  # fmt: skip


@router.get("", response_class=HTMLResponse)
def join_page(
    request: Request, token: str, municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> HTMLResponse:  # fmt: skip
    return _page(request, session, municipality, token)


@router.post("", response_class=HTMLResponse)
def check_in(
    request: Request, token: str, municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> Response:  # fmt: skip
    view = web_booking.read_link(session, municipality=municipality, token=token)
    try:
        waiting.check_in(session, booking=view.booking)
    except DomainError as problem:
        session.rollback()
        return _page(request, session, municipality, token, error=problem)
    session.commit()
    return RedirectResponse(request.url.path, status_code=303)


@router.get("/stand")
def join_state(
    token: str, municipality: Municipality = Depends(_municipality), session: Session = Depends(get_session)
) -> JSONResponse:
    """What the page shows, for its poll: its version, and the place and wait while waiting."""
    view = web_booking.read_link(session, municipality=municipality, token=token)
    state = waiting.citizen_state(session, booking=view.booking, with_link=False)
    return JSONResponse({
        "version": state.version(), "status": state.entry.status if state.entry else None,
        "place": state.place.number if state.place else None, "minutes": state.place.minutes if state.place else None,
    }, headers={"Cache-Control": "no-store"})  # fmt: skip
