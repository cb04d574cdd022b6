"""The inbound pipeline: small named steps that turn a stored event into a threaded, acknowledged message.

Each step takes the context (hub/inbox/context.py) and either returns None (go on) or an
outcome that ends the run. Outcomes are logged and stored on the event in one place,
`process_event`. Domains above the inbox add their own steps (subscriber commands, survey
answers), what an opt-out does, and the rows a delivery report may move, by the register
functions here, called once at start from hub/composition.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Select, Update, bindparam, update
from sqlmodel import Session, SQLModel, col, select

from channels.base import ChannelError, OptOut, StatusUpdate
from channels.registry import adapter_class, build_adapter
from hub.contacts.models import NAME_FROM_CHANNEL
from hub.contacts.service import find_contact, offer_name, resolve_contact
from hub.db import utcnow
from hub.inbox import service, snooze
from hub.inbox.context import InboundContext, Step
from hub.inbox.events import message_from_json, opt_out_from_json, status_from_json
from hub.inbox.models import Attachment, Conversation, InboundEvent, Message
from hub.inbox.public_status import status_url
from hub.inbox.receive import StoredEvent
from hub.metrics import PIPELINE_SECONDS
from hub.settings import Settings
from hub.templating import greeting, render_message
from hub.tenancy.models import ChannelAccount, Municipality
from hub.tenancy.preferences import preference

log = logging.getLogger(__name__)


def skip_our_own_messages(ctx: InboundContext) -> str | None:
    """A copy of a message the hub sent (mail looped back, an echo) must not become a new case."""
    ours = ctx.session.exec(
        select(Message.id).where(
            Message.channel_account_id == ctx.account.id,
            Message.direction == "outbound",
            Message.provider_id == ctx.inbound.provider_id,
        )
    ).first()
    return "ignored: our own message came back" if ours is not None else None


def keep_machine_mail_out_of_cases(ctx: InboundContext) -> str | None:
    """Mail from a robot (auto-reply, list or bulk mail, mailer daemon) never opens a case nor gets an answer.

    What a clerk expects of it: an auto-reply to one of the hub's mails ("bis 28. Juni nicht im
    Büro") is news about that case, so it is added to the conversation it answers, without
    reopening it and without starting the response clock. Anything else (a newsletter, a
    list, a robot writing first, an auto-reply to a broadcast) creates no contact and no case;
    its event is kept, raw, as ignored (GET /api/v1/inbound-events?state=ignored). No command
    or survey answer is read from it. Bounces never get here: they are delivery reports.
    """
    inbound = ctx.inbound
    if not inbound.automated:
        return None
    contact = find_contact(
        ctx.session,
        municipality_id=ctx.account.municipality_id,
        kind=adapter_class(ctx.account.kind).identity.kind,
        address=inbound.sender,
    )
    conversation = (
        service.answered_conversation(
            ctx.session, account=ctx.account, contact=contact, email_parents=inbound.in_reply_to
        )
        if contact is not None
        else None
    )
    if conversation is None:
        return "ignored: automated mail that answers none of our conversations"
    ctx.contact = contact
    store_message(ctx)
    _add_to_case(ctx, conversation)
    return f"stored in {conversation.reference}, automated mail: not acknowledged"


def identify_contact(ctx: InboundContext) -> str | None:
    """The contact behind the sender, named as the channel shows them unless staff or the citizen named them.

    Where the provider tells names only when asked (Messenger), it is asked here, in the worker
    and not in the webhook, and only while the contact has no name; if it cannot say, the name
    stays empty and the next message asks again.
    """
    adapter = adapter_class(ctx.account.kind)
    ctx.contact = resolve_contact(
        ctx.session,
        municipality_id=ctx.account.municipality_id,
        kind=adapter.identity.kind,
        address=ctx.inbound.sender,
        display_name=ctx.inbound.sender_name,
        name_origin=NAME_FROM_CHANNEL,
        language=ctx.inbound.language,
    )
    if adapter.names_on_request and not ctx.contact.display_name:
        offer_name(ctx.contact, _profile_name(ctx.account, ctx.inbound.sender), origin=NAME_FROM_CHANNEL)
    return None


def _profile_name(account: ChannelAccount, address: str) -> str | None:
    try:
        return build_adapter(account.kind, account.config, account.secrets).profile_name(address)
    except ChannelError as error:
        log.warning("no profile name for a sender on channel account %s: %s", account.id, error)
        return None


def store_message(ctx: InboundContext) -> str | None:
    """Stores the message on the contact; a command or a survey answer stays there, outside any case."""
    assert ctx.contact is not None and ctx.contact.id is not None
    inbound = ctx.inbound
    ctx.message = Message(
        municipality_id=ctx.account.municipality_id,
        contact_id=ctx.contact.id,
        channel_account_id=ctx.account.id,  # type: ignore[arg-type]
        direction="inbound",
        kind=inbound.kind,
        provider_id=inbound.provider_id,
        inbound_event_id=ctx.event.id,
        body=inbound.text,
        subject=inbound.subject,
        automated=inbound.automated,
        reply_to_ref=inbound.reply_to_ref,
        # Where replies thread on message ids (mail), the message's own id is what later ones cite.
        email_message_id=inbound.provider_id if adapter_class(ctx.account.kind).supports_subject else None,
        email_references=list(inbound.in_reply_to),
        created_at=inbound.sent_at or utcnow(),
    )
    ctx.session.add(ctx.message)
    ctx.session.flush()
    assert ctx.message.id is not None
    for attachment in inbound.attachments:
        ctx.session.add(
            Attachment(
                municipality_id=ctx.account.municipality_id,
                message_id=ctx.message.id,
                filename=attachment.filename,
                content_type=attachment.content_type,
                url=attachment.url,
                size=attachment.size if attachment.size is not None else len(attachment.data or b"") or None,
                data=attachment.data,
            )
        )
    return None


def thread_into_conversation(ctx: InboundContext) -> str | None:
    """What is more than a command or an answer becomes part of a case: the open one, or a new one."""
    assert ctx.contact is not None and ctx.message is not None
    inbound = ctx.inbound
    found = next((case for finder in _CASE_FINDERS if (case := finder(ctx)) is not None), None)
    conversation, ctx.is_new_conversation = found or service.thread_conversation(
        ctx.session,
        settings=ctx.settings,
        account=ctx.account,
        contact=ctx.contact,
        thread_key=inbound.thread_key,
        email_parents=inbound.in_reply_to,
        subject=inbound.subject,
    )
    _add_to_case(ctx, conversation)
    # The response clock runs on the citizen's own words (robots never get here).
    conversation.last_inbound_at = conversation.last_activity_at
    snooze.wake_on_message(ctx.session, conversation)
    if conversation.subject is None and inbound.subject:
        conversation.subject = inbound.subject[:300]
    return None


def _add_to_case(ctx: InboundContext, conversation: Conversation) -> None:
    """Moves the message that store_message kept on the contact into `conversation`."""
    assert ctx.message is not None
    ctx.conversation = conversation
    ctx.message.conversation_id, ctx.message.contact_id = conversation.id, None
    conversation.last_activity_at = utcnow()


def acknowledge(ctx: InboundContext) -> str | None:
    """Tells the citizen the reference of a new case (robots never get here: see keep_machine_mail_out_of_cases)."""
    assert ctx.conversation is not None and ctx.contact is not None
    if not ctx.is_new_conversation:
        return "stored"
    if ctx.inbound.shared_chat:
        # The status link is the writer's alone, and a bot cannot open a private chat with a
        # member who never started it: the case is there for staff, the group hears nothing.
        return "stored, no acknowledgement in a chat others read"
    if not ctx.settings.send_acknowledgement:
        return "stored, acknowledgements are switched off"
    municipality = ctx.session.get(Municipality, ctx.account.municipality_id)
    assert municipality is not None
    language = ctx.contact.language
    # A comment's answer is public on the page, so it must not carry the private status link;
    # a text paid per segment (SMS) is the short one, so the link still fits in as few as possible.
    link = None if ctx.inbound.kind == "comment" else status_url(ctx.settings, ctx.conversation)
    adapter = adapter_class(ctx.account.kind)
    # The municipality may have reworded the texts on its settings page, perhaps greeting by name.
    overrides = preference(municipality, "texts")
    personal = greeting(language, ctx.contact.display_name)
    text = render_message(
        "acknowledgement_sms.txt.j2" if adapter.max_segments is not None else "acknowledgement.txt.j2",
        language,
        overrides=overrides,
        municipality=municipality.name,
        reference=ctx.conversation.reference,
        link=link,
        **personal,
    )
    subject = None
    if adapter.supports_subject:
        subject = render_message(
            "acknowledgement_subject.txt.j2",
            language,
            overrides=overrides,
            reference=ctx.conversation.reference,
            subject=ctx.conversation.subject,
            **personal,
        )
    ack = service.queue_outbound(
        ctx.session,
        conversation=ctx.conversation,
        text=text,
        author=None,
        automated=True,
        subject=subject,
    )
    assert ack.id is not None
    ctx.to_send.append(ack.id)
    return "stored, acknowledged with " + ctx.conversation.reference


# Steps registered by other domains (subscriber commands, survey answers), in the order registered.
_RECOGNISERS: list[Step] = []


def register_step(step: Step) -> None:
    """Adds a step that recognises a message before it is threaded; registering it again changes nothing."""
    if step not in _RECOGNISERS:
        _RECOGNISERS.append(step)


class CaseFinder(Protocol):
    """Names the case a message belongs to, and whether it was opened just now; None leaves it to the inbox."""

    def __call__(self, ctx: InboundContext) -> tuple[Conversation, bool] | None: ...


# Finders registered by other domains (a booking's case, whatever the channel), asked in the
# order registered before the inbox threads a message by its channel and thread.
_CASE_FINDERS: list[CaseFinder] = []


def register_case_finder(finder: CaseFinder) -> None:
    """Adds a finder asked before the inbox's own threading; registering it again changes nothing."""
    if finder not in _CASE_FINDERS:
        _CASE_FINDERS.append(finder)


