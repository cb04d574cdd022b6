"""The citizens' page to write to the town (/{slug}/schreiben): the form, then the reference and the way back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from hub.db import get_session
from hub.errors import DomainError
from hub.i18n import N_, language_of, translate
from hub.settings import get_settings
from hub.subscribers import signed_links
from hub.tenancy.models import Municipality
from hub.tenancy.service import get_municipality
from hub.web.rendering import render
from hub.web.security import verify_csrf
from hub.webcases import intake, letters
from hub.webcases.steps import Steps

router = APIRouter(prefix="/{slug}", tags=["public"], include_in_schema=False, dependencies=[Depends(verify_csrf)])

STEPS = Steps(
    form_state=signed_links.FormState(cookie="rathaus_schreiben", purpose="web-letter", seconds=60 * 60),
    proof=letters.PROOF, path="/schreiben", filed_template="citizen/letter_filed.html",
    filed_title=N_("Vielen Dank für Ihre Nachricht"), confirm_template="citizen/letter_confirm.html",
    confirmed_text=N_("Danke! Wir antworten Ihnen per E-Mail auf Ihre Nachricht %(reference)s."),
)  # fmt: skip


def _municipality(slug: str, session: Session = Depends(get_session)) -> Municipality:
    return get_municipality(session, slug=slug)


def _form(
    request: Request, municipality: Municipality, *, values: dict[str, str], error: DomainError | None = None
) -> HTMLResponse:
    return render(
        request, "citizen/letter_form.html", status_code=error.status_code if error else 200,
        title=translate(request, "Schreiben Sie uns"), municipality=municipality.name, slug=municipality.slug,
        values=values, error=error.text(language_of(request)) if error else None, max_photos=intake.MAX_PHOTOS,
        max_concern=letters.MAX_CONCERN, max_name=letters.MAX_NAME,
    )  # fmt: skip


@router.get("/schreiben", response_class=HTMLResponse)
def letter_form(request: Request, municipality: Municipality = Depends(_municipality)) -> HTMLResponse:
    return _form(request, municipality, values={"way": "none"})


@router.post("/schreiben", response_class=HTMLResponse)
async def send_letter(
    request: Request,
    name: Annotated[str, Form(max_length=letters.MAX_NAME + 50)] = "",
    concern: Annotated[str, Form(max_length=letters.MAX_CONCERN + 100)] = "",
    way: Annotated[str, Form(max_length=10)] = "none",
    phone: Annotated[str, Form(max_length=40)] = "",
    email: Annotated[str, Form(max_length=254)] = "",
    photos: Annotated[list[UploadFile], File()] = [],  # noqa: B006 (FastAPI copies the default)
    municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> Response:
    """Checks everything first (the way back, the concern, the photos), then files the case whole."""
    values = {"name": name, "concern": concern, "way": way, "phone": phone, "email": email}
    settings, language = get_settings(), language_of(request)
    try:
        follow = intake.check_follow(municipality, intake.Follow(way=way, phone=phone, email=email), language)
        letters.check_letter(name, concern)
        checked = intake.check_photos(settings, await intake.read_uploads(photos, settings))
        conversation = letters.file_letter(
            session, municipality=municipality, name=name, concern=concern, photos=checked, language=language
        )
    except DomainError as error:
        session.rollback()
        return _form(request, municipality, values=values, error=error)
    return STEPS.after_filing(request, session, municipality, conversation, follow)


@router.get("/schreiben/danke", response_class=HTMLResponse)
def filed(request: Request, municipality: Municipality = Depends(_municipality)) -> Response:
    return STEPS.filed(request, municipality)


@router.post("/schreiben/code", response_class=HTMLResponse)
def check_code(
    request: Request,
    code: Annotated[str, Form(max_length=20)] = "",
    municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> Response:
    return STEPS.check_code(request, session, municipality, code)


@router.post("/schreiben/code/neu", response_class=HTMLResponse)
def send_code_again(
    request: Request, municipality: Municipality = Depends(_municipality), session: Session = Depends(get_session)
) -> Response:
    return STEPS.send_code_again(request, session, municipality)


@router.get("/schreiben/bestaetigen", response_class=HTMLResponse)
def confirm_page(
    request: Request, token: str = "", municipality: Municipality = Depends(_municipality)
) -> HTMLResponse:
    return STEPS.confirm_page(request, municipality, token)


@router.post("/schreiben/bestaetigen", response_class=HTMLResponse)
def confirm(
    request: Request, token: str = "", municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> HTMLResponse:  # fmt: skip
    return STEPS.confirm(request, session, municipality, token)
