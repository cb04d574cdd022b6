"""The Mängelmelder's part of a citizen's data: the reports they made, with their place and photos.

Erasure deletes the photos (the display copies here; the stored copies are inbox attachments,
emptied by the inbox) and the address typed or found, but keeps category and point: the
pothole is still there for the town, and a point alone names no one once the case's texts are gone.
"""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from hub.contacts.registry import Erasure, PersonalData, plain
from hub.inbox.models import Conversation
from hub.problems.models import ProblemPhoto, ProblemReport


def _theirs(contact_ids: list[int]) -> Any:
    return (
        select(ProblemReport.id)
        .join(Conversation, col(Conversation.id) == ProblemReport.conversation_id)
        .where(col(Conversation.contact_id).in_(contact_ids))
    )


def export(session: Session, municipality_id: int, contact_id: int) -> dict[str, Any]:
    reports = session.exec(
        select(ProblemReport, Conversation.reference)
        .join(Conversation, col(Conversation.id) == ProblemReport.conversation_id)
        .where(ProblemReport.municipality_id == municipality_id, Conversation.contact_id == contact_id)
        .order_by(col(ProblemReport.id))
    ).all()
    photos: dict[int, list[ProblemPhoto]] = {}
    for photo in session.exec(
        select(ProblemPhoto).where(col(ProblemPhoto.report_id).in_([report.id for report, _ in reports]))
    ):
        photos.setdefault(photo.report_id, []).append(photo)
    return {
        "problem_reports": [
            {
                **plain(report),
                "reference": reference,
                "photos": [
                    {**plain(photo, exclude={"display"}), "display_base64": base64.b64encode(photo.display).decode()}
                    for photo in photos.get(report.id or 0, [])
                ],
            }
            for report, reference in reports
        ]
    }


def erase(session: Session, erasure: Erasure) -> dict[str, int]:
    theirs = _theirs(erasure.contact_ids)
    session.execute(delete(ProblemPhoto).where(col(ProblemPhoto.report_id).in_(theirs)))
    session.execute(
        update(ProblemReport)
        .where(col(ProblemReport.id).in_(theirs))
        .values(address=None, photos_released=False)
        .execution_options(synchronize_session=False)
    )
    # Kept (as the town's record of the problem), counted only where there are any, like other parts.
    kept = len(session.exec(theirs).all())
    return {"problem_reports": kept} if kept else {}


PERSONAL_DATA = PersonalData(name="problems", export=export, erase=erase)