# Steps registered by other domains that add to the case a message was threaded into (a
# problem report's place and photos), in the order registered.
_CASE_STEPS: list[Step] = []


def register_case_step(step: Step) -> None:
    """Adds a step that runs once the message is in its case, before the acknowledgement; again changes nothing."""
    if step not in _CASE_STEPS:
        _CASE_STEPS.append(step)


def message_pipeline() -> tuple[Step, ...]:
    """The steps a citizen's message runs through.

    Commands and survey answers are recognised before threading, so that one never lands in,
    reopens, or shows on the status page of a case; what they do not handle goes on into one.
    """
    return (
        skip_our_own_messages,
        keep_machine_mail_out_of_cases,
        identify_contact,
        store_message,
        *_RECOGNISERS,
        thread_into_conversation,
        *_CASE_STEPS,
        acknowledge,
    )


class OptOutHandler(Protocol):
    """What a provider's opt-out does (hub.subscribers stops the citizen); returns the outcome."""

    def __call__(self, session: Session, *, account: ChannelAccount, event_id: int, opt_out: OptOut) -> str: ...


_OPT_OUT: list[OptOutHandler] = []


def register_opt_out(handler: OptOutHandler) -> None:
    """Sets what a provider's opt-out does; there is one, and registering again replaces it."""
    _OPT_OUT[:] = [handler]


