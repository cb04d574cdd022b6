"""The broadcasts' part of a citizen's data: what was sent to them, and their survey answers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from hub.broadcasts.models import Broadcast, Delivery, SurveyAnswer
from hub.contacts.registry import ERASED, Erasure, PersonalData, plain


def export(session: Session, municipality_id: int, contact_id: int) -> dict[str, Any]:
    broadcasts = {
        b.id: b.title for b in session.exec(select(Broadcast).where(Broadcast.municipality_id == municipality_id))
    }
    deliveries = session.exec(
        select(Delivery)
        .where(Delivery.municipality_id == municipality_id, Delivery.contact_id == contact_id)
        .order_by(col(Delivery.created_at))
    ).all()
    answers = session.exec(
        select(SurveyAnswer)
        .where(SurveyAnswer.municipality_id == municipality_id, SurveyAnswer.contact_id == contact_id)
        .order_by(col(SurveyAnswer.answered_at))
    ).all()
    return {
        "deliveries": [
            {
                **plain(delivery, exclude={"claimed_at", "next_attempt_at"}),
                "broadcast": broadcasts.get(delivery.broadcast_id),
            }
            for delivery in deliveries
        ],
        "survey_answers": [{**plain(answer), "broadcast": broadcasts.get(answer.broadcast_id)} for answer in answers],
    }


def erase(session: Session, erasure: Erasure) -> dict[str, int]:
    """Addresses go; the answers stay as they are, since they say nothing about who gave them."""
    session.execute(
        update(Delivery)
        .where(
            col(Delivery.municipality_id) == erasure.municipality_id, col(Delivery.contact_id).in_(erasure.contact_ids)
        )
        .values(address=ERASED, error_message=None)
    )
    theirs = erasure.contact_ids
    return {
        "deliveries": len(session.exec(select(Delivery.id).where(col(Delivery.contact_id).in_(theirs))).all()),
        "survey_answers": len(
            session.exec(select(SurveyAnswer.id).where(col(SurveyAnswer.contact_id).in_(theirs))).all()
        ),
    }


PERSONAL_DATA = PersonalData(name="broadcasts", export=export, erase=erase)
