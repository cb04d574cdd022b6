"""The citizens' feedback form (/rueckmeldung/{slug}/{token}): a rating 1–5, resolved or not, and a free text."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from hub.consultations import feedback
from hub.db import get_session
from hub.errors import DomainError
from hub.i18n import N_, language_of, translate
from hub.tenancy.models import Municipality
from hub.tenancy.service import get_municipality
from hub.web.rendering import render
from hub.web.security import verify_csrf

router = APIRouter(
    prefix="/rueckmeldung/{slug}", tags=["public"], include_in_schema=False, dependencies=[Depends(verify_csrf)]
)

# What each rating means, German msgids; the form shows "1 – gar nicht zufrieden".
RATING_LABELS = (
    N_("gar nicht zufrieden"),
    N_("wenig zufrieden"),
    N_("teils, teils"),
    N_("zufrieden"),
    N_("sehr zufrieden"),
)


def _municipality(slug: str, session: Session = Depends(get_session)) -> Municipality:
    return get_municipality(session, slug=slug)


def _page(
    request: Request, municipality: Municipality, view: feedback.FormView, *, values: dict[str, str] | None = None,
    error: DomainError | None = None,
) -> HTMLResponse:  # fmt: skip
    return render(
        request, "citizen/feedback.html", status_code=error.status_code if error else 200,
        title=translate(request, "Ihre Rückmeldung"), municipality=municipality.name, slug=municipality.slug, view=view,
        values=values or {}, error=error.text(language_of(request)) if error else None,
        ratings=[(number, translate(request, label)) for number, label in zip(feedback.RATINGS, RATING_LABELS,
                                                                              strict=True)],
        max_comment=feedback.MAX_COMMENT_CHARS,
    )  # fmt: skip


@router.get("/{token}", response_class=HTMLResponse)
def feedback_form(
    request: Request,
    token: str,
    municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> HTMLResponse:
    return _page(request, municipality, feedback.read_link(session, municipality=municipality, token=token))


@router.post("/{token}", response_class=HTMLResponse)
def send_feedback(
    request: Request,
    token: str,
    rating: Annotated[str, Form(max_length=40)] = "",
    resolved: Annotated[str, Form(max_length=40)] = "",
    comment: Annotated[str, Form(max_length=20000)] = "",
    municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> HTMLResponse:
    """Stores the answer and thanks; a bad value or a second answer shows the form again with the reason."""
    try:
        view = feedback.answer_by_form(session, municipality=municipality, token=token, rating=rating,
                                       resolved=resolved, comment=comment)  # fmt: skip
    except DomainError as error:
        session.rollback()
        view = feedback.read_link(session, municipality=municipality, token=token)
        values = {"rating": rating, "resolved": resolved, "comment": comment}
        return _page(request, municipality, view, values=values, error=error)
    return _page(request, municipality, view)