# Later statuses never move a message back: a late "sent" callback after "delivered" is ignored.
_STATUS_RANK = {
    "queued": 0,
    "sending": 1,
    "sent": 2,
    "delivered": 3,
    "undelivered": 3,
    "failed": 3,
    "read": 4,
}


class ReportTarget(NamedTuple):
    """What a delivery report may move: its name, its state column, its lookup and its UPDATE."""

    name: str
    state: str
    lookup: Select[Any]
    move: Update
    # What the provider's "undelivered" becomes in the state column.
    undelivered: str
    # Called once a report has moved a row to failed or undelivered (a broadcast's fallback), with
    # the row's id; what it returns is added to the report's outcome.
    on_failure: Callable[[Session, int], str | None] | None = None


def report_target(
    model: type[SQLModel],
    state: str,
    *,
    undelivered: str = "undelivered",
    on_failure: Callable[[Session, int], str | None] | None = None,
) -> ReportTarget:
    """The statements for a table with channel_account_id, provider_id and a state column, built once.

    The values are bound at execution: building the statements anew for each report cost as
    much as running them.
    """
    table = model.__table__  # type: ignore[attr-defined]
    lookup = (
        select(table.c.id, table.c[state])
        .where(table.c.channel_account_id == bindparam("account_id"), table.c.provider_id == bindparam("provider_id"))
        .limit(1)
    )
    move = table.update().where(table.c.id == bindparam("target_id"))
    return ReportTarget(model.__name__.lower(), state, lookup, move, undelivered, on_failure)


# Registered targets (broadcast deliveries) are looked up before the inbox's own replies: they
# bring one or two reports per message, replies only a few, so most reports find their row
# with the first lookup.
_REPORT_TARGETS: list[ReportTarget] = [report_target(Message, "status")]


