"""Citizen pages behind the links in broadcast mails: unsubscribe (one click, RFC 8058) and answer a survey.

Following a link (GET) only shows a page with a button: mail scanners open links on their
own, and must not unsubscribe anyone or cast a vote. The mail client's one-click unsubscribe
is a POST to the same address and takes effect at once, without a redirect.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session, select

from hub.broadcasts import surveys
from hub.broadcasts.links import ANSWER, UNSUBSCRIBE, LinkTarget, read
from hub.broadcasts.models import Broadcast, SurveyAnswer
from hub.db import get_session
from hub.errors import DomainError
from hub.subscribers.service import stop
from hub.templating import render_page
from hub.tenancy.models import Municipality

router = APIRouter(tags=["public"], include_in_schema=True)


def _page(name: str, *, title: str, municipality: str, status_code: int = 200, **context: object) -> HTMLResponse:
    html = render_page(f"ui/citizen/{name}", title=title, municipality=municipality, **context)
    return HTMLResponse(html, status_code=status_code)


def _target(session: Session, token: str, purpose: str) -> tuple[LinkTarget, Municipality]:
    target = read(token, purpose)
    municipality = session.get(Municipality, target.municipality_id)
    if municipality is None:
        raise DomainError("Der Link ist ungültig.")
    return target, municipality


def _error(error: DomainError) -> HTMLResponse:
    return _page("notice.html", title="Link nicht gültig", municipality="", text=str(error), status_code=400)


@router.get("/u/{token}", response_class=HTMLResponse)
def unsubscribe_page(token: str, session: Session = Depends(get_session)) -> HTMLResponse:
    try:
        _, municipality = _target(session, token, UNSUBSCRIBE)
    except DomainError as error:
        return _error(error)
    return _page("unsubscribe.html", title="Abmelden", municipality=municipality.name)


@router.post("/u/{token}", response_class=HTMLResponse)
def unsubscribe(token: str, request: Request, session: Session = Depends(get_session)) -> HTMLResponse:
    """One click: stops every broadcast to this citizen on every channel."""
    try:
        target, municipality = _target(session, token, UNSUBSCRIBE)
    except DomainError as error:
        return _error(error)
    evidence = {
        "broadcast_id": target.broadcast_id,
        "ip": request.client.host if request.client else None,
        "user_agent": request.headers.get("user-agent", "")[:200],
    }
    stop(session, municipality_id=target.municipality_id, contact_id=target.contact_id, channel_kind="email",
         source="email_link", evidence=evidence)  # fmt: skip
    session.commit()
    return _page("unsubscribed.html", title="Abgemeldet", municipality=municipality.name)


def _survey(session: Session, target: LinkTarget) -> Broadcast:
    broadcast = session.get(Broadcast, target.broadcast_id)
    if broadcast is None or broadcast.municipality_id != target.municipality_id or not broadcast.options:
        raise DomainError("Zu diesem Link gibt es keine Umfrage.")
    return broadcast


@router.get("/a/{token}", response_class=HTMLResponse)
def answer_page(token: str, session: Session = Depends(get_session)) -> HTMLResponse:
    try:
        target, municipality = _target(session, token, ANSWER)
        broadcast = _survey(session, target)
    except DomainError as error:
        return _error(error)
    current = session.exec(
        select(SurveyAnswer.option_index).where(
            SurveyAnswer.broadcast_id == broadcast.id, SurveyAnswer.contact_id == target.contact_id
        )
    ).first()
    question = broadcast.texts.get("de", {}).get("body", "")
    return _page("answer.html", title=broadcast.title, municipality=municipality.name, question=question,
                 options=broadcast.options, current=current)  # fmt: skip


@router.post("/a/{token}", response_class=HTMLResponse)
def answer(token: str, option: int = Form(...), session: Session = Depends(get_session)) -> HTMLResponse:
    try:
        target, municipality = _target(session, token, ANSWER)
        broadcast = _survey(session, target)
        vote = surveys.Vote(broadcast=broadcast, option_index=option)
        surveys.record(session, vote=vote, contact_id=target.contact_id, channel_kind="email")
    except DomainError as error:
        return _error(error)
    session.commit()
    return _page("answered.html", title="Danke!", municipality=municipality.name, option=broadcast.options[option])
