"""Survey answers and RSVPs: from a button press, a reply ("1".."9" or the option's word), or a signed email link.

One answer per contact and survey: a later answer replaces the earlier one. A plain reply
counts only for the newest open survey this contact was sent on this channel in the last
two weeks, so that a citizen's "2" in an ordinary conversation is not mistaken for a vote.
A counted answer and the thanks for it stay on the contact, outside any case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from hub.broadcasts.models import Broadcast, Delivery, SurveyAnswer
from hub.db import utcnow
from hub.errors import Conflict, InvalidInput
from hub.i18n import N_
from hub.inbox.context import InboundContext
from hub.inbox.service import queue_outbound
from hub.subscribers.listing import RECORD_LIMIT
from hub.templating import render_message

ANSWERABLE = ("survey", "invitation")
REPLY_WINDOW = timedelta(days=14)
PAYLOAD_PREFIX = "survey:"


@dataclass(frozen=True)
class Vote:
    broadcast: Broadcast
    option_index: int


def _is_open(broadcast: Broadcast) -> bool:
    return broadcast.closes_at is None or broadcast.closes_at > utcnow()


def vote_from_payload(session: Session, *, municipality_id: int, contact_id: int, payload: str) -> Vote | None:
    """A button press: "survey:<broadcast id>:<option index>", valid only for a survey the contact was sent."""
    if not payload.startswith(PAYLOAD_PREFIX):
        return None
    parts = payload.split(":")
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    broadcast = session.get(Broadcast, int(parts[1]))
    if broadcast is None or broadcast.municipality_id != municipality_id or broadcast.kind not in ANSWERABLE:
        return None
    if not _was_sent_to(session, broadcast.id, contact_id) or int(parts[2]) >= len(broadcast.options):
        return None
    return Vote(broadcast=broadcast, option_index=int(parts[2]))


def vote_from_reply(session: Session, *, contact_id: int, channel_account_id: int, text: str) -> Vote | None:
    """A typed reply: the option's number or its word, for the newest survey sent on this channel."""
    answer = " ".join(text.split()).strip(".!").casefold()
    if not answer or len(answer) > 60:
        return None
    survey = session.exec(
        select(Broadcast)
        .join(Delivery, col(Delivery.broadcast_id) == Broadcast.id)
        .where(
            col(Broadcast.kind).in_(ANSWERABLE),
            Delivery.contact_id == contact_id,
            Delivery.channel_account_id == channel_account_id,
            col(Delivery.state).in_(("sent", "delivered", "read")),
            col(Delivery.sent_at) >= utcnow() - REPLY_WINDOW,
        )
        .order_by(col(Delivery.sent_at).desc())
    ).first()
    if survey is None:
        return None
    if answer.isdigit() and 1 <= int(answer) <= len(survey.options):
        return Vote(broadcast=survey, option_index=int(answer) - 1)
    for index, option in enumerate(survey.options):
        if option.casefold() == answer:
            return Vote(broadcast=survey, option_index=index)
    return None


def _was_sent_to(session: Session, broadcast_id: int | None, contact_id: int) -> bool:
    return (
        session.exec(
            select(Delivery.id).where(Delivery.broadcast_id == broadcast_id, Delivery.contact_id == contact_id)
        ).first()
        is not None
    )


def record(session: Session, *, vote: Vote, contact_id: int, channel_kind: str) -> SurveyAnswer:
    """Stores the answer, replacing an earlier one; a closed survey refuses it."""
    broadcast = vote.broadcast
    assert broadcast.id is not None
    if not _is_open(broadcast):
        raise Conflict(N_("Die Umfrage ist bereits beendet."))
    if not 0 <= vote.option_index < len(broadcast.options):
        raise InvalidInput(N_("Antwort {number} gibt es nicht."), number=vote.option_index + 1)
    for _ in range(2):
        existing = session.exec(
            select(SurveyAnswer).where(SurveyAnswer.broadcast_id == broadcast.id, SurveyAnswer.contact_id == contact_id)
        ).first()
        if existing is not None:
            existing.option_index, existing.channel_kind = vote.option_index, channel_kind
            existing.answered_at = utcnow()
            return existing
        answer = SurveyAnswer(
            municipality_id=broadcast.municipality_id, broadcast_id=broadcast.id, contact_id=contact_id,
            option_index=vote.option_index, channel_kind=channel_kind,
        )  # fmt: skip
        try:
            with session.begin_nested():
                session.add(answer)
                session.flush()
            return answer
        except IntegrityError:
            continue  # the same contact answered twice at once: update the other row instead
    raise RuntimeError(f"survey answer of contact {contact_id} kept conflicting")


SURVEY_OUTCOME_PREFIX = "survey: "


def record_survey_answer(ctx: InboundContext) -> str | None:
    """Pipeline step (before threading): counts a button press or reply to a survey and thanks; else passes."""
    assert ctx.contact is not None and ctx.contact.id is not None and ctx.message is not None
    inbound = ctx.inbound
    # A calendar's answer is read from its calendar data (invitations.record_calendar_reply), never its words.
    if inbound.kind in ("comment", "edit") or inbound.calendar_reply is not None:
        return None
    if inbound.kind == "postback":
        vote = vote_from_payload(
            ctx.session, municipality_id=ctx.account.municipality_id, contact_id=ctx.contact.id, payload=inbound.text
        )
    else:
        assert ctx.account.id is not None
        vote = vote_from_reply(
            ctx.session, contact_id=ctx.contact.id, channel_account_id=ctx.account.id, text=inbound.text
        )
    if vote is None:
        return None
    return count_and_thank(ctx, vote)


def count_and_thank(ctx: InboundContext, vote: Vote) -> str:
    """Counts the contact's answer and queues the thanks (or, once the survey has ended, says so); the outcome."""
    assert ctx.contact is not None and ctx.contact.id is not None and ctx.message is not None
    language = ctx.contact.language
    try:
        record(ctx.session, vote=vote, contact_id=ctx.contact.id, channel_kind=ctx.account.kind)
        text = render_message("survey_thanks.txt.j2", language, option=vote.broadcast.options[vote.option_index])
        outcome = f"{SURVEY_OUTCOME_PREFIX}broadcast {vote.broadcast.id} option {vote.option_index + 1}"
    except Conflict:
        text = render_message("survey_closed.txt.j2", language)
        outcome = f"{SURVEY_OUTCOME_PREFIX}broadcast {vote.broadcast.id} already closed"
    thanks = queue_outbound(ctx.session, answering=ctx.message, text=text, author=None, automated=True)
    assert thanks.id is not None
    ctx.to_send.append(thanks.id)
    return outcome


def answers_of_contact(session: Session, municipality_id: int, contact_id: int) -> dict[str, Any]:
    """Each survey answer with its survey, newest first, for the subscriber's page (registry.SUBSCRIBER_PAGE)."""
    answers = session.exec(
        select(SurveyAnswer, Broadcast)
        .join(Broadcast, col(Broadcast.id) == SurveyAnswer.broadcast_id)
        .where(SurveyAnswer.municipality_id == municipality_id, SurveyAnswer.contact_id == contact_id)
        .order_by(col(SurveyAnswer.answered_at).desc())
        .limit(RECORD_LIMIT)
    ).all()
    return {"survey_answers": [(answer, survey) for answer, survey in answers]}