def register_report_target(target: ReportTarget) -> None:
    """Adds rows a delivery report may move, looked up before the replies; the same name again replaces it."""
    _REPORT_TARGETS[:] = [target, *(known for known in _REPORT_TARGETS if known.name != target.name)]


def apply_status(session: Session, channel_account_id: int, update_: StatusUpdate) -> str | None:
    """Moves a reply or a broadcast delivery on to what the provider reports, never backwards.

    Returns None when no reply or delivery has the provider's id: the provider may report
    before the sender has recorded its answer, so the caller keeps the report for later.
    Plain statements on the two columns that matter, no ORM objects: loading each row as an
    object was most of a report's cost.
    """
    where = {"account_id": channel_account_id, "provider_id": update_.provider_id}
    for target in _REPORT_TARGETS:
        found = session.execute(target.lookup, where).first()
        if found is not None:
            break
    else:
        return None
    target_id, current = found
    label = f"{target.name} {target_id}"
    if _STATUS_RANK.get(update_.status, 0) <= _STATUS_RANK.get(current or "", 0):
        return f"status {update_.status} ignored, {label} already {current}"
    values: dict[str, object] = {
        "target_id": target_id,
        target.state: target.undelivered if update_.status == "undelivered" else update_.status,
    }
    if update_.status == "delivered":
        values["delivered_at"] = utcnow()
    if update_.error_code:
        values["error_code"] = update_.error_code[:32]
        values["error_message"] = (update_.error_message or "")[:500] or None
    session.execute(target.move, values)
    followed = None
    if target.on_failure is not None and update_.status in ("failed", "undelivered"):
        followed = target.on_failure(session, target_id)
    return f"{label} is now {update_.status}" + (f"; {followed}" if followed else "")


# A report on a message whose send is not recorded yet waits this long, pending, for the
# sender: a receipt is recorded within seconds of the send, or never (the worker died, and
# the sweeper settles the row as uncertain), so an hour is ample and keeps the sweeper's
# retries bounded.
EARLY_REPORT_WAIT = timedelta(hours=1)


def _waiting(provider_id: str) -> str:
    return f"waiting for message {provider_id} to be recorded as sent"


def _keep_early_report(event: InboundEvent) -> str:
    """Puts a report back to pending for the sender or the sweeper, or gives it up once it is too old."""
    provider_id = str(event.payload.get("provider_id"))
    if utcnow() - event.received_at < EARLY_REPORT_WAIT:
        event.state = "pending"
        return _waiting(provider_id)
    event.state = "ignored"
    return f"status for unknown message {provider_id}"


@dataclass(frozen=True)
class PipelineResult:
    outcome: str
    to_send: list[int]
    conversation_id: int | None = None
    # A button press the provider wants acknowledged (Telegram's spinner), done after commit.
    postback_ref: str | None = None


def process_event(session: Session, settings: Settings, event_id: int) -> PipelineResult:
    """Runs the pipeline for one stored event, once: a second run finds it done and does nothing.

    The first statement claims the row (pending -> done) so that concurrent runs serialise on
    it; everything else happens in the same transaction, so a crash leaves it pending.
    """
    claimed = session.execute(
        update(InboundEvent)
        .where(col(InboundEvent.id) == event_id, col(InboundEvent.state) == "pending")
        .values(state="done", attempts=InboundEvent.attempts + 1, processed_at=utcnow())
    )
    if claimed.rowcount == 0:  # type: ignore[attr-defined]
        return PipelineResult(outcome="already processed", to_send=[])
    # populate_existing: a caller's session may hold the row from before the claim.
    event = session.get(InboundEvent, event_id, populate_existing=True)
    assert event is not None
    account = session.get(ChannelAccount, event.channel_account_id)
    assert account is not None
    if event.event_type == "status":
        applied = apply_status(session, event.channel_account_id, status_from_json(event.payload))
        outcome = applied if applied is not None else _keep_early_report(event)
        result = PipelineResult(outcome=outcome, to_send=[])
    elif event.event_type == "opt_out":
        opt_out = opt_out_from_json(event.payload)
        [handle_opt_out] = _OPT_OUT  # registered by hub.composition.install()
        outcome = handle_opt_out(session, account=account, event_id=event_id, opt_out=opt_out)
        if outcome.startswith("ignored"):
            event.state = "ignored"
        result = PipelineResult(outcome=outcome, to_send=[])
    else:
        ctx = InboundContext(
            session=session,
            settings=settings,
            event=event,
            account=account,
            inbound=message_from_json(event.payload),
        )
        outcome = "stored"
        for step in message_pipeline():
            stop = step(ctx)
            if stop is not None:
                outcome = stop
                break
        if outcome.startswith("ignored"):
            event.state = "ignored"
        result = PipelineResult(
            outcome=outcome,
            to_send=ctx.to_send,
            conversation_id=ctx.conversation.id if ctx.conversation else None,
            postback_ref=ctx.inbound.postback_ref,
        )
    event.outcome = result.outcome[:300]
    PIPELINE_SECONDS.labels(account.kind).observe(max(0.0, (utcnow() - event.received_at).total_seconds()))
    log.info(
        "inbound event %s (%s on channel %s): %s",
        event.id,
        event.event_type,
        account.id,
        result.outcome,
    )
    return result


