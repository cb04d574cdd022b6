"""The staff's Mängelmelder pages: the map of reports beside their list, filtered like the public list (category,
district, status), each pin leading to its case; and beside a conversation in the inbox the report's place, the
reports merged into it, and the open reports nearby that may be the same problem, each to merge with one button.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlmodel import Session, col, select

from hub.db import get_session
from hub.i18n import translate
from hub.inbox.models import Conversation
from hub.problems import listing, service
from hub.problems.maps import map_settings, pin
from hub.problems.models import ProblemCategory, ProblemReport
from hub.problems.web_form import reporters_of
from hub.settings import get_settings
from hub.subscribers.catalogue import list_districts
from hub.subscribers.models import District
from hub.tenancy.models import Municipality
from hub.web.auth import Staff, require
from hub.web.rendering import render
from hub.web.security import verify_csrf

router = APIRouter(prefix="/app/problems", include_in_schema=False, dependencies=[Depends(verify_csrf)])

# The most reports one map shows: a town's open reports fit; beyond it the filters narrow them down.
MAP_LIMIT = 500
REPORTS_BESIDE_CONVERSATION = 5


@dataclass(frozen=True)
class StaffReport:
    report: ProblemReport
    conversation: Conversation
    category: ProblemCategory | None
    district: str | None
    reporters: int


def staff_reports(session: Session, *, municipality_id: int, filters: listing.Filters) -> list[StaffReport]:
    """The town's reports with a place, public or not, merged ones left out (they follow the one that remains)."""
    query = (
        select(ProblemReport, Conversation, ProblemCategory, District.name)
        .join(Conversation, col(Conversation.id) == ProblemReport.conversation_id)
        .outerjoin(ProblemCategory, col(ProblemCategory.id) == ProblemReport.category_id)
        .outerjoin(District, col(District.id) == ProblemReport.district_id)
        .where(
            ProblemReport.municipality_id == municipality_id,
            col(ProblemReport.merged_into_id).is_(None),
            col(ProblemReport.lat).is_not(None),
        )
        .order_by(col(ProblemReport.created_at).desc(), col(ProblemReport.id).desc())
        .limit(MAP_LIMIT)
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
    counts = reporters_of(session, [report.id for report, _, _, _ in rows if report.id is not None])
    return [
        StaffReport(report, conversation, category, district, counts.get(report.id or 0, 1))
        for report, conversation, category, district in rows
    ]


def _category_name(category: ProblemCategory | None, language: str) -> str | None:
    return service.category_name(category, language) if category is not None else None


@router.get("", response_class=HTMLResponse)
def problem_map(
    request: Request,
    category: Annotated[str, Query(max_length=40)] = "",
    district: Annotated[str, Query(max_length=40)] = "",
    status: Annotated[str, Query(pattern="^(offen|erledigt|alle)$")] = "offen",
    staff: Staff = Depends(require("problems.read")),
    session: Session = Depends(get_session),
) -> HTMLResponse:
    """Open reports by default; every pin and row leads to the report's case in the inbox."""
    filters = listing.Filters(category=category or None, district=district or None,
                              status=None if status == "alle" else status)  # fmt: skip
    found = staff_reports(session, municipality_id=staff.municipality_id, filters=filters)
    language = request.state.language
    return render(
        request, "staff/problems/map.html", title=translate(request, "Mängelmelder"), reports=found,
        filters=filters, status=status,
        categories=service.list_categories(session, municipality_id=staff.municipality_id),
        districts=list_districts(session, municipality_id=staff.municipality_id), limit=MAP_LIMIT,
        pins=[pin(item.report.lat or 0.0, item.report.lon or 0.0, item.conversation.reference,
                  _category_name(item.category, language), item.report.address,
                  url=f"/app/inbox/{item.conversation.id}") for item in found],
        map=map_settings(session, get_settings(), staff.municipality),
    )  # fmt: skip


@router.post("/reports/{report_id:int}/merge")
def merge_duplicate(
    report_id: int,
    source: Annotated[int, Form()] = 0,
    staff: Staff = Depends(require("problems.write")),
    session: Session = Depends(get_session),
) -> RedirectResponse:
    """Merges the duplicate `source` into this report, tells its reporter, and goes back to this report's case."""
    target = service.get_report(session, municipality_id=staff.municipality_id, report_id=report_id)
    queued = service.merge_reports(session, municipality_id=staff.municipality_id, target_id=report_id,
                                   source_ids=[source], author=staff.user)  # fmt: skip
    service.send_committed(session, queued)
    return RedirectResponse(f"/app/inbox/{target.conversation_id}?done=reports_merged", status_code=303)


def _still_open(report: ProblemReport, conversation: Conversation) -> bool:
    return report.merged_into_id is None and conversation.status != "resolved"


def contact_panel(session: Session, municipality_id: int, contact_id: int) -> dict[str, Any]:
    """The citizen's latest reports beside a conversation (hub.contacts.registry.CONVERSATION_PANEL), with the map
    settings for the small map of the one the conversation is, the cases merged into each, and for each open one
    the open reports nearby that may be duplicates."""
    rows = session.exec(
        select(ProblemReport, Conversation, ProblemCategory)
        .join(Conversation, col(Conversation.id) == ProblemReport.conversation_id)
        .outerjoin(ProblemCategory, col(ProblemCategory.id) == ProblemReport.category_id)
        .where(ProblemReport.municipality_id == municipality_id, Conversation.contact_id == contact_id)
        .order_by(col(ProblemReport.id).desc())
        .limit(REPORTS_BESIDE_CONVERSATION)
    ).all()
    if not rows:
        return {"problem_reports": []}
    town = session.get(Municipality, municipality_id)
    assert town is not None
    settings = get_settings()
    counts = reporters_of(session, [report.id for report, _, _ in rows if report.id is not None])
    return {
        "problem_reports": [
            StaffReport(report, owner, category, None, counts.get(report.id or 0, 1))
            for report, owner, category in rows
        ],
        "problem_map": map_settings(session, settings, town),
        "problem_merged": {
            report.id: service.merged_cases(session, report_id=report.id) for report, _, _ in rows if report.id
        },
        "problem_duplicates": {
            report.id: service.duplicates_of(
                session, settings=settings, municipality_id=municipality_id, report_id=report.id
            )
            for report, owner, _ in rows
            if report.id and _still_open(report, owner)
        },
    }
