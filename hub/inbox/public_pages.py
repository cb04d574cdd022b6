"""The citizen's status page of one request (/anfrage/{reference}/{token}), linked from the acknowledgement.

And, for a citizen without that link, asking for a one-time link by reference (/{slug}/anfrage).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from hub.db import get_session
from hub.errors import DomainError
from hub.i18n import N_, language_of, translate
from hub.inbox import status_lookup
from hub.inbox.public_status import citizen_view, status_path
from hub.ratelimit import shared_limiter
from hub.settings import get_settings
from hub.tenancy.service import get_municipality
from hub.web.rendering import render
from hub.web.security import client_address, verify_csrf
from workers.app import enqueue_send

router = APIRouter(tags=["public"], include_in_schema=False)
# Asking for a link and opening one are forms of our own pages: they carry the CSRF token.
lookup_router = APIRouter(tags=["public"], include_in_schema=False, dependencies=[Depends(verify_csrf)])

# Each status in words, with what it means for the citizen; never shown by colour alone.
STATUS_TEXTS = {
    "open": (
        N_("In Bearbeitung"),
        N_("Ihre Anfrage ist angekommen. Wir kümmern uns darum und melden uns so bald wie möglich."),
    ),
    "pending": (
        N_("Wartet auf Rückmeldung"),
        N_("Wir warten auf eine Antwort – von Ihnen oder einer anderen Stelle. Antworten Sie auf unsere Nachricht."),
    ),
    "resolved": (
        N_("Erledigt"),
        N_("Ihre Anfrage ist abgeschlossen. Brauchen Sie noch etwas, schreiben Sie uns einfach noch einmal."),
    ),
}


@router.get("/anfrage/{reference}/{token}", response_class=HTMLResponse)
def status_page(reference: str, token: str, request: Request, session: Session = Depends(get_session)) -> HTMLResponse:
    view = citizen_view(session, reference=reference, token=token)
    # A merged-away request tells the state of the one it goes on in.
    shown = view.continued_in or view.conversation
    state, explanation = STATUS_TEXTS.get(shown.status, STATUS_TEXTS["open"])
    response = render(
        request, "citizen/status.html", title=translate(request, "Ihre Anfrage"),
        municipality=view.municipality.name,
        slug=view.municipality.slug, conversation=view.conversation, messages=view.messages,
        state=translate(request, state), explanation=translate(request, explanation), sections=view.sections,
        continued_in=view.continued_in,
        continued_link=status_path(view.continued_in) if view.continued_in else None,
    )  # fmt: skip
    # The page shows what a citizen wrote: no copy in shared caches or the browser's history cache.
    response.headers["Cache-Control"] = "no-store"
    return response


def _lookup_form(request: Request, slug: str, *, municipality: str, reference: str = "",
                 error: DomainError | None = None, asked: bool = False) -> HTMLResponse:  # fmt: skip
    return render(
        request, "citizen/status_lookup.html", status_code=error.status_code if error else 200,
        title=translate(request, "Stand Ihrer Anfrage"), municipality=municipality, slug=slug, reference=reference,
        error=error.text(language_of(request)) if error else None, asked=asked,
        minutes=int(status_lookup.LINK_VALID.total_seconds() // 60),
    )  # fmt: skip


@lookup_router.get("/{slug}/anfrage", response_class=HTMLResponse)
def lookup_form(slug: str, request: Request, session: Session = Depends(get_session)) -> HTMLResponse:
    return _lookup_form(request, slug, municipality=get_municipality(session, slug=slug).name)


@lookup_router.post("/{slug}/anfrage", response_class=HTMLResponse)
def ask_for_link(
    slug: str, request: Request, reference: Annotated[str, Form()] = "", session: Session = Depends(get_session)
) -> HTMLResponse:
    """Says the same whether the reference exists or not; only the request's own channel gets the link."""
    municipality = get_municipality(session, slug=slug)
    settings = get_settings()
    try:
        message_id = status_lookup.request_status_link(
            session, settings=settings, limiter=shared_limiter(settings), municipality=municipality,
            reference=reference, client=client_address(request) or "unknown",
        )  # fmt: skip
    except DomainError as error:
        session.rollback()
        return _lookup_form(request, slug, municipality=municipality.name, reference=reference, error=error)
    session.commit()
    if message_id is not None:
        enqueue_send(message_id)
    return _lookup_form(request, slug, municipality=municipality.name, asked=True)


@lookup_router.get("/anfrage-link/{token}", response_class=HTMLResponse)
def link_page(token: str, request: Request) -> HTMLResponse:
    # A button, not the page at once: mail scanners open links on their own and would use it up.
    response = render(request, "citizen/status_link.html", title=translate(request, "Ihre Anfrage"), token=token)
    response.headers["Cache-Control"] = "no-store"
    return response


@lookup_router.post("/anfrage-link/{token}")
def open_link(token: str, session: Session = Depends(get_session)) -> Response:
    status_page_url = status_lookup.open_status_link(session, settings=get_settings(), token=token)
    session.commit()
    return RedirectResponse(status_page_url, status_code=303)
