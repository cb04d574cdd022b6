"""A municipality's public sign-up pages (/abo/{slug}): number, topics, district, language, SMS code, done.

Or the same with an email address and double opt-in (/abo/{slug}/email).

The pages call the same services as the JSON routes under /api/v1/public/{slug}, so the same
limits hold (codes per number and per client, tries, resends, allowed countries). Between the
steps the number and the choices travel in a short-lived signed cookie, not in the URL, so
that they stay out of logs and the pages can be reloaded (or switched to English) at any step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from hub.db import get_session
from hub.errors import DomainError, InvalidInput
from hub.i18n import N_, language_of, translate
from hub.settings import get_settings
from hub.subscribers import catalogue, email_opt_in, listing, signed_links, verification
from hub.subscribers.opt_in import opt_in_channels
from hub.tenancy.models import Municipality
from hub.tenancy.service import get_municipality
from hub.web.rendering import render
from hub.web.security import client_address, verify_csrf

router = APIRouter(prefix="/abo/{slug}", tags=["public"], include_in_schema=False, dependencies=[Depends(verify_csrf)])

# The phone sign-up's steps between requests: long enough for a code, two resends and a slow
# reader; the codes themselves expire sooner.
SIGNUP_FORM = signed_links.FormState(cookie="rathaus_abo", purpose="web-phone-signup", seconds=30 * 60)


def _municipality(slug: str, session: Session = Depends(get_session)) -> Municipality:
    return get_municipality(session, slug=slug)


@dataclass
class Choices:
    """What the citizen filled in, shown again when the form comes back with an error."""

    phone: str = ""
    email: str = ""
    topics: list[str] = field(default_factory=list)
    district: str = ""
    language: str = "de"
    opt_in: list[str] = field(default_factory=list)


def _choices(
    phone: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    topics: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI copies form defaults per request)
    district: Annotated[str, Form()] = "",
    language: Annotated[str, Form()] = "de",
    opt_in: Annotated[list[str], Form()] = [],  # noqa: B006
) -> Choices:
    return Choices(phone=phone, email=email, topics=topics, district=district, language=language, opt_in=opt_in)


@dataclass(frozen=True)
class SignUpForm:
    """One way to sign up: where its form is, what it is called, and what sending it off does.

    `start` calls the service and answers with the next step; a DomainError it raises brings the
    form back with the reason.
    """

    path: str
    channel: str  # the template's name for it
    title: str  # a German msgid
    start: Callable[[Request, Session, Municipality, Choices], Response]


def _form(
    request: Request,
    session: Session,
    municipality: Municipality,
    *,
    way: SignUpForm,
    choices: Choices,
    error: DomainError | None = None,
) -> HTMLResponse:
    assert municipality.id is not None
    message = error.text(language_of(request)) if error else None
    return render(
        request,
        "citizen/subscribe.html",
        status_code=error.status_code if error else 200,
        title=translate(request, way.title),
        municipality=municipality.name,
        slug=municipality.slug,
        channel=way.channel,
        topics=catalogue.list_topics(session, municipality_id=municipality.id),
        districts=catalogue.list_districts(session, municipality_id=municipality.id),
        choices=choices,
        # Channels on the number that may write unprompted only after an opt-in: a box each.
        opt_in_channels=opt_in_channels(session, municipality_id=municipality.id, identity="phone"),
        error=message,
        # A refused number or address belongs to its field; limits and outages to the whole form.
        field_error=message if isinstance(error, InvalidInput) else None,
    )


def _serve(way: SignUpForm) -> None:
    """The form at /abo/{slug}<way.path>: shown empty (in the page's language), and sent off."""

    def show_form(
        request: Request, municipality: Municipality = Depends(_municipality), session: Session = Depends(get_session)
    ) -> HTMLResponse:
        return _form(request, session, municipality, way=way, choices=Choices(language=language_of(request)))

    def send_form(
        request: Request,
        choices: Choices = Depends(_choices),
        municipality: Municipality = Depends(_municipality),
        session: Session = Depends(get_session),
    ) -> Response:
        try:
            return way.start(request, session, municipality, choices)
        except DomainError as error:
            session.rollback()
            return _form(request, session, municipality, way=way, choices=choices, error=error)

    router.add_api_route(way.path, show_form, methods=["GET"], response_class=HTMLResponse)
    router.add_api_route(way.path, send_form, methods=["POST"], response_class=HTMLResponse)


def _send_code(request: Request, session: Session, municipality: Municipality, choices: Choices) -> Response:
    """Sends the code by SMS and goes on to the code step."""
    started = verification.start_verification(
        session, municipality=municipality, phone=choices.phone, topics=choices.topics,
        district=choices.district or None, language=choices.language, client_ip=client_address(request),
        opt_in=choices.opt_in,
    )  # fmt: skip
    response = RedirectResponse(f"/abo/{municipality.slug}/code", status_code=303)
    SIGNUP_FORM.remember(
        request, response, municipality_id=municipality.id, p=started.phone, t=choices.topics,
        d=choices.district or None, l=choices.language, o=choices.opt_in,
    )  # fmt: skip
    return response


def _back_to_start(municipality: Municipality) -> RedirectResponse:
    return RedirectResponse(f"/abo/{municipality.slug}", status_code=303)


def _code_form(
    request: Request, municipality: Municipality, state: dict[str, Any], *, error: DomainError | None = None,
    sent_again: bool = False,
) -> HTMLResponse:  # fmt: skip
    return render(
        request, "citizen/subscribe_code.html", status_code=error.status_code if error else 200,
        title=translate(request, "Code eingeben"), municipality=municipality.name, slug=municipality.slug,
        phone=state["p"], minutes=int(verification.VALID_FOR.total_seconds() // 60),
        error=error.text(language_of(request)) if error else None, sent_again=sent_again,
    )  # fmt: skip


@router.get("/code", response_class=HTMLResponse)
def code_form(request: Request, municipality: Municipality = Depends(_municipality)) -> Response:
    state = SIGNUP_FORM.recall(request, municipality_id=municipality.id)
    if state is None or state.get("done"):
        return _back_to_start(municipality)
    return _code_form(request, municipality, state)


@router.post("/code", response_class=HTMLResponse)
def check_code(
    request: Request,
    code: Annotated[str, Form()] = "",
    municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> Response:
    state = SIGNUP_FORM.recall(request, municipality_id=municipality.id)
    if state is None or state.get("done"):
        return _back_to_start(municipality)
    try:
        verified = verification.verify_code(
            session, municipality=municipality, phone=state["p"], code=code, client_ip=client_address(request),
            user_agent=request.headers.get("user-agent"), language=state["l"],
        )  # fmt: skip
    except DomainError as error:
        session.rollback()
        return _code_form(request, municipality, state, error=error)
    session.commit()
    response = RedirectResponse(f"/abo/{municipality.slug}/fertig", status_code=303)
    SIGNUP_FORM.remember(
        request, response, municipality_id=municipality.id, p=state["p"], c=verified.contact_id, done=True
    )
    return response


@router.post("/code/neu", response_class=HTMLResponse)
def send_again(
    request: Request, municipality: Municipality = Depends(_municipality), session: Session = Depends(get_session)
) -> Response:
    """A new code for the same number and choices; the resend limits of the service apply."""
    state = SIGNUP_FORM.recall(request, municipality_id=municipality.id)
    if state is None or state.get("done"):
        return _back_to_start(municipality)
    try:
        verification.start_verification(
            session, municipality=municipality, phone=state["p"], topics=state["t"], district=state["d"],
            language=state["l"], client_ip=client_address(request), opt_in=state.get("o", []),
        )  # fmt: skip
    except DomainError as error:
        session.rollback()
        return _code_form(request, municipality, state, error=error)
    return _code_form(request, municipality, state, sent_again=True)


@router.get("/fertig", response_class=HTMLResponse)
def done(
    request: Request, municipality: Municipality = Depends(_municipality), session: Session = Depends(get_session)
) -> Response:
    """What the citizen is now signed up for, read back from the subscription itself."""
    state = SIGNUP_FORM.recall(request, municipality_id=municipality.id)
    if state is None or not state.get("done"):
        return _back_to_start(municipality)
    assert municipality.id is not None
    found = listing.get_subscriber(session, municipality_id=municipality.id, contact_id=int(state["c"]))
    return render(
        request, "citizen/subscribed.html", title=translate(request, "Sie sind angemeldet"),
        municipality=municipality.name, slug=municipality.slug, phone=state["p"], subscriber=found,
    )  # fmt: skip


def _mail_link(request: Request, session: Session, municipality: Municipality, choices: Choices) -> Response:
    """Mails the confirmation link (double opt-in); the per-address and per-client limits of the service apply."""
    email_opt_in.request_email_subscription(
        session, settings=get_settings(), municipality=municipality, email=choices.email, topics=choices.topics,
        district=choices.district or None, language=choices.language, client_ip=client_address(request),
    )  # fmt: skip
    return RedirectResponse(f"/abo/{municipality.slug}/email/gesendet", status_code=303)


@router.get("/email/gesendet", response_class=HTMLResponse)
def email_sent(request: Request, municipality: Municipality = Depends(_municipality)) -> HTMLResponse:
    return render(
        request, "citizen/notice.html", title=translate(request, "Bitte bestätigen Sie Ihre E-Mail-Adresse"),
        municipality=municipality.name, slug=municipality.slug,
        text=translate(request, "Wir haben Ihnen eine E-Mail geschickt. Bitte öffnen Sie den Link darin und "
                                "bestätigen Sie die Anmeldung. Erst dann schicken wir Ihnen Nachrichten."),
    )  # fmt: skip


_serve(SignUpForm(path="", channel="sms", title=N_("Nachrichten per SMS erhalten"), start=_send_code))
_serve(SignUpForm(path="/email", channel="email", title=N_("Nachrichten per E-Mail erhalten"), start=_mail_link))
