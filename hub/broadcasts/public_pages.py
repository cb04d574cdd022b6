"""Citizen pages behind the links in broadcast mails: unsubscribe (one click, RFC 8058) and answer a survey.

Following a link (GET) only shows a page with a button: mail scanners open links on their
own, and must not unsubscribe anyone or cast a vote. The mail client's one-click unsubscribe
is a POST to the same address and takes effect at once, without a redirect.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session, select

from channels.registry import kinds_reaching
from hub.broadcasts import invitations, surveys
from hub.broadcasts.links import ANSWER, UNSUBSCRIBE, LinkTarget, read
from hub.broadcasts.models import Broadcast, SurveyAnswer
from hub.db import get_session
from hub.errors import DomainError
from hub.i18n import N_, language_of, translate
from hub.subscribers.consent import stop
from hub.tenancy.models import Municipality
from hub.web.rendering import render
from hub.web.security import client_address, verify_csrf

# The one-click unsubscribe (POST /u/{token}) carries no CSRF token on purpose: RFC 8058 has the
# mail provider POST "List-Unsubscribe=One-Click" to the link from the List-Unsubscribe header,
# with no page loaded and no cookie, so the signed token in the URL is the only authority there
# is. It can only stop messages to the person the token names, never change anything else.
unsubscribe_router = APIRouter(tags=["public"])
# The survey page's buttons are an ordinary form on our page, so they carry the CSRF token.
router = APIRouter(tags=["public"], dependencies=[Depends(verify_csrf)])
# An invitation's calendar file, linked from the texts of chats and SMS; a calendar app fetches it.
calendar_router = APIRouter(include_in_schema=False)


@calendar_router.get("/einladung/{token}.ics")
def invitation_calendar(token: str, session: Session = Depends(get_session)) -> Response:
    """The invitation as a calendar file (METHOD:PUBLISH); no sign-in, the unguessable token is the key."""
    body = invitations.public_calendar(session, token=token)
    return Response(body, media_type="text/calendar; charset=utf-8")


def _mailed_on() -> str:
    """The channel kind these links came by: they are only put into mail (sending._mail_links)."""
    return kinds_reaching("email")[0]


def _target(session: Session, token: str, purpose: str) -> tuple[LinkTarget, Municipality]:
    target = read(token, purpose)
    municipality = session.get(Municipality, target.municipality_id)
    if municipality is None:
        raise DomainError(N_("Der Link ist ungültig."))
    return target, municipality


def _error(request: Request, error: DomainError) -> HTMLResponse:
    return render(
        request, "citizen/notice.html", status_code=400, title=translate(request, "Link nicht gültig"),
        text=error.text(language_of(request)), failed=True,
    )  # fmt: skip


@unsubscribe_router.get("/u/{token}", response_class=HTMLResponse)
def unsubscribe_page(token: str, request: Request, session: Session = Depends(get_session)) -> HTMLResponse:
    try:
        _, municipality = _target(session, token, UNSUBSCRIBE)
    except DomainError as error:
        return _error(request, error)
    return render(request, "citizen/unsubscribe.html", title=translate(request, "Abmelden"),
                  municipality=municipality.name, slug=municipality.slug)  # fmt: skip


@unsubscribe_router.post("/u/{token}", response_class=HTMLResponse)
def unsubscribe(token: str, request: Request, session: Session = Depends(get_session)) -> HTMLResponse:
    """One click: stops every broadcast to this citizen on every channel."""
    try:
        target, municipality = _target(session, token, UNSUBSCRIBE)
    except DomainError as error:
        return _error(request, error)
    evidence = {
        "broadcast_id": target.broadcast_id,
        "ip": client_address(request),
        "user_agent": request.headers.get("user-agent", "")[:200],
    }
    stop(session, municipality_id=target.municipality_id, contact_id=target.contact_id, channel_kind=_mailed_on(),
         source="email_link", evidence=evidence)  # fmt: skip
    session.commit()
    return render(request, "citizen/unsubscribed.html", title=translate(request, "Abgemeldet"),
                  municipality=municipality.name, slug=municipality.slug)  # fmt: skip


def _survey(session: Session, target: LinkTarget) -> Broadcast:
    broadcast = session.get(Broadcast, target.broadcast_id)
    if broadcast is None or broadcast.municipality_id != target.municipality_id or not broadcast.options:
        raise DomainError(N_("Zu diesem Link gibt es keine Umfrage."))
    return broadcast


def _question(request: Request, broadcast: Broadcast) -> str:
    """The survey's text in the page's language, German where the town wrote no English."""
    language = getattr(request.state, "language", "de")
    return str((broadcast.texts.get(language) or broadcast.texts.get("de", {})).get("body", ""))


@router.get("/a/{token}", response_class=HTMLResponse)
def answer_page(token: str, request: Request, session: Session = Depends(get_session)) -> HTMLResponse:
    try:
        target, municipality = _target(session, token, ANSWER)
        broadcast = _survey(session, target)
    except DomainError as error:
        return _error(request, error)
    current = session.exec(
        select(SurveyAnswer.option_index).where(
            SurveyAnswer.broadcast_id == broadcast.id, SurveyAnswer.contact_id == target.contact_id
        )
    ).first()
    return render(request, "citizen/answer.html", title=broadcast.title, municipality=municipality.name,
                  slug=municipality.slug,
                  question=_question(request, broadcast), options=broadcast.options, current=current)  # fmt: skip


@router.post("/a/{token}", response_class=HTMLResponse)
def answer(
    token: str, request: Request, option: int = Form(...), session: Session = Depends(get_session)
) -> HTMLResponse:
    try:
        target, municipality = _target(session, token, ANSWER)
        broadcast = _survey(session, target)
        vote = surveys.Vote(broadcast=broadcast, option_index=option)
        surveys.record(session, vote=vote, contact_id=target.contact_id, channel_kind=_mailed_on())
    except DomainError as error:
        return _error(request, error)
    session.commit()
    return render(request, "citizen/answered.html", title=translate(request, "Danke!"),
                  municipality=municipality.name, slug=municipality.slug, option=broadcast.options[option])  # fmt: skip
