"""The citizen's status page of one request (/anfrage/{reference}/{token}), linked from the acknowledgement."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from hub.db import get_session
from hub.i18n import N_, translate
from hub.inbox.public_status import citizen_view
from hub.web.rendering import render

router = APIRouter(tags=["public"], include_in_schema=False)

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
    state, explanation = STATUS_TEXTS.get(view.conversation.status, STATUS_TEXTS["open"])
    response = render(
        request, "citizen/status.html", title=translate(request, "Ihre Anfrage"),
        municipality=view.municipality.name,
        slug=view.municipality.slug, conversation=view.conversation, messages=view.messages,
        state=translate(request, state), explanation=translate(request, explanation), sections=view.sections,
    )  # fmt: skip
    # The page shows what a citizen wrote: no copy in shared caches or the browser's history cache.
    response.headers["Cache-Control"] = "no-store"
    return response
