"""What the public may see of problem reports: no names, no contacts, no texts, photos only once staff released them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from hub.errors import NotFound
from hub.i18n import N_
from hub.inbox.models import Conversation
from hub.inbox.public_status import StatusSection
from hub.problems.models import ProblemCategory, ProblemPhoto, ProblemReport
from hub.subscribers.models import District

# The public words for a conversation's status (a report's own public text says more).
PUBLIC_STATES = {"open": "offen", "pending": "offen", "resolved": "erledigt"}


@dataclass(frozen=True)
class Filters:
    category: str | None = None
    district: str | None = None
    status: str | None = None  # offen or erledigt


def _photo_ids(session: Session, report_ids: list[int]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    rows = session.exec(
        select(ProblemPhoto.report_id, ProblemPhoto.id)
        .where(col(ProblemPhoto.report_id).in_(report_ids))
        .order_by(col(ProblemPhoto.id))
    )
    for report_id, photo_id in rows:
        assert photo_id is not None
        found.setdefault(report_id, []).append(photo_id)
    return found


def public_reports(session: Session, *, municipality_id: int, filters: Filters, slug: str) -> list[dict[str, Any]]:
    """The town's public reports, newest first: category, place, district, status, released photos.

    `district` is the district's key (what the filter takes), `district_name` what people read.
    """
    query = (
        select(ProblemReport, Conversation, ProblemCategory, District)
        .join(Conversation, col(Conversation.id) == ProblemReport.conversation_id)
        .join(ProblemCategory, col(ProblemCategory.id) == ProblemReport.category_id)
        .outerjoin(District, col(District.id) == ProblemReport.district_id)
        .where(
            ProblemReport.municipality_id == municipality_id,
            col(ProblemReport.public).is_(True),
            col(ProblemReport.merged_into_id).is_(None),
            col(ProblemReport.lat).is_not(None),
        )
        .order_by(col(ProblemReport.created_at).desc(), col(ProblemReport.id).desc())
    )
    if filters.category:
        query = query.where(ProblemCategory.key == filters.category.lower())
    if filters.district:
        query = query.where(District.key == filters.district.lower())
    if filters.status == "erledigt":
        query = query.where(Conversation.status == "resolved")
    elif filters.status == "offen":
        query = query.where(Conversation.status != "resolved")
    rows = session.exec(query).all()
    photos = _photo_ids(session, [report.id for report, _, _, _ in rows if report.photos_released and report.id])
    return [
        {
            "id": report.id,
            "reference": conversation.reference,
            "category": {"key": category.key, "name_de": category.name_de, "name_en": category.name_en},
            "lat": report.lat,
            "lon": report.lon,
            "address": report.address,
            "district": district.key if district is not None else None,
            "district_name": district.name if district is not None else None,
            "status": PUBLIC_STATES.get(conversation.status, "offen"),
            "public_status": report.public_status,
            "reported_at": report.created_at.isoformat(),
            "photos": [
                f"/api/v1/public/{slug}/problems/photos/{photo_id}" for photo_id in photos.get(report.id or 0, [])
            ],
        }
        for report, conversation, category, district in rows
    ]


def released_photo(session: Session, *, municipality_id: int, photo_id: int) -> ProblemPhoto:
    """A photo's display copy for the public, only if staff released the photos of a public report."""
    photo = session.get(ProblemPhoto, photo_id)
    report = session.get(ProblemReport, photo.report_id) if photo is not None else None
    if (
        photo is None
        or report is None
        or report.municipality_id != municipality_id
        or not (report.public and report.photos_released)
    ):
        raise NotFound(N_("Dieses Foto gibt es nicht oder es ist nicht freigegeben."))
    return photo


def status_section(session: Session, conversation: Conversation) -> StatusSection | None:
    """The report's place, category, public status and released photos on the reporter's status page."""
    assert conversation.id is not None
    report = session.exec(select(ProblemReport).where(ProblemReport.conversation_id == conversation.id)).first()
    if report is None:
        return None
    category = session.get(ProblemCategory, report.category_id) if report.category_id else None
    district = session.get(District, report.district_id) if report.district_id else None
    photos = _photo_ids(session, [report.id]).get(report.id, []) if report.photos_released and report.id else []
    merged_into = session.get(ProblemReport, report.merged_into_id) if report.merged_into_id else None
    target = session.get(Conversation, merged_into.conversation_id) if merged_into is not None else None
    return StatusSection(
        template="ui/citizen/problem_section.html",
        values={
            "report": report,
            "category": category,
            "district": district.name if district is not None else None,
            "photos": [f"/anfrage/{conversation.reference}/{conversation.public_token}/foto/{pid}" for pid in photos],
            "merged_into": target.reference if target is not None else None,
        },
    )
