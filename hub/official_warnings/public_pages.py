"""The public page of an official warning's whole text, where the shortened message's link leads."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from hub.db import get_session
from hub.official_warnings.relay import official_text
from hub.web.rendering import render

router = APIRouter(tags=["public"], include_in_schema=False)


@router.get("/public/{slug}/amtliche-warnungen/{warning_id}", response_class=HTMLResponse)
def official_warning_page(slug: str, warning_id: int, request: Request,
                          session: Session = Depends(get_session)) -> HTMLResponse:  # fmt: skip
    municipality, warning = official_text(session, slug=slug, warning_id=warning_id)
    return render(request, "citizen/official_warning.html", title=warning.headline, municipality=municipality.name,
                  warning=warning)  # fmt: skip
