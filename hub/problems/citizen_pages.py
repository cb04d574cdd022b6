"""The citizens' Mängelmelder pages (/{slug}/meldung, /{slug}/meldungen): the form with its map, "ist das schon
gemeldet?" with "ich auch", being told of progress, and the public list and map of reports.

The steps after the form (the reference, the code, the mailed link) are every web form's (hub.webcases.steps).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from hub.db import get_session
from hub.errors import DomainError
from hub.i18n import N_, language_of, translate
from hub.problems import listing, service, web_form
from hub.problems.maps import map_settings, pin
from hub.settings import get_settings
from hub.subscribers import signed_links
from hub.subscribers.catalogue import list_districts
from hub.tenancy.models import Municipality
from hub.tenancy.service import get_municipality
from hub.web.rendering import render
from hub.web.security import verify_csrf
from hub.webcases import intake
from hub.webcases.steps import Steps

router = APIRouter(prefix="/{slug}", tags=["public"], include_in_schema=False, dependencies=[Depends(verify_csrf)])

STEPS = Steps(
    form_state=signed_links.FormState(cookie="rathaus_meldung", purpose="web-problem-report", seconds=60 * 60),
    proof=web_form.PROOF, path="/meldung", filed_template="citizen/problem_filed.html",
    filed_title=N_("Vielen Dank für Ihre Meldung"), confirm_template="citizen/problem_confirm.html",
    confirmed_text=N_("Danke! Wir informieren Sie per E-Mail, wie es mit Ihrer Meldung %(reference)s weitergeht."),
)  # fmt: skip


def _municipality(slug: str, session: Session = Depends(get_session)) -> Municipality:
    return get_municipality(session, slug=slug)


def _form(
    request: Request, session: Session, municipality: Municipality, *, values: dict[str, str],
    error: DomainError | None = None,
) -> HTMLResponse:  # fmt: skip
    assert municipality.id is not None
    return render(
        request, "citizen/problem_form.html", status_code=error.status_code if error else 200,
        title=translate(request, "Mangel melden"), municipality=municipality.name, slug=municipality.slug,
        categories=service.list_categories(session, municipality_id=municipality.id), values=values,
        error=error.text(language_of(request)) if error else None, max_photos=intake.MAX_PHOTOS,
        map=map_settings(session, get_settings(), municipality),
    )  # fmt: skip


@router.get("/meldung", response_class=HTMLResponse)
def report_form(
    request: Request, municipality: Municipality = Depends(_municipality), session: Session = Depends(get_session)
) -> HTMLResponse:
    return _form(request, session, municipality, values={"way": "none"})


@router.post("/meldung", response_class=HTMLResponse)
async def send_report(
    request: Request,
    category: Annotated[str, Form(max_length=40)] = "",
    description: Annotated[str, Form(max_length=web_form.MAX_DESCRIPTION + 100)] = "",
    lat: Annotated[str, Form(max_length=40)] = "",
    lon: Annotated[str, Form(max_length=40)] = "",
    address: Annotated[str, Form(max_length=300)] = "",
    way: Annotated[str, Form(max_length=10)] = "none",
    phone: Annotated[str, Form(max_length=40)] = "",
    email: Annotated[str, Form(max_length=254)] = "",
    photos: Annotated[list[UploadFile], File()] = [],  # noqa: B006 (FastAPI copies the default)
    municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> Response:
    """Checks everything first (the way to hear of it, the place, the photos), then files the report whole."""
    values = {"category": category, "description": description, "lat": lat, "lon": lon, "address": address,
              "way": way, "phone": phone, "email": email}  # fmt: skip
    settings, language = get_settings(), language_of(request)
    try:
        follow = intake.check_follow(municipality, intake.Follow(way=way, phone=phone, email=email), language)
        service.category_by_key(session, municipality_id=municipality.id or 0, word=category)
        place = web_form.find_place(
            session, settings=settings, municipality=municipality, lat=lat, lon=lon, address=address
        )
        checked = intake.check_photos(settings, await intake.read_uploads(photos, settings))
        conversation = web_form.file_report(
            session, settings=settings, municipality=municipality, category_key=category, description=description,
            place=place, photos=checked, language=language,
        )  # fmt: skip
    except DomainError as error:
        session.rollback()
        return _form(request, session, municipality, values=values, error=error)
    return STEPS.after_filing(request, session, municipality, conversation, follow)


@router.post("/meldung/ich-auch/{report_id:int}", response_class=HTMLResponse)
async def support_report(
    request: Request,
    report_id: int,
    way: Annotated[str, Form(max_length=10)] = "none",
    phone: Annotated[str, Form(max_length=40)] = "",
    email: Annotated[str, Form(max_length=254)] = "",
    photos: Annotated[list[UploadFile], File()] = [],  # noqa: B006 (FastAPI copies the default)
    municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> Response:
    """An "ich auch" on a nearby report: counted as one more reporter, told of progress by the way chosen.

    The form's photos come along, checked like a new report's, to the report's case (unreleased).
    """
    values = {"way": way, "phone": phone, "email": email}
    settings, language = get_settings(), language_of(request)
    try:
        follow = intake.check_follow(municipality, intake.Follow(way=way, phone=phone, email=email), language)
        checked = intake.check_photos(settings, await intake.read_uploads(photos, settings))
        conversation, target = web_form.support(
            session, settings=settings, municipality=municipality, report_id=report_id, language=language,
            photos=checked,
        )  # fmt: skip
    except DomainError as error:
        session.rollback()
        return _form(request, session, municipality, values=values, error=error)
    return STEPS.after_filing(request, session, municipality, conversation, follow, s=target)


@router.get("/meldung/in-der-naehe")
def nearby_reports(
    category: Annotated[str, Query(max_length=40)] = "",
    lat: Annotated[float, Query(ge=-90, le=90)] = 0.0,
    lon: Annotated[float, Query(ge=-180, le=180)] = 0.0,
    municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> list[dict[str, Any]]:
    """Open public reports of the category near a pin, for "Ist das schon gemeldet?" (no personal data)."""
    return web_form.nearby(
        session, settings=get_settings(), municipality=municipality, category_key=category, lat=lat, lon=lon
    )


@router.get("/meldung/danke", response_class=HTMLResponse)
def filed(request: Request, municipality: Municipality = Depends(_municipality)) -> Response:
    return STEPS.filed(request, municipality)


@router.post("/meldung/code", response_class=HTMLResponse)
def check_code(
    request: Request,
    code: Annotated[str, Form(max_length=20)] = "",
    municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> Response:
    return STEPS.check_code(request, session, municipality, code)


@router.post("/meldung/code/neu", response_class=HTMLResponse)
def send_code_again(
    request: Request, municipality: Municipality = Depends(_municipality), session: Session = Depends(get_session)
) -> Response:
    return STEPS.send_code_again(request, session, municipality)


@router.get("/meldung/bestaetigen", response_class=HTMLResponse)
def confirm_page(
    request: Request, token: str = "", municipality: Municipality = Depends(_municipality)
) -> HTMLResponse:
    return STEPS.confirm_page(request, municipality, token)


@router.post("/meldung/bestaetigen", response_class=HTMLResponse)
def confirm(
    request: Request, token: str = "", municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> HTMLResponse:  # fmt: skip
    return STEPS.confirm(request, session, municipality, token)


@router.get("/meldungen", response_class=HTMLResponse)
def public_list(
    request: Request,
    category: Annotated[str, Query(max_length=40)] = "",
    district: Annotated[str, Query(max_length=40)] = "",
    status: Annotated[str, Query(pattern="^(|offen|erledigt)$")] = "",
    municipality: Municipality = Depends(_municipality),
    session: Session = Depends(get_session),
) -> HTMLResponse:
    """The public list of reports with its map, filtered like the API (no names, contacts or texts)."""
    assert municipality.id is not None
    filters = listing.Filters(category=category or None, district=district or None, status=status or None)
    reports = listing.public_reports(session, municipality_id=municipality.id, filters=filters, slug=municipality.slug)
    return render(
        request, "citizen/problem_list.html", title=translate(request, "Gemeldete Mängel"),
        municipality=municipality.name, slug=municipality.slug, filters=filters,
        categories=service.list_categories(session, municipality_id=municipality.id),
        districts=list_districts(session, municipality_id=municipality.id),
        reports=reports,
        pins=[pin(item["lat"], item["lon"], item["reference"], item["category"][f"name_{language_of(request)}"],
                  item["address"]) for item in reports],
        map=map_settings(session, get_settings(), municipality),
    )  # fmt: skip
