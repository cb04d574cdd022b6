"""JSON routes of subscriptions: staff manage topics, districts, subscribers and GDPR requests; citizens sign up.

Public routes (`/api/v1/public/{slug}/...`) need no token. The client IP they record and limit
by is `request.client.host`: X-Forwarded-For is not read here, because any caller can write
it. Only a proxy named in RATHAUS_TRUSTED_PROXIES may say who the client is, and hub.app turns
its header into the client address, so the trust decision lives in one place.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from sqlmodel import Session

from hub.contacts import gdpr
from hub.db import get_session
from hub.errors import DomainError
from hub.i18n import N_, gettext_for, language_of, translate
from hub.settings import get_settings
from hub.subscribers import catalogue, consent, email_opt_in, listing, verification
from hub.templating import render_message
from hub.tenancy.auth import require_permission
from hub.tenancy.models import Municipality, StaffUser
from hub.tenancy.preferences import preference
from hub.tenancy.service import get_municipality
from hub.web.rendering import render
from hub.web.security import client_address

router = APIRouter(prefix="/api/v1", tags=["subscribers"])
public_router = APIRouter(prefix="/api/v1/public/{slug}", tags=["public"])


# Short answers of the public routes: German msgids, in the language the citizen chose.
_CODE_SENT = N_("Wir haben Ihnen einen Code per SMS gesendet. Er gilt 10 Minuten.")
_MAIL_SENT = N_("Wir haben Ihnen eine E-Mail geschickt. Bitte bestätigen Sie die Anmeldung mit dem Link darin.")


# --- shapes ---------------------------------------------------------------------------------


class TopicOut(BaseModel):
    id: int
    key: str
    name_de: str
    name_en: str
    is_warning: bool


class TopicIn(BaseModel):
    key: str = Field(description="Lower-case word used in SMS keywords, e.g. abfall.")
    name_de: str
    name_en: str | None = None
    is_warning: bool = False


class DistrictOut(BaseModel):
    id: int
    key: str
    name: str


class DistrictIn(BaseModel):
    key: str
    name: str


class IdentityOut(BaseModel):
    kind: str
    address: str


class ConsentEventOut(BaseModel):
    id: int
    action: str
    channel_kind: str | None
    source: str
    evidence: dict[str, Any]
    created_at: datetime


class SubscriberOut(BaseModel):
    contact_id: int
    display_name: str | None
    state: str
    language: str
    topics: list[str] = Field(description="Topic keys; empty means every topic.")
    districts: list[str] = Field(description="District keys; empty means the whole municipality.")
    identities: list[IdentityOut]
    created_at: datetime
    updated_at: datetime


class SubscriberDetailOut(SubscriberOut):
    consent_events: list[ConsentEventOut]


class SubscriberPageOut(BaseModel):
    items: list[SubscriberOut]
    total: int
    page: int
    per_page: int
    pages: int


class PhoneSignupIn(BaseModel):
    phone: str = Field(description="Mobile number, +49… or national.")
    topics: list[str] = Field(default_factory=list, description="Topic keys; none means every topic.")
    district: str | None = Field(None, description="District key; none means the whole municipality.")
    language: Literal["de", "en"] = "de"
    opt_in: list[str] = Field(
        default_factory=list,
        description="Channel kinds on the number that need an opt-in before the town may write unprompted "
        "(the sign-up form's boxes); recorded as consent once the code is right.",
    )


class PhoneVerifyIn(BaseModel):
    phone: str
    code: str
    language: Literal["de", "en"] = "de"


class EmailSignupIn(BaseModel):
    email: str
    topics: list[str] = Field(default_factory=list)
    district: str | None = None
    language: Literal["de", "en"] = "de"


class CodeSentOut(BaseModel):
    detail: str
    phone: str
    expires_at: datetime
    resend_after_seconds: int


class NoticeOut(BaseModel):
    detail: str


def _subscriber_out(found: listing.Subscriber) -> dict[str, Any]:
    subscription = found.subscription
    return {
        "contact_id": subscription.contact_id,
        "display_name": found.contact.display_name,
        "state": subscription.state,
        "language": subscription.language,
        "topics": [topic.key for topic in found.topics],
        "districts": [district.key for district in found.districts],
        "identities": [IdentityOut(kind=i.kind, address=i.address) for i in found.identities],
        "created_at": subscription.created_at,
        "updated_at": subscription.updated_at,
    }


# --- staff: topics and districts ------------------------------------------------------------


@router.get("/topics", response_model=list[TopicOut])
def list_topics(
    user: StaffUser = Depends(require_permission("subscribers.read")), session: Session = Depends(get_session)
) -> list[Any]:
    return catalogue.list_topics(session, municipality_id=user.municipality_id)


@router.post("/topics", response_model=TopicOut, status_code=201)
def create_topic(
    body: TopicIn, user: StaffUser = Depends(require_permission("admin")), session: Session = Depends(get_session)
) -> Any:
    topic = catalogue.create_topic(session, municipality_id=user.municipality_id, **body.model_dump())
    session.commit()
    return topic


@router.get("/districts", response_model=list[DistrictOut])
def list_districts(
    user: StaffUser = Depends(require_permission("subscribers.read")), session: Session = Depends(get_session)
) -> list[Any]:
    return catalogue.list_districts(session, municipality_id=user.municipality_id)


@router.post("/districts", response_model=DistrictOut, status_code=201)
def create_district(
    body: DistrictIn, user: StaffUser = Depends(require_permission("admin")), session: Session = Depends(get_session)
) -> Any:
    district = catalogue.create_district(session, municipality_id=user.municipality_id, key=body.key, name=body.name)
    session.commit()
    return district


# --- staff: subscribers ---------------------------------------------------------------------


@router.get("/subscribers", response_model=SubscriberPageOut)
def list_subscribers(
    state: str | None = Query(None, description="pending, active or stopped"),
    topic: str | None = Query(None, description="Topic key"),
    district: str | None = Query(None, description="District key"),
    q: str | None = Query(None, description="Part of a phone number, address or name"),
    page: int = Query(1, ge=1),
    per_page: int = Query(25, ge=1, le=200),
    user: StaffUser = Depends(require_permission("subscribers.read")),
    session: Session = Depends(get_session),
) -> SubscriberPageOut:
    found = listing.list_subscribers(
        session,
        municipality_id=user.municipality_id,
        state=state,
        topic=topic,
        district=district,
        search=q,
        page=page,
        per_page=per_page,
    )
    return SubscriberPageOut(
        items=[SubscriberOut(**_subscriber_out(item)) for item in found.items],
        total=found.total,
        page=found.page,
        per_page=found.per_page,
        pages=max(1, math.ceil(found.total / found.per_page)),
    )


@router.get("/subscribers/{contact_id}", response_model=SubscriberDetailOut)
def get_subscriber(
    contact_id: int,
    user: StaffUser = Depends(require_permission("subscribers.read")),
    session: Session = Depends(get_session),
) -> SubscriberDetailOut:
    """One subscriber with the full consent record, oldest first."""
    found = listing.get_subscriber(session, municipality_id=user.municipality_id, contact_id=contact_id)
    events = consent.consent_history(session, municipality_id=user.municipality_id, contact_id=contact_id)
    return SubscriberDetailOut(
        **_subscriber_out(found),
        consent_events=[ConsentEventOut(**event.model_dump()) for event in events],
    )


@router.post("/subscribers/{contact_id}/stop", response_model=SubscriberDetailOut)
def stop_subscriber(
    contact_id: int,
    user: StaffUser = Depends(require_permission("subscribers.write")),
    session: Session = Depends(get_session),
) -> SubscriberDetailOut:
    """Records a STOP the citizen gave by phone, letter or at the counter."""
    consent.stop(
        session,
        municipality_id=user.municipality_id,
        contact_id=contact_id,
        channel_kind=None,
        source="api",
        evidence={"actor_id": user.id},
    )
    session.commit()
    return get_subscriber(contact_id, user, session)


@router.get("/contacts/{contact_id}/export")
def export_contact(
    contact_id: int,
    user: StaffUser = Depends(require_permission("subscribers.write")),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """Everything about the citizen as one JSON document (DSGVO Art. 15)."""
    return gdpr.export_contact(session, user.municipality_id, contact_id)


@router.post("/contacts/{contact_id}/erase")
def erase_contact(
    contact_id: int,
    user: StaffUser = Depends(require_permission("subscribers.erase")),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    """Erases the citizen's personal data (DSGVO Art. 17); counts stay. Administrators only."""
    kept = gdpr.erase_contact(session, municipality_id=user.municipality_id, contact_id=contact_id, actor_id=user.id)
    session.commit()
    return {"detail": f"Die Daten von Kontakt {contact_id} wurden gelöscht.", "kept": kept}


