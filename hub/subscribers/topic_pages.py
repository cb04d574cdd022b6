"""The "Themen ändern" page behind the link in every subscriber message: topics and districts, or leaving altogether."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from hub.db import get_session
from hub.errors import DomainError
from hub.i18n import language_of, translate
from hub.subscribers import topic_choice
from hub.tenancy.models import Municipality
from hub.web.rendering import render
from hub.web.security import client_address, verify_csrf

router = APIRouter(tags=["public"], include_in_schema=False, dependencies=[Depends(verify_csrf)])


def _evidence(request: Request) -> dict[str, object]:
    return {"ip": client_address(request), "user_agent": request.headers.get("user-agent", "")[:200]}


def _page(request: Request, session: Session, token: str, *, saved: bool = False, left: bool = False,
          error: DomainError | None = None) -> HTMLResponse:  # fmt: skip
    """The page for the link's reader; a link that is forged, too old or without a subscription says so."""
    try:
        reader = topic_choice.read_link(token)
        choice = topic_choice.current_choice(session, reader=reader)
    except DomainError as refused:
        return render(request, "citizen/notice.html", status_code=refused.status_code,
                      title=translate(request, "Link nicht gültig"), text=refused.text(language_of(request)),
                      failed=True)  # fmt: skip
    municipality = session.get(Municipality, reader.municipality_id)
    assert municipality is not None
    return render(
        request, "citizen/topics.html", status_code=error.status_code if error else 200,
        title=translate(request, "Themen ändern"), municipality=municipality.name, slug=municipality.slug,
        token=token, choice=choice, saved=saved, left=left, how_to_leave=translate(request, topic_choice.HOW_TO_LEAVE),
        error=error.text(language_of(request)) if error else None,
    )  # fmt: skip


@router.get("/themen/{token}", response_class=HTMLResponse)
def topics_page(token: str, request: Request, session: Session = Depends(get_session)) -> HTMLResponse:
    return _page(request, session, token)


@router.post("/themen/{token}", response_class=HTMLResponse)
def change_topics(
    token: str,
    request: Request,
    topics: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI copies form defaults per request)
    districts: Annotated[list[str], Form()] = [],  # noqa: B006
    session: Session = Depends(get_session),
) -> HTMLResponse:
    try:
        topic_choice.change_topics(session, reader=topic_choice.read_link(token), topic_keys=topics,
                                   district_keys=districts, evidence=_evidence(request))  # fmt: skip
    except DomainError as error:
        session.rollback()
        return _page(request, session, token, error=error)
    session.commit()
    return _page(request, session, token, saved=True)


@router.post("/themen/{token}/abmelden", response_class=HTMLResponse)
def leave(token: str, request: Request, session: Session = Depends(get_session)) -> HTMLResponse:
    try:
        topic_choice.leave(session, reader=topic_choice.read_link(token), evidence=_evidence(request))
    except DomainError as error:
        session.rollback()
        return _page(request, session, token, error=error)
    session.commit()
    return _page(request, session, token, left=True)
