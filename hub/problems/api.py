"""JSON routes of the Mängelmelder: categories, district shapes, duplicates, merging and public status for staff;
the public list of reports and their released photos for everyone.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlmodel import Session

from hub.db import get_session
from hub.problems import listing, places, service
from hub.problems.models import ProblemCategory
from hub.settings import Settings, get_settings
from hub.tenancy.auth import require_permission
from hub.tenancy.models import StaffUser
from hub.tenancy.service import get_municipality

router = APIRouter(prefix="/api/v1/problems", tags=["problems"])
public_router = APIRouter(prefix="/api/v1/public/{slug}/problems", tags=["public"])


class CategoryIn(BaseModel):
    key: str = Field(max_length=40, description="Lower-case keyword citizens type, e.g. laterne.")
    name_de: str = Field(max_length=120)
    name_en: str | None = Field(default=None, max_length=120)
    team_id: int | None = None
    labels: list[str] = Field(default_factory=list, max_length=10)
    response_hours: int | None = None


class CategoryOut(BaseModel):
    id: int
    key: str
    name_de: str
    name_en: str
    team_id: int | None
    labels: list[str]
    response_hours: int | None


class ShapeIn(BaseModel):
    geometry: dict[str, Any] = Field(description="A GeoJSON Polygon or MultiPolygon (or a Feature with one).")


class NearbyOut(BaseModel):
    id: int
    reference: str
    metres: float
    lat: float | None
    lon: float | None
    address: str | None


class MergeReportsIn(BaseModel):
    source_ids: list[int] = Field(min_length=1, max_length=50, description="Reports to merge into this one.")


class PublicStatusIn(BaseModel):
    text: str = Field(max_length=300, description="What the public list and every reporter are told.")
    public: bool | None = None
    photos_released: bool | None = None


class Queued(BaseModel):
    told: int = Field(description="Messages queued to reporters.")


def _sent(session: Session, message_ids: list[int]) -> Queued:
    return Queued(told=service.send_committed(session, message_ids))


def _category_out(category: ProblemCategory) -> CategoryOut:
    return CategoryOut.model_validate(category, from_attributes=True)


@router.get("/categories", response_model=list[CategoryOut])
def list_categories(
    user: StaffUser = Depends(require_permission("problems.read")), session: Session = Depends(get_session)
) -> list[CategoryOut]:
    return [_category_out(item) for item in service.list_categories(session, municipality_id=user.municipality_id)]


@router.post("/categories", response_model=CategoryOut, status_code=201)
def create_category(
    data: CategoryIn, user: StaffUser = Depends(require_permission("admin")), session: Session = Depends(get_session)
) -> CategoryOut:
    category = service.create_category(
        session, municipality_id=user.municipality_id, **data.model_dump(exclude={"labels"}), labels=tuple(data.labels)
    )
    session.commit()
    return _category_out(category)


@router.put("/districts/{district_id}/shape", status_code=204)
def put_district_shape(
    district_id: int, data: ShapeIn, user: StaffUser = Depends(require_permission("admin")),
    session: Session = Depends(get_session),
) -> Response:  # fmt: skip
    places.set_shape_of(session, municipality_id=user.municipality_id, district_id=district_id, geometry=data.geometry)
    session.commit()
    return Response(status_code=204)


@router.get("/reports/{report_id}/duplicates", response_model=list[NearbyOut])
def duplicates(
    report_id: int, user: StaffUser = Depends(require_permission("problems.read")),
    session: Session = Depends(get_session), settings: Settings = Depends(get_settings),
) -> list[NearbyOut]:  # fmt: skip
    found = service.duplicates_of(session, settings=settings, municipality_id=user.municipality_id, report_id=report_id)
    return [NearbyOut(id=item.report.id or 0, reference=item.reference, metres=item.metres, lat=item.report.lat,
                      lon=item.report.lon, address=item.report.address) for item in found]  # fmt: skip


@router.post("/reports/{report_id}/merge", response_model=Queued)
def merge(
    report_id: int, data: MergeReportsIn, user: StaffUser = Depends(require_permission("problems.write")),
    session: Session = Depends(get_session),
) -> Queued:  # fmt: skip
    queued = service.merge_reports(
        session, municipality_id=user.municipality_id, target_id=report_id, source_ids=data.source_ids, author=user
    )
    return _sent(session, queued)


@router.post("/reports/{report_id}/status", response_model=Queued)
def public_status(
    report_id: int, data: PublicStatusIn, user: StaffUser = Depends(require_permission("problems.write")),
    session: Session = Depends(get_session),
) -> Queued:  # fmt: skip
    queued = service.set_public_status(session, municipality_id=user.municipality_id, report_id=report_id,
                                       **data.model_dump())  # fmt: skip
    return _sent(session, queued)


@public_router.get("")
def public_list(
    slug: str, category: str | None = Query(None, max_length=40), district: str | None = Query(None, max_length=40),
    status: str | None = Query(None, pattern="^(offen|erledigt)$"), session: Session = Depends(get_session),
) -> list[dict[str, Any]]:  # fmt: skip
    municipality = get_municipality(session, slug=slug)
    assert municipality.id is not None
    filters = listing.Filters(category=category, district=district, status=status)
    return listing.public_reports(session, municipality_id=municipality.id, filters=filters, slug=slug)


@public_router.get("/photos/{photo_id}")
def public_photo(slug: str, photo_id: int, session: Session = Depends(get_session)) -> Response:
    municipality = get_municipality(session, slug=slug)
    assert municipality.id is not None
    photo = listing.released_photo(session, municipality_id=municipality.id, photo_id=photo_id)
    return Response(photo.display, media_type=photo.display_type, headers={"Cache-Control": "public, max-age=3600"})
