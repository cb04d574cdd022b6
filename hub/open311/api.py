"""Open311 GeoReport v2 at /open311/v2/{slug}/, one endpoint per town, and the admins' routes for client keys.

The town is the path's slug; a `jurisdiction_id`, which the spec asks for on endpoints that
serve several jurisdictions, may be given too and must then be that slug. Every refusal is in
the spec's error format, in German: 404 for an unknown town, service or request, 403 for a
missing or invalid api_key, 400 for everything else.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlmodel import Session

from hub.db import get_session
from hub.errors import DomainError, Forbidden, NotFound
from hub.i18n import N_
from hub.open311 import service, wire
from hub.open311.models import Open311Client
from hub.settings import Settings, get_settings
from hub.tenancy.auth import require_permission
from hub.tenancy.models import Municipality, StaffUser
from hub.tenancy.service import get_municipality

MAX_FORM_BYTES = 64 * 1024

router = APIRouter(prefix="/open311/v2/{slug}", tags=["open311"])
admin_router = APIRouter(prefix="/api/v1/open311", tags=["open311"])


def _town(session: Session, slug: str, jurisdiction_id: str | None) -> Municipality:
    if jurisdiction_id and jurisdiction_id != slug:
        raise NotFound(
            N_("jurisdiction_id {jurisdiction!r} gehört nicht zu diesem Endpunkt."), jurisdiction=jurisdiction_id
        )
    return get_municipality(session, slug=slug)


def _respond(
    request: Request, session: Session, slug: str, fmt: str, root: str,
    produce: Callable[..., Any], *, status_code: int = 200,
) -> Response:  # fmt: skip
    """Calls `produce(town, fields)`, the fields being the query's or the form's; a refusal becomes the spec's error."""
    fields = dict(request.query_params) | getattr(request.state, "open311_form", {})
    try:
        if fmt not in wire.FORMATS:
            raise NotFound(N_("Das Format {fmt!r} gibt es nicht: .xml oder .json."), fmt=fmt)
        result = produce(town=_town(session, slug, fields.get("jurisdiction_id")), fields=fields)
    except DomainError as error:
        session.rollback()
        code = error.status_code if isinstance(error, NotFound | Forbidden) else 400
        return wire.errors(fmt, code, error.text())
    session.commit()
    return wire.answer(fmt, root, result, status_code)


async def read_form(request: Request) -> None:
    """A POST's application/x-www-form-urlencoded fields (UTF-8, as the spec says), kept for _respond."""
    body = await request.body()
    pairs = parse_qsl(body[:MAX_FORM_BYTES].decode("utf-8", errors="replace"), keep_blank_values=True)
    request.state.open311_form = dict(pairs)


@router.get("/discovery.{fmt}")
def discovery(
    slug: str, fmt: str, request: Request, session: Session = Depends(get_session),
    settings: Settings = Depends(get_settings),
) -> Response:  # fmt: skip
    return _respond(request, session, slug, fmt, "discovery", partial(service.discovery, settings=settings))


@router.get("/services.{fmt}")
def services(slug: str, fmt: str, request: Request, session: Session = Depends(get_session)) -> Response:
    return _respond(request, session, slug, fmt, "services", partial(service.services, session))


@router.get("/services/{service_code}.{fmt}")
def service_definition(
    slug: str, service_code: str, fmt: str, request: Request, session: Session = Depends(get_session)
) -> Response:
    produce = partial(service.service_definition, session, service_code=service_code)
    return _respond(request, session, slug, fmt, "service_definition", produce)


@router.post("/requests.{fmt}", dependencies=[Depends(read_form)])
def create_request(
    slug: str, fmt: str, request: Request, session: Session = Depends(get_session),
    settings: Settings = Depends(get_settings),
) -> Response:  # fmt: skip
    produce = partial(service.file_request, session, settings=settings)
    return _respond(request, session, slug, fmt, "service_requests", produce, status_code=201)


@router.get("/requests.{fmt}")
def list_requests(
    slug: str, fmt: str, request: Request, session: Session = Depends(get_session),
    settings: Settings = Depends(get_settings),
) -> Response:  # fmt: skip
    produce = partial(service.find_requests, session, settings=settings)
    return _respond(request, session, slug, fmt, "service_requests", produce)


@router.get("/requests/{request_id}.{fmt}")
def one_request(
    slug: str, request_id: str, fmt: str, request: Request, session: Session = Depends(get_session),
    settings: Settings = Depends(get_settings),
) -> Response:  # fmt: skip
    produce = partial(service.one_request, session, settings=settings, request_id=request_id)
    return _respond(request, session, slug, fmt, "service_requests", produce)


# --- the admins' routes: client keys -----------------------------------------------------------


class ClientIn(BaseModel):
    name: str = Field(min_length=1, max_length=120, description="The app the key is for, e.g. the town's app.")


class ClientOut(BaseModel):
    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class IssuedClient(ClientOut):
    api_key: str = Field(description="Shown once; the hub keeps only its digest.")


def _client_out(client: Open311Client) -> ClientOut:
    return ClientOut.model_validate(client, from_attributes=True)


@admin_router.get("/clients", response_model=list[ClientOut])
def list_clients(
    user: StaffUser = Depends(require_permission("admin")), session: Session = Depends(get_session)
) -> list[ClientOut]:
    return [_client_out(client) for client in service.list_clients(session, municipality_id=user.municipality_id)]


@admin_router.post("/clients", response_model=IssuedClient, status_code=201)
def issue_client(
    data: ClientIn, user: StaffUser = Depends(require_permission("admin")), session: Session = Depends(get_session)
) -> IssuedClient:
    client, key = service.issue_key(session, municipality_id=user.municipality_id, name=data.name)
    session.commit()
    return IssuedClient(**_client_out(client).model_dump(), api_key=key)


@admin_router.delete("/clients/{client_id}", response_model=ClientOut)
def revoke_client(
    client_id: int, user: StaffUser = Depends(require_permission("admin")), session: Session = Depends(get_session)
) -> ClientOut:
    client = service.revoke_client(session, municipality_id=user.municipality_id, client_id=client_id)
    session.commit()
    return _client_out(client)