def stale_pending_events(session: Session, settings: Settings, limit: int) -> list[tuple[int, str]]:
    """Pending events older than the stale age, as (id, event type): their task was lost, or they
    are delivery reports still waiting for their message's id.

    Citizens' messages first, then oldest first: the reports that wait, however many, never hold
    a message back from the bounded slice a sweep takes.
    """
    cutoff = utcnow() - timedelta(seconds=settings.stale_after_seconds)
    rows = session.execute(
        select(InboundEvent.id, InboundEvent.event_type)
        .where(InboundEvent.state == "pending", col(InboundEvent.received_at) <= cutoff)
        .order_by(col(InboundEvent.event_type) == "status", col(InboundEvent.id))
        .limit(limit)
    ).all()
    return [(event_id, event_type) for event_id, event_type in rows]


# The webhook's own rows: no ORM objects of them to keep in step.
_EVENTS = InboundEvent.__table__  # type: ignore[attr-defined]
_MARK_APPLIED = _EVENTS.update().where(_EVENTS.c.id == bindparam("event_id"))


def apply_statuses_now(session: Session, channel_account_id: int, stored: list[StoredEvent]) -> list[int]:
    """Applies delivery reports just stored by the caller at once; returns the ids still to be queued.

    A report is one UPDATE and sends nothing, so the webhook applies it itself: a broadcast's
    thousands of reports then never stand in the queue before a citizen's message. The rows are
    the caller's own, not yet committed, so no one else can claim them, and their INSERT already
    holds SQLite's write lock. Each report runs in a savepoint: one that fails is undone alone and
    stays pending, and goes to the queue like any other event.
    """
    left = []
    for row in stored:
        if not isinstance(row.event, StatusUpdate):
            left.append(row.id)
            continue
        try:
            with session.begin_nested():
                outcome = apply_status(session, channel_account_id, row.event)
                if outcome is None:
                    # Pending, not queued: the sender applies it with its receipt, else the sweeper.
                    values: dict[str, object] = {"outcome": _waiting(row.event.provider_id)}
                else:
                    values = {"state": "done", "attempts": 1, "processed_at": utcnow(), "outcome": outcome[:300]}
                session.execute(_MARK_APPLIED, {"event_id": row.id, **values})
        except Exception:
            log.exception("delivery report %s could not be applied at once; it is queued instead", row.id)
            left.append(row.id)
    return left


_EARLY_REPORTS = (
    select(_EVENTS.c.id, _EVENTS.c.payload)
    .where(
        _EVENTS.c.channel_account_id == bindparam("account_id"),
        _EVENTS.c.state == "pending",
        _EVENTS.c.event_type == "status",
        _EVENTS.c.payload["provider_id"].as_string() == bindparam("provider_id"),
    )
    .order_by(_EVENTS.c.id)
)
_MARK_EARLY_REPORT = _EVENTS.update().where(_EVENTS.c.id == bindparam("event_id"), _EVENTS.c.state == "pending")


def apply_early_reports(session: Session, *, channel_account_id: int, provider_id: str) -> None:
    """Applies the reports that came before the sender recorded `provider_id`, in the order they came.

    The sender calls it in the transaction that records the id, so receipt and reports commit
    together. A report whose webhook commits at the same moment is not seen here and waits for
    the sweeper.
    """
    for event_id, payload in session.execute(
        _EARLY_REPORTS, {"account_id": channel_account_id, "provider_id": provider_id}
    ).all():
        outcome = apply_status(session, channel_account_id, status_from_json(payload))
        if outcome is not None:
            done = {"state": "done", "processed_at": utcnow(), "outcome": outcome[:300]}
            session.execute(_MARK_EARLY_REPORT, {"event_id": event_id, **done})