# --- public: signing up ---------------------------------------------------------------------


def _municipality(slug: str, session: Session = Depends(get_session)) -> Municipality:
    return get_municipality(session, slug=slug)


@public_router.get("/topics", response_model=list[TopicOut])
def public_topics(
    municipality: Municipality = Depends(_municipality), session: Session = Depends(get_session)
) -> list[Any]:
    assert municipality.id is not None
    return catalogue.list_topics(session, municipality_id=municipality.id)


@public_router.get("/districts", response_model=list[DistrictOut])
def public_districts(
    municipality: Municipality = Depends(_municipality), session: Session = Depends(get_session)
) -> list[Any]:
    assert municipality.id is not None
    return catalogue.list_districts(session, municipality_id=municipality.id)


@public_router.post("/subscriptions/phone", response_model=CodeSentOut, status_code=202)
def start_phone_signup(
    body: PhoneSignupIn,
    request: Request,
    municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> CodeSentOut:
    """Sends a 6-digit code by SMS; asking again within 60 s, or too often, is answered 429."""
    started = verification.start_verification(
        session,
        municipality=municipality,
        phone=body.phone,
        topics=body.topics,
        district=body.district,
        language=body.language,
        client_ip=client_address(request),
        opt_in=body.opt_in,
    )
    return CodeSentOut(
        detail=gettext_for(body.language).gettext(_CODE_SENT),
        phone=started.phone,
        expires_at=started.expires_at,
        resend_after_seconds=started.resend_after_seconds,
    )


@public_router.post("/subscriptions/phone/verify", response_model=SubscriberOut)
def verify_phone_signup(
    body: PhoneVerifyIn,
    request: Request,
    municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> SubscriberOut:
    """Checks the code; if right, the number is subscribed as asked."""
    verified = verification.verify_code(
        session,
        municipality=municipality,
        phone=body.phone,
        code=body.code,
        client_ip=client_address(request),
        user_agent=request.headers.get("user-agent"),
        language=body.language,
    )
    session.commit()
    assert municipality.id is not None
    found = listing.get_subscriber(session, municipality_id=municipality.id, contact_id=verified.contact_id)
    return SubscriberOut(**_subscriber_out(found))


@public_router.post("/subscriptions/email", response_model=NoticeOut, status_code=202)
def start_email_signup(
    body: EmailSignupIn,
    request: Request,
    municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> NoticeOut:
    """Mails a confirmation link (double opt-in); nothing is subscribed until it is followed."""
    email_opt_in.request_email_subscription(
        session,
        settings=get_settings(),
        municipality=municipality,
        email=body.email,
        topics=body.topics,
        district=body.district,
        language=body.language,
        client_ip=client_address(request),
    )
    return NoticeOut(detail=gettext_for(body.language).gettext(_MAIL_SENT))


@public_router.get("/subscriptions/email/confirm", response_class=HTMLResponse)
def confirm_email_page(
    token: str, request: Request, municipality: Municipality = Depends(_municipality)
) -> HTMLResponse:
    """The link from the mail shows a button: mail scanners open links on their own and must not confirm."""
    try:
        email_opt_in.check_email_confirmation(municipality=municipality, token=token)
    except DomainError as error:
        return _page(request, municipality, error.text(language_of(request)), error.status_code)
    return render(request, "citizen/confirm_signup.html", title=translate(request, "Anmeldung"),
                  municipality=municipality.name, slug=municipality.slug)  # fmt: skip


@public_router.post("/subscriptions/email/confirm", response_class=HTMLResponse)
def confirm_email_signup(
    token: str,
    request: Request,
    municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> Response:
    """Confirms the subscription (the button on the page, or a client asking for JSON).

    No CSRF token here, unlike the pages' forms: the signed token from the mail is the authority,
    it can only confirm what its own address asked for, and API clients post it without a page.
    """
    wants_json = "application/json" in request.headers.get("accept", "")
    try:
        change = email_opt_in.confirm_email_subscription(
            session,
            municipality=municipality,
            token=token,
            client_ip=client_address(request),
            user_agent=request.headers.get("user-agent"),
        )
    except DomainError as error:
        if wants_json:
            raise
        return _page(request, municipality, error.text(language_of(request)), error.status_code)
    session.commit()
    # The page speaks the visitor's language; the JSON answer the one the subscription asked for.
    language = getattr(request.state, "language", "de") if not wants_json else change.subscription.language
    text = render_message(
        "email_confirmed.txt.j2",
        language,
        overrides=preference(municipality, "texts"),
        municipality=municipality.name,
    )
    if wants_json:
        return JSONResponse({"detail": text, "state": change.subscription.state})
    return _page(request, municipality, text, 200)


def _page(request: Request, municipality: Municipality, text: str, status_code: int) -> HTMLResponse:
    """A short page for a citizen who arrives from a mail client, not from the staff app."""
    title = translate(request, "Anmeldung") if status_code < 400 else translate(request, "Das hat nicht geklappt")
    return render(request, "citizen/notice.html", status_code=status_code, title=title,
                  municipality=municipality.name,
                  slug=municipality.slug, text=text, failed=status_code >= 400)  # fmt: skip
