"""The citizens' page to write to the town (/{slug}/schreiben): the form, the reference, proving the way back.

Between the form and its last step (the code, the mail) the case's reference, status link and
the way chosen travel in a short-lived signed cookie, as on the Mängelmelder's pages.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from hub.db import get_session
from hub.errors import DomainError
from hub.i18n import language_of, translate
from hub.settings import get_settings
from hub.subscribers import signed_links, verification
from hub.tenancy.models import Municipality
from hub.tenancy.service import get_municipality
from hub.web.rendering import render
from hub.web.security import client_address, verify_csrf
from hub.webcases import intake, letters

router = APIRouter(prefix="/{slug}", tags=["public"], include_in_schema=False, dependencies=[Depends(verify_csrf)])

LETTER_FORM = signed_links.FormState(cookie="rathaus_schreiben", purpose="web-letter", seconds=60 * 60)


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
        session.commit()
    except DomainError as error:
        session.rollback()
        return _form(request, municipality, values=values, error=error)
    state: dict[str, Any] = {"c": conversation.id, "r": conversation.reference, "t": conversation.public_token,
                             "w": follow.way, "l": language}  # fmt: skip
    try:
        state |= intake.send_proof(
            session, proof=letters.PROOF, settings=settings, municipality=municipality, conversation=conversation,
            follow=follow, language=language, client_ip=client_address(request),
        )  # fmt: skip
    except DomainError as error:
        # The case stands; only the way back could not be set up now.
        session.rollback()
        state["x"], state["w"] = error.text(language), "none"
    response = RedirectResponse(f"/{municipality.slug}/schreiben/danke", status_code=303)
    LETTER_FORM.remember(request, response, municipality_id=municipality.id, **state)
    return response


def _recall(request: Request, municipality: Municipality) -> dict[str, Any] | None:
    """The filed case's state from the cookie, without the town it is signed for."""
    state = LETTER_FORM.recall(request, municipality_id=municipality.id)
    return {key: value for key, value in state.items() if key != "m"} if state is not None else None


def _restart(municipality: Municipality) -> RedirectResponse:
    return RedirectResponse(f"/{municipality.slug}/schreiben", status_code=303)


def _filed(
    request: Request, municipality: Municipality, state: dict[str, Any], *, error: DomainError | None = None,
    notice: str | None = None,
) -> HTMLResponse:  # fmt: skip
    return render(
        request, "citizen/letter_filed.html", status_code=error.status_code if error else 200,
        title=translate(request, "Vielen Dank für Ihre Nachricht"), municipality=municipality.name,
        slug=municipality.slug, state=state, status_link=f"/anfrage/{state['r']}/{state['t']}",
        minutes=int(verification.VALID_FOR.total_seconds() // 60),
        error=error.text(language_of(request)) if error else state.get("x"), notice=notice,
    )  # fmt: skip


@router.get("/schreiben/danke", response_class=HTMLResponse)
def filed(request: Request, municipality: Municipality = Depends(_municipality)) -> Response:
    state = _recall(request, municipality)
    return _filed(request, municipality, state) if state is not None else _restart(municipality)


@router.post("/schreiben/code", response_class=HTMLResponse)
def check_code(
    request: Request,
    code: Annotated[str, Form(max_length=20)] = "",
    municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> Response:
    state = _recall(request, municipality)
    if state is None or "p" not in state:
        return _restart(municipality)
    try:
        intake.check_code(
            session, proof=letters.PROOF, municipality=municipality, phone=state["p"], code=code,
            language=state["l"], client_ip=client_address(request), user_agent=request.headers.get("user-agent"),
        )  # fmt: skip
    except DomainError as error:
        session.rollback()
        return _filed(request, municipality, state, error=error)
    state = {**state, "w": "followed"}
    response = _filed(request, municipality, state)
    LETTER_FORM.remember(request, response, municipality_id=municipality.id, **state)
    return response


@router.post("/schreiben/code/neu", response_class=HTMLResponse)
def send_code_again(
    request: Request, municipality: Municipality = Depends(_municipality), session: Session = Depends(get_session)
) -> Response:
    state = _recall(request, municipality)
    if state is None or "p" not in state:
        return _restart(municipality)
    try:
        intake.ask_for_code(session, proof=letters.PROOF, municipality=municipality, conversation_id=int(state["c"]),
                            phone=state["p"], language=state["l"], client_ip=client_address(request))  # fmt: skip
    except DomainError as error:
        session.rollback()
        return _filed(request, municipality, state, error=error)
    again = translate(request, "Wir haben Ihnen einen neuen Code geschickt. Der alte gilt nicht mehr.")
    return _filed(request, municipality, state, notice=again)


@router.get("/schreiben/bestaetigen", response_class=HTMLResponse)
def confirm_page(
    request: Request, token: str = "", municipality: Municipality = Depends(_municipality)
) -> HTMLResponse:
    """Opening the link shows a button; only the button proves the address (mail scanners open links too)."""
    payload = intake.read_mail_link(proof=letters.PROOF, municipality=municipality, token=token)
    return render(
        request, "citizen/letter_confirm.html", title=translate(request, "E-Mail-Adresse bestätigen"),
        municipality=municipality.name, reference=payload["r"], email=payload["e"],
    )  # fmt: skip


@router.post("/schreiben/bestaetigen", response_class=HTMLResponse)
def confirm(
    request: Request, token: str = "", municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> HTMLResponse:  # fmt: skip
    reference = intake.confirm_mail_link(session, proof=letters.PROOF, municipality=municipality, token=token)
    return render(
        request, "citizen/notice.html", title=translate(request, "E-Mail-Adresse bestätigt"),
        municipality=municipality.name,
        text=translate(request, "Danke! Wir antworten Ihnen per E-Mail auf Ihre Nachricht %(reference)s.")
        % {"reference": reference},
    )  # fmt: skip
