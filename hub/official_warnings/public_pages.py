"""Public pages: an official warning's whole text (where the shortened message links), each sent warning as CAP,
and the town's Atom feed of them; their times are the town's own."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from hub.db import get_session
from hub.official_warnings import cap
from hub.official_warnings.relay import official_text
from hub.settings import Settings, get_settings
from hub.web.rendering import render

router = APIRouter(tags=["public"], include_in_schema=False)


@router.get("/public/{slug}/amtliche-warnungen/{warning_id}", response_class=HTMLResponse)
def official_warning_page(slug: str, warning_id: int, request: Request,
                          session: Session = Depends(get_session)) -> HTMLResponse:  # fmt: skip
    municipality, warning = official_text(session, slug=slug, warning_id=warning_id)
    return render(request, "citizen/official_warning.html", title=warning.headline, municipality=municipality.name,
                  warning=warning, timezone=ZoneInfo(municipality.timezone))  # fmt: skip


@router.get("/public/{slug}/cap.atom")
def cap_feed(
    slug: str, session: Session = Depends(get_session), settings: Settings = Depends(get_settings)
) -> Response:
    return Response(cap.feed(session, settings=settings, slug=slug), media_type=cap.ATOM_MEDIA_TYPE)


@router.get("/public/{slug}/cap/{broadcast_id}.xml")
def cap_alert(slug: str, broadcast_id: int, session: Session = Depends(get_session),
              settings: Settings = Depends(get_settings)) -> Response:  # fmt: skip
    document = cap.published_alert(session, settings=settings, slug=slug, broadcast_id=broadcast_id)
    return Response(document, media_type=cap.CAP_MEDIA_TYPE)
